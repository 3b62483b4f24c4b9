"""AN4 import: the real corpus (exact counts, speaker-disjoint splits) and a small broken copy."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gruasr.cli.main import main
from gruasr.data.corpora.an4 import choose_dev_speakers, import_an4
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.errors import ConfigError

from .helpers import rejected_rows, run_cli, write_raw_be16


@pytest.fixture(scope="module")
def an4(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("an4")
    code, stdout, stderr = run_cli(["data", "an4", "--src", str(data_dir / "an4"), "--out", str(out)])
    assert code == 0, stderr
    return out, stdout


def test_real_an4_counts_and_speakers(an4):
    out, stdout = an4
    train, dev, test = (read_manifest(out / f"{name}.jsonl") for name in ("train", "dev", "test"))
    assert len(train) + len(dev) == 948
    assert len(test) == 130
    assert (len(train), len(dev)) == (857, 91)  # 7 held-out speakers, 9.6% of the training utterances
    train_spk, dev_spk, test_spk = ({u.speaker for u in s} for s in (train, dev, test))
    assert len(train_spk | dev_spk) == 74 and len(test_spk) == 10
    assert not (train_spk & dev_spk) and not (train_spk & test_spk) and not (dev_spk & test_spk)
    assert Counter(s[0] for s in dev_spk) == {"f": 2, "m": 5}
    assert sorted(dev_spk) == ["fbbh", "fjmd", "mcen", "mfaa", "mjbh", "mkdb", "mmap"]
    assert "wrote" in stdout and "dev speakers (2 f + 5 m)" in stdout and "rejected: 0" in stdout
    assert rejected_rows(out / "rejected.tsv") == {}


def test_real_an4_lines(an4, data_dir):
    out, _ = an4
    train = read_manifest(out / "train.jsonl")
    test = read_manifest(out / "test.jsonl")
    first = next(u for u in train if u.id == "an251-fash-b")
    assert first.text == "yes" and first.speaker == "fash"
    assert (first.sample_rate, first.encoding) == (16000, "s16be")
    assert first.audio == str((data_dir / "an4/wav/an4_clstk/fash/an251-fash-b.raw").resolve())
    rubout = next(u for u in test if u.id == "an406-fcaw-b")
    assert rubout.text == "rubout g m e f three nine"
    for u in train + test:
        assert u.text == u.text.lower() and "<s>" not in u.text and "(" not in u.text
        assert u.duration is not None and 0.5 < u.duration < 7.0
    # the manifest's duration matches the decoded audio and the audio is speech-like, not byte-swapped noise
    samples = load_utterance(first)
    assert len(samples) == round(first.duration * 16000)
    assert 0.001 < float(np.sqrt(np.mean(samples**2))) < 0.3


def test_dev_choice_is_proportional_and_order_free():
    speakers = [f"f{i:02d}" for i in range(21)] + [f"m{i:02d}" for i in range(53)]
    chosen = choose_dev_speakers(speakers, 7)
    assert Counter(s[0] for s in chosen) == {"f": 2, "m": 5}
    assert choose_dev_speakers(list(reversed(speakers)), 7) == chosen
    assert len(choose_dev_speakers(speakers, 10)) == 10
    with pytest.raises(ConfigError):
        choose_dev_speakers(speakers[:3], 3)


def _fake_an4(root):
    """Train speakers fabc (2 good) and mxyz (1 good, 5 broken files, 1 transcript without audio); test mtst."""
    rng = np.random.default_rng(0)
    speech = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    train = root / "wav/an4_clstk"
    for name in ("an1-fabc-b", "an2-fabc-b"):
        write_raw_be16(train / "fabc" / f"{name}.raw", speech)
    write_raw_be16(train / "mxyz/an3-mxyz-b.raw", speech)
    (train / "mxyz/an4-mxyz-b.raw").write_bytes(b"")  # empty
    (train / "mxyz/an5-mxyz-b.raw").write_bytes(b"\x01\x02\x03")  # not whole samples
    write_raw_be16(train / "mxyz/an6-mxyz-b.raw", np.zeros(16000, dtype=np.float32))  # silent
    write_raw_be16(train / "mxyz/an7-mxyz-b.raw", np.tile(speech, 3))  # 3 s: too long for --max-duration 2
    write_raw_be16(train / "mxyz/an8-mxyz-b.raw", speech)  # no transcript
    write_raw_be16(root / "wav/an4test_clstk/mtst/an9-mtst-b.raw", speech)
    (root / "etc").mkdir()
    ids = ["an1-fabc-b", "an2-fabc-b", "an3-mxyz-b", "an4-mxyz-b", "an5-mxyz-b", "an6-mxyz-b", "an7-mxyz-b"]
    lines = [f"<s> GO </s> ({i})" for i in ids] + ["<s> STOP </s> (an10-mxyz-b)", "a line without id"]
    (root / "etc/an4_train.transcription").write_text("\n".join(lines) + "\n")
    (root / "etc/an4_test.transcription").write_text("ENTER SIX TWO (an9-mtst-b)\n")


def test_bad_files_are_listed_not_fatal(tmp_path, capsys):
    _fake_an4(tmp_path / "an4")
    out = tmp_path / "out"
    argv = ["data", "an4", "--src", str(tmp_path / "an4"), "--out", str(out), "--dev-speakers", "1"]
    assert main([*argv, "--max-duration", "2"]) == 0
    stdout = capsys.readouterr().out
    assert [u.id for u in read_manifest(out / "dev.jsonl")] == ["an1-fabc-b", "an2-fabc-b"]
    assert [u.id for u in read_manifest(out / "train.jsonl")] == ["an3-mxyz-b"]
    assert [u.text for u in read_manifest(out / "test.jsonl")] == ["enter six two"]
    rows = rejected_rows(out / "rejected.tsv")
    reasons = {k: v[1] for k, v in rows.items()}
    assert set(reasons) == {f"an{i}-mxyz-b" for i in (4, 5, 6, 7, 8, 10)} | {"an4_train.transcription:9"}
    assert reasons["an4-mxyz-b"] == "empty file"
    assert "whole number" in reasons["an5-mxyz-b"]
    assert reasons["an6-mxyz-b"].startswith("silent")
    assert reasons["an7-mxyz-b"].startswith("too long: 3.000 s")
    assert reasons["an8-mxyz-b"].startswith("no transcript")
    assert reasons["an10-mxyz-b"].startswith("no audio file")
    assert "rejected: 7" in stdout and "an5-mxyz-b" in stdout


def test_explicit_dev_speakers_and_errors(tmp_path):
    _fake_an4(tmp_path / "an4")
    report = import_an4(tmp_path / "an4", tmp_path / "out", dev_speakers=["mxyz"])
    assert report.counts["dev.jsonl"] == 2 and report.counts["train.jsonl"] == 2  # an3, an7 (3 s: fine here)
    with pytest.raises(ConfigError, match="nobody"):
        import_an4(tmp_path / "an4", tmp_path / "out", dev_speakers=["nobody"])
    code, _, stderr = run_cli(["data", "an4", "--src", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert code == 1
    assert stderr.strip().splitlines() == [
        f"gruasr data: error: AN4 folder not found or not a folder: {tmp_path / 'missing'}"
    ]
