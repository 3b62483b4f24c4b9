"""Folder import: a transcripts TSV, and LibriSpeech's layout."""

from __future__ import annotations

import soundfile as sf

from gruasr.data.manifest import read_manifest

from .helpers import rejected_rows, run_cli, tone, write_tone


def test_tsv_with_header_and_speaker(tmp_path):
    audio = tmp_path / "calls"
    write_tone(audio / "a.wav", 1.0)
    write_tone(audio / "sub dir" / "b.wav", 2.0)
    (audio / "c.wav").write_bytes(b"not audio at all")
    tsv = tmp_path / "transcripts.tsv"
    tsv.write_text(
        "path\ttext\tspeaker\n"
        "a.wav\tHello, world!\talice\n"
        "sub dir/b.wav\tGood-bye\tbob\n"
        "c.wav\tbroken\tbob\n"
        "missing.wav\tnothing\tbob\n"
        "a.wav\t?!\talice\n"
        "too\tmany\tcolumns\there\n"
    )
    out = tmp_path / "out" / "calls.jsonl"
    code, stdout, stderr = run_cli(["data", "folder", "--src", str(audio), "--tsv", str(tsv), "--out", str(out)])
    assert code == 0, stderr
    utts = read_manifest(out)
    assert [(u.id, u.text, u.speaker, u.duration) for u in utts] == [
        ("a", "hello world", "alice", 1.0),
        ("sub_dir-b", "good bye", "bob", 2.0),
    ]
    rows = rejected_rows(out.with_name("calls.rejected.tsv"))
    assert set(rows) == {"c", "missing", "a", "transcripts.tsv:7"}
    assert "not readable audio" in rows["c"][1]
    assert rows["missing"][1] == "no such file"
    assert rows["a"][1] == "transcripts.tsv:6: empty transcript"  # the second line for a.wav has no words
    assert "columns" in rows["transcripts.tsv:7"][1]
    assert "rejected: 4" in stdout


def test_tsv_without_header_and_bad_header(tmp_path):
    write_tone(tmp_path / "x.wav", 0.5)
    tsv = tmp_path / "t.tsv"
    tsv.write_text(f"{tmp_path / 'x.wav'}\tONE TWO\n")
    code, _, stderr = run_cli(
        ["data", "folder", "--src", str(tmp_path), "--tsv", str(tsv), "--out", str(tmp_path / "m.jsonl")]
    )
    assert code == 0, stderr
    [utt] = read_manifest(tmp_path / "m.jsonl")
    assert (utt.id, utt.text, utt.speaker) == ("x", "one two", None)
    tsv.write_text("path\twords\n")
    code, _, stderr = run_cli(
        ["data", "folder", "--src", str(tmp_path), "--tsv", str(tsv), "--out", str(tmp_path / "m.jsonl")]
    )
    assert code == 1 and "header must name path, text" in stderr


def test_librispeech_layout(tmp_path):
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "19" / "198"
    chapter.mkdir(parents=True)
    for i, seconds in enumerate((1.5, 2.5, 1.0)):
        sf.write(chapter / f"19-198-000{i}.flac", tone(seconds, 16000), 16000, subtype="PCM_16")
    (chapter / "19-198.trans.txt").write_text(
        "19-198-0000 NORTHANGER ABBEY\n19-198-0001 THE KING'S MEN, SAID HE\n19-198-0003 NO AUDIO FOR THIS ONE\n"
    )
    out = tmp_path / "libri.jsonl"
    code, stdout, stderr = run_cli(["data", "folder", "--src", str(tmp_path / "LibriSpeech"), "--out", str(out)])
    assert code == 0, stderr
    utts = read_manifest(out)
    assert [(u.id, u.text, u.speaker, u.duration) for u in utts] == [
        ("19-198-0000", "northanger abbey", "19", 1.5),
        ("19-198-0001", "the king's men said he", "19", 2.5),
    ]
    rows = rejected_rows(tmp_path / "libri.rejected.tsv")
    assert set(rows) == {"19-198-0002", "19-198-0003"}
    assert rows["19-198-0002"][1] == "no transcript in 19-198.trans.txt"
    assert "no audio file" in rows["19-198-0003"][1]


def test_folder_without_transcripts_is_an_error(tmp_path):
    write_tone(tmp_path / "x.wav", 0.5)
    code, _, stderr = run_cli(["data", "folder", "--src", str(tmp_path), "--out", str(tmp_path / "m.jsonl")])
    assert code == 1 and "no transcripts found" in stderr and len(stderr.strip().splitlines()) == 1
