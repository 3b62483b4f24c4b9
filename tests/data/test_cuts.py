"""`gruasr data cut-words`: digits cut out of real AN4 utterances by forced alignment, as segments of the original
audio that the model hears as their word, inside their utterance, from several speakers."""

from __future__ import annotations

from gruasr.data.corpora.cuts import cut_words
from gruasr.data.manifest import load_utterance, read_manifest, write_manifest
from gruasr.decoding.greedy import greedy_decode
from gruasr.recognizer import OfflineRecognizer

from .helpers import run_cli


def test_digits_cut_from_an4(data_dir, tmp_path) -> None:
    code, _, stderr = run_cli(["data", "an4", "--src", str(data_dir / "an4"), "--out", str(tmp_path / "an4")])
    assert code == 0, stderr
    with_digits = [
        u for u in read_manifest(tmp_path / "an4" / "test.jsonl") if {"one", "two", "three"} & set(u.text.split())
    ]
    source = write_manifest(tmp_path / "some.jsonl", with_digits[:12], relative=False)
    code, stdout, stderr = run_cli(
        ["data", "cut-words", "--manifest", str(source), "--out", str(tmp_path / "cuts.jsonl")]
    )
    assert code == 0, stderr
    cuts = read_manifest(tmp_path / "cuts.jsonl")
    assert "cuts from" in stdout and len(cuts) >= 12  # most digits of 12 utterances survive the check
    assert len({u.speaker for u in cuts}) >= 2
    rec = OfflineRecognizer.load()
    by_id = {u.id: u for u in with_digits}
    for cut in cuts[:10]:
        whole = by_id[cut.id.rsplit("-w", 1)[0]]
        assert cut.start is not None and cut.duration is not None and 0.1 < cut.duration < 1.5
        assert cut.start >= 0 and cut.start + cut.duration <= (whole.duration or 0) + 0.01
        heard = greedy_decode(
            rec.log_probs(load_utterance(cut, 8000)).cpu(), rec.bundle.tokens, rec.bundle.step_seconds
        )
        assert heard.text == cut.text and cut.text in whole.text.split()
    # a word the transcripts never hold gives no cut
    assert cut_words(with_digits[:3], rec, ("zebra",)).kept == []

    # phone numbers from the cuts: several speakers, each number one speaker's digits
    code, stdout, stderr = run_cli(["data", "numbers", "--takes", str(tmp_path / "cuts.jsonl"), "--count", "6",
                                    "--out", str(tmp_path / "numbers")])  # fmt: skip
    assert code == 0, stderr
    numbers = read_manifest(tmp_path / "numbers" / "numbers.jsonl")
    assert len(numbers) == 6 and all(set(n.text.split()) <= {c.text for c in cuts} for n in numbers)
    assert all(n.speaker in {c.speaker for c in cuts} for n in numbers)
