"""How callers say numbers, as AN4's transcripts write them: the words of a generated grammar of digit strings,
phone numbers, zip codes, dates, times, addresses, ordinals and spelled codes, for the language model's text.

AN4's conventions (its training transcripts): every number is words, never digits; a digit string is said digit
by digit, 0 as "oh" or "zero" ("four one two five two one eight two six oh"); a year or a four-digit number in
pairs ("nineteen sixty seven", "fifty eight oh nine", "eleven hundred"); a cardinal with "and" after the
hundreds ("eight hundred and twenty three", "two thousand five hundred and fifty two"); dates as "september
sixth nineteen sixty seven" or as the numbers of month, day and year ("seven twenty nine fifty eight"); codes as
spelled letters then a number ("erase v y w l r seven zero one one"). `sentence(kind, rng, commands)` draws one
sentence of a kind; `grammar(count, seed, commands)` a deterministic list of them.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence

ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ORDINAL_ONES = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
ORDINAL_TEENS = ("tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
                 "seventeenth", "eighteenth", "nineteenth")  # fmt: skip
ORDINAL_TENS = ("", "", "twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth", "seventieth", "eightieth",
                "ninetieth")  # fmt: skip
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")  # fmt: skip
#: the grammar's kinds of sentence and how often each is drawn (roughly their shares in AN4's training text)
KINDS = {"digits": 6, "phone": 6, "zip": 3, "date": 3, "numeric_date": 2, "address": 3, "code": 8, "command": 4,
         "number": 4, "time": 1, "ordinal": 1}  # fmt: skip


def two_digit(n: int) -> str:
    """0..99 as words: "seven", "fourteen", "sixty three"."""
    if not 0 <= n <= 99:
        raise ValueError(f"expected 0..99, got {n}")
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    return TENS[n // 10] + (f" {ONES[n % 10]}" if n % 10 else "")


def cardinal(n: int) -> str:
    """0..999,999 as words with "and" after the hundreds: "eight hundred and twenty three"."""
    if not 0 <= n <= 999_999:
        raise ValueError(f"expected 0..999999, got {n}")
    if n < 100:
        return two_digit(n)
    if n < 1000:
        head, rest = divmod(n, 100)
        return f"{ONES[head]} hundred" + (f" and {two_digit(rest)}" if rest else "")
    head, rest = divmod(n, 1000)
    tail = "" if not rest else f" and {two_digit(rest)}" if rest < 100 else f" {cardinal(rest)}"
    return f"{cardinal(head)} thousand{tail}"


def ordinal(n: int) -> str:
    """1..99 as an ordinal: "first", "twelfth", "twenty second", "thirtieth"."""
    if not 1 <= n <= 99:
        raise ValueError(f"expected 1..99, got {n}")
    if n < 10:
        return ORDINAL_ONES[n]
    if n < 20:
        return ORDINAL_TEENS[n - 10]
    tens, ones = divmod(n, 10)
    return f"{TENS[tens]} {ORDINAL_ONES[ones]}" if ones else ORDINAL_TENS[tens]


def digits(text: str, zero: str = "oh") -> str:
    """A digit string said digit by digit, 0 as `zero` ("oh" or "zero")."""
    return " ".join(zero if c == "0" else ONES[int(c)] for c in text)


def pairs(n: int) -> str:
    """10..9,999 in pairs, as years and house numbers are said: "nineteen sixty seven", "fifty eight oh nine",
    "eleven hundred", "four ninety one"."""
    if not 10 <= n <= 9999:
        raise ValueError(f"expected 10..9999, got {n}")
    if n < 100:
        return two_digit(n)
    head, tail = divmod(n, 100)
    if tail == 0:
        return f"{two_digit(head)} hundred"
    return f"{two_digit(head)} " + (f"oh {ONES[tail]}" if tail < 10 else two_digit(tail))


def said_number(n: int, rng: random.Random) -> str:
    """A number 0..9999 said one of the ways AN4's speakers say it: as a cardinal, in pairs or digit by digit."""
    way = rng.random()
    if n >= 10 and way < 0.45:
        return pairs(n)
    if way < 0.8:
        return cardinal(n)
    return digits(str(n), rng.choice(("oh", "zero")))


def spelled_code(rng: random.Random) -> str:
    """Random letters, as in AN4's codes ("v y w l r"): one to six, each a word."""
    return " ".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 6)))


def sentence(kind: str, rng: random.Random, commands: tuple[Sequence[str], Sequence[str]] = ((), ())) -> str:
    """One sentence of `kind` (a key of KINDS). `commands` is (words said alone, words said before a code or a
    number), from the training transcripts; without them "command" sentences are empty."""
    alone, before = commands
    zero = rng.choice(("oh", "zero"))
    if kind == "digits":
        return digits("".join(rng.choice(string.digits) for _ in range(rng.randint(3, 11))), zero)
    if kind == "phone":
        local = str(rng.randint(2, 9)) + "".join(rng.choice(string.digits) for _ in range(6))
        if rng.random() < 0.3:
            area = str(rng.randint(2, 9)) + "".join(rng.choice(string.digits) for _ in range(2))
            return ("area code " if rng.random() < 0.3 else "") + digits(area + local, zero)
        return digits(local, zero)
    if kind == "zip":
        code = "152" + f"{rng.randint(0, 99):02d}" if rng.random() < 0.5 else f"{rng.randint(1000, 99999):05d}"
        return digits(code, zero)
    if kind == "date":
        day = f"{MONTHS[rng.randrange(12)]} {ordinal(rng.randint(1, 31))}"
        return day + (f" nineteen {two_digit(rng.randint(10, 99))}" if rng.random() < 0.7 else "")
    if kind == "numeric_date":
        return f"{two_digit(rng.randint(1, 12))} {two_digit(rng.randint(1, 31))} {two_digit(rng.randint(10, 99))}"
    if kind == "address":
        text = said_number(rng.randint(1, 9999), rng)
        return text + (" and a half" if rng.random() < 0.1 else "")
    if kind == "code":
        text = f"{spelled_code(rng)} {said_number(rng.randint(0, 9999), rng)}"
        return f"{rng.choice(before)} {text}" if before and rng.random() < 0.5 else text
    if kind == "command":
        if before and rng.random() < 0.4:
            return f"{rng.choice(before)} {said_number(rng.randint(0, 9999), rng)}"
        return rng.choice(alone) if alone else ""
    if kind == "number":
        return said_number(rng.randint(0, 9999), rng)
    if kind == "time":
        hour, minute = rng.randint(1, 12), rng.choice((0, 5, 10, 15, 20, 30, 45, rng.randint(0, 59)))
        if minute == 0:
            return f"{two_digit(hour)} o'clock"
        return f"{two_digit(hour)} " + (f"oh {ONES[minute]}" if minute < 10 else two_digit(minute))
    if kind == "ordinal":
        return ordinal(rng.randint(1, 31))
    raise ValueError(f"unknown kind of sentence {kind!r} (known: {sorted(KINDS)})")


def grammar(count: int, seed: int = 0, commands: tuple[Sequence[str], Sequence[str]] = ((), ())) -> list[str]:
    """`count` sentences of the grammar, kinds drawn by KINDS's weights; the same arguments give the same list."""
    rng = random.Random(seed)
    kinds = rng.choices(list(KINDS), weights=list(KINDS.values()), k=count)
    return [s for s in (sentence(kind, rng, commands) for kind in kinds) if s]
