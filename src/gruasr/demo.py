"""`gruasr demo`: the main job on built-in defaults, and the GRU demonstration for students.

`gruasr demo` (what `make demo` runs): transcribes the sample phone call that ships with the package (two call
legs, text-to-speech through the project's telephone channel) with the bundled model, and, when the corpora
are found ($GRUASR_DATA or ../shared/data), evaluates the bundled model on the AN4 and FSDD test sets and
prints the WER table.

`gruasr demo --gru`: shows that the GRU written from its equations is PyTorch's GRU, and learns:
1. Parity: our GRU and torch.nn.GRU with the same weights on a ragged float64 batch (2 bidirectional layers):
   the largest differences of outputs, final states and every gradient; the fused backend likewise.
2. A tiny sequence task: delayed recall (output the symbol seen `delay` steps earlier), trained for a few
   hundred steps, with the accuracy on fresh sequences before and after.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gruasr.models import GRU, recurrent

if TYPE_CHECKING:
    from gruasr.recognizer import OfflineRecognizer


def _loss_and_grads(model: nn.Module, y: Tensor, h: Tensor, x: Tensor) -> tuple[Tensor, ...]:
    """Gradients of one scalar of the outputs, w.r.t. the input then every parameter (in named order)."""
    return torch.autograd.grad(y.square().sum() + h.sum(), [x, *model.parameters()])


def parity_report(seed: int = 0) -> dict[str, float]:
    """Largest absolute differences between our GRU (both backends) and torch.nn.GRU, float64."""
    torch.manual_seed(seed)
    ref = nn.GRU(8, 16, num_layers=2, bidirectional=True, batch_first=True).double()
    x = torch.randn(4, 12, 8, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([12, 5, 9, 1])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_ref = ref(packed)
    y_ref, _ = pad_packed_sequence(out, batch_first=True, total_length=12)
    grads_ref = _loss_and_grads(ref, y_ref, h_ref, x)
    report = {}
    for backend in ("reference", "fused"):
        ours = GRU(8, 16, num_layers=2, bidirectional=True, backend=backend).double()
        ours.load_state_dict(ref.state_dict())  # parameters() then come in torch.nn.GRU's order too
        y, _, h = ours(x, lengths)
        grads = _loss_and_grads(ours, y, h, x)
        report[f"{backend}: outputs"] = float((y - y_ref).detach().abs().max())
        report[f"{backend}: final state"] = float((h - h_ref).detach().abs().max())
        report[f"{backend}: input gradient"] = float((grads[0] - grads_ref[0]).abs().max())
        report[f"{backend}: parameter gradients"] = max(
            float((a - b).abs().max()) for a, b in zip(grads[1:], grads_ref[1:], strict=True)
        )
    return report


@dataclass(frozen=True)
class RecallTask:
    """Delayed recall: at step t, output the symbol that came in at step t - delay."""

    symbols: int = 8
    steps: int = 40
    delay: int = 5

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        sym = torch.randint(0, self.symbols, (size, self.steps), generator=generator)  # (B, T)
        return F.one_hot(sym, self.symbols).float(), sym


def train_recall(
    unit: str = "gru",
    updates: int = 400,
    hidden: int = 64,
    task: RecallTask | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Train `unit` on the delayed-recall task; return accuracy before/after, final loss and seconds."""
    task = task or RecallTask()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rnn = recurrent(unit, input_size=task.symbols, hidden_size=hidden)
    head = nn.Linear(hidden, task.symbols)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)

    def logits_and_targets(x: Tensor, sym: Tensor) -> tuple[Tensor, Tensor]:
        logits = head(rnn(x)[0])[:, task.delay :]  # (B, T - delay, symbols)
        return logits.reshape(-1, task.symbols), sym[:, : -task.delay].reshape(-1)

    def accuracy() -> float:
        test_gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            logits, target = logits_and_targets(*task.batch(512, test_gen))
        return float((logits.argmax(-1) == target).float().mean())

    before = accuracy()
    job = progress.add_task(f"training {unit}", total=updates) if progress else None
    start = time.perf_counter()
    loss = torch.tensor(float("nan"))
    for _ in range(updates):
        loss = F.cross_entropy(*logits_and_targets(*task.batch(32, gen)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None and job is not None:
            progress.update(job, advance=1, description=f"training {unit}  loss {loss.item():.3f}")
    return {
        "accuracy_before": before,
        "accuracy_after": accuracy(),
        "loss": loss.item(),
        "seconds": time.perf_counter() - start,
    }


@dataclass(frozen=True)
class DemoResult:
    parity: dict[str, float]
    recall: dict[str, float]


def run_gru_demo(updates: int = 400, console: Console | None = None) -> DemoResult:
    """Print the parity table and train the GRU on delayed recall; return the numbers."""
    console = console or Console()
    console.rule("[bold]gruasr demo: a GRU from its equations")
    parity = parity_report()
    console.print(parity_table(parity))

    task = RecallTask()
    console.print(
        f"\nDelayed recall: {task.symbols} symbols, {task.steps} steps, output the symbol from {task.delay} steps "
        f"earlier (chance: {1 / task.symbols:.0%})."
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as progress:
        result = train_recall("gru", updates=updates, task=task, progress=progress)
    console.print(
        f"GRU accuracy {result['accuracy_before']:.1%} -> {result['accuracy_after']:.1%} after {updates} updates "
        f"({result['seconds']:.1f} s on {torch.get_num_threads()} threads)"
    )
    return DemoResult(parity=parity, recall=result)


def parity_table(parity: dict[str, float]) -> Table:
    table = Table(title="our GRU vs torch.nn.GRU (float64, 2 bidirectional layers, ragged lengths)")
    table.add_column("quantity")
    table.add_column("largest |difference|", justify="right")
    for name, value in parity.items():
        table.add_row(name, f"{value:.2e}")
    return table


def _decoding_line(asr: OfflineRecognizer) -> str:
    """The recognizer's decoding in words, as its options and LM are (the demo's header)."""
    options, beam = asr.options, asr.options.beam
    if options.method == "greedy":
        return "greedy"
    if not options.use_lm or asr.lm is None:
        return f"beam search (beam {beam.beam_size}), no LM"
    order = getattr(asr.lm, "order", None)
    line = (f"beam search (beam {beam.beam_size}) with a {f'word {order}-gram ' if order else ''}LM (weight "
            f"{beam.lm_weight:g}, word bonus {beam.word_bonus:g}) and lexicon")  # fmt: skip
    again = asr.rescoring
    if again is None or again.weight == 0:
        return line
    name = again.model.bundle.path.name if again.model.bundle.path is not None else "a second model"
    return f"{line}; its {again.nbest} best texts rescored by {name} (weight {again.weight:g})"


def _stream_sample_call(console: Console, path: Path) -> None:
    """The same call as a live one, through the bundled streaming model: each leg's turns as they end."""
    from gruasr.streaming import StreamingRecognizer
    from gruasr.streaming.calls import call_transcript

    recognizer = StreamingRecognizer.load()
    config = recognizer.model.config
    table = Table(title=f"the same call streamed live (100 ms chunks): bundled streaming model, {config.unit} "
                        f"{config.num_layers}x{config.hidden_size} unidirectional")  # fmt: skip
    for column in ("start", "end", "leg", "final result"):
        table.add_column(column, justify="right" if column in ("start", "end") else "left")
    for turn in call_transcript(recognizer, path):
        table.add_row(f"{turn.start:.2f}", f"{turn.end:.2f}", str(turn.leg), turn.text)
    console.print(table)


def run_recognizer_demo(
    console: Console | None = None, data: str | None = None, evaluate: bool = True
) -> dict[str, float]:
    """Transcribe the sample call with the bundled model; evaluate the test sets when the corpora are found.
    Returns {set name: WER} (the sample call's legs included)."""
    import json
    import tempfile
    from pathlib import Path

    from gruasr.evaluation.metrics import ErrorCounts
    from gruasr.evaluation.suite import find_data, prepare_test_sets, run_test_set
    from gruasr.recognizer import OfflineRecognizer

    console = console or Console()
    status = Console(stderr=True)
    console.rule("[bold]gruasr demo: a GRU recognizer for phone calls")
    asr = OfflineRecognizer.load()
    bundle = asr.bundle
    console.print(
        f"bundled model: {bundle.model.config.unit} {bundle.model.config.num_layers}x{bundle.model.config.hidden_size}"
        f"{' bidirectional' if bundle.model.config.bidirectional else ''}, {bundle.model.num_parameters():,} "
        f"parameters, {bundle.sample_rate} Hz; decoding: {_decoding_line(asr)}"
    )
    samples = Path(__file__).resolve().parent / "samples"
    reference = json.loads((samples / "call.json").read_text())["text"]
    results = asr.transcribe_file(samples / "call.wav")
    wers: dict[str, float] = {}
    table = Table(title=f"sample call {samples / 'call.wav'} (text-to-speech through a mu-law line)")
    for column in ("leg", "reference", "recognized", "WER"):
        table.add_column(column)
    for result in results:
        counts = ErrorCounts()
        counts.add(reference[str(result.channel)], result.text)
        wers[f"sample call, leg {result.channel}"] = counts.wer
        table.add_row(str(result.channel), reference[str(result.channel)], result.text, f"{100 * counts.wer:.1f}%")
    console.print(table)
    _stream_sample_call(console, samples / "call.wav")
    folder = find_data(data)
    if not evaluate:
        return wers
    if folder is None:
        console.print("corpora not found (set GRUASR_DATA to the folder holding an4/ and fsdd/): no WER table")
        return wers
    with tempfile.TemporaryDirectory() as work:
        sets = prepare_test_sets(folder, Path(work))
        table = Table(title=f"bundled model on the test sets ({folder})")
        for column in ("test set", "utterances", "words", "WER", "CER", "RTF"):
            table.add_column(column, justify="left" if column == "test set" else "right")
        for test in sets:
            report = run_test_set(asr, test, status)
            counts = report.counts()
            wers[test.name] = counts.wer
            table.add_row(
                test.name, str(len(report.recogs)), str(counts.words), f"{100 * counts.wer:.2f}%",
                f"{100 * counts.cer:.2f}%", f"{report.rtf:.3f}",
            )  # fmt: skip
    console.print(table)
    return wers
