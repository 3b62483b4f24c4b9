"""FSDD import: official split plus dev, and connected-digit numbers built only from the right takes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gruasr.data.corpora.fsdd import DIGIT_WORDS, import_fsdd, parse_name, split_of_take
from gruasr.data.manifest import read_manifest

from .helpers import rejected_rows, run_cli, write_tone

SR = 8000
COUNTS = {"train": 30, "dev": 10, "test": 10}


def _import(src: Path, out: Path, *extra: str) -> str:
    argv = ["data", "fsdd", "--src", str(src), "--out", str(out), "--seed", "7"]
    argv += ["--numbers-train", "30", "--numbers-dev", "10", "--numbers-test", "10", *extra]
    code, stdout, stderr = run_cli(argv)
    assert code == 0, stderr
    return stdout


@pytest.fixture(scope="module")
def fsdd(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdd")
    stdout = _import(data_dir / "fsdd", out)
    return out, stdout


def _take(utt_id: str) -> tuple[int, str, int]:
    parsed = parse_name(Path(f"{utt_id}.wav"))
    assert parsed is not None, utt_id
    return parsed


def _sources(out: Path, split: str) -> dict[str, dict]:
    lines = (out / "numbers" / split / "sources.jsonl").read_text().splitlines()
    return {entry["id"]: entry for entry in map(json.loads, lines)}


def test_real_fsdd_split_counts(fsdd):
    out, stdout = fsdd
    splits = {name: read_manifest(out / f"{name}.jsonl") for name in ("train", "dev", "test")}
    assert {k: len(v) for k, v in splits.items()} == {"train": 2400, "dev": 300, "test": 300}
    for name, utts in splits.items():
        for u in utts:
            digit, speaker, take = _take(u.id)
            assert split_of_take(take) == name
            assert u.text == DIGIT_WORDS[digit] and u.speaker == speaker
            assert name != "test" or take <= 4
            assert name != "dev" or 5 <= take <= 9
    ids = [u.id for utts in splits.values() for u in utts]
    assert len(set(ids)) == 3000
    assert len({u.speaker for u in splits["train"]}) == 6
    assert rejected_rows(out / "rejected.tsv") == {}
    assert "train_numbers.jsonl: 30 utterances" in stdout


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_numbers_come_only_from_their_split(fsdd, split):
    out, _ = fsdd
    numbers = read_manifest(out / f"{split}_numbers.jsonl")
    assert len(numbers) == COUNTS[split]
    sources = _sources(out, split)
    assert set(sources) == {u.id for u in numbers}
    for u in numbers:
        words = sources[u.id]["words"]
        assert 3 <= len(words) <= 11
        assert u.audio == str((out / "numbers" / split / f"{u.id}.wav").resolve())
        takes = [_take(w["source"]) for w in words]
        assert all(split_of_take(take) == split for _, _, take in takes)
        assert {speaker for _, speaker, _ in takes} == {u.speaker}  # one caller per number
        assert u.text.split() == [DIGIT_WORDS[digit] for digit, _, _ in takes]
    # manifests point into OUT with relative paths, so the folder can move
    first = json.loads((out / f"{split}_numbers.jsonl").read_text().splitlines()[0])
    assert first["audio"] == f"numbers/{split}/{first['id']}.wav"


def test_number_audio_holds_the_takes_with_pauses(fsdd, data_dir):
    out, _ = fsdd
    sources = _sources(out, "test")
    for u in read_manifest(out / "test_numbers.jsonl"):
        audio, rate = sf.read(u.audio, dtype="int16")
        assert rate == SR and audio.ndim == 1
        assert u.duration == len(audio) / SR
        words = sources[u.id]["words"]
        ends = []
        for w in words:
            take, take_rate = sf.read(data_dir / "fsdd/recordings" / f"{w['source']}.wav", dtype="int16")
            first = round(w["start"] * SR)
            assert take_rate == SR and w["duration"] == len(take) / SR
            np.testing.assert_array_equal(audio[first : first + len(take)], take)  # the take, bit for bit
            ends.append((first, first + len(take)))
        gaps = [(b[0] - a[1]) / SR for a, b in zip(ends, ends[1:], strict=False)]
        assert all(0.05 - 1e-9 <= g <= 0.4 + 1e-9 for g in gaps)
        assert 0.1 - 1e-9 <= ends[0][0] / SR <= 0.3 + 1e-9
        assert 0.1 - 1e-9 <= (len(audio) - ends[-1][1]) / SR <= 0.3 + 1e-9
        pause = audio[ends[0][1] : ends[1][0]].astype(np.float64) / 32768
        assert 0 < np.sqrt(np.mean(pause**2)) < 1e-3  # very low noise, not digital silence


def test_same_seed_same_numbers_other_seed_different(fsdd, data_dir, tmp_path):
    out, _ = fsdd
    again = tmp_path / "again"
    _import(data_dir / "fsdd", again, "--headers-only")
    for split in ("train", "test"):
        name = f"{split}_numbers.jsonl"
        assert (again / name).read_text() == (out / name).read_text()
        for u in read_manifest(out / name)[:5]:
            assert (again / "numbers" / split / f"{u.id}.wav").read_bytes() == Path(u.audio).read_bytes()
    other = tmp_path / "other"
    _import(data_dir / "fsdd", other, "--headers-only", "--seed", "8")
    for split in ("train", "test"):
        a = [u.text for u in read_manifest(out / f"{split}_numbers.jsonl")]
        b = [u.text for u in read_manifest(other / f"{split}_numbers.jsonl")]
        assert a != b


def test_unseen_speaker_setting(data_dir, tmp_path):
    out = tmp_path / "holdout"
    stdout = _import(data_dir / "fsdd", out, "--holdout-speaker", "theo", "--numbers-holdout", "8", "--headers-only")
    counts = {n: len(read_manifest(out / f"{n}.jsonl")) for n in ("train", "dev", "test", "holdout")}
    assert counts == {"train": 2000, "dev": 250, "test": 250, "holdout": 500}
    for name in ("train", "dev", "test", "train_numbers", "dev_numbers", "test_numbers"):
        assert "theo" not in {u.speaker for u in read_manifest(out / f"{name}.jsonl")}, name
    holdout = read_manifest(out / "holdout_numbers.jsonl")
    assert len(holdout) == 8 and {u.speaker for u in holdout} == {"theo"}
    for entry in _sources(out, "holdout").values():
        assert {_take(w["source"])[1] for w in entry["words"]} == {"theo"}
    assert "unseen speaker theo" in stdout
    code, _, stderr = run_cli(
        ["data", "fsdd", "--src", str(data_dir / "fsdd"), "--out", str(out), "--holdout-speaker", "nobody"]
    )
    assert code == 1 and "holdout speaker 'nobody' is not in FSDD" in stderr
    code, _, stderr = run_cli(["data", "fsdd", "--src", str(data_dir / "fsdd"), "--out", str(out), "--seed", "-1"])
    assert code == 1 and stderr.strip() == "gruasr data: error: seed must be >= 0, got -1"


def test_bad_takes_are_listed_and_never_used(tmp_path):
    rec = tmp_path / "fsdd" / "recordings"
    for speaker in ("ann", "bob"):
        for digit in range(10):
            for take in (0, 5, 10, 11):
                write_tone(rec / f"{digit}_{speaker}_{take}.wav", 0.3, SR, 200 + 50 * digit)
    (rec / "3_ann_10.wav").write_bytes(b"")
    (rec / "4_bob_11.wav").write_bytes(b"RIFF not really")
    write_tone(rec / "notes.wav", 0.5)
    report = import_fsdd(tmp_path / "fsdd", tmp_path / "out", numbers={"train": 20, "dev": 3, "test": 3})
    rows = rejected_rows(tmp_path / "out" / "rejected.tsv")
    assert set(rows) == {"3_ann_10", "4_bob_11", "notes"}
    assert rows["3_ann_10"][1] == "empty file" and "digit" in rows["notes"][1]
    assert report.counts["train.jsonl"] == 40 - 2 and report.counts["test.jsonl"] == 20
    used = {w["source"] for e in _sources(tmp_path / "out", "train").values() for w in e["words"]}
    assert used and not used & {"3_ann_10", "4_bob_11"}
    # re-running with fewer numbers leaves no stale WAV files behind
    import_fsdd(tmp_path / "fsdd", tmp_path / "out", numbers={"train": 5, "dev": 3, "test": 3})
    assert len(list((tmp_path / "out/numbers/train").glob("*.wav"))) == 5
