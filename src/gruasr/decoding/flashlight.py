"""An optional second lexicon decoder: flashlight-text's `LexiconDecoder` (the C++ beam search of wav2letter and
torchaudio's `ctc_decoder`), driven by our token table, lexicon and n-gram LM, for cross-checking
prefix_beam_search and as a faster backend. Install with `pip install gruasr[flashlight]`.

Mapping (Kahn et al. 2022, "Flashlight: Enabling innovation in tools for machine learning"; the decoder is the
wav2letter++ one, Pratap et al. 2019): each lexicon word is spelled as its letters followed by the space token,
which is also the decoder's silence (so spaces between words are optional repeats of it, as leading and doubled
spaces are in our beam search). The LM is an adapter over NGramLM whose state is the whole word history (a trie
of flashlight LMStates), so hypotheses merge only when their words are the same, as prefixes do in ours; scores
are natural logs with the same `lm_weight` and `word_bonus` (the bonus only with an LM, as ours). Flashlight
finishes only hypotheses that end on a word boundary, so one frame holding only the space token is appended:
it closes the last word and changes no path's probability. Lexicon trie scores are 0, so there is no unigram
look-ahead (smearing) and final scores mean the same as ours; flashlight merges equal states by log-add.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import Tensor

from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import BeamConfig, Lexicon
from gruasr.decoding.greedy import Emitted, tokens_to_words
from gruasr.decoding.hypothesis import Hypothesis
from gruasr.decoding.lm import EOS, NGramLM
from gruasr.errors import ConfigError

#: log-probability given to every token but the space in the appended closing frame (no path goes through them)
_NEVER = -1.0e4


def _flashlight() -> Any:
    try:
        from flashlight.lib.text import decoder
    except ImportError:
        raise ConfigError("the flashlight backend needs flashlight-text: pip install 'gruasr[flashlight]'") from None
    return decoder


def _lm_adapter(lm: NGramLM, words: list[str]) -> Any:
    """A flashlight LM over NGramLM: word index -> natural-log probability; one LMState per word history."""
    fl = _flashlight()

    class NGramAdapter(fl.LM):  # type: ignore[name-defined]
        def __init__(self) -> None:
            fl.LM.__init__(self)
            self.history: dict[Any, tuple[str, ...]] = {}  # LMState -> our state (the last order-1 words)
            self.scores: dict[Any, float] = {}  # child LMState -> log-probability of the word leading to it

        def start(self, start_with_nothing: bool) -> Any:
            state = fl.LMState()
            self.history[state] = lm.start()
            return state

        def _child(self, state: Any, index: int, word: str) -> tuple[Any, float]:
            child = state.child(index)
            if child not in self.scores:
                logp, self.history[child] = lm.score(self.history[state], word)
                self.scores[child] = logp
            return child, self.scores[child]

        def score(self, state: Any, index: int) -> tuple[Any, float]:
            return self._child(state, index, words[index])

        def finish(self, state: Any) -> tuple[Any, float]:
            return self._child(state, len(words), EOS)

    return NGramAdapter()


class FlashlightLexiconDecoder:
    """flashlight-text's CTC lexicon decoder with our lexicon and (optionally) LM; same config as ours.

    `beam_threshold`: hypotheses scoring this far below the best at a step are dropped (flashlight's own
    pruning; the default is wide enough to leave `beam_size` the only limit in practice)."""

    def __init__(
        self,
        table: TokenTable,
        lexicon: Lexicon,
        lm: NGramLM | None = None,
        config: BeamConfig | None = None,
        beam_threshold: float = 100.0,
    ) -> None:
        fl = _flashlight()
        self.table, self.config = table, config or BeamConfig()
        self.words = sorted(lexicon.words)
        self._keep: list[Any] = []  # the Python objects the C++ decoder points to
        space = table.space
        trie = fl.Trie(len(table), space)
        index = {s: i for i, s in enumerate(table.symbols)}
        for w, word in enumerate(self.words):
            unknown = set(word) - set(index) - {" "}
            if unknown or " " in word:
                raise ConfigError(f"lexicon word {word!r} cannot be spelled with the token table")
            trie.insert([index[c] for c in word] + [space], w, 0.0)
        trie.smear(fl.SmearingMode.MAX)  # all scores 0: no look-ahead, but every node's max score is defined
        language_model = _lm_adapter(lm, self.words) if lm is not None else fl.ZeroLM()
        options = fl.LexiconDecoderOptions(
            beam_size=self.config.beam_size,
            beam_size_token=len(table),
            beam_threshold=beam_threshold,
            lm_weight=self.config.lm_weight if lm is not None else 0.0,
            word_score=self.config.word_bonus if lm is not None else 0.0,
            unk_score=-math.inf,
            sil_score=0.0,
            log_add=True,
            criterion_type=fl.CriterionType.CTC,
        )
        self._keep += [trie, language_model, options]
        self._decoder = fl.LexiconDecoder(options, trie, language_model, space, table.blank, len(self.words), [], False)

    def decode(self, log_probs: Tensor, step_seconds: float, length: int | None = None) -> Hypothesis:
        """log_probs (T, V) natural-log CTC posteriors, the first `length` steps valid -> the best hypothesis
        (word times from its best path; confidence None)."""
        lp = log_probs.detach().float().cpu().numpy()
        if length is not None:
            lp = lp[:length]
        if lp.ndim != 2 or lp.shape[1] != len(self.table):
            raise ConfigError(f"expected log-probabilities (T, {len(self.table)}), got shape {lp.shape}")
        closing = np.full((1, lp.shape[1]), _NEVER, dtype=np.float32)
        closing[0, self.table.space] = 0.0
        emissions = np.ascontiguousarray(np.concatenate([lp, closing]), dtype=np.float32)
        results = self._decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1])
        if not results:
            return Hypothesis("", (), -math.inf)
        best = results[0]
        text, words = tokens_to_words(self._emitted(list(best.tokens), emissions), self.table, step_seconds)
        if text.split() != [self.words[w] for w in best.words if w >= 0]:
            raise ConfigError(f"flashlight path {text!r} disagrees with its words {list(best.words)}")
        return Hypothesis(text, words, float(best.score))

    def _emitted(self, path: list[int], emissions: np.ndarray) -> list[Emitted]:
        """Flashlight's frame path (one token per step, padded by one entry at each end) -> emitted tokens."""
        frames = path[1 : emissions.shape[0] + 1]
        out: list[Emitted] = []
        previous = -1
        for t, token in enumerate(frames):
            p = math.exp(float(emissions[t, token])) if token >= 0 else 0.0
            if token > 0 and token == previous:
                tok, first, _, peak = out[-1]
                out[-1] = (tok, first, t, max(peak, p))
            elif token > 0:
                out.append((token, t, t, p))
            previous = token
        return out
