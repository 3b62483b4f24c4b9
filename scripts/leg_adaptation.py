"""Two ways of adapting a model to one speaker at test time, tried on AN4 dev (7 speakers no training utterance
comes from, 13 utterances each) through the mu-law dev line, each speaker's utterances standing for one call leg
(docs/recognizer.md, "Adaptation per call leg"):

    python scripts/leg_adaptation.py adabn [--model DIR] [--taus 0,2000,10000]
    python scripts/leg_adaptation.py self [--model DIR] [--kind diag|full|shift] [--steps 10] [--lr 0.01]

adabn: the Li-GRU's batch-norm statistics (of each layer's input projections) re-estimated on the speaker's own
frames, layer after layer, mixed with the trained ones as a prior of `tau` frames (0: the speaker's alone).
self: a feature-space affine transform per speaker (fMLLR's idea; diagonal, full or a shift only), trained with
the CTC loss on the model's own first-pass hypotheses (beam + LM), then decoded again.
Both print WER greedy and with the model's decoding before and after; one thread.
"""

from __future__ import annotations

import argparse
import collections
import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gruasr.audio.telephony import TelephoneChannel
from gruasr.bundle import DecodeOptions
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.evaluation.metrics import score
from gruasr.recognizer import OfflineRecognizer


def _features(rec: OfflineRecognizer, manifest: str) -> tuple[list[str], list[str], list[torch.Tensor]]:
    """(references, speakers, CMVN-normalized features) of a manifest through the mu-law dev line (seed 0)."""
    rate, line = rec.sample_rate, TelephoneChannel(codec="ulaw", output_rate=rec.sample_rate)
    refs, speakers, feats = [], [], []
    for i, u in enumerate(read_manifest(manifest)):
        audio = line.apply(load_utterance(u, rate), rate, np.random.default_rng([0, i]))
        with torch.no_grad():
            feats.append(rec.bundle.cmvn(rec.fbank(torch.as_tensor(rec.end_padded(audio)))))
        refs.append(u.text)
        speakers.append(u.speaker or u.id)
    return refs, speakers, feats


def _wer(rec: OfflineRecognizer, refs: list[str], log_probs: list[torch.Tensor], greedy: bool) -> str:
    saved = rec.options
    rec.options = DecodeOptions("greedy") if greedy else saved
    counts = score([(ref, rec.decode(lp).text) for ref, lp in zip(refs, log_probs, strict=True)])
    rec.options = saved
    return f"{100 * counts.wer:.2f}% ({counts.errors})"


def _outputs(model: nn.Module, feats: list[torch.Tensor]) -> list[torch.Tensor]:
    with torch.no_grad():
        return [model(f[None])[0][0] for f in feats]


def _adapted_norms(model: nn.Module, feats: list[torch.Tensor], tau: float) -> nn.Module:
    """A copy of `model` whose batch norms hold the speaker's statistics (MAP with a prior of `tau` frames)."""
    adapted = copy.deepcopy(model).eval()
    for norm in [m for m in adapted.modules() if isinstance(m, nn.BatchNorm1d)]:
        assert norm.running_mean is not None and norm.running_var is not None
        sums: list[tuple[int, torch.Tensor, torch.Tensor]] = []

        def collect(_m: nn.Module, inp: tuple[torch.Tensor, ...], _out: torch.Tensor, into: list = sums) -> None:
            x = inp[0].double()
            into.append((x.shape[0], x.sum(0), x.pow(2).sum(0)))

        hook = norm.register_forward_hook(collect)
        _outputs(adapted, feats)  # earlier layers already adapted
        hook.remove()
        n = sum(s[0] for s in sums)
        mean = sum(s[1] for s in sums) / n
        var = sum(s[2] for s in sums) / n - mean**2
        prior_mean, prior_var = norm.running_mean.double(), norm.running_var.double()
        w = n / (n + tau)
        new_mean = w * mean + (1 - w) * prior_mean
        new_var = w * (var + (mean - new_mean) ** 2) + (1 - w) * (prior_var + (prior_mean - new_mean) ** 2)
        norm.running_mean.copy_(new_mean.float())
        norm.running_var.copy_(new_var.float())
    return adapted


def _self_adapted(
    rec: OfflineRecognizer, feats: list[torch.Tensor], hyps: list[str], kind: str, steps: int, lr: float
) -> list[torch.Tensor]:
    """The speaker's outputs after training an affine feature transform on the first pass's hypotheses."""
    dim = feats[0].shape[1]
    scale = torch.eye(dim) if kind == "full" else torch.ones(dim)
    scale.requires_grad_(kind != "shift")
    shift = torch.zeros(dim, requires_grad=True)

    def transform(f: torch.Tensor) -> torch.Tensor:
        return (f @ scale.T if kind == "full" else f * scale) + shift

    params = [shift] + ([scale] if kind != "shift" else [])
    optimizer = torch.optim.Adam(params, lr=lr)
    tokens = rec.bundle.tokens
    todo = [(f, torch.tensor(tokens.encode(h))) for f, h in zip(feats, hyps, strict=True) if h.strip()]
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.zeros(())
        for f, target in todo:
            lp, lengths, _ = rec.model(transform(f)[None])
            loss = loss + F.ctc_loss(lp.transpose(0, 1), target[None], lengths, torch.tensor([len(target)]),
                                     blank=tokens.blank, reduction="sum", zero_infinity=True)  # fmt: skip
        (loss / max(1, sum(len(t) for _, t in todo))).backward()
        optimizer.step()
    with torch.no_grad():
        return _outputs(rec.model, [transform(f) for f in feats])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=["adabn", "self"])
    parser.add_argument("--model", help="a bidirectional Li-GRU model folder (default: the bundled default model)")
    parser.add_argument("--manifest", default="data/an4/dev.jsonl")
    parser.add_argument("--taus", default="0,2000,10000", help="adabn: prior weights in frames")
    parser.add_argument("--kind", choices=["diag", "full", "shift"], default="diag", help="self: the transform")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rec = OfflineRecognizer.load(args.model, rescoring=False)
    model = rec.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    refs, speakers, feats = _features(rec, args.manifest)
    by_speaker: dict[str, list[int]] = collections.defaultdict(list)
    for i, s in enumerate(speakers):
        by_speaker[s].append(i)
    base = _outputs(model, feats)
    print(f"{len(by_speaker)} speakers, {len(refs)} utterances; global statistics: "
          f"greedy {_wer(rec, refs, base, True)}, "
          f"decoded {_wer(rec, refs, base, False)}")  # fmt: skip
    if args.method == "adabn":
        for tau in (float(t) for t in args.taus.split(",")):
            out = list(base)
            for idx in by_speaker.values():
                adapted = _adapted_norms(model, [feats[i] for i in idx], tau)
                for i, lp in zip(idx, _outputs(adapted, [feats[i] for i in idx]), strict=True):
                    out[i] = lp
            print(f"speaker statistics, prior {tau:g} frames: greedy {_wer(rec, refs, out, True)}, "
                  f"decoded {_wer(rec, refs, out, False)}")  # fmt: skip
    else:
        hyps = [rec.decode(lp).text for lp in base]
        out = list(base)
        for idx in by_speaker.values():
            adapted = _self_adapted(
                rec, [feats[i] for i in idx], [hyps[i] for i in idx], args.kind, args.steps, args.lr
            )
            for i, lp in zip(idx, adapted, strict=True):
                out[i] = lp
        print(f"self-adapted ({args.kind}, {args.steps} steps, lr {args.lr}): greedy {_wer(rec, refs, out, True)}, "
              f"decoded {_wer(rec, refs, out, False)}")  # fmt: skip


if __name__ == "__main__":
    main()
