"""The output alphabet of the CTC model: blank, space, apostrophe and the 26 letters.

Characters keep the vocabulary tiny and open (any word can be spelled, none is out of vocabulary), which suits
the small data of telephone tasks; a word-level language model and lexicon add word knowledge at decoding.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gruasr.errors import ConfigError

BLANK = "<blk>"
DEFAULT_SYMBOLS = (BLANK, " ", "'", *"abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class TokenTable:
    """Symbols by id; id 0 is the CTC blank. Saved with every model."""

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS

    def __post_init__(self) -> None:
        if not self.symbols or self.symbols[0] != BLANK:
            raise ConfigError(f"token table must start with the blank {BLANK!r}")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError("token table has duplicate symbols")
        if any(len(s) != 1 for s in self.symbols[1:]):
            raise ConfigError("token table: every symbol but the blank must be one character")

    @property
    def blank(self) -> int:
        return 0

    @property
    def space(self) -> int:
        return self.symbols.index(" ")

    def __len__(self) -> int:
        return len(self.symbols)

    def _index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}

    def unknown(self, text: str) -> set[str]:
        """Characters of `text` the table cannot spell."""
        index = self._index()
        return {c for c in text if c not in index or c == BLANK}

    def encode(self, text: str) -> list[int]:
        """Text (lower-case words, single spaces) -> ids; unknown characters raise ConfigError."""
        index = self._index()
        try:
            return [index[c] for c in text]
        except KeyError as err:
            raise ConfigError(f"text {text!r} has a character the token table lacks: {err.args[0]!r}") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids (already collapsed, without blanks) -> text."""
        return "".join(self.symbols[i] for i in ids if i != self.blank)

    def to_json(self) -> str:
        return json.dumps({"symbols": list(self.symbols)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TokenTable:
        try:
            symbols = json.loads(text)["symbols"]
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"not a token table: {err}") from None
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise ConfigError("token table symbols must be a list of strings")
        return cls(tuple(symbols))


def check_texts(table: TokenTable, texts: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(id, text) pairs whose text the table cannot spell, with the offending characters."""
    bad = []
    for uid, text in texts:
        missing = table.unknown(text)
        if missing:
            bad.append((uid, "".join(sorted(missing))))
    return bad
