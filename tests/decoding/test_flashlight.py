"""The flashlight-text lexicon decoder backend gives our beam search's text (and score) on hand-built posteriors."""

from __future__ import annotations

import math

import pytest
import torch

from gruasr import ConfigError
from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import BeamConfig, Lexicon, prefix_beam_search
from gruasr.decoding.lm import NGramLM, build_kneser_ney

pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")
from gruasr.decoding.flashlight import FlashlightLexiconDecoder  # noqa: E402

TABLE = TokenTable()
LEXICON = Lexicon(["the", "cat", "cot", "dog", "all", "a", "call"])
LM = NGramLM(build_kneser_ney(["the cat", "a cat", "the dog", "call all", "a dog"], 3))
CONFIG = BeamConfig(beam_size=32, lm_weight=0.8, word_bonus=0.5)


def frames(spec: str, conf: float = 0.9) -> torch.Tensor:
    """One step per character of `spec` ('_' is blank), the character having probability `conf`."""
    rows = torch.full((len(spec), len(TABLE)), (1 - conf) / (len(TABLE) - 1))
    for t, ch in enumerate(spec):
        rows[t, 0 if ch == "_" else TABLE.symbols.index(ch)] = conf
    return rows.log()


def ambiguous() -> torch.Tensor:
    """'c ? t' where the middle letter is o (0.5) or a (0.4): the LM prefers "cat", the acoustics "cot"."""
    lp = frames("_ _t_h_e_ _c_a_t_")
    row = torch.full((len(TABLE),), math.log(0.02))
    row[TABLE.symbols.index("o")], row[TABLE.symbols.index("a")] = math.log(0.5), math.log(0.4)
    lp[13] = row
    return lp


CASES = {
    "clear": frames("_ _t_h_e_ _c_a_t_ _"),
    "doubled letter and no trailing space": frames("_c_aa_l__l_ a_ll"),
    "leading and doubled spaces": frames("  _d_o_g_ __ _ _c_a_t"),
    "ambiguous": ambiguous(),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("with_lm", [False, True])
def test_flashlight_gives_our_text(name, with_lm):
    lp, lm = CASES[name], LM if with_lm else None
    ours = prefix_beam_search(lp, TABLE, 0.04, CONFIG, lm, LEXICON)
    theirs = FlashlightLexiconDecoder(TABLE, LEXICON, lm, CONFIG).decode(lp, 0.04)
    assert theirs.text == ours.text
    assert theirs.score == pytest.approx(ours.score, abs=1e-3)
    assert [t for w in theirs.words for t in (w.start, w.end)] == pytest.approx(
        [t for w in ours.words for t in (w.start, w.end)]
    )


def test_the_lm_changes_both_decoders_alike():
    lp = ambiguous()
    plain = FlashlightLexiconDecoder(TABLE, Lexicon(["the", "cat", "cot"]), None, CONFIG).decode(lp, 0.04)
    fused = FlashlightLexiconDecoder(TABLE, Lexicon(["the", "cat", "cot"]), LM, CONFIG).decode(lp, 0.04)
    assert (plain.text, fused.text) == ("the cot", "the cat")


def test_unspellable_lexicon_words_are_refused():
    with pytest.raises(ConfigError, match="spelled"):
        FlashlightLexiconDecoder(TABLE, Lexicon(["café"]))
