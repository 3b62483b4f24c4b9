"""CTC decoding on hand-built posteriors: greedy, prefix beam search, LM fusion, lexicon, word times."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import torch

from gruasr import ConfigError
from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import BeamConfig, Lexicon, prefix_beam_search
from gruasr.decoding.greedy import best_path, greedy_decode
from gruasr.decoding.lm import NGramLM, build_arpa, build_kneser_ney, write_arpa

TABLE = TokenTable()
STEP = 0.04


def frames(spec: str, conf: float = 0.9) -> torch.Tensor:
    """One frame per character of `spec` ('_' is blank), the character having probability `conf`."""
    v = len(TABLE)
    rows = []
    for ch in spec:
        row = torch.full((v,), (1 - conf) / (v - 1))
        row[0 if ch == "_" else TABLE.symbols.index(ch)] = conf
        rows.append(row.log())
    return torch.stack(rows)


def test_token_table_round_trip_and_errors():
    ids = TABLE.encode("don't stop")
    assert TABLE.decode(ids) == "don't stop"
    assert TABLE.blank == 0 and TABLE.symbols[TABLE.space] == " "
    assert TokenTable.from_json(TABLE.to_json()) == TABLE
    with pytest.raises(ConfigError, match="lacks"):
        TABLE.encode("route 66")
    with pytest.raises(ConfigError):
        TokenTable(("a", "b"))


def test_greedy_merges_repeats_and_drops_blanks():
    hyp = greedy_decode(frames("_hh_e_ll_l_oo__ _w_o_r_l_d_"), TABLE, STEP)
    assert hyp.text == "hello world"
    assert [w.word for w in hyp.words] == ["hello", "world"]
    first, second = hyp.words
    assert first.start == pytest.approx(1 * STEP) and first.end == pytest.approx(13 * STEP)
    assert second.start == pytest.approx(17 * STEP) and second.end == pytest.approx(26 * STEP)
    assert 0.89 < first.conf <= 0.9


def test_best_path_reports_runs():
    emitted = best_path(frames("aa_b"))
    assert [(TABLE.symbols[t], first, last) for t, first, last, _ in emitted] == [("a", 0, 1), ("b", 3, 3)]


def test_beam_without_lm_agrees_with_greedy_on_clear_input():
    lp = frames("_t_h_e_ _c_a_t_")
    assert prefix_beam_search(lp, TABLE, STEP).text == greedy_decode(lp, TABLE, STEP).text == "the cat"


def test_beam_sums_paths_greedy_cannot():
    """Two frames: 'a' 0.4, blank 0.6 each. Best path is blank-blank (empty), but 'a' has more total mass:
    P(a) = 0.4*0.6 + 0.6*0.4 + 0.4*0.4 = 0.64 > P(empty) = 0.36."""
    v = len(TABLE)
    row = torch.full((v,), 1e-9)
    row[0], row[TABLE.symbols.index("a")] = 0.6, 0.4
    lp = torch.stack([row, row]).log()
    assert greedy_decode(lp, TABLE, STEP).text == ""
    hyp = prefix_beam_search(lp, TABLE, STEP, BeamConfig(beam_size=4))
    assert hyp.text == "a"
    assert hyp.score == pytest.approx(math.log(0.64), abs=1e-6)


def _ambiguous() -> torch.Tensor:
    lp = frames("_c_a_t_")
    row = torch.full((len(TABLE),), math.log(0.02))
    row[TABLE.symbols.index("o")], row[TABLE.symbols.index("a")] = math.log(0.5), math.log(0.4)
    lp[3] = row
    return lp


def test_language_model_and_lexicon_fix_an_acoustic_confusion(tmp_path):
    lp = _ambiguous()
    assert prefix_beam_search(lp, TABLE, STEP).text == "cot"
    text = tmp_path / "text.txt"
    text.write_text("the cat\na cat\ncat\n" * 5 + "a dog\n")
    lm = NGramLM.from_arpa(build_arpa(text, 2, tmp_path / "lm.arpa"))
    assert prefix_beam_search(lp, TABLE, STEP, BeamConfig(lm_weight=1.0), lm=lm).text == "cat"
    assert prefix_beam_search(lp, TABLE, STEP, lexicon=Lexicon(["cat", "dog"])).text == "cat"


def test_lexicon_only_admits_its_words():
    lp = frames("_d_o_g_ _c_o_t_")
    assert prefix_beam_search(lp, TABLE, STEP, lexicon=Lexicon(["dog", "cat", "cot"])).text == "dog cot"
    assert prefix_beam_search(lp, TABLE, STEP, lexicon=Lexicon(["dog", "cat"])).text in ("dog cat", "dog")
    with pytest.raises(ConfigError):
        Lexicon([])


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_is_a_distribution_for_every_history(order):
    sentences = ["a b c", "a b d", "b c a", "c c", "a", "d b c a b"] * 3 + ["e a b"]
    with tempfile.TemporaryDirectory() as folder:
        lm = NGramLM.from_arpa(write_arpa(build_kneser_ney(sentences, order), Path(folder) / "lm.arpa"))
    words = sorted(lm.vocab)
    histories = [("<s>",), ("a",), ("b", "c"), ("e", "a"), ("zz",), ("c", "zz"), ("<s>", "a", "b")]
    for history in histories:
        total = sum(math.exp(lm.score(history, w)[0]) for w in words)
        assert total == pytest.approx(1.0, abs=1e-5), history
    if order > 1:  # word order matters only above unigrams
        assert lm.sentence_logprob(["a", "b", "c"]) > lm.sentence_logprob(["c", "b", "a"])


def test_arpa_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nnot-a-number word\n\\end\\\n")
    with pytest.raises(ConfigError, match="ARPA"):
        NGramLM.from_arpa(bad)
    with pytest.raises(ConfigError, match="not found"):
        NGramLM.from_arpa(tmp_path / "missing.arpa")
    with pytest.raises(ConfigError):
        build_kneser_ney([""], 2)


def test_lm_build_command(tmp_path, capsys):
    from gruasr.cli.main import main

    text = tmp_path / "t.txt"
    text.write_text("Yes NO\nyes\n")
    assert main(["lm", "build", "--text", str(text), "--order", "2", "--out", str(tmp_path / "lm.arpa")]) == 0
    lm = NGramLM.from_arpa(tmp_path / "lm.arpa")
    assert lm.order == 2 and {"yes", "no"} <= lm.vocab  # lower-cased
    assert main(["lm", "build", "--text", str(tmp_path / "none.txt"), "--out", str(tmp_path / "x.arpa")]) == 1
    assert "not found" in capsys.readouterr().err
