"""The language model's training text, and the LM and lexicon built from it (what `gruasr model bundle` ships).

AN4, the telephone task this project trains on, is two-thirds spelled letters ("p i t t s b u r g h", names,
streets and random codes) and numbers said as words. An LM of the training transcripts alone knows a few hundred
spellings; this text adds, deterministically and from installed packages only (nothing is downloaded):

    transcripts  the run's training transcripts, repeated `weights["transcripts"]` times so that they dominate
                 the local statistics
    spelling     words spelled letter by letter as AN4 writes them ("o'hara" -> "o apostrophe h a r a"): the US
                 census 1990 first names (all) and the most frequent last names (package `names`), English words
                 from the web2 word list (Webster's Second International, package `english-words`), and street
                 names made of both ("c e n t r e a v e" style: a name and a street suffix run together)
    grammar      numbers, phone numbers, zip codes, dates, times, addresses, ordinals and spelled codes as AN4's
                 speakers say them (gruasr.decoding.spoken), with the command words of the transcripts ("enter",
                 "erase", "rubout" before a code or number; "yes", "stop", "repeat" ... alone)

Only sentences the model can spell (its tokens: letters, apostrophe, space) are kept. The lexicon is every word
of the LM (all of them spellable). A recipe's [lm] table (LMRecipe) says which sources, their weights, the
order and KenLM-style count cut-offs (`prune`) that keep the ARPA file small.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gruasr.decoding.lm import build_kneser_ney, write_arpa
from gruasr.decoding.spoken import MONTHS, ONES, ORDINAL_ONES, ORDINAL_TEENS, ORDINAL_TENS, TEENS, TENS, grammar
from gruasr.errors import ConfigError

SOURCES = ("transcripts", "spelling", "grammar")
#: street suffixes as AN4's speakers spell them, run together with the name ("f i n d l e y d r i v e")
STREET_SUFFIXES = ("ave", "avenue", "drive", "road", "lane", "place", "street", "court", "way", "boulevard")
#: the model's alphabet when none is given: the default token table's letters and apostrophe
ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz'")
#: words that belong to the grammar, not to the commands (numbers, months, ordinals, letters)
_GRAMMAR_WORDS = frozenset(
    {*ONES, *TEENS, *TENS, *ORDINAL_ONES, *ORDINAL_TEENS, *ORDINAL_TENS, *MONTHS, "oh", "hundred", "thousand", ""}
)


@dataclass(frozen=True)
class LMRecipe:
    """A recipe's [lm] table: how the bundled LM and lexicon are built (defaults: a 3-gram of the transcripts)."""

    #: n-gram order
    order: int = 3
    #: KenLM-style count cut-offs per order from unigrams (e.g. [0, 0, 1]: drop trigrams seen once); [] keeps all
    prune: tuple[int, ...] = ()
    #: text sources (SOURCES): "transcripts", "spelling", "grammar"
    sources: tuple[str, ...] = ("transcripts",)
    #: copies of each source's text (1 when not named)
    weights: dict[str, int] = field(default_factory=dict)
    #: sentences drawn from the grammar
    grammar_sentences: int = 20000
    #: census last names spelled, most frequent first (0: all 88,799)
    last_names: int = 20000
    #: web2 English words spelled (a seeded sample of its lower-case words of 2-12 letters; 0: none)
    english_words: int = 20000
    #: street names spelled (a name or word and a suffix run together)
    streets: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ConfigError(f"lm.order must be >= 1, got {self.order}")
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown or not self.sources:
            raise ConfigError(f"lm.sources must be some of {list(SOURCES)}, got {list(self.sources)}")
        for name, weight in self.weights.items():
            if name not in self.sources:
                raise ConfigError(f"lm.weights names {name!r}, which is not in lm.sources {list(self.sources)}")
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                raise ConfigError(f"lm.weights.{name} must be an integer >= 1, got {weight!r}")
        for name in ("grammar_sentences", "last_names", "english_words", "streets"):
            if getattr(self, name) < 0:
                raise ConfigError(f"lm.{name} must be >= 0, got {getattr(self, name)}")

    def weight(self, source: str) -> int:
        return self.weights.get(source, 1)


def spell(word: str) -> str:
    """A word spelled as AN4 writes spelling: its letters as words, an apostrophe as "apostrophe"."""
    return " ".join("apostrophe" if c == "'" else c for c in word.lower())


def spellable(sentence: str, alphabet: Iterable[str] = ALPHABET) -> bool:
    """Whether every character of the sentence but spaces is in the model's alphabet."""
    return set(sentence.replace(" ", "")) <= set(alphabet)


def commands(transcripts: Iterable[str]) -> tuple[list[str], list[str]]:
    """The command words of the transcripts (not letters, numbers, months or ordinals): those said alone
    ("yes", "stop", "repeat") and those said first before letters or numbers ("enter", "erase", "rubout"),
    sorted."""
    alone, before = set(), set()
    for text in transcripts:
        words = text.split()
        if not words or len(words[0]) == 1 or words[0] in _GRAMMAR_WORDS:
            continue
        if len(words) == 1:
            alone.add(words[0])
        elif len(words[1]) == 1 or words[1] in _GRAMMAR_WORDS:  # "area code ..." is not a command
            before.add(words[0])
    return sorted(alone), sorted(before)


def _census(kind: str) -> list[str]:
    """A census 1990 name list of the `names` package (one name per line, most frequent first), lower-case."""
    try:
        import names
    except ImportError:
        raise ConfigError("the spelling source needs the package 'names' (pip install names==0.3.0)") from None
    path = Path(names.FILES[kind])
    return [line.split()[0].lower() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]


def _web2() -> list[str]:
    """web2's lower-case words (proper nouns are capitalized there), letters only, sorted."""
    try:
        from english_words import get_english_words_set
    except ImportError:
        raise ConfigError("the spelling source needs 'english-words' (pip install english-words==2.0.2)") from None
    return sorted(w for w in get_english_words_set(["web2"], alpha=True) if w.islower() and w.isalpha())


def spelled_words(recipe: LMRecipe) -> list[str]:
    """The words the spelling source spells (not yet spelled), in a fixed order: first names, last names, English
    words, street names."""
    rng = random.Random(recipe.seed)
    first = sorted(set(_census("first:male")) | set(_census("first:female")))
    last = _census("last")
    last = last[: recipe.last_names] if recipe.last_names else last
    english = [w for w in _web2() if 2 <= len(w) <= 12] if recipe.english_words else []
    english = rng.sample(english, min(recipe.english_words, len(english)))
    bases = last[:5000] + english[:5000]
    streets = [rng.choice(bases) + rng.choice(STREET_SUFFIXES) for _ in range(recipe.streets)] if bases else []
    return first + last + english + streets


def lm_sentences(recipe: LMRecipe, transcripts: Sequence[str], alphabet: Iterable[str] = ALPHABET) -> Iterator[str]:
    """The LM's training text, one sentence at a time, in a fixed order (the same recipe and transcripts give the
    same text): each source's sentences, repeated by its weight; sentences the model cannot spell are dropped."""
    letters = frozenset(alphabet)
    texts = [" ".join(t.lower().split()) for t in transcripts]
    parts: list[tuple[str, list[str]]] = []
    if "transcripts" in recipe.sources:
        parts.append(("transcripts", [t for t in texts if t]))
    if "spelling" in recipe.sources:
        parts.append(("spelling", [spell(w) for w in spelled_words(recipe)]))
    if "grammar" in recipe.sources:
        parts.append(("grammar", grammar(recipe.grammar_sentences, recipe.seed, commands(texts))))
    for source, sentences in parts:
        kept = [s for s in sentences if spellable(s, letters)]
        for _ in range(recipe.weight(source)):
            yield from kept


def build_lm(
    recipe: LMRecipe, transcripts: Sequence[str], arpa: str | os.PathLike[str], alphabet: Iterable[str] = ALPHABET
) -> dict[str, Any]:
    """Write the recipe's LM as an ARPA file; returns facts for RECIPE.md and model.json: the lexicon (every word
    of the LM, sorted), sentence and word counts per source, n-gram counts and the file's size."""
    counts = {"sentences": 0, "tokens": 0}

    def counted() -> Iterator[str]:
        for sentence in lm_sentences(recipe, transcripts, alphabet):
            counts["sentences"] += 1
            counts["tokens"] += sentence.count(" ") + 1
            yield sentence

    model = build_kneser_ney(counted(), recipe.order, recipe.prune or None)
    path = write_arpa(model, arpa)
    words = sorted(w for (w,) in model[1] if not w.startswith("<"))
    return {
        "lexicon": words,
        "sentences": counts["sentences"],
        "tokens": counts["tokens"],
        "ngrams": [len(model[n]) for n in sorted(model)],
        "arpa_bytes": path.stat().st_size,
    }
