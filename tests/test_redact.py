"""Redaction of card numbers and long digit runs (gruasr.redact): the Luhn check, the rules, runs across finals,
partials, property tests over random word sequences and splits, and real FSDD speech through the bundled models
and the CLI (a card number and a phone number, read digit by digit)."""

from __future__ import annotations

import ast
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gruasr import redact
from gruasr.audio.io import load_audio, save_wav
from gruasr.cli.main import main
from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.errors import ConfigError
from gruasr.redact import (
    CARD,
    DIGITS,
    Policy,
    StreamRedactor,
    contains_card,
    digit_string,
    luhn_valid,
    parse_rules,
    redact_events,
    redact_partial,
)
from gruasr.streaming.recognizer import Event

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CARD_NUMBER = "4520391872653015"  # Luhn-valid, every digit but one, no run of a repeated digit
PHONE = "4125552689"
PROPERTY = settings(max_examples=300, deadline=timedelta(seconds=2), database=None)


def spoken(digits: str) -> list[str]:
    return [NAMES[int(d)] for d in digits]


def words(tokens: list[str] | str, start: float = 0.0) -> list[Word]:
    """Words 0.5 s apart with distinct confidences."""
    tokens = tokens.split() if isinstance(tokens, str) else tokens
    return [Word(t, start + 0.5 * i, start + 0.5 * i + 0.4, 0.9 - 0.01 * i) for i, t in enumerate(tokens)]


def text(ws: list[Word]) -> str:
    return " ".join(w.word for w in ws)


CARDS = parse_rules(["card"])
BOTH = parse_rules(["card", "digits>=7"])


# -- Luhn and digits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4222222222222",
     "4111111111111111110", CARD_NUMBER, "79927398713", "0"],
)  # fmt: skip
def test_luhn_accepts_valid_numbers(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "4111111111111", "1234567890123", "79927398710", "1"])
def test_luhn_rejects_invalid_numbers(number):
    assert not luhn_valid(number)


def test_luhn_refuses_what_is_not_digits():
    for bad in ("", "41a1", "４１"):
        with pytest.raises(ConfigError, match="digits 0-9"):
            luhn_valid(bad)


def test_digit_words_and_literals():
    assert [digit_string(w) for w in ("zero", "oh", "o", "One", "nine", "4111", "07")] == [
        "0", "0", "0", "1", "9", "4111", "07"
    ]  # fmt: skip
    for other in ("twenty", "hundred", "double", "for", "to", "four-one", "4.5", "", "[card]", "٣"):
        assert digit_string(other) is None, other


def test_contains_card_looks_at_every_window_of_13_to_19():
    assert not contains_card("4111111111111")  # 13, invalid
    assert contains_card("4222222222222")  # 13, valid
    assert contains_card("4111111111111111110")  # 19, valid
    assert not contains_card("422222222222")  # 12 digits are never a card
    assert contains_card("99" + "4111111111111111" + "0526")  # a card with digits before and after
    assert not contains_card("4291417776317066")  # 16 digits, no window passes


def test_the_module_uses_no_torch():
    """Redaction is plain Python (a server runs it on its event loop). Importing it still loads torch today,
    through gruasr.decoding's package __init__ (Word lives there), so the check is on the module's own imports."""
    tree = ast.parse(Path(redact.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {name for name in names if name.split(".")[0] in ("torch", "numpy")}, names


# -- the rules ------------------------------------------------------------------------------------------------


def test_a_spoken_card_becomes_one_card_word():
    ws = words(["my", "card", "is", *spoken("4111111111111111"), "thanks"])
    out = CARDS.redact(ws)
    assert text(out) == "my card is [card] thanks"
    tag = out[3]
    assert (tag.start, tag.end) == (ws[3].start, ws[18].end)  # spans the run
    assert tag.conf == min(w.conf for w in ws[3:19])
    assert out[:3] == ws[:3] and out[4] == ws[19]  # other words untouched


def test_thirteen_and_nineteen_digits():
    assert text(CARDS.redact(words(spoken("4222222222222")))) == CARD
    assert text(CARDS.redact(words(spoken("4111111111111111110")))) == CARD
    assert text(CARDS.redact(words(spoken("4111111111111")))) == " ".join(spoken("4111111111111"))


def test_an_invalid_number_and_a_phone_number_stay_under_card():
    for number in ("4291417776317066", PHONE, "422222222222"):
        ws = words(spoken(number))
        assert CARDS.redact(ws) == ws


def test_oh_is_zero_and_literals_count_by_their_length():
    card = [("oh" if d == "0" else NAMES[int(d)]) for d in "4532015112830366"]  # "oh" for every 0
    assert text(CARDS.redact(words(["pay", *card]))) == "pay [card]"
    assert text(CARDS.redact(words("card 4111 1111 1111 1111 please"))) == "card [card] please"
    assert text(CARDS.redact(words("card 4111111111111111"))) == "card [card]"
    assert text(CARDS.redact(words(["4111", "one", "one", "one", "one", "1111", "1111"]))) == CARD  # mixed


def test_a_card_read_with_its_expiry_is_hidden_whole():
    ws = words(["number", *spoken("4111111111111111"), "oh", "five", "two", "six", "ok"])
    assert text(CARDS.redact(ws)) == "number [card] ok"


def test_runs_end_at_other_words():
    ws = words(["four", "one", "one", "one", "uh", *spoken("111111111111")])  # a filler splits 4 + 12 digits
    assert CARDS.redact(ws) == ws  # neither part is a card: documented, fillers are not bridged


def test_digits_rule_and_both_rules():
    seven = parse_rules(["digits>=7"])
    assert text(seven.redact(words(["call", *spoken(PHONE), "now"]))) == "call [digits] now"
    assert text(seven.redact(words(["room", *spoken("123456"), "ok"]))) == "room one two three four five six ok"
    assert text(seven.redact(words(["room", "1234567"]))) == "room [digits]"
    ws = words(["card", *spoken(CARD_NUMBER), "phone", *spoken(PHONE), "pin", *spoken("1234")])
    assert text(BOTH.redact(ws)) == "card [card] phone [digits] pin one two three four"
    assert text(CARDS.redact(ws)).startswith("card [card] phone four one two")


def test_no_rules_redact_nothing():
    ws = words(spoken(CARD_NUMBER))
    assert not Policy().enabled and Policy().redact(ws) == ws and parse_rules([]) == Policy()
    hyp = Hypothesis(text(ws), tuple(ws))
    assert Policy().redact_hypothesis(hyp) is hyp


def test_hypothesis_and_text():
    hyp = Hypothesis(" ".join(["card", *spoken(CARD_NUMBER)]), tuple(words(["card", *spoken(CARD_NUMBER)])), 1.5)
    out = CARDS.redact_hypothesis(hyp)
    assert out.text == "card [card]" and [w.word for w in out.words] == ["card", CARD] and out.score == 1.5
    assert CARDS.redact_hypothesis(Hypothesis("card 4111111111111111")).text == "card [card]"
    assert BOTH.redact_text("  dial  5 5 5 1 2 3 4 ") == "dial [digits]"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (["cards"], "unknown redaction rule 'cards'"),
        (["digits>=1"], "N must be 2..64"),
        (["digits>=65"], "N must be 2..64"),
        (["digits>7"], "unknown redaction rule"),
        (["digits>=x"], "unknown redaction rule"),
        (["digits>=5", "digits>=7"], "one digits>=N rule"),
        ("card", "are a list"),
        ([7], "is a string"),
    ],
)
def test_bad_rules_are_clear_errors(rules, message):
    with pytest.raises(ConfigError, match=message):
        parse_rules(rules)


def test_rules_are_normalised():
    policy = parse_rules([" Card ", "DIGITS >= 9"])
    assert policy == Policy(card=True, min_digits=9) and policy.rules == ["card", "digits>=9"]
    assert parse_rules(["card", "card"]).rules == ["card"]
    with pytest.raises(ConfigError, match="2 <= N <= 64"):
        Policy(min_digits=1)


# -- across finals ----------------------------------------------------------------------------------------------


def test_a_card_split_over_four_finals_is_released_as_one_card():
    all_words = words(["my", "card", *spoken(CARD_NUMBER), "thanks"])
    finals = [all_words[:6], all_words[6:10], all_words[10:14], all_words[14:]]  # "my card 4520", ... "3015 thanks"
    leg = StreamRedactor(CARDS)
    out = [leg.push(f) for f in finals]
    assert [text(o) for o in out] == ["my card", "", "", "[card] thanks"]
    assert out[3][0].start == all_words[2].start  # the held words keep their times
    assert leg.flush() == [] and leg.held == ()


def test_held_digits_are_released_redacted_by_flush():
    leg = StreamRedactor(CARDS)
    assert text(leg.push(words(["number", *spoken(CARD_NUMBER[:8])]))) == "number"
    assert [w.word for w in leg.held] == spoken(CARD_NUMBER[:8])
    assert leg.push(words(spoken(CARD_NUMBER[8:]), start=10.0)) == []
    assert text(leg.flush()) == CARD
    phone = StreamRedactor(CARDS)
    assert phone.push(words(spoken(PHONE))) == []
    assert text(phone.flush()) == " ".join(spoken(PHONE))  # not a card: released as it was


def test_hold_is_bounded_and_the_continuation_of_a_released_run_stays_hidden():
    leg = StreamRedactor(parse_rules(["digits>=7"]))
    assert BOTH.max_hold == 19 and parse_rules(["digits>=30"]).max_hold == 30
    assert text(leg.push(words(spoken("1234567890" * 2)))) == DIGITS  # 20 digits > 19 held: decided now
    assert text(leg.push(words(["five", "five", "and", "one"]))) == "[digits] and"  # continuation hidden too
    assert text(leg.flush()) == "one"
    cards = StreamRedactor(CARDS)  # no window passes: all but the last 18 digits go, those stay held
    run = "083690071284308860915"  # 21 digits, found by search: 3% of such runs have no Luhn window
    assert not contains_card(run)
    assert text(cards.push(words(spoken(run)))) == "zero eight three"
    assert len(cards.held) == 18
    assert text(cards.push(words(["five", "ok"]))) == text(CARDS.redact(words(spoken(run[3:] + "5")))) + " ok"


def test_no_rules_hold_nothing():
    leg = StreamRedactor(Policy())
    ws = words(spoken(PHONE))
    assert leg.push(ws) == ws and leg.held == () and leg.partial("one two") == "one two"


def test_partials_mask_every_digit_run():
    assert redact_partial("my number is four one two and five") == "my number is [digits] and [digits]"
    assert redact_partial("one two", held=words(["three"])) == DIGITS
    assert redact_partial("thanks", held=words(["three"])) == "[digits] thanks"
    assert redact_partial("i said fi") == "i said [digits]"  # a digit word still growing
    assert redact_partial("four one fi") == DIGITS
    assert redact_partial("fi said") == "fi said"  # not the last word: a whole word
    assert redact_partial("") == ""


def test_events_per_leg():
    def final(tokens, start, channel, leg):
        ws = tuple(words(tokens, start))
        return Event("final", text(list(ws)), ws[0].start, ws[-1].end, ws, channel, leg)

    events = [
        final(["card", *spoken(CARD_NUMBER[:8])], 0.0, 0, "A"),
        Event("partial", "hello six", 1.0, 2.0, (), 1, "B"),
        final(["hello", "six"], 1.0, 1, "B"),
        Event("partial", "four one", 6.0, 7.0, (), 0, "A"),
        final(spoken(CARD_NUMBER[8:]), 6.0, 0, "A"),
        final(["bye"], 12.0, 0, "A"),
    ]
    out = list(redact_events(events, CARDS))
    assert [(e.type, e.leg, e.text) for e in out] == [
        ("final", "A", "card"),  # its 8 digits are held
        ("partial", "B", "hello [digits]"),
        ("final", "B", "hello"),  # "six" is held
        ("partial", "A", "[digits]"),  # A's held digits, shown masked
        ("final", "A", "[card] bye"),  # the second half was held whole; then the run ended
        ("final", "B", "six"),  # flushed when the events end
    ]
    assert out[0].end == events[0].words[0].end  # the final ends where its released words end
    card = next(e for e in out if CARD in e.text)
    assert card.start == events[0].words[1].start and card.words[0].word == CARD
    assert out[-1].text == "six" and out[-1].leg == "B" and out[-1].type == "final"
    assert all(not any(digit_string(w) for w in e.text.split()) for e in out if e.leg == "A")


# -- properties ---------------------------------------------------------------------------------------------


OTHER = ["my", "card", "is", "and", "twenty", "for", "uh", "yes"]
DIGIT_TOKENS = [*NAMES, "oh", "o", "4", "41", "4111", "0000"]


@st.composite
def a_card(draw: st.DrawFn) -> list[str]:
    """A Luhn-valid number of 13-19 digits, spoken digit by digit."""
    body = draw(st.text("0123456789", min_size=12, max_size=18))
    check = next(c for c in "0123456789" if luhn_valid(body + c))
    return spoken(body + check)


@st.composite
def sequences(draw: st.DrawFn) -> list[Word]:
    """Words, digit runs and real card numbers mixed."""
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from(OTHER).map(lambda w: [w]), st.lists(st.sampled_from(DIGIT_TOKENS), max_size=8),
                      a_card()),
            max_size=10,
        )
    )  # fmt: skip
    return words([t for part in parts for t in part])


@st.composite
def bounded(draw: st.DrawFn, policy: Policy) -> list[Word]:
    """Words whose digit runs have at most policy.max_hold digits: runs of whole digit words, separated."""
    parts = draw(st.lists(st.one_of(st.text("0123456789", max_size=policy.max_hold), a_card()), max_size=6))
    out: list[str] = []
    for part in parts:
        out += spoken(part) if isinstance(part, str) else part
        out.append(draw(st.sampled_from(OTHER)))
    return words(out)


def splits(ws: list[Word], cuts: list[int]) -> list[list[Word]]:
    points = sorted({min(c, len(ws)) for c in cuts})
    edges = [0, *points, len(ws)]
    return [ws[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def runs(ws: list[Word]) -> list[str]:
    """The digit strings of the digit runs of a word sequence."""
    out, current = [], ""
    for w in ws:
        digits = digit_string(w.word)
        if digits is None:
            if current:
                out.append(current)
            current = ""
        else:
            current += digits
    return out + ([current] if current else [])


def check_safe(policy: Policy, original: list[Word], out: list[Word]) -> None:
    for run in runs(out):
        if policy.card:
            assert not contains_card(run), run
        if policy.min_digits is not None:
            assert len(run) < policy.min_digits, run
    kept = [w for w in out if w.word not in (CARD, DIGITS)]
    assert [w for w in kept if digit_string(w.word) is None] == [w for w in original if digit_string(w.word) is None]
    times = [w.start for w in out]
    assert times == sorted(times)


POLICIES = st.sampled_from([CARDS, BOTH, parse_rules(["digits>=3"]), parse_rules(["digits>=25"])])


@PROPERTY
@given(POLICIES, sequences())
def test_redaction_leaves_no_card_and_no_long_run(policy, ws):
    out = policy.redact(ws)
    check_safe(policy, ws, out)
    assert policy.redact(out) == out  # idempotent: tags are not digits


@PROPERTY
@given(st.data())
def test_any_split_into_finals_gives_the_whole_text_redaction(data):
    policy = data.draw(POLICIES)
    ws = data.draw(bounded(policy))
    cuts = data.draw(st.lists(st.integers(0, len(ws)), max_size=6))
    leg = StreamRedactor(policy)
    released = [w for final in splits(ws, cuts) for w in leg.push(final)] + leg.flush()
    assert released == policy.redact(ws)


@PROPERTY
@given(POLICIES, sequences(), st.lists(st.integers(0, 80), max_size=8))
def test_any_split_of_any_text_leaks_nothing(policy, ws, cuts):
    leg = StreamRedactor(policy)
    released = []
    for final in splits(ws, cuts):
        released += leg.push(final)
        assert sum(len(digit_string(w.word) or "") for w in leg.held) <= policy.max_hold + 3  # literals: <= 4 digits
    released += leg.flush()
    check_safe(policy, ws, released)


# -- real speech: FSDD digits read as a card number and a phone number ----------------------------------------

SPEAKER = "jackson"  # takes 0-4: the FSDD test split, never trained on; the bundled models get these numbers right


def fsdd_number(data_dir: Path, digits: str, pause: float = 0.15, group: int = 0, gap: float = 1.5) -> np.ndarray:
    """`digits` read by one FSDD speaker at 8 kHz: each digit a test take (cycling through takes 0-4), `pause`
    seconds between digits, `gap` seconds after every `group` digits, very low noise in the pauses."""
    folder = data_dir / "fsdd" / "recordings"
    rng = np.random.default_rng(0)

    def silence(seconds: float) -> np.ndarray:
        return (rng.standard_normal(int(seconds * 8000)) * 1e-4).astype(np.float32)

    parts, used = [silence(0.3)], {}
    for i, d in enumerate(digits):
        take = used.get(d, 0)
        used[d] = take + 1
        path = folder / f"{d}_{SPEAKER}_{take % 5}.wav"
        assert path.is_file(), f"FSDD take not found: {path}"
        parts.append(load_audio(path, sample_rate=8000).channel(0))
        if i < len(digits) - 1:
            parts.append(silence(gap if group and (i + 1) % group == 0 else pause))
    parts.append(silence(0.3))
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def spoken_numbers(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """8 kHz WAV files: the card read at an even pace, the phone number, and the card in 4 groups of 4."""
    folder = tmp_path_factory.mktemp("numbers")
    audio = {
        "card": fsdd_number(data_dir, CARD_NUMBER),
        "phone": fsdd_number(data_dir, PHONE),
        "grouped": fsdd_number(data_dir, CARD_NUMBER, group=4),
    }
    return {name: save_wav(folder / f"{name}.wav", x, 8000, "pcm16") for name, x in audio.items()}


def test_the_offline_model_hears_the_numbers_and_redaction_hides_them(one_thread, spoken_numbers):
    from gruasr.recognizer import OfflineRecognizer

    asr = OfflineRecognizer.load()
    [card] = asr.transcribe_file(spoken_numbers["card"])
    [phone] = asr.transcribe_file(spoken_numbers["phone"])
    assert card.text == " ".join(spoken(CARD_NUMBER))  # the recognizer got it right, so the test means something
    assert phone.text == " ".join(spoken(PHONE))
    hidden = CARDS.redact_result(card)
    assert hidden.text == CARD and [w.word for w in hidden.hypothesis.words] == [CARD]
    assert CARDS.redact_result(phone) == phone
    assert parse_rules(["digits>=7"]).redact_result(phone).text == DIGITS


def test_a_card_read_in_groups_arrives_in_several_finals_and_leaves_as_one_card(one_thread, spoken_numbers):
    from gruasr.streaming import StreamingRecognizer

    asr = StreamingRecognizer.load()
    audio = load_audio(spoken_numbers["grouped"]).channel(0)
    stream = asr.stream(8000)
    events = []
    for i in range(0, len(audio), 800):  # 100 ms chunks
        events += stream.accept(audio[i : i + 800])
    events += stream.finish()
    finals = [e for e in events if e.type == "final"]
    assert len(finals) > 1, [e.text for e in finals]  # the endpointer cut the number
    assert " ".join(e.text for e in finals) == " ".join(spoken(CARD_NUMBER))
    out = list(redact_events(events, CARDS))
    assert [e.text for e in out if e.type == "final"] == [CARD]
    assert all(digit_string(w) is None for e in out for w in e.text.split())  # partials too


def test_cli_redacts_transcribe_call_and_stream(one_thread, spoken_numbers, capsys):
    card, phone, grouped = (str(spoken_numbers[k]) for k in ("card", "phone", "grouped"))
    assert main(["transcribe", "--json", "--redact", "card", card, phone]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["text"] == CARD and [w["word"] for w in rows[0]["words"]] == [CARD]
    assert rows[1]["text"] == " ".join(spoken(PHONE))
    assert main(["transcribe", "--redact", "card", "--redact", "digits>=7", phone]) == 0
    assert capsys.readouterr().out.strip() == DIGITS

    assert main(["call", "--json", "--redact", "card", grouped]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == [CARD] and rows[0]["leg"] == "A"
    assert main(["call", "--srt", "--redact", "card", grouped]) == 0
    srt = capsys.readouterr().out
    assert CARD in srt and not any(digit_string(w) for w in srt.split() if w.isalpha())

    assert main(["stream", "--json", "--redact", "card", grouped]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["text"] for e in events if e["type"] == "final"] == [CARD]
    assert any(e["type"] == "partial" for e in events)
    assert all(digit_string(w) is None for e in events for w in e["text"].split())


def test_cli_refuses_a_bad_rule_before_loading_a_model(tmp_path, capsys):
    for command in ("transcribe", "call", "stream"):
        assert main([command, "--redact", "cards", str(tmp_path / "missing.wav")]) == 1
        err = capsys.readouterr().err
        assert f"gruasr {command}: error: unknown redaction rule 'cards'" in err, err
