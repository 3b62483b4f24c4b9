"""Shared transcript normalization."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gruasr.data.corpora.text import normalize_transcript


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<s> ERASE O J T K S THIRTY FIVE </s>", "erase o j t k s thirty five"),
        ("RUBOUT G M E F THREE NINE", "rubout g m e f three nine"),
        ("Hello, World!  How are   you?", "hello world how are you"),
        ("DON'T stop at o’clock", "don't stop at o'clock"),
        ("twenty-one 'quoted' words", "twenty one quoted words"),
        ("[noise] yes <unk> no [laughter]", "yes no"),
        ("Ｆｕｌｌ\u00a0width", "full width"),
        ("call 555-0199 at 3.5", "call 555 0199 at 3 5"),
        ("CAFÉ Ünïcode", "café ünïcode"),
        ("\tline\nbreaks\r\n", "line breaks"),
        ("?!... --", ""),
    ],
)
def test_examples(raw, expected):
    assert normalize_transcript(raw) == expected


def test_combining_marks_stay_inside_words():
    # Devanagari vowel signs are combining marks; dropping them would split every word
    assert normalize_transcript("हिन्दी भाषा") == "हिन्दी भाषा"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_output_meets_the_manifest_contract(text):
    out = normalize_transcript(text)
    assert out == " ".join(out.split())
    assert out == out.lower()
    assert normalize_transcript(out) == out  # idempotent: normalizing twice changes nothing
