"""The recognizer and the eval / transcribe commands, on a tiny trained model and real audio."""

from __future__ import annotations

import ast
import json
import shutil

import numpy as np
import pytest

from gruasr.audio import RawFormat, load_audio, save_wav
from gruasr.bundle import bundled
from gruasr.cli.inputs import parse_raw
from gruasr.cli.main import main
from gruasr.decoding.lm import build_arpa
from gruasr.integrity import write_manifest
from gruasr.recognizer import DecodeOptions, load_model
from gruasr.vad import EndpointConfig, speech_segments


def test_eval_writes_reports_and_prints_wer_last(tiny_model, test_manifest, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["eval", "--manifest", str(test_manifest), "--model", str(tiny_model), "--out", str(out), "--greedy"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("WER ") and "sub," in lines[-1] and "ins]" in lines[-1]
    report = json.loads((out / "report.json").read_text())
    assert {"wer", "cer", "ser", "words", "sub", "del", "ins", "rtf"} <= set(report)
    assert report["words"] == 4 and report["utterances"] == 4 and report["rtf"] > 0
    assert report["decoding"] == "greedy"
    for name in ("wer-summary.txt", "recogs.txt", "errs.txt"):
        assert (out / name).read_text().strip()


def test_eval_through_a_telephone_line_with_an_lm(tiny_model, test_manifest, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("one\ntwo\nthree\nfour five\nsix seven eight nine zero\n")
    lm = build_arpa(text, 2, tmp_path / "lm.arpa")
    out = tmp_path / "eval"
    args = ["eval", "--manifest", str(test_manifest), "--model", str(tiny_model), "--out", str(out)]
    assert main([*args, "--lm", str(lm), "--channel", "ulaw", "--snr", "20", "--packet-loss", "0.02"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["decoding"] == "beam+lm"
    assert report["channel"] == {"codec": "ulaw", "snr_db": 20.0, "packet_loss": 0.02, "tilt_db": 0.0}
    words = {
        w
        for line in (out / "recogs.txt").read_text().splitlines()
        if "hyp=" in line
        for w in ast.literal_eval(line.split("hyp=")[1])
    }
    assert words <= {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero"}  # lexicon


def test_eval_through_another_handset_is_the_library_channel(test_manifest, tmp_path, capsys):
    from gruasr.audio.telephony import TelephoneChannel
    from gruasr.evaluation.evaluate import evaluate
    from gruasr.recognizer import OfflineRecognizer

    # the bundled model, greedy, so that the texts are real words
    args = ["eval", "--manifest", str(test_manifest), "--greedy", "--rescore-weight", "0", "--channel", "ulaw"]
    assert main([*args, "--tilt", "4", "--out", str(tmp_path / "e")]) == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["channel"]["tilt_db"] == 4.0
    asr = OfflineRecognizer.load(options=DecodeOptions("greedy"), rescoring=False)
    expected = evaluate(asr, test_manifest, TelephoneChannel(codec="ulaw", tilt_db=4.0))
    assert any(r.hyp for r in expected.recogs)
    recogs = (tmp_path / "e" / "recogs.txt").read_text()
    assert all(f"{r.id}:\thyp={r.hyp.split()}" in recogs for r in expected.recogs)  # the same audio, the same texts
    assert main([*args, "--tilt", "20", "--out", str(tmp_path / "bad")]) == 1  # beyond +-12: a clear error
    assert "tilt_db must lie within" in capsys.readouterr().err


def test_eval_lists_unreadable_audio_and_scores_the_rest(tiny_model, test_manifest, tmp_path, capsys):
    lines = test_manifest.read_text().splitlines()
    broken = json.loads(lines[0])
    broken["id"], broken["audio"] = "broken", str(tmp_path / "missing.wav")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join([*lines, json.dumps(broken)]) + "\n")
    code = main(["eval", "--manifest", str(manifest), "--model", str(tiny_model), "--out", str(tmp_path / "e")])
    assert code == 1
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["utterances"] == 4 and report["failed"][0]["id"] == "broken"
    assert "failed: broken" in capsys.readouterr().err


def test_transcribe_json_per_channel_any_rate_and_bad_files(tiny_model, test_manifest, tmp_path, capsys):
    first = json.loads(test_manifest.read_text().splitlines()[0])["audio"]
    mono = load_audio(first).channel(0)
    stereo = tmp_path / "stereo.wav"
    save_wav(stereo, np.stack([mono, mono[::-1].copy()]), 8000, encoding="ulaw")
    wideband = tmp_path / "wide.flac"
    import soundfile

    soundfile.write(wideband, load_audio(first, sample_rate=16000).channel(0), 16000)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF....WAVEfmt junk")
    code = main(["transcribe", "--model", str(tiny_model), "--json", str(stereo), str(garbage), str(wideband)])
    captured = capsys.readouterr()
    assert code == 1  # the bad file fails the run, after the good ones are done
    rows = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert [(r["audio"], r["channel"], r.get("leg")) for r in rows] == [
        (str(stereo), 0, "A"), (str(stereo), 1, "B"), (str(wideband), 0, None)
    ]  # fmt: skip
    for row in rows:
        assert isinstance(row["text"], str)
        for word in row["words"]:
            assert {"word", "start", "end", "conf"} <= set(word) and 0 <= word["start"] <= word["end"]
    assert "garbage.wav" in captured.err and captured.err.count("\n") == 1  # one line for the bad file


def test_long_recordings_are_cut_by_voice_activity_and_decoded_in_pieces(tiny_model, test_manifest, tmp_path):
    takes = [load_audio(json.loads(line)["audio"]).channel(0) for line in test_manifest.read_text().splitlines()]
    pause = np.zeros(16000, dtype=np.float32)
    long = np.concatenate([x for t in takes * 6 for x in (t, pause)])  # ~ 24 takes with 2 s pauses, 60+ s
    vad = EndpointConfig(max_utterance=10.0)
    segments = speech_segments(long, 8000, vad)
    # every take is an utterance of its own (the pauses are longer than the trailing silence), none too long,
    # in order, and of each 2 s pause at least 0.6 s (a whole trailing silence without speech) is not decoded
    assert len(segments) == len(takes) * 6
    assert all(0 < b - a <= 80000 for a, b in segments)
    assert all(segments[i][1] <= segments[i + 1][0] for i in range(len(segments) - 1))
    assert sum(b - a for a, b in segments) <= len(long) - len(segments) * 4800
    path = tmp_path / "long.wav"
    save_wav(path, long, 8000)
    asr = load_model(tiny_model, options=DecodeOptions(method="greedy"))
    asr.vad = vad
    whole = asr.transcribe(long, 8000)
    from_file = asr.transcribe_file(path)[0]  # read in 10 s blocks: the same cuts, the same words
    assert from_file.duration == pytest.approx(len(long) / 8000)
    assert from_file.text == whole.text
    assert [(w.start, w.end) for w in from_file.hypothesis.words] == [(w.start, w.end) for w in whole.words]
    times = [w.start for w in from_file.hypothesis.words]
    assert times == sorted(times) and (not times or times[-1] <= from_file.duration)


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    wav = tmp_path / "x.wav"
    save_wav(wav, np.zeros(8000, np.float32), 8000)
    assert main(["transcribe", "--model", str(tmp_path / "nope"), str(wav)]) == 1
    assert "model not found" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["transcribe", "stream", "call"])
def test_input_files_are_checked_before_the_model_loads(command, tmp_path, capsys):
    """Each bad file is one error line, and the model (here: a folder that does not exist) is never read."""
    empty, garbage = tmp_path / "empty.wav", tmp_path / "garbage.flac"
    empty.write_bytes(b"")
    garbage.write_bytes(b"fLaC not really")
    missing = tmp_path / "missing.wav"
    files = [str(missing), str(empty), str(garbage)] if command == "transcribe" else [str(missing)]
    assert main([command, "--model", str(tmp_path / "no-model"), *files]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == len(files) and not any("model" in line for line in lines)
    assert "missing.wav: no such file" in lines[0]
    if command == "transcribe":
        assert "empty file" in lines[1] and "garbage.flac" in lines[2]


def test_raw_headerless_audio_gives_the_same_text_as_the_wav(tiny_model, test_manifest, tmp_path, capsys):
    first = json.loads(test_manifest.read_text().splitlines()[0])["audio"]
    audio = load_audio(first, sample_rate=16000).channel(0)
    raw = tmp_path / "take.pcm"
    raw.write_bytes((np.clip(audio, -1, 1) * 32767).astype(">i2").tobytes())
    wav = tmp_path / "take.wav"
    save_wav(wav, load_audio(raw, raw=RawFormat(16000, 2, "big")).channel(0), 16000)
    common = ["--model", str(tiny_model), "--greedy", "--json"]
    assert main(["transcribe", *common, "--raw", "16000:2:be", str(raw)]) == 0
    from_raw = json.loads(capsys.readouterr().out)
    assert main(["transcribe", *common, str(wav)]) == 0
    assert from_raw["text"] == json.loads(capsys.readouterr().out)["text"]
    assert main(["transcribe", *common, str(raw)]) == 1  # a .pcm file without --raw: told what is missing
    assert "RawFormat" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["transcribe", "--raw", "16000:2:middle", str(raw)])
    assert "RATE:WIDTH:ENDIAN" in capsys.readouterr().err
    assert parse_raw("8000:2:le:2") == RawFormat(8000, 2, "little", 2)
    assert parse_raw("16000:2:be").spec == "s16be"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [([], "beam+lm"), (["--no-lm"], "beam"), (["--greedy"], "greedy"), (["--decoding", "beam"], "beam"),
     (["--rescore", str(bundled("telephone-streaming"))], "beam+lm+rescore")],
)  # fmt: skip
def test_no_lm_is_beam_search_without_the_lm_and_greedy_has_its_own_flag(
    flags, expected, tiny_model, test_manifest, tmp_path
):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    (tmp_path / "t.txt").write_text("one two\nthree\n")
    build_arpa(tmp_path / "t.txt", 2, folder / "lm.arpa")
    write_manifest(folder)  # an LM added by hand: the folder's manifest lists it (gruasr model manifest)
    args = ["eval", "--manifest", str(test_manifest), "--model", str(folder), "--out", str(tmp_path / "e")]
    assert main([*args, *flags]) == 0
    assert json.loads((tmp_path / "e" / "report.json").read_text())["decoding"] == expected


def test_greedy_and_no_lm_together_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["transcribe", "--greedy", "--no-lm", "x.wav"])
    assert "not allowed with" in capsys.readouterr().err


def test_model_directory_lm_is_used_by_default(tiny_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    (tmp_path / "t.txt").write_text("one two\n")
    build_arpa(tmp_path / "t.txt", 2, folder / "lm.arpa")
    write_manifest(folder)
    asr = load_model(folder)
    assert asr.lm is not None and asr.lexicon is not None and asr.lexicon.words == {"one", "two"}
    assert load_model(folder, options=DecodeOptions(use_lm=False)).decode is not None
