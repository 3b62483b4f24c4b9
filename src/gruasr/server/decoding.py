"""Decoding of finals for the server: the model's own decoder, n-best alternatives (Vosk `max_alternatives`), and
grammar mode (Vosk `phrase_list`), run in the decoding pool so that one slow beam search never stalls the ticker.

Grammar mode restricts a final to a sequence of the phrases (gruasr.decoding.grammar.PhraseGrammar, a loop over
the phrases' word trie, as Vosk's grammar is) and spells only their words (a lexicon), fused at the bundled
model's LM weight raised to `GRAMMAR_LM_WEIGHT`: an IVR menu's "yes", "no", "operator" or digits. Vosk's "[unk]"
entry (let anything else through) is accepted and ignored: out-of-list speech comes out as the nearest phrases,
or as nothing. Partials stay the streaming model's greedy text (they are not restricted).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gruasr.decoding.beam import Lexicon, prefix_beam_search, prefix_beam_search_nbest
from gruasr.decoding.grammar import PhraseGrammar
from gruasr.decoding.hypothesis import Hypothesis
from gruasr.decoding.lm import LanguageModel
from gruasr.errors import ConfigError

if TYPE_CHECKING:  # torch tensors or numpy arrays (the ONNX runtime), either engine's recognizer
    from torch import Tensor

    from gruasr.recognizer import OfflineRecognizer

GRAMMAR_LM_WEIGHT = 1.0
MAX_PHRASES = 1000
MAX_ALTERNATIVES = 20
_GRAMMAR_CACHE = 32  # distinct phrase lists kept built


@dataclass(frozen=True)
class DecodeRequest:
    """How one session's finals are decoded: `alternatives` > 0 gives that many n-best texts; `phrases` (normalized,
    sorted, deduplicated) switches to grammar mode."""

    alternatives: int = 0
    phrases: tuple[str, ...] = ()


def normalize_phrases(phrases: object, spellable: OfflineRecognizer) -> tuple[str, ...]:
    """A Vosk phrase_list (list of strings) as lower-case single-spaced phrases the model's tokens can spell;
    a ConfigError names the first bad entry."""
    if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
        raise ConfigError("phrase_list must be a list of strings")
    if len(phrases) > MAX_PHRASES:
        raise ConfigError(f"phrase_list holds {len(phrases)} phrases; at most {MAX_PHRASES}")
    out: set[str] = set()
    tokens = spellable.bundle.tokens
    for phrase in phrases:
        text = " ".join(phrase.lower().split())
        if text in ("", "[unk]"):
            continue
        missing = tokens.unknown(text)
        if missing:
            raise ConfigError(f"phrase {phrase!r} has characters the model cannot spell: {sorted(missing)}")
        out.add(text)
    if not out:
        raise ConfigError("phrase_list holds no phrase (only empty entries or [unk])")
    return tuple(sorted(out))


class FinalDecoder:
    """Decodes CTC log-probabilities (T', V) of an ended utterance for a DecodeRequest. Thread-safe: the searches
    share only read-only tables; grammars are built once per phrase list (under a lock) and cached."""

    def __init__(self, recognizer: OfflineRecognizer) -> None:
        self.recognizer = recognizer
        self._grammars: OrderedDict[tuple[str, ...], tuple[PhraseGrammar, Lexicon]] = OrderedDict()
        self._lock = threading.Lock()

    def decode(self, log_probs: Tensor, request: DecodeRequest) -> list[Hypothesis]:
        """The best hypothesis first; with request.alternatives = n, up to n distinct texts (each with its
        confidence among the beam's texts). Empty hypotheses are kept (the caller reports "nothing said")."""
        rec = self.recognizer
        options = rec.options
        if not request.phrases and not request.alternatives:
            return [rec.decode(log_probs)]
        tokens, step = rec.bundle.tokens, rec.bundle.step_seconds
        beam = options.beam
        lm: LanguageModel | None = rec.lm if options.use_lm else None
        lexicon = rec.lexicon if options.use_lm else None
        if request.phrases:
            lm, lexicon = self._grammar(request.phrases)
            beam = replace(beam, lm_weight=max(beam.lm_weight, GRAMMAR_LM_WEIGHT))
        if request.alternatives:
            found = prefix_beam_search_nbest(log_probs, tokens, step, beam, lm, lexicon, nbest=request.alternatives)
            return found or [Hypothesis("", (), confidence=1.0)]
        return [prefix_beam_search(log_probs, tokens, step, beam, lm, lexicon)]

    def _grammar(self, phrases: tuple[str, ...]) -> tuple[PhraseGrammar, Lexicon]:
        with self._lock:
            if phrases in self._grammars:
                self._grammars.move_to_end(phrases)
                return self._grammars[phrases]
            grammar = PhraseGrammar(phrases)
            built = (grammar, Lexicon(grammar.words))
            self._grammars[phrases] = built
            if len(self._grammars) > _GRAMMAR_CACHE:
                self._grammars.popitem(last=False)
            return built
