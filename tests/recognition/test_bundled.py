"""The bundled default model and the sample call: what `gruasr transcribe` and `make demo` use out of the box."""

from __future__ import annotations

import json
from pathlib import Path

from gruasr.cli.main import main
from gruasr.evaluation.align import edit_distance
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.recognizer import BUNDLED, load_model

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "gruasr" / "samples"


def test_bundled_model_loads_with_its_lm_and_lexicon():
    asr = load_model()
    assert asr.bundle.path == BUNDLED and asr.sample_rate == 8000
    assert asr.lm is not None and asr.lexicon is not None
    assert (BUNDLED / "RECIPE.md").is_file()
    size = sum(p.stat().st_size for p in BUNDLED.iterdir())
    assert size < 8_000_000  # a few MB, float16 weights


def test_transcribe_the_sample_call_with_no_model_argument(capsys):
    assert main(["transcribe", "--json", str(SAMPLES / "call.wav")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["channel"] for r in rows] == [0, 1]  # one result per call leg
    reference = json.loads((SAMPLES / "call.json").read_text())["text"]
    counts = ErrorCounts()
    for row in rows:
        counts.add(reference[str(row["channel"])], row["text"])
        starts = [w["start"] for w in row["words"]]
        assert starts == sorted(starts)
    # Synthetic voices through a mu-law line are far from the human training speech: the commands suffer
    # (38.1% WER over both legs with the model bundled on 2026-11-29), but the caller's phone number comes
    # through, at most one digit wrong.
    assert counts.wer < 0.6, counts.summary_line()
    number = ["four", "one", "two", "five", "five", "five", "two", "six", "eight", "nine"]
    heard = rows[1]["text"].split()
    best = min(edit_distance(number, heard[i : i + len(number)]) for i in range(max(1, len(heard) - len(number) + 1)))
    assert best <= 1, rows[1]["text"]


def test_demo_without_evaluation(capsys):
    assert main(["demo", "--no-eval"]) == 0
    out = capsys.readouterr().out
    assert "sample call" in out and "bundled model" in out
    asr = load_model()  # the header says how the bundled model decodes, as its model.json says
    assert f"beam {asr.options.beam.beam_size}) with a word {asr.lm.order}-gram LM" in out.replace("\n", " ")
    assert asr.rescoring is not None
    assert f"rescored by telephone-streaming (weight {asr.rescoring.weight:g})" in out.replace("\n", " ")
    assert "streamed live" in out and "unidirectional" in out  # the same call through the streaming model
