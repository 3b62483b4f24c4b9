"""Kaldi data folder import: segments, utt2spk, and commands in wav.scp rejected without being run."""

from __future__ import annotations

import numpy as np

from gruasr.data.corpora.kaldi import PIPE_REASON, import_kaldi
from gruasr.data.manifest import load_utterance, read_manifest

from .helpers import rejected_rows, run_cli, tone, write_tone


def _kaldi_dir(tmp_path):
    audio = tmp_path / "audio"
    write_tone(audio / "rec1.wav", 3.0, 8000, 300)
    write_tone(audio / "rec2.wav", 2.0, 8000, 500)
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    canary = tmp_path / "pwned"
    (data / "wav.scp").write_text(
        f"rec1 audio/rec1.wav\nrec2 {audio / 'rec2.wav'}\nrec3 touch {canary} |\nrec4 /data/feats.ark:1234\n"
    )
    (data / "segments").write_text(
        "utt1 rec1 0.0 1.5\n"
        "utt2 rec1 1.5 -1\n"
        "utt3 rec2 0.5 2.0\n"
        "utt4 rec3 0 1\n"
        "utt5 rec4 0 1\n"
        "utt6 rec1 2.0 9.0\n"
        "utt7 recX 0 1\n"
        "utt8 rec2 0 0.05\n"
        "utt10 rec2 abc 1\n"
    )
    texts = {f"utt{i}": "YES NO" for i in range(1, 11)} | {"utt3": "Hello, World! [noise]"}
    (data / "text").write_text("".join(f"{k} {v}\n" for k, v in texts.items()))
    (data / "utt2spk").write_text("utt1 spkA\nutt2 spkA\nutt3 spkB\n")
    return data, canary


def test_segments_speakers_and_rejections(tmp_path):
    data, canary = _kaldi_dir(tmp_path)
    out = tmp_path / "out" / "train.jsonl"
    code, stdout, stderr = run_cli(["data", "kaldi", "--src", str(data), "--out", str(out), "--root", str(tmp_path)])
    assert code == 0, stderr
    assert not canary.exists()  # the command in wav.scp was never run
    utts = {u.id: u for u in read_manifest(out)}
    assert set(utts) == {"utt1", "utt2", "utt3"}
    assert (utts["utt1"].start, utts["utt1"].duration, utts["utt1"].speaker) == (0.0, 1.5, "spkA")
    assert (utts["utt2"].start, utts["utt2"].duration) == (1.5, 1.5)  # end -1: to the end of the recording
    assert (utts["utt3"].start, utts["utt3"].duration, utts["utt3"].speaker) == (0.5, 1.5, "spkB")
    assert utts["utt3"].text == "hello world" and utts["utt1"].text == "yes no"
    assert utts["utt1"].audio == str((tmp_path / "audio/rec1.wav").resolve())
    # the segment reads the right part of the recording
    np.testing.assert_allclose(load_utterance(utts["utt2"]), tone(3.0, 8000, 300)[12000:], atol=1e-4)

    rows = rejected_rows(out.with_name("train.rejected.tsv"))
    reasons = {k: v[1] for k, v in rows.items()}
    assert set(reasons) == {"utt4", "utt5", "utt6", "utt7", "utt8", "utt9", "utt10"}
    assert reasons["utt4"].startswith(PIPE_REASON)
    assert "archive" in reasons["utt5"]
    assert "past the audio's end" in reasons["utt6"]
    assert "not in wav.scp" in reasons["utt7"]
    assert reasons["utt8"].startswith("too short")
    assert "transcript without audio" in reasons["utt9"]
    assert "start/end" in reasons["utt10"]
    assert "rejected: 7" in stdout and "shell command" in stdout


def test_without_segments_each_recording_is_an_utterance(tmp_path, monkeypatch):
    write_tone(tmp_path / "a.wav", 1.0)
    write_tone(tmp_path / "b.wav", 1.0)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("a a.wav\nb b.wav\nb c.wav\n")
    (data / "text").write_text("a OK\nb\n")
    monkeypatch.chdir(tmp_path)  # Kaldi resolves relative paths from the directory scripts run in
    report = import_kaldi(data, tmp_path / "a.jsonl")
    [utt] = read_manifest(tmp_path / "a.jsonl")
    assert (utt.id, utt.text, utt.start, utt.duration, utt.speaker) == ("a", "ok", None, 1.0, None)
    assert sorted((r.id, r.reason) for r in report.rejected) == [
        ("b", "empty transcript"),
        ("b", "wav.scp:3: repeated id"),
    ]


def test_missing_files_are_clear_errors(tmp_path):
    (tmp_path / "data").mkdir()
    code, _, stderr = run_cli(["data", "kaldi", "--src", str(tmp_path / "data"), "--out", str(tmp_path / "o.jsonl")])
    assert code == 1 and stderr.strip().endswith("has no wav.scp")
