"""Rescoring by a second model (gruasr.transcription.Rescoring): the first model's n-best, each text weighed by the
second model's CTC likelihood of it. The winner is checked against torch's F.ctc_loss on real AN4 speech through
a mu-law line; the bundled default model names the bundled streaming model; `gruasr model rescore` tunes the weight
on dev and writes it; the CLI's flags and the ONNX engine give the same texts as the library."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gruasr.audio.telephony import TelephoneChannel
from gruasr.bundle import ModelBundle, bundled, verify
from gruasr.cli.main import main
from gruasr.data.corpora.an4 import import_an4
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import prefix_beam_search_nbest
from gruasr.errors import ConfigError
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import CTCModel, ModelConfig
from gruasr.recognizer import OfflineRecognizer
from gruasr.transcription import RESCORE_NBEST, Rescoring
from gruasr.tuning import RESCORE_WEIGHTS, add_rescoring

SAMPLE_CALL = Path(__file__).parents[2] / "src" / "gruasr" / "samples" / "call.wav"


@pytest.fixture(scope="module")
def pair() -> tuple[OfflineRecognizer, OfflineRecognizer]:
    """The bundled default model alone, and the bundled streaming model."""
    return OfflineRecognizer.load(rescoring=False), OfflineRecognizer.load(bundled("telephone-streaming"))


@pytest.fixture(scope="module")
def speech(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, np.ndarray]]:
    """(reference, 8 kHz samples through a mu-law line) of 10 AN4 dev utterances of several speakers."""
    folder = tmp_path_factory.mktemp("an4")
    import_an4(data_dir / "an4", folder)
    utts = read_manifest(folder / "dev.jsonl")[::9][:10]
    line = TelephoneChannel(codec="ulaw")
    return [
        (u.text, line.apply(load_utterance(u, 8000), 8000, np.random.default_rng([0, i]))) for i, u in enumerate(utts)
    ]


def _torch_likelihood(second: OfflineRecognizer, audio: np.ndarray, text: str) -> float:
    """log P(text | audio) under `second`, by torch's CTC loss (the reference), the second model hearing its
    end silence after the audio as rescoring gives it."""
    lp = second.log_probs(second.end_padded(audio)).double()
    target = second.bundle.tokens.encode(text)
    loss = F.ctc_loss(lp[:, None], torch.tensor([target]), torch.tensor([lp.shape[0]]), torch.tensor([len(target)]),
                      reduction="sum")  # fmt: skip
    return -float(loss)


@pytest.mark.parametrize("weight", [0.5, 1.0, 4.0])
def test_the_winner_is_the_best_fused_text(pair, speech, weight: float) -> None:
    first, second = pair
    bundle, changed = first.bundle, 0
    for _, audio in speech:
        log_probs = first.log_probs(audio)
        candidates = prefix_beam_search_nbest(log_probs, bundle.tokens, bundle.step_seconds, first.options.beam,
                                              first.lm, first.lexicon, nbest=RESCORE_NBEST)  # fmt: skip
        fused = [h.score + weight * _torch_likelihood(second, audio, h.text) for h in candidates]
        expected = candidates[int(np.argmax(fused))]
        got = Rescoring(second, weight).best(first, log_probs, audio, ends_input=True)
        assert got.text == expected.text
        assert got.score == pytest.approx(max(fused), rel=1e-6)
        assert got.words == expected.words  # the first model's word times of that text
        first.rescoring = Rescoring(second, weight)
        try:
            assert first.recognize(audio, ends_input=True).text == expected.text
        finally:
            first.rescoring = None
        changed += expected.text != candidates[0].text
    if weight == 4.0:
        assert changed > 0, "a heavy second model changes some of the first model's texts"


def test_weight_zero_is_the_first_model_alone(pair, speech) -> None:
    first, second = pair
    for _, audio in speech[:4]:
        log_probs = first.log_probs(audio)
        assert Rescoring(second, 0.0).best(first, log_probs, audio, True).text == first.decode(log_probs).text


def test_the_bundled_default_model_is_rescored_by_the_streaming_model() -> None:
    asr = OfflineRecognizer.load()
    spec = json.loads((bundled("telephone") / "model.json").read_text())["rescoring"]
    assert asr.rescoring is not None and spec["model"] == "telephone-streaming"
    assert asr.rescoring.model.bundle.path == bundled("telephone-streaming")
    assert asr.rescoring.weight == spec["weight"] and spec["weight"] in RESCORE_WEIGHTS
    assert OfflineRecognizer.load(rescoring=False).rescoring is None
    assert OfflineRecognizer.load(bundled("telephone-streaming")).rescoring is None


def test_a_folder_without_its_rescoring_model_warns_and_decodes_alone(tmp_path: Path) -> None:
    alone = tmp_path / "telephone"
    shutil.copytree(bundled("telephone"), alone)
    with pytest.warns(UserWarning, match="telephone-streaming"):
        asr = OfflineRecognizer.load(alone)
    assert asr.rescoring is None
    shutil.copytree(bundled("telephone-streaming"), tmp_path / "telephone-streaming")
    assert OfflineRecognizer.load(alone).rescoring is not None  # beside it again: found


def _tiny(rate: int = 8000, tokens: TokenTable | None = None) -> OfflineRecognizer:
    table = tokens or TokenTable()
    model = CTCModel(ModelConfig(input_dim=80, hidden_size=8, num_layers=1, conv_channels=8, vocab_size=len(table)))
    cmvn = GlobalCMVN(torch.zeros(80), torch.ones(80))
    return OfflineRecognizer(ModelBundle(model, FbankConfig(sample_rate=rate), cmvn, table, {}))


def test_a_second_model_must_hear_the_same_audio_and_spell_alike(pair) -> None:
    first, _ = pair
    with pytest.raises(ConfigError, match="16000 Hz"):
        Rescoring(_tiny(16000), 1.0).check(first)
    with pytest.raises(ConfigError, match="other tokens"):
        Rescoring(_tiny(tokens=TokenTable(TokenTable().symbols[:-1])), 1.0).check(first)
    with pytest.raises(ConfigError, match="weight >= 0"):
        Rescoring(_tiny(), -1.0)
    Rescoring(_tiny(), 1.0).check(first)


def test_model_rescore_tunes_the_weight_on_dev_and_writes_it(tiny_model: Path, tmp_path: Path) -> None:
    second = tmp_path / "second"
    shutil.copytree(tiny_model, second)
    out = add_rescoring(tiny_model, second, tmp_path / "rescored")
    spec = json.loads((out / "model.json").read_text())["rescoring"]
    assert spec["model"] == "second" and spec["nbest"] == RESCORE_NBEST
    assert [r["weight"] for r in spec["dev_results"]] == list(RESCORE_WEIGHTS)
    allowed = [r for r in spec["dev_results"] if r["invented"] <= spec["dev_results"][0]["invented"]]
    assert spec["weight"] == min(allowed, key=lambda r: r["selection_wer"])["weight"]
    assert "## Rescoring by a second model" in (out / "RECIPE.md").read_text()
    verify(out)  # a new manifest; the weights' bytes unchanged
    assert (out / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    asr = OfflineRecognizer.load(out)
    assert asr.rescoring is not None and asr.rescoring.weight == spec["weight"]
    with pytest.raises(ConfigError, match="beside"):
        add_rescoring(tiny_model, second, tmp_path / "elsewhere" / "rescored")


def _cli_texts(capsys: pytest.CaptureFixture[str], *flags: str) -> list[str]:
    assert main(["transcribe", "--json", *flags, str(SAMPLE_CALL)]) == 0
    return [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]


def test_cli_rescoring_flags_are_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    rescored = [r.text for r in OfflineRecognizer.load().transcribe_file(SAMPLE_CALL)]
    alone = [r.text for r in OfflineRecognizer.load(rescoring=False).transcribe_file(SAMPLE_CALL)]
    assert _cli_texts(capsys) == rescored
    assert _cli_texts(capsys, "--rescore-weight", "0") == alone
    asr = OfflineRecognizer.load(rescoring=False)
    asr.rescoring = Rescoring(OfflineRecognizer.load(bundled("telephone-streaming")), 3.0)
    assert _cli_texts(capsys, "--rescore-weight", "3") == [r.text for r in asr.transcribe_file(SAMPLE_CALL)]
    assert _cli_texts(capsys, "--rescore", str(bundled("telephone-streaming")), "--rescore-weight", "3") == [
        r.text for r in asr.transcribe_file(SAMPLE_CALL)
    ]
    assert main(["transcribe", "--rescore-weight", "-1", str(SAMPLE_CALL)]) == 1
    assert "--rescore-weight must be >= 0" in capsys.readouterr().err
    assert main(["transcribe", "--model", str(bundled("telephone-streaming")), "--rescore-weight", "2",
                 str(SAMPLE_CALL)]) == 1  # fmt: skip
    assert "names no rescoring model" in capsys.readouterr().err
