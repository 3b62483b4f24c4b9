"""Redaction of card numbers and long digit runs in transcripts, before any text leaves the process.

    from gruasr.redact import StreamRedactor, parse_rules
    policy = parse_rules(["card", "digits>=7"])         # from config: redact = ["card", "digits>=7"]
    words = policy.redact(hypothesis.words)             # offline: a whole channel's words at once
    leg = StreamRedactor(policy)                        # live: one per stream / call leg
    released = leg.push(final.words) ...; released += leg.flush()   # at the end of the stream (or a reset)

Digits are what the models write: the single-digit words "zero", "oh", "o" (the bundled lexicon has both for 0;
"o" is also a spelled letter, and a lone digit is never redacted), "one" ... "nine", and literal digit strings
("4111", ASCII 0-9 only, counted by their length). Number words
("twenty", "hundred"), "double five" and homophones ("for", "to") are not digits: a card read as "forty one
eleven ..." is not caught. A digit run is a maximal sequence of consecutive digit words; any other word
(including a filler the recognizer heard between two digits) ends it.

Rules (`parse_rules`):
- "card": a run holding any contiguous window of 13-19 digits that passes the Luhn check (ISO/IEC 7812-1,
  Annex B) becomes one word "[card]". The whole run goes, not just the window: a card number read together with
  its expiry date or security code ("... one one, oh five two six") forms one longer run, and the window rule
  catches the card inside it and hides the rest with it. The cost: one window in ten passes Luhn by chance,
  so a random run of 13 digits is called a card 10% of the time, of 16 digits 64%, of 20 or more 97%: long
  digit runs that are not cards (account numbers) are mostly hidden too.
- "digits>=N" (2 <= N <= 64): a run of at least N digits becomes "[digits]" ("digits>=7" hides phone numbers).
Both may be given; a run that is both is a "[card]". The replacement Word spans the run (start of its first word,
end of its last) with the lowest confidence of its words; text is rebuilt from the words.

Across utterances: a caller pauses mid-number and the endpointer cuts there, so one number arrives in two
finals. `StreamRedactor` holds back the digit run a final ends with (the rest of the final is released at once)
and joins it to the start of the next final: the held words move into the next released final, keeping their own
times (so that final starts earlier), and its text is rebuilt from its words. `flush()` releases what is held
(end of stream, or a reset). Held digits are bounded: at most max(19, N) digits wait. A run that grows past the
bound is decided then: a redactable one is released as its tag, and digits continuing it in the next final are
redacted with the same tag (two tags where the whole text gives one; no digit leaks); a run that is not
redactable (only "card" is on, and no window passes Luhn) releases all but its last 18 digits, which stay held
because only they can form a window with digits still to come. Up to that bound, a stream's released words equal
`Policy.redact` of all its words at once (tested on every split). Nothing is released by time: a final's trailing
digits wait for the next final or the flush, so a live caption shows them one utterance late (partials show them
masked, below); a server must flush when a leg ends, or they are lost. A release after some seconds
(max_hold_seconds) would bound that delay, but a caller who pauses longer mid-number would then get the rest of
it out unredacted: left out on purpose.

Pure Python, no torch, linear in the words (a run's card check is O(19 n)): cheap enough for a server's event
loop.

Partials cannot know whether a run will become a card, so with any rule on every digit run of a partial
(together with the held digits, shown in front) is masked as one "[digits]", and so is a last word that may
still be growing into a digit word ("fi" of "five": partials are the greedy path, letter by letter). A partial
may hold misspelt digits ("fivf") that stay. So may finals decoded without a lexicon (--greedy, --no-lm); the
bundled models' default decoding (beam search with the lexicon) writes only lexicon words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.errors import ConfigError

if TYPE_CHECKING:
    from gruasr.recognizer import Result
    from gruasr.streaming.recognizer import Event

__all__ = [
    "CARD",
    "DIGITS",
    "Policy",
    "StreamRedactor",
    "contains_card",
    "digit_string",
    "luhn_valid",
    "parse_rules",
    "redact_events",
    "redact_partial",
]

CARD = "[card]"
DIGITS = "[digits]"
#: card numbers have 13-19 digits (ISO/IEC 7812-1: up to 19; 13 for old Visa numbers)
CARD_LENGTHS = range(13, 20)
MIN_RUN, MAX_RUN = 2, 64  # the bounds of N in "digits>=N"

_WORD_DIGITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_LITERAL = re.compile(r"[0-9]+")
_RULE = re.compile(r"digits\s*>=\s*([0-9]+)")


def digit_string(word: str) -> str | None:
    """The digits a word stands for ("four" -> "4", "oh" -> "0", "4111" -> "4111"), None for any other word."""
    word = word.lower()
    if _LITERAL.fullmatch(word):
        return word
    return _WORD_DIGITS.get(word)


def luhn_valid(digits: str) -> bool:
    """The Luhn check (ISO/IEC 7812-1, Annex B): from the rightmost digit, double every second digit (minus 9 when
    over 9); valid when the sum is a multiple of 10. "4111111111111111" passes, "4111111111111112" does not."""
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ConfigError(f"luhn_valid needs a string of digits 0-9, got {digits!r}")
    total = 0
    for k, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if k % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def contains_card(digits: str) -> bool:
    """Whether any contiguous window of 13-19 of `digits` passes the Luhn check (O(19 n))."""
    n = len(digits)
    if n < CARD_LENGTHS.start:
        return False
    values = [ord(ch) - 48 for ch in digits]
    for end in range(CARD_LENGTHS.start - 1, n):  # every window ending at `end`, grown leftwards
        total = 0
        for k in range(min(CARD_LENGTHS.stop - 1, end + 1)):
            d = values[end - k]
            if k % 2:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
            if k + 1 >= CARD_LENGTHS.start and total % 10 == 0:
                return True
    return False


def _digits(words: Sequence[Word]) -> str:
    return "".join(digit_string(w.word) or "" for w in words)


def _is_digit(word: Word) -> bool:
    return digit_string(word.word) is not None


def _tag_word(tag: str, run: Sequence[Word]) -> Word:
    """One word standing for the run: its span, its least confidence."""
    return Word(tag, run[0].start, run[-1].end, min(w.conf for w in run))


def _text(words: Sequence[Word]) -> str:
    return " ".join(w.word for w in words)


@dataclass(frozen=True)
class Policy:
    """Which digit runs to redact: `card` (a Luhn-valid 13-19-digit window anywhere in the run) and/or
    `min_digits` (runs of at least that many digits; None: off). Make it with `parse_rules`; the empty Policy()
    redacts nothing."""

    card: bool = False
    min_digits: int | None = None

    def __post_init__(self) -> None:
        if self.min_digits is not None and not MIN_RUN <= self.min_digits <= MAX_RUN:
            raise ConfigError(f"digits>=N needs {MIN_RUN} <= N <= {MAX_RUN}, got {self.min_digits}")

    @property
    def enabled(self) -> bool:
        return self.card or self.min_digits is not None

    @property
    def rules(self) -> list[str]:
        """The rules as `parse_rules` takes them (for the resolved config and logs)."""
        out = ["card"] if self.card else []
        return out + ([f"digits>={self.min_digits}"] if self.min_digits is not None else [])

    @property
    def max_hold(self) -> int:
        """The most digits a StreamRedactor holds back: a card's 19, or N when larger."""
        return max(CARD_LENGTHS.stop - 1, self.min_digits or 0)

    def tag(self, digits: str) -> str | None:
        """The replacement of a whole run with these digits: "[card]", "[digits]", or None (kept)."""
        if self.card and contains_card(digits):
            return CARD
        if self.min_digits is not None and len(digits) >= self.min_digits:
            return DIGITS
        return None

    def redact(self, words: Sequence[Word]) -> list[Word]:
        """The words with every redactable digit run replaced by one tag word; other words untouched, in order."""
        out: list[Word] = []
        i, n = 0, len(words)
        while i < n:
            if not self.enabled or not _is_digit(words[i]):
                out.append(words[i])
                i += 1
                continue
            j = i + 1
            while j < n and _is_digit(words[j]):
                j += 1
            run = words[i:j]
            tag = self.tag(_digits(run))
            if tag is None:
                out += run
            else:
                out.append(_tag_word(tag, run))
            i = j
        return out

    def redact_text(self, text: str) -> str:
        """A text without word times (split on whitespace), redacted; the words are joined by single spaces."""
        return _text(self.redact([Word(w, 0.0, 0.0, 1.0) for w in text.split()]))

    def redact_hypothesis(self, hyp: Hypothesis) -> Hypothesis:
        """The hypothesis with redacted words and the text rebuilt from them (a hypothesis without word times is
        redacted by its text)."""
        if not self.enabled:
            return hyp
        if not hyp.words:
            return replace(hyp, text=self.redact_text(hyp.text))
        words = self.redact(hyp.words)
        return replace(hyp, text=_text(words), words=tuple(words))

    def redact_result(self, result: Result) -> Result:
        """An offline Result (one channel's whole transcript) redacted: runs across the VAD's utterances join."""
        return replace(result, hypothesis=self.redact_hypothesis(result.hypothesis))


def parse_rules(rules: Sequence[str]) -> Policy:
    """The Policy of a list of rules: "card" and/or "digits>=N" (2 <= N <= 64); [] redacts nothing.
    Anything else is a ConfigError that names the rule and says what is allowed."""
    if isinstance(rules, str):
        raise ConfigError(f'redaction rules are a list, e.g. ["card"], got the string {rules!r}')
    card, minimum = False, None
    for raw in rules:
        if not isinstance(raw, str):
            raise ConfigError(f"a redaction rule is a string, got {raw!r}")
        rule = raw.strip().lower()
        match = _RULE.fullmatch(rule)
        if rule == "card":
            card = True
        elif match:
            if minimum is not None:
                raise ConfigError(f"redaction: give one digits>=N rule, got digits>={minimum} and {raw!r}")
            n = int(match[1])
            if not MIN_RUN <= n <= MAX_RUN:
                raise ConfigError(f"redaction rule {raw!r}: N must be {MIN_RUN}..{MAX_RUN}")
            minimum = n
        else:
            raise ConfigError(f'unknown redaction rule {raw!r}: the rules are "card" and "digits>=N" (N 2..64)')
    return Policy(card, minimum)


def redact_partial(text: str, held: Sequence[Word] = ()) -> str:
    """A partial's text with every digit run masked as one "[digits]"; `held` (digits a StreamRedactor holds
    from the last final, which the next final will start with) is shown in front, masked with the partial's
    leading run."""
    out = [DIGITS] if held else []
    words = text.split()
    for k, word in enumerate(words):
        growing = k == len(words) - 1 and _digit_prefix(word)
        if digit_string(word) is None and not growing:
            out.append(word)
        elif not out or out[-1] != DIGITS:
            out.append(DIGITS)
    return " ".join(out)


def _digit_prefix(word: str) -> bool:
    """Whether `word` begins a digit word ("fi" of "five"): a partial's last word may still be growing into one."""
    word = word.lower()
    return any(name.startswith(word) for name in _WORD_DIGITS)


class StreamRedactor:
    """The Policy over one stream's (one call leg's) finals, in order, with digit runs that span them: see the
    module docstring. `push(words)` takes a final's words and returns those releasable now, redacted;
    `flush()` returns the held rest; `partial(text)` masks a partial. `final(event)`, `flush_event()` and
    `partial_event(event)` do the same on Events."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._held: list[Word] = []
        self._sticky: str | None = None  # the tag of a released run that the next final may continue
        self._last: Event | None = None  # the last final pushed, the template of the flushed event

    @property
    def held(self) -> tuple[Word, ...]:
        """The digit words held back from the finals so far (not yet released)."""
        return tuple(self._held)

    def push(self, words: Sequence[Word]) -> list[Word]:
        """The next final's words -> the words releasable now (the held run first when it is complete), redacted.
        A trailing digit run is held (at most `policy.max_hold` digits); the result may be empty."""
        words = list(words)
        if not self.policy.enabled:
            return words
        out: list[Word] = []
        if self._sticky is not None:  # a run released as a tag goes on: its continuation is hidden the same way
            k = 0
            while k < len(words) and _is_digit(words[k]):
                k += 1
            if k:
                out.append(_tag_word(self._sticky, words[:k]))
                words = words[k:]
            if not words:
                return out
            self._sticky = None
        combined = self._held + words
        t = len(combined)
        while t > 0 and _is_digit(combined[t - 1]):
            t -= 1
        out += self.policy.redact(combined[:t])  # ends before a non-digit word: its runs are complete
        tail = combined[t:]
        digits = _digits(tail)
        if len(digits) <= self.policy.max_hold:
            self._held = tail
            return out
        tag = self.policy.tag(digits)
        if tag is not None:
            out.append(_tag_word(tag, tail))
            self._sticky, self._held = tag, []
        else:  # only the last 18 digits can still join a Luhn window with digits to come
            keep, count = len(tail), 0
            while count < CARD_LENGTHS.stop - 2:
                keep -= 1
                count += len(digit_string(tail[keep].word) or "")
            out += tail[:keep]
            self._held = tail[keep:]
        return out

    def flush(self) -> list[Word]:
        """End of the stream (or a reset): the held run, decided as complete, redacted. Clears the state."""
        held, self._held, self._sticky = self._held, [], None
        return self.policy.redact(held)

    def partial(self, text: str) -> str:
        """A partial's text masked (see `redact_partial`); unchanged when no rule is on."""
        return redact_partial(text, self._held) if self.policy.enabled else text

    def final(self, event: Event) -> Event | None:
        """A final Event with its releasable words (held words from earlier finals first), text, start and end
        rebuilt from them; None when everything in it is held."""
        self._last = event
        # a final without word times (a decoder that gives none) is redacted by its text, its words spanning it
        words = event.words or tuple(Word(w, event.start, event.end, 1.0) for w in event.text.split())
        return self._event(event, self.push(words))

    def flush_event(self) -> Event | None:
        """The held words as a final Event of the stream's last final's channel and leg; None when none."""
        words = self.flush()
        return self._event(self._last, words) if self._last is not None else None

    def partial_event(self, event: Event) -> Event:
        return replace(event, text=self.partial(event.text))

    @staticmethod
    def _event(template: Event, words: list[Word]) -> Event | None:
        if not words:
            return None
        return replace(template, text=_text(words), words=tuple(words), start=words[0].start, end=words[-1].end)


def redact_events(events: Iterable[Event], policy: Policy) -> Iterator[Event]:
    """Events of one or more legs (as `gruasr.streaming.calls.file_events` yields them) redacted, one
    StreamRedactor per channel; the held runs are flushed, channel by channel, when the events end."""
    if not policy.enabled:
        yield from events
        return
    legs: dict[int, StreamRedactor] = {}
    for event in events:
        leg = legs.setdefault(event.channel, StreamRedactor(policy))
        if event.type == "final":
            out = leg.final(event)
            if out is not None:
                yield out
        else:
            yield leg.partial_event(event)
    for channel in sorted(legs):
        last = legs[channel].flush_event()
        if last is not None:
            yield last
