"""Transcript normalization shared by every importer.

What it does, in order (the result satisfies the manifest contract: lower-case words separated by single spaces):
1. Unicode NFKC (full-width letters, ligatures, non-breaking spaces become their plain forms) and lower case.
2. Tokens wholly inside angle or square brackets are dropped: sentence markers `<s>`, `</s>`, `<sil>`, `<unk>`
   and annotations such as `[noise]`, `[laughter]` (Sphinx, Kaldi and LibriSpeech-style conventions).
3. Letters, digits and combining marks are kept; so is an apostrophe between two letters (`don't`, `o'clock`).
   Every other punctuation mark or symbol, hyphens included (`twenty-one` -> `twenty one`), becomes a space.
   Numbers are not spelled out (`7` stays `7`, `3.5` becomes `3 5`): a corpus that writes digits keeps them.
4. Runs of white space collapse to one space; leading and trailing space is removed.
"""

from __future__ import annotations

import re
import unicodedata

_TAG = re.compile(r"<[^<>\s]*>|\[[^\[\]\s]*\]")
_INNER_APOSTROPHE = re.compile(r"(?<=[^\W\d_])['\u2019](?=[^\W\d_])")
_KEEP = "\x00"  # placeholder for an apostrophe that survives punctuation removal
_WORD_CATEGORIES = "LNM"  # letters, numbers and combining marks (Devanagari vowel signs are marks, not letters)


def normalize_transcript(text: str) -> str:
    """Lower-case words separated by single spaces, with tags and punctuation removed (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower().replace(_KEEP, " ")
    text = _TAG.sub(" ", text)
    text = _INNER_APOSTROPHE.sub(_KEEP, text)
    chars = [c if (c == _KEEP or unicodedata.category(c)[0] in _WORD_CATEGORIES) else " " for c in text]
    return " ".join("".join(chars).replace(_KEEP, "'").split())
