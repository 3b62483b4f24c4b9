"""A handset tilt per speaker at test time (docs/recognizer.md, "Another handset"): each speaker's utterances of a
manifest (one speaker = one call leg) through a fixed spectral tilt before the mu-law line, for each tilt of a grid
(the best per speaker in hindsight: an oracle's bound), through the tilt that would bring the speaker's long-term
slope over 300-3400 Hz to that of a sample of the training data (an estimate from the leg's own audio), and
through the tilt of the grid the model is surest of on the speaker's utterances (its best token's mean
log-probability per step: no transcript needed):

    python scripts/tilt_per_speaker.py src/gruasr/pretrained/telephone data/an4/dev.jsonl [--tilts -4,-2,0,2,4]

WER greedy and with the model's decoding (not rescored); one thread. The line is seeded per utterance.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np
import torch

from gruasr.audio.telephony import TelephoneChannel, long_term_slope, spectral_tilt
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.evaluation.metrics import score
from gruasr.recognizer import OfflineRecognizer
from gruasr.transcription import DecodeOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("manifest")
    parser.add_argument("--train", nargs="+", default=["data/an4/train.jsonl", "data/fsdd/train.jsonl"])
    parser.add_argument("--tilts", default="-4,-2,0,2,4")
    args = parser.parse_args()
    torch.set_num_threads(1)
    asr = OfflineRecognizer.load(args.model, rescoring=False)
    rate, line, own = asr.sample_rate, TelephoneChannel(codec="ulaw", output_rate=asr.sample_rate), asr.options
    train = [u for path in args.train for u in read_manifest(path)]
    picked = np.random.default_rng(0).choice(len(train), min(400, len(train)), replace=False)
    reference = long_term_slope([load_utterance(train[i], rate) for i in picked], rate)
    utts = read_manifest(args.manifest)
    audio = [load_utterance(u, rate) for u in utts]
    refs, speakers = [u.text for u in utts], [u.speaker or u.id for u in utts]
    legs = {s: [i for i, t in enumerate(speakers) if t == s] for s in sorted(set(speakers))}
    correction = {
        s: float(np.clip(reference - long_term_slope([audio[i] for i in idx], rate), -6, 6)) for s, idx in legs.items()
    }
    print(f"training sample's slope {reference:+.1f} dB/octave; correction per speaker:",
          ", ".join(f"{s} {c:+.1f}" for s, c in correction.items()))  # fmt: skip

    confidences: dict[float, list[float]] = {}

    def decode(tilt_of: Callable[[str], float], key: float | None = None) -> dict[str, list[str]]:
        outputs = []
        for i, x in enumerate(audio):
            heard = line.apply(spectral_tilt(x, rate, tilt_of(speakers[i])), rate, np.random.default_rng([0, i]))
            outputs.append(asr.log_probs(asr.end_padded(heard)))
        if key is not None:  # the model's own confidence: its best token's mean log-probability per step
            confidences[key] = [float(lp.max(dim=-1).values.mean()) for lp in outputs]
        texts = {}
        for mode, options in (("greedy", DecodeOptions("greedy")), ("decoded", own)):
            asr.options = options
            texts[mode] = [asr.decode(lp).text for lp in outputs]
        asr.options = own
        return texts

    def wer(texts: list[str], idx: Sequence[int] | None = None) -> float:
        return score([(refs[i], texts[i]) for i in (range(len(refs)) if idx is None else idx)]).wer

    tilts = [float(t) for t in args.tilts.split(",")]
    results = {t: decode(lambda _s, t=t: t, t) for t in tilts}  # type: ignore[misc]
    for t, texts in results.items():
        print(f"tilt {t:+g}: greedy {100 * wer(texts['greedy']):.2f}%, decoded {100 * wer(texts['decoded']):.2f}%")
    corrected = decode(lambda s: correction[s])
    print(f"estimated correction: greedy {100 * wer(corrected['greedy']):.2f}%, "
          f"decoded {100 * wer(corrected['decoded']):.2f}%")  # fmt: skip
    for mode in ("greedy", "decoded"):
        best, confident = [], []
        for idx in legs.values():
            pick = min(tilts, key=lambda t: (wer(results[t][mode], idx), abs(t)))  # noqa: B023
            best += [(refs[i], results[pick][mode][i]) for i in idx]
            sure = max(tilts, key=lambda t: (np.mean([confidences[t][i] for i in idx]), -abs(t)))  # noqa: B023
            confident += [(refs[i], results[sure][mode][i]) for i in idx]
        print(f"{mode}: the best tilt per speaker in hindsight {100 * score(best).wer:.2f}%, "
              f"the tilt the model is surest of per speaker {100 * score(confident).wer:.2f}%")  # fmt: skip


if __name__ == "__main__":
    main()
