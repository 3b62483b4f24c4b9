"""The LM's training text (gruasr.decoding.lm_text, gruasr.decoding.spoken): deterministic, spellable, in AN4's
conventions, and an LM of it that prefers a spelled word to the same letters scrambled."""

from __future__ import annotations

import random
import string

import pytest

from gruasr.decoding import spoken
from gruasr.decoding.lm import NGramLM, build_kneser_ney
from gruasr.decoding.lm_text import LMRecipe, build_lm, commands, lm_sentences, spell
from gruasr.errors import ConfigError
from gruasr.training.config import load_config

#: AN4 training transcripts (an4_clstk), as its speakers said them
AN4 = [
    "erase z y g n p eight hundred and twenty three",
    "erase t m a z x two thousand five hundred and fifty two",
    "rubout z g d r g nine nine four six",
    "enter fifty four",
    "september sixth nineteen sixty seven",
    "four twenty eight seventy one",
    "four two one oh one nine six",
    "one five two one three",
    "sixty three sixty four and a half",
    "o apostrophe h a r a",
    "area code four one two four two two one two two five",
    "p i t t s b u r g h",
    "yes",
    "repeat",
    "stop",
]
SMALL = {"grammar_sentences": 300, "last_names": 300, "english_words": 300, "streets": 50}


def test_numbers_are_said_as_an4_says_them() -> None:
    assert spoken.cardinal(823) == "eight hundred and twenty three"
    assert spoken.cardinal(2552) == "two thousand five hundred and fifty two"
    assert spoken.cardinal(7186) == "seven thousand one hundred and eighty six"
    assert spoken.cardinal(2005) == "two thousand and five" and spoken.cardinal(60) == "sixty"
    assert spoken.pairs(1967) == "nineteen sixty seven" and spoken.pairs(5809) == "fifty eight oh nine"
    assert spoken.pairs(491) == "four ninety one" and spoken.pairs(1100) == "eleven hundred"
    assert spoken.ordinal(6) == "sixth" and spoken.ordinal(22) == "twenty second" and spoken.ordinal(30) == "thirtieth"
    assert spoken.ordinal(12) == "twelfth" and spoken.digits("4210196") == "four two one oh one nine six"
    assert spoken.digits("15213", "zero") == "one five two one three"
    with pytest.raises(ValueError):
        spoken.two_digit(100)


def test_every_grammar_kind_speaks_an4_words() -> None:
    """Each kind's sentences use only number, month, ordinal and command words and single letters, and together
    they cover every number word of the AN4 transcripts above."""
    rng = random.Random(0)
    said = set()
    cmds = commands(AN4)
    for kind in spoken.KINDS:
        for _ in range(200):
            said |= set(spoken.sentence(kind, rng, cmds).split())
    words = {w for w in said if len(w) > 1}
    numbers = {*spoken.ONES, *spoken.TEENS, *spoken.TENS, *spoken.ORDINAL_ONES, *spoken.ORDINAL_TEENS,
               *spoken.ORDINAL_TENS, *spoken.MONTHS, "oh", "hundred", "thousand", "and", "a", "half",
               "o'clock"}  # fmt: skip
    assert words <= numbers | {"area", "code", "enter", "erase", "rubout", "yes", "repeat", "stop"}
    an4 = {w for text in AN4 for w in text.split() if len(w) > 1}
    assert an4 - said <= {"apostrophe"}  # spelling says "apostrophe", not the grammar


def test_commands_come_from_the_transcripts() -> None:
    assert commands(AN4) == (["repeat", "stop", "yes"], ["enter", "erase", "rubout"])


def test_spelling_follows_an4() -> None:
    assert spell("Pittsburgh") == "p i t t s b u r g h"
    assert spell("o'hara") == "o apostrophe h a r a"


def test_the_text_is_deterministic_and_spellable() -> None:
    pytest.importorskip("english_words")
    pytest.importorskip("names")
    recipe = LMRecipe(sources=("transcripts", "spelling", "grammar"), weights={"transcripts": 3}, **SMALL)
    first = list(lm_sentences(recipe, AN4))
    assert first == list(lm_sentences(recipe, AN4))
    assert first != list(lm_sentences(LMRecipe(**{**recipe.__dict__, "seed": 1}), AN4))
    assert first[: 3 * len(AN4)] == AN4 * 3  # the transcripts, repeated by their weight
    spelled = list(lm_sentences(LMRecipe(sources=("spelling",), **SMALL), AN4))
    assert spelled and all(len(w) == 1 or w == "apostrophe" for s in spelled for w in s.split())
    assert "j o h n" in spelled and "s m i t h" in spelled  # census first and last names
    assert any(s.replace(" ", "").endswith(("drive", "avenue", "road")) for s in spelled)  # streets
    alphabet = set(string.ascii_lowercase) - {"q"} | {"'"}
    without_q = list(lm_sentences(recipe, AN4, alphabet))
    assert without_q and not any("q" in s for s in without_q)  # sentences the model could not spell: dropped
    assert all(set(s.replace(" ", "")) <= set(string.ascii_lowercase + "'") for s in first)


def test_an_lm_of_it_prefers_spelling_to_scrambled_letters(tmp_path) -> None:
    pytest.importorskip("english_words")
    pytest.importorskip("names")
    recipe = LMRecipe(order=5, sources=("transcripts", "spelling", "grammar"), **SMALL)
    facts = build_lm(recipe, AN4, tmp_path / "lm.arpa")
    lm = NGramLM.from_arpa(tmp_path / "lm.arpa")
    assert lm.order == 5 and facts["lexicon"] == sorted(lm.vocab - {"</s>", "<unk>"})
    assert set(string.ascii_lowercase) <= set(facts["lexicon"]) and "hundred" in facts["lexicon"]
    rng = random.Random(0)
    for word in ("johnson", "miller", "margaret", "highland", "thomas"):
        letters = list(word)
        scrambled = letters[:]
        while scrambled == letters:
            rng.shuffle(scrambled)
        assert lm.sentence_logprob(letters) > lm.sentence_logprob(scrambled) + 2.0, word
    # and numbers said as AN4 says them over the same words shuffled
    assert lm.sentence_logprob(["nineteen", "sixty", "seven"]) > lm.sentence_logprob(["sixty", "nineteen", "seven"])


def test_the_recipe_table_is_checked() -> None:
    with pytest.raises(ConfigError, match="lm.sources"):
        LMRecipe(sources=("transcripts", "wikipedia"))
    with pytest.raises(ConfigError, match="lm.weights names"):
        LMRecipe(weights={"grammar": 2})
    with pytest.raises(ConfigError, match=r"lm.weights.transcripts must be an integer >= 1"):
        LMRecipe(weights={"transcripts": 0})
    config = load_config(None, ["lm.order=5", 'lm.sources=["transcripts","grammar"]', "lm.weights={transcripts=4}"])
    assert config.lm == LMRecipe(order=5, sources=("transcripts", "grammar"), weights={"transcripts": 4})
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(None, ["lm.orders=5"])


def test_the_default_recipe_is_the_transcripts_trigram(tmp_path) -> None:
    facts = build_lm(LMRecipe(), AN4, tmp_path / "lm.arpa")
    model = build_kneser_ney(AN4, 3)
    assert facts["ngrams"] == [len(model[n]) for n in (1, 2, 3)]
    assert facts["sentences"] == len(AN4) and facts["lexicon"] == sorted({w for t in AN4 for w in t.split()})
