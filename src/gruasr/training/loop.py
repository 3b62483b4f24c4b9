"""`gruasr train`: the CTC training loop, with exact resume, dev-based selection and checkpoint averaging.

RUN_DIR after a run:
    config.json               the resolved recipe
    checkpoints/epoch-NNN/    a loadable model + trainer state, one per epoch (the last `average_last` kept,
                              and the best on dev); checkpoints/step/ holds the latest mid-epoch one
    model/                    the selected model (best epoch or the average of the last N, whichever is better
                              on dev), ready for `--model`
    summary.json              per-epoch loss, dev WER/CER, learning rate and time; the selection
    tb/                       TensorBoard logs

Exactness of resume: the only randomness is the sampler (seeded by seed and epoch), SpecAugment (seeded by
seed and the batch's keys), the cached augmentation (seeded by seed, variant and utterance) and dropout (the
torch RNG, saved in every checkpoint). A run killed at any point and resumed with --resume from its last
checkpoint therefore produces the same weights as an uninterrupted run (on CPU; a test proves it).

Under torchrun the same loop runs on every rank, each on its share of every batch (gruasr.training.distributed);
rank 0 writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gruasr.bundle import ModelBundle, bundled, frame_seconds, load_bundle, save_model
from gruasr.data.augment import AugmentConfig
from gruasr.data.manifest import Utterance
from gruasr.data.tokens import TokenTable
from gruasr.decoding.greedy import greedy_batch
from gruasr.environment import environment
from gruasr.errors import ConfigError
from gruasr.evaluation.metrics import DevResult
from gruasr.features import GlobalCMVN, SpecAugment
from gruasr.models.ctc_model import SUBSAMPLING, CTCModel
from gruasr.training.checkpoint import load_checkpoint, save_checkpoint
from gruasr.training.config import TrainConfig
from gruasr.training.data import BatchMaker, Corpus, EpochPlan, build_corpus, estimate_cmvn, read_utterances
from gruasr.training.distributed import Ranks
from gruasr.training.schedule import learning_rate
from gruasr.training.streamed import StreamedBatches, estimate_streamed_cmvn
from gruasr.transcription import END_SILENCE


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def dev_channel(config: TrainConfig) -> AugmentConfig:
    """The line the dev audio goes through (config.dev_channel; its seed is the dev features' seed)."""
    codec = config.dev_channel.codec
    return AugmentConfig(
        speeds=(1.0,), telephone_prob=1.0 if codec else 0.0, codecs=(codec,) if codec else (), packet_loss=(0.0, 0.0)
    )


def dev_end_silence(config: TrainConfig) -> int:
    """Samples of zeros after each dev utterance: a unidirectional model is judged as it is used, on each dev
    utterance followed by the silence it hears where a stream ends (recognizers feed it END_SILENCE more; a
    bidirectional model hears none)."""
    return 0 if config.model.bidirectional else round(END_SILENCE * config.sample_rate)


def dev_corpus(config: TrainConfig, tokens: TokenTable, utts: list[Utterance], progress: Progress | None) -> Corpus:
    """The dev utterances' features as training scores them: through the recipe's dev line (its fixed seed),
    then dev_end_silence."""
    line, seed = dev_channel(config), config.dev_channel.seed
    return build_corpus(utts, tokens, config, line, 1, seed, progress, "dev features", dev_end_silence(config))


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@dataclasses.dataclass
class DevSet:
    corpus: Corpus
    cmvn: GlobalCMVN
    #: the dev manifest of each utterance (an index into data.dev), and the manifests' selection weights
    groups: list[int] = dataclasses.field(default_factory=list)
    weights: tuple[float, ...] = ()

    def evaluate(self, model: CTCModel, tokens: TokenTable, device: torch.device, batch: int = 32) -> DevResult:
        """Greedy WER/CER on the dev set (eval mode, no augmentation)."""
        model.eval()
        groups = self.groups or [0] * len(self.corpus.utts)
        result = DevResult.empty(max(groups, default=0) + 1, self.weights)
        feats = self.corpus.features[0]
        order = np.argsort([f.shape[0] for f in feats])
        with torch.inference_mode():
            for start in range(0, len(order), batch):
                idx = order[start : start + batch].tolist()
                lengths = torch.tensor([feats[i].shape[0] for i in idx])
                x = torch.zeros(len(idx), int(lengths.max()), feats[idx[0]].shape[1])
                for b, i in enumerate(idx):
                    x[b, : lengths[b]] = self.cmvn(feats[i])
                log_probs, out_lengths, _ = model(x.to(device), lengths)
                hyps = greedy_batch(log_probs, out_lengths, tokens, SUBSAMPLING * self.corpus.frame_seconds)
                for i, hyp in zip(idx, hyps, strict=True):
                    result.add(self.corpus.utts[i].text, hyp.text, groups[i])
        return result


class _NoWriter:
    """TensorBoard's writer on ranks other than 0: writes nothing."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


#: the features of the last data set prepared in this process, reused by runs with the same data settings
_PREPARED: dict[str, tuple[Corpus | None, Corpus]] = {}


class Trainer:
    def __init__(self, config: TrainConfig, out: Path, console: Console | None = None) -> None:
        self.config = config
        self.out = out
        self.ranks = Ranks.from_env()
        self.console = console or Console(stderr=True, quiet=not self.ranks.main)
        self.device = self.ranks.device(config.train.device)
        self.tokens = TokenTable()
        if config.model.vocab_size != len(self.tokens):
            raise ConfigError(f"model.vocab_size must be {len(self.tokens)} for the character tokens")
        if not (config.data.train or config.data.train_shards) or not config.data.dev:
            raise ConfigError("data.train (or data.train_shards) and data.dev must each name at least one manifest")

    # -- set-up ------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        cfg = self.config
        data = cfg.data
        dev_sets = read_utterances(data.dev, self.tokens, None, data.limit)
        dev_utts = [u for s in dev_sets for u in s]
        seed = cfg.augment.seed if cfg.augment.seed is not None else cfg.seed
        streamed = bool(data.train_shards)
        key = json.dumps(
            [cfg.sample_rate, data, cfg.features, cfg.augment, cfg.dev_channel, seed, dev_end_silence(cfg)],
            default=str,
        )
        if key not in _PREPARED:
            _PREPARED.clear()  # keep one data set in memory at most
            with _progress(self.console) as progress:
                train = None
                if not streamed:
                    train_sets = read_utterances(data.train, self.tokens, data.max_duration, data.limit, data.fraction)
                    utts = [u for s in train_sets for u in s]
                    augment, variants = cfg.augment.to_augment(), cfg.augment.variants
                    train = build_corpus(utts, self.tokens, cfg, augment, variants, seed, progress, "training features")
                    train.sizes = [len(s) for s in train_sets]
                dev = dev_corpus(cfg, self.tokens, dev_utts, progress)
            _PREPARED[key] = (train, dev)
        train, dev = _PREPARED[key]
        self.init = self._init_model()
        if self.init is not None:
            cmvn = self.init.cmvn
        else:
            cmvn = estimate_streamed_cmvn(cfg) if train is None else estimate_cmvn(train)
        self.cmvn = cmvn.with_leg_prior(cfg.cmvn.leg_prior) if cmvn.leg_prior != cfg.cmvn.leg_prior else cmvn
        groups = [k for k, utts in enumerate(dev_sets) for _ in utts]
        self.dev = DevSet(dev, self.cmvn, groups, data.dev_weights)
        if train is None:
            self.stream: StreamedBatches | None = StreamedBatches(cfg, self.cmvn, self.ranks.rank, self.ranks.world)
            self.steps_per_epoch = self.stream.steps
            self.console.print(
                f"train: streamed from {len(data.train_shards)} shard folder(s), {len(self.stream.shards)} shards on "
                f"this rank, {self.steps_per_epoch} batches per epoch (augmented afresh); dev: {len(dev_utts)}"
            )
        else:
            self.stream = None
            self.train = train
            repeats = data.repeat or tuple(1 for _ in train.sizes)
            plan = EpochPlan.from_repeats(train.sizes, repeats)
            self.batches = BatchMaker(train, plan, self.cmvn, SpecAugment(cfg.specaugment), cfg.seed)
            self.sampler = self.batches.sampler(cfg)
            self.steps_per_epoch = len(self.sampler.batches(0))
            seconds = sum(f.shape[0] for f in train.features[0]) * frame_seconds(cfg.features)
            self.console.print(
                f"train: {len(train.utts)} utterances ({seconds / 3600:.2f} h per variant, {cfg.augment.variants} "
                f"variants), {len(plan.order)} per epoch in {self.steps_per_epoch} batches; dev: {len(dev_utts)}"
            )
        self.total_steps = self.steps_per_epoch * cfg.train.epochs

    def _init_model(self) -> ModelBundle | None:
        """The model a fine-tuning run starts from (train.init), checked against the recipe's [model]."""
        name = self.config.train.init
        if not name:
            return None
        folder = bundled(name.removeprefix("bundled:")) if name.startswith("bundled:") else Path(name)
        bundle = load_bundle(folder)
        if bundle.model.config != self.config.model or bundle.features != self.config.features:
            theirs, ours = bundle.model.config, self.config.model
            raise ConfigError(
                f"train.init {name}: its model ({theirs.unit} {theirs.num_layers}x{theirs.hidden_size}) or feature "
                f"config differs from the recipe's ({ours.unit} {ours.num_layers}x{ours.hidden_size})"
            )
        self.console.print(f"fine-tuning from {folder}")
        return bundle

    def build_model(self) -> None:
        cfg = self.config
        self.model = CTCModel(cfg.model).to(self.device)
        if self.init is not None:
            self.model.load_state_dict(self.init.model.state_dict())
        #: what the steps run: the model, or DistributedDataParallel around it under torchrun (which starts every
        #: rank from rank 0's weights and averages the gradients)
        self.network: torch.nn.Module = self.model
        if self.ranks.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=ids)
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, p in self.model.named_parameters():
            (no_decay if p.dim() < 2 or "norm" in name else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.train.lr,
            betas=cfg.train.betas,
        )
        self.console.print(
            f"model: {cfg.model.unit} {cfg.model.num_layers}x{cfg.model.hidden_size}"
            f"{' bidirectional' if cfg.model.bidirectional else ''}, {self.model.num_parameters():,} parameters, "
            f"on {self.device}" + (f", {self.ranks.world} ranks" if self.ranks.distributed else "")
        )

    # -- checkpoints -------------------------------------------------------------------------------------

    def _bundle_args(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "model": self.model,
            "features": self.config.features,
            "cmvn": self.cmvn,
            "tokens": self.tokens,
            "extra": {"training": self.config.to_dict(), "environment": environment(self.device), **(extra or {})},
        }

    def _checkpoint(self, name: str, state: dict[str, Any]) -> None:
        """Rank 0 writes the checkpoint, with every rank's RNG state; the other ranks wait until it is there."""
        rngs = self.ranks.gather(torch.get_rng_state())
        if self.ranks.main:
            save_checkpoint(self.out / "checkpoints" / name, self._bundle_args(), self.optimizer, state, rngs)
        self.ranks.barrier()

    def latest_checkpoint(self) -> Path | None:
        best: tuple[int, Path] | None = None
        root = self.out / "checkpoints"
        for folder in root.glob("*") if root.is_dir() else []:
            meta = folder / "trainer.json"
            if folder.name.startswith(".") or not meta.is_file():
                continue
            step = int(json.loads(meta.read_text())["trainer"]["step"])
            if best is None or step > best[0]:
                best = (step, folder)
        return best[1] if best else None

    def _prune(self, history: list[dict[str, Any]], best_epoch: int) -> None:
        if not self.ranks.main:
            return
        keep = {f"epoch-{e:03d}" for e in range(len(history) - self.config.train.average_last, len(history))}
        keep.add(f"epoch-{best_epoch:03d}")
        for folder in (self.out / "checkpoints").glob("epoch-*"):
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)

    # -- the loop ----------------------------------------------------------------------------------------

    def run(self, resume: bool = False) -> dict[str, Any]:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        latest = self.latest_checkpoint()
        if latest is not None and not resume:
            raise ConfigError(f"{self.out} already holds checkpoints: use --resume, or another --out")
        self.ranks.start(self.device)
        try:
            self.ranks.barrier()  # every rank has looked for checkpoints before rank 0 writes anything
            if self.ranks.main:
                (self.out / "config.json").write_text(cfg.to_json() + "\n")
            seed_everything(cfg.seed + self.ranks.rank, cfg.train.deterministic)
            self.prepare()
            self.build_model()
            state: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "history": [], "best": None}
            if resume and latest is not None:
                state = load_checkpoint(latest, self.model, self.optimizer, self.ranks.rank, self.ranks.world)
                self.console.print(f"resumed from {latest.name}: epoch {state['epoch']}, batch {state['batch']}")
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out / "tb")) if self.ranks.main else _NoWriter()
            try:
                self._epochs(state, writer)
            finally:
                writer.close()
            return self.finish(state)
        finally:
            self.ranks.stop()

    def step(self, keys: list[tuple[int, int]], lr: float) -> tuple[float, float]:
        """One optimizer step on a global batch of (epoch, position) keys, of which this rank takes its share
        (in `train.accumulate` micro-batches); returns (the batch's CTC loss, gradient norm before clipping).
        The loss is `reduction="mean"`'s: each utterance's loss over its target length, averaged over the whole
        batch. A step whose gradient is not finite is skipped (the loss is still returned)."""
        share = self.ranks.share(keys)
        pieces = self.config.train.accumulate
        micro = [share[i::pieces] for i in range(pieces)]
        micro = [m for m in micro if m] or [keys[:1]]  # a rank with no share runs one utterance with weight 0
        scale = (self.ranks.world if share else 0.0) / len(keys)
        return self._update([functools.partial(self.batches, m) for m in micro], scale, lr)

    def step_streamed(self, items: list[dict[str, Any]], lr: float) -> tuple[float, float]:
        """One optimizer step on this rank's streamed batch (each rank has its own); the loss is averaged over
        the utterances of all ranks' batches, as step()'s."""
        assert self.stream is not None
        stream = self.stream
        count = self.ranks.sum(len(items))
        pieces = min(self.config.train.accumulate, len(items))
        micro = [items[i::pieces] for i in range(pieces)]
        return self._update([functools.partial(stream.collate_items, m) for m in micro], self.ranks.world / count, lr)

    def _update(self, parts: list[Callable[[], dict[str, Any]]], scale: float, lr: float) -> tuple[float, float]:
        """Forward and backward each micro-batch (gradients synchronized across ranks on the last), weighted by
        `scale`, then clip and step."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            sync = contextlib.nullcontext() if last or not self.ranks.distributed else cast(Any, self.network).no_sync()
            with sync:
                loss = self._loss(part()) * scale
                loss.backward()
            total += loss.item()
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip))
        if math.isfinite(norm):
            self.optimizer.step()
        return self.ranks.sum(total) / self.ranks.world, norm

    def _loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The summed CTC losses of a batch's utterances, each divided by its target length."""
        use_amp = self.config.train.amp and self.device.type == "cuda"
        x = cast(torch.Tensor, batch["features"]).to(self.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            log_probs, out_lengths, _ = self.network(x, cast(torch.Tensor, batch["lengths"]))
        target_lengths = cast(torch.Tensor, batch["target_lengths"])
        losses = F.ctc_loss(
            log_probs.float().transpose(0, 1),  # (T', B, V)
            cast(torch.Tensor, batch["targets"]).to(self.device),
            out_lengths,
            target_lengths,
            blank=self.tokens.blank,
            reduction="none",
            zero_infinity=True,
        )
        return (losses / target_lengths.to(losses.device).clamp_min(1)).sum()

    def _epochs(self, state: dict[str, Any], writer: Any) -> None:
        cfg = self.config
        while state["epoch"] < cfg.train.epochs:
            epoch = state["epoch"]
            if cfg.train.patience and state["best"] and epoch - state["best"]["epoch"] > cfg.train.patience:
                self.console.print(f"early stop: no dev improvement for {cfg.train.patience} epochs")
                break
            batches: Iterable[Any]
            if self.stream is None:
                self.sampler.durations = self.batches.durations(epoch)
                self.sampler.set_epoch(epoch, start_batch=state["batch"])
                batches = cast(Iterable[Any], self.sampler)
            else:
                batches = cast(Iterable[Any], self.stream.epoch(epoch, skip=state["batch"]))
            audio = 0.0
            self.model.train()
            started, loss_sum, loss_count, norms = time.perf_counter(), 0.0, 0, []
            with _progress(self.console) as progress:
                job = progress.add_task(f"epoch {epoch + 1}/{cfg.train.epochs}", total=self.steps_per_epoch)
                progress.update(job, completed=state["batch"])
                for batch in batches:
                    lr = learning_rate(
                        state["step"], cfg.train.lr, cfg.train.warmup_steps, self.total_steps, cfg.train.final_lr_ratio
                    )
                    if self.stream is None:
                        loss, norm = self.step(batch, lr)
                    else:
                        loss, norm = self.step_streamed(batch, lr)
                        audio += sum(it["seconds"] for it in batch)
                    state["step"] += 1
                    state["batch"] += 1
                    loss_sum += loss
                    loss_count += 1
                    norms.append(norm)
                    writer.add_scalar("train/loss", loss, state["step"])
                    writer.add_scalar("train/lr", lr, state["step"])
                    writer.add_scalar("train/grad_norm", norm, state["step"])
                    label = f"epoch {epoch + 1}/{cfg.train.epochs} loss {loss:.3f} lr {lr:.2e}"
                    progress.update(job, advance=1, description=label)
                    if cfg.train.checkpoint_every and state["step"] % cfg.train.checkpoint_every == 0:
                        self._checkpoint("step", state)
            trained = time.perf_counter() - started
            dev = self.dev.evaluate(self.model, self.tokens, self.device)
            finite = [n for n in norms if math.isfinite(n)]
            record = {
                "epoch": epoch,
                "loss": loss_sum / max(loss_count, 1),
                "dev_wer": dev.wer,
                "dev_cer": dev.cer,
                "dev_sets_wer": [c.wer for c in dev.sets],
                "dev_invented": dev.invented,  # words output on the speech-free dev sets
                "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - started,
                "train_seconds": trained,  # the steps alone (no dev evaluation, no checkpoint)
                # the epoch's audio, all ranks (streamed: what was trained since this process started the epoch)
                "audio_seconds": float(self.batches.durations(epoch).sum())
                if self.stream is None
                else self.ranks.sum(audio),
                # gradient norms before clipping (this process's batches), and steps skipped as not finite
                "grad_norm_median": float(np.median(finite)) if finite else None,
                "grad_norm_max": max(finite, default=None),
                "skipped_steps": len(norms) - len(finite),
            }
            state["history"].append(record)
            if state["best"] is None or dev.wer < state["best"]["wer"]:
                state["best"] = {"epoch": epoch, "wer": dev.wer}
            writer.add_scalar("dev/wer", dev.wer, epoch)
            writer.add_scalar("dev/cer", dev.cer, epoch)
            self.console.print(
                f"epoch {epoch + 1}: loss {record['loss']:.3f}  dev WER {100 * dev.wer:.2f}%  CER {100 * dev.cer:.2f}%"
                + (f"  per set {' / '.join(dev.per_set())}" if len(dev.sets) > 1 else "")
                + f"  ({record['seconds']:.0f} s)"
            )
            state["epoch"], state["batch"] = epoch + 1, 0
            self._checkpoint(f"epoch-{epoch:03d}", state)
            shutil.rmtree(self.out / "checkpoints" / "step", ignore_errors=True)
            self._prune(state["history"], state["best"]["epoch"])

    def finish(self, state: dict[str, Any]) -> dict[str, Any]:
        """Select best-on-dev between the best epoch, the average of the last N and (fine-tuning with
        train.interpolate) the start moved towards the best epoch; write RUN/model."""
        from gruasr.training.average import average_checkpoints, interpolate

        history, best = state["history"], state["best"]
        candidates: dict[str, dict[str, torch.Tensor]] = {}
        best_folder = self.out / "checkpoints" / f"epoch-{best['epoch']:03d}"
        candidates[f"best epoch {best['epoch'] + 1}"] = average_checkpoints([best_folder])
        recent = history[-self.config.train.average_last :]
        last = [self.out / "checkpoints" / f"epoch-{r['epoch']:03d}" for r in recent]
        last = [f for f in last if f.is_dir()]
        if len(last) > 1:
            candidates[f"average of last {len(last)}"] = average_checkpoints(last)
        if self.init is not None:
            start, tuned = self.init.model.state_dict(), candidates[f"best epoch {best['epoch'] + 1}"]
            for a in self.config.train.interpolate:
                candidates[f"init + {a:g} x (best epoch {best['epoch'] + 1} - init)"] = interpolate(start, tuned, a)
        results = {}
        for name, weights in candidates.items():
            self.model.load_state_dict(weights)
            results[name] = self.dev.evaluate(self.model, self.tokens, self.device).wer
        chosen = min(results, key=lambda k: results[k])
        self.model.load_state_dict(candidates[chosen])
        summary = {
            "history": history,
            "best_epoch": best["epoch"],
            "selection": {"candidates": results, "chosen": chosen, "dev_wer": results[chosen]},
            "parameters": self.model.num_parameters(),
            "environment": environment(self.device),
            "command": " ".join(sys.argv),
        }
        if self.ranks.main:
            save_model(self.out / "model", **self._bundle_args(summary))
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.ranks.barrier()
        self.console.print(f"selected {chosen}: dev WER {100 * results[chosen]:.2f}%; model in {self.out / 'model'}")
        return summary


def train(config: TrainConfig, out: str | Path, resume: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) a training recipe into `out`; returns the summary."""
    return Trainer(config, Path(out), console).run(resume)
