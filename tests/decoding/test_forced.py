"""CTC forced alignment: the Viterbi path equals the best of all enumerated CTC paths, token spans follow it,
word spans cover real speech, and impossible transcripts are refused. The forward algorithm's likelihood equals
the sum over enumerated paths and torch's F.ctc_loss."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gruasr import ConfigError
from gruasr.data.tokens import TokenTable
from gruasr.decoding.forced import ctc_log_likelihood, ctc_log_likelihoods, forced_align, word_spans


def collapse(path: tuple[int, ...], blank: int = 0) -> list[int]:
    out, last = [], None
    for p in path:
        if p != last and p != blank:
            out.append(p)
        last = p
    return out


@pytest.mark.parametrize("targets", [[], [1], [1, 2], [2, 2], [1, 2, 1], [3, 3, 3]])
def test_likelihood_is_the_sum_of_enumerated_paths(targets: list[int]) -> None:
    rng = np.random.default_rng(len(targets) * 5 + sum(targets))
    steps, vocab = 6, 4
    lp = np.log(rng.dirichlet(np.ones(vocab), size=steps))
    paths = [p for p in itertools.product(range(vocab), repeat=steps) if collapse(p) == targets]
    total = np.logaddexp.reduce([sum(lp[t, p] for t, p in enumerate(path)) for path in paths])
    assert ctc_log_likelihood(lp, targets) == pytest.approx(total)


def test_likelihood_equals_torch_ctc_loss() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for steps, targets in [(50, [3, 4, 4, 7, 1]), (30, [2] * 10), (40, [5, 9, 12, 5, 9, 12, 5, 9])]:
        lp = torch.randn(steps, 14, dtype=torch.float64).log_softmax(-1)
        loss = torch.nn.functional.ctc_loss(
            lp[:, None], torch.tensor([targets]), torch.tensor([steps]), torch.tensor([len(targets)]), reduction="sum"
        )
        assert ctc_log_likelihood(lp.numpy(), targets) == pytest.approx(-loss.item(), rel=1e-9)
    # many sequences at once (padded to the longest) = each alone, an impossible one and the empty one included
    lp = torch.randn(12, 6, dtype=torch.float64).log_softmax(-1).numpy()
    texts = [[1, 2, 3], [], [4] * 7, [5], [1, 1, 2, 2, 3, 3]]
    together = ctc_log_likelihoods(lp, texts)
    assert together[2] == -np.inf
    np.testing.assert_allclose(together, [ctc_log_likelihood(lp, t) for t in texts], rtol=1e-12)
    # too few steps for the repeated tokens: no path, -inf (torch: inf loss)
    assert ctc_log_likelihood(np.log(rng.dirichlet(np.ones(4), size=2)), [2, 2]) == -np.inf


@pytest.mark.parametrize("targets", [[1], [1, 2], [2, 2], [1, 2, 1], [3, 3, 3]])
def test_viterbi_is_the_best_enumerated_path(targets: list[int]) -> None:
    rng = np.random.default_rng(len(targets) * 7 + sum(targets))
    steps, vocab = 7, 4
    lp = np.log(rng.dirichlet(np.ones(vocab), size=steps))
    spans, score = forced_align(lp, targets)
    best, best_path = -np.inf, None
    for path in itertools.product(range(vocab), repeat=steps):  # every path that collapses to the targets
        if collapse(path) == targets:
            s = sum(lp[t, p] for t, p in enumerate(path))
            if s > best:
                best, best_path = s, path
    assert score == pytest.approx(best)
    assert best_path is not None
    # the spans are the steps where the best path emits each target (blank steps outside them)
    for k, (first, last) in enumerate(spans):
        assert best_path[first] == targets[k] and best_path[last] == targets[k]
        assert all(p in (targets[k], 0) for p in best_path[first : last + 1])


def test_impossible_transcripts_are_refused() -> None:
    lp = np.log(np.full((3, 4), 0.25))
    with pytest.raises(ConfigError, match="output steps"):
        forced_align(lp, [1, 1, 1])  # needs 5 steps: the doubled tokens need blanks between them
    forced_align(lp, [1, 2, 3])  # 3 steps are enough for 3 different tokens


def test_word_spans_on_real_speech(data_dir) -> None:
    """A real FSDD take of "seven" between two of "three": each word's span lies within its own piece of audio."""
    from gruasr.data.manifest import Utterance, load_utterance
    from gruasr.recognizer import OfflineRecognizer

    rec = OfflineRecognizer.load()
    takes = [data_dir / "fsdd" / "recordings" / f"{d}_jackson_{t}.wav" for d, t in ((3, 20), (7, 20), (3, 21))]
    pieces = [load_utterance(Utterance(p.stem, str(p), "x"), 8000) for p in takes]
    gap = np.zeros(2000, np.float32)
    audio = np.concatenate([pieces[0], gap, pieces[1], gap, pieces[2]])
    log_probs = rec.log_probs(audio).cpu().numpy()
    spans = word_spans(log_probs, "three seven three", TokenTable())
    step = rec.bundle.step_seconds
    bounds = np.cumsum([0, len(pieces[0]) + len(gap), len(pieces[1]) + len(gap), len(pieces[2])]) / 8000
    for k, span in enumerate(spans):
        assert span.label == ["three", "seven", "three"][k]
        assert bounds[k] - 0.1 <= span.first * step and (span.last + 1) * step <= bounds[k + 1] + 0.1
