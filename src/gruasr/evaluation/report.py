"""Evaluation reports people diff (icefall's habit): recogs.txt, errs.txt, wer-summary.txt, report.json.

recogs.txt        per utterance: `ID:\tref=[...]` and `ID:\thyp=[...]`
errs.txt          the summary, then per utterance the aligned words with errors as (REF->HYP), (REF->*)
                  for deletions and (*->HYP) for insertions, then the most frequent errors
wer-summary.txt   WER, CER, SER and the per-speaker breakdown
report.json       every number (keys: wer, cer, ser, words, sub, del, ins, rtf, ...)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gruasr.evaluation.align import align
from gruasr.evaluation.metrics import ErrorCounts


@dataclass(frozen=True)
class Recog:
    id: str
    ref: str
    hyp: str
    speaker: str | None = None


@dataclass
class Report:
    recogs: list[Recog] = field(default_factory=list)
    audio_seconds: float = 0.0
    decode_seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    info: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> ErrorCounts:
        counts = ErrorCounts()
        for r in self.recogs:
            counts.add(r.ref, r.hyp)
        return counts

    def by_speaker(self) -> dict[str, ErrorCounts]:
        out: dict[str, ErrorCounts] = {}
        for r in self.recogs:
            out.setdefault(r.speaker or "-", ErrorCounts()).add(r.ref, r.hyp)
        return dict(sorted(out.items()))

    @property
    def rtf(self) -> float:
        return self.decode_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        c = self.counts()
        return {
            "wer": c.wer,
            "cer": c.cer,
            "ser": c.ser,
            "words": c.words,
            "errors": c.errors,
            "sub": c.sub,
            "del": c.dels,
            "ins": c.ins,
            "utterances": len(self.recogs),
            "rtf": self.rtf,
            "audio_seconds": self.audio_seconds,
            "decode_seconds": self.decode_seconds,
            "failed": [{"id": i, "reason": why} for i, why in self.failed],
            "per_speaker": {
                spk: {"wer": s.wer, "words": s.words, "errors": s.errors, "utterances": s.sentences}
                for spk, s in self.by_speaker().items()
            },
            **self.info,
        }


def aligned_line(ref: str, hyp: str) -> str:
    """Words of the alignment, errors written as (REF->HYP), (REF->*) or (*->HYP)."""
    out: list[str] = []
    for r, h in align(ref.split(), hyp.split()).pairs:
        out.append(r if r is not None and r == h else f"({r or '*'}->{h or '*'})")
    return " ".join(out)


def frequent_errors(recogs: Sequence[Recog], top: int = 20) -> list[tuple[str, int]]:
    errors: Counter[str] = Counter()
    for r in recogs:
        for ref, hyp in align(r.ref.split(), r.hyp.split()).pairs:
            if ref != hyp:
                errors[f"{ref or '*'} -> {hyp or '*'}"] += 1
    return errors.most_common(top)


def summary_text(report: Report) -> str:
    c = report.counts()
    lines = [
        c.summary_line(),
        f"CER {100 * c.cer:.2f}% [{c.char_errors} / {c.chars}]",
        f"SER {100 * c.ser:.2f}% [{c.sentence_errors} / {c.sentences}]",
        f"RTF {report.rtf:.4f} ({report.decode_seconds:.1f} s for {report.audio_seconds:.1f} s of audio)",
    ]
    if report.failed:
        lines.append(f"failed: {len(report.failed)} utterances (see report.json)")
    lines += ["", "per speaker:"]
    for spk, s in report.by_speaker().items():
        lines.append(f"  {spk:16} WER {100 * s.wer:6.2f}%  [{s.errors} / {s.words}]  {s.sentences} utterances")
    return "\n".join(lines) + "\n"


def write_report(report: Report, out: Path) -> dict[str, Any]:
    """Write the four files into `out`; return report.json's content."""
    out.mkdir(parents=True, exist_ok=True)
    recogs = [f"{r.id}:\tref={r.ref.split()}\n{r.id}:\thyp={r.hyp.split()}" for r in report.recogs]
    (out / "recogs.txt").write_text("\n".join(recogs) + "\n", encoding="utf-8")
    summary = summary_text(report)
    errs = [summary, "per utterance (REF->HYP):"]
    errs += [f"{r.id}:\t{aligned_line(r.ref, r.hyp)}" for r in report.recogs]
    errs += ["", "most frequent errors:"] + [f"  {n:4d}  {e}" for e, n in frequent_errors(report.recogs)]
    (out / "errs.txt").write_text("\n".join(errs) + "\n", encoding="utf-8")
    (out / "wer-summary.txt").write_text(summary, encoding="utf-8")
    data = report.to_dict()
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data
