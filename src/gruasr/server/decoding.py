"""Decoding of finals for the server: the model's own decoder, n-best alternatives (Vosk `max_alternatives`), and
grammar mode (Vosk `phrase_list`), run in the decoding pool so that one slow beam search never stalls the ticker.

Grammar mode restricts a final to a sequence of the phrases (gruasr.decoding.grammar.PhraseGrammar, a loop over
the phrases' word trie, as Vosk's grammar is) and spells only their words (a lexicon), fused at the bundled
model's LM weight raised to `GRAMMAR_LM_WEIGHT`: an IVR menu's "yes", "no", "operator" or digits. Vosk's "[unk]"
entry (let anything else through) is accepted and ignored: out-of-list speech comes out as the nearest phrases,
or as nothing. Partials stay the streaming model's greedy text (they are not restricted).

The pool is threads (`DecoderThreads`) or spawned processes (`DecoderProcesses`, server.decode_in = "processes"):
a beam search is Python, and in a thread it holds the GIL that the ticker needs, so at a few hundred streams the
ticks wait on the finals (docs/serving.md, "Capacity"); a process has its own interpreter. Each process gets the
decoding parts (tokens, options, LM, lexicon: about 1.5 MB pickled for the bundled model) once, at its start, and
the log-probabilities of each final as a numpy array.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gruasr.decoding.beam import Lexicon, prefix_beam_search, prefix_beam_search_nbest
from gruasr.decoding.grammar import PhraseGrammar
from gruasr.decoding.hypothesis import Hypothesis
from gruasr.decoding.lm import LanguageModel
from gruasr.errors import ConfigError
from gruasr.transcription import rescored

if TYPE_CHECKING:  # torch tensors or numpy arrays (the ONNX runtime), either engine's recognizer
    from torch import Tensor

    from gruasr.data.tokens import TokenTable
    from gruasr.events import PendingFinal
    from gruasr.transcription import DecodeOptions, Transcriber

log = logging.getLogger("gruasr.server")

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


def normalize_phrases(phrases: object, spellable: Transcriber) -> tuple[str, ...]:
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


@dataclass(frozen=True)
class DecodingParts:
    """What decoding a final needs of a recognizer, without its network: picklable, for a decoding process."""

    tokens: TokenTable
    step_seconds: float
    options: DecodeOptions
    lm: LanguageModel | None
    lexicon: Lexicon | None
    #: the recognizer's rescoring (weight, nbest) when it is rescored: finals with votes are picked from the n-best
    rescoring: tuple[float, int] | None = None

    @classmethod
    def of(cls, recognizer: Transcriber) -> DecodingParts:
        """Either engine's offline recognizer's parts."""
        bundle, again = recognizer.bundle, recognizer.rescoring
        rescoring = None if again is None else (again.weight, again.nbest)
        return cls(bundle.tokens, bundle.step_seconds, recognizer.options, recognizer.lm, recognizer.lexicon, rescoring)


class FinalDecoder:
    """Decodes CTC log-probabilities (T', V) of an ended utterance for a DecodeRequest. Thread-safe: the searches
    share only read-only tables; grammars are built once per phrase list (under a lock) and cached."""

    def __init__(self, parts: DecodingParts) -> None:
        self.parts = parts
        self._grammars: OrderedDict[tuple[str, ...], tuple[PhraseGrammar, Lexicon]] = OrderedDict()
        self._lock = threading.Lock()

    def decode(
        self, log_probs: Tensor | np.ndarray, request: DecodeRequest, votes: np.ndarray | None = None
    ) -> list[Hypothesis]:
        """The best hypothesis first; with request.alternatives = n, up to n distinct texts (each with its
        confidence among the beam's texts). Empty hypotheses are kept (the caller reports "nothing said").
        `votes`: the rescoring model's log-probabilities of the utterance (PendingFinal.votes), which pick the
        best of the n-best when the recognizer is rescored (not in grammar mode, nor for alternatives)."""
        parts = self.parts
        options, tokens, step = parts.options, parts.tokens, parts.step_seconds
        if not request.phrases and not request.alternatives:
            if votes is not None and parts.rescoring is not None:
                weight, nbest = parts.rescoring
                candidates = options.nbest(log_probs, tokens, step, parts.lm, parts.lexicon, nbest)
                return [rescored(candidates, votes, weight, tokens)]
            return [options.decode(log_probs, tokens, step, parts.lm, parts.lexicon)]
        beam = options.beam
        lm: LanguageModel | None = parts.lm if options.use_lm else None
        lexicon = parts.lexicon if options.use_lm else None
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


class DecoderThreads:
    """Finals decoded in `workers` threads of this process (the default: no start-up, one copy of the LM)."""

    def __init__(self, parts: DecodingParts, workers: int) -> None:
        self.decoder = FinalDecoder(parts)
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "gruasr-decode")

    def start(self) -> None:
        """Nothing to wait for: threads start with their first final."""

    def submit(
        self, log_probs: Any, request: DecodeRequest, votes: np.ndarray | None = None
    ) -> concurrent.futures.Future[list[Hypothesis]]:
        return self._pool.submit(self.decoder.decode, log_probs, request, votes)

    def submit_final(
        self, pending: PendingFinal, second_pass: Transcriber | None, request: DecodeRequest
    ) -> concurrent.futures.Future[list[Hypothesis]]:
        """A stream's final: with a deferred second pass, that model's log-probabilities of the utterance's audio
        (and its rescoring model's vote) are computed here, in a decoding thread, then the search."""
        return self._pool.submit(
            lambda: self.decoder.decode(pending.scores(second_pass), request, pending.votes(second_pass))
        )

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_WORKER: FinalDecoder | None = None


def _worker_init(parts: DecodingParts) -> None:
    """In a decoding process: ignore the terminal's Ctrl-C (the server stops its pool), hold the decoder, and
    exit when the server is gone (a server killed with SIGKILL cannot stop its pool, and a worker waiting for
    work holds its queue's write end itself, so it would wait forever)."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = FinalDecoder(parts)
    threading.Thread(target=_exit_with, args=(os.getppid(),), name="gruasr-orphan-watch", daemon=True).start()


def _exit_with(parent: int, every: float = 1.0) -> None:
    while os.getppid() == parent:  # re-parented (to init or a subreaper) once the server is gone
        time.sleep(every)
    os._exit(0)


def _worker_ready() -> int:
    return os.getpid()


def _worker_decode(log_probs: np.ndarray, request: DecodeRequest, votes: np.ndarray | None) -> list[Hypothesis]:
    if _WORKER is None:
        raise RuntimeError("the decoding process has no decoder (its initializer did not run)")
    return _WORKER.decode(log_probs, request, votes)


class DecoderProcesses:
    """Finals decoded in `workers` spawned processes, each with its own copy of the decoding parts. A process that
    dies (killed, out of memory) fails the finals it held; the next final starts a new pool."""

    def __init__(self, parts: DecodingParts, workers: int) -> None:
        self.parts = parts
        self.workers = workers
        self._pool = self._new_pool()
        self._lock = threading.Lock()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        # spawn, not fork: the server's threads (the ticker, ONNX Runtime's, the event loop's) do not survive a fork
        context = multiprocessing.get_context("spawn")
        return concurrent.futures.ProcessPoolExecutor(
            self.workers, context, initializer=_worker_init, initargs=(self.parts,)
        )

    def start(self) -> None:
        """Start every process and load its decoder now (blocking), not at the first final."""
        for future in [self._pool.submit(_worker_ready) for _ in range(self.workers)]:
            future.result()

    def pids(self) -> list[int]:
        """The decoding processes' ids (for tests and diagnostics; the executor's own table of its processes)."""
        return sorted(self._pool._processes or {})

    def submit(
        self, log_probs: Any, request: DecodeRequest, votes: np.ndarray | None = None
    ) -> concurrent.futures.Future[list[Hypothesis]]:
        array = np.ascontiguousarray(np.asarray(log_probs, dtype=np.float32))  # a torch tensor (CPU) or an array
        with self._lock:
            try:
                return self._pool.submit(_worker_decode, array, request, votes)
            except concurrent.futures.process.BrokenProcessPool:
                log.error("a decoding process died; starting a new pool", extra={"decode_workers": self.workers})
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                return self._pool.submit(_worker_decode, array, request, votes)

    def submit_final(
        self, pending: PendingFinal, second_pass: Transcriber | None, request: DecodeRequest
    ) -> concurrent.futures.Future[list[Hypothesis]]:
        """A stream's final (its second pass, if any, ran in the ticker: a process holds no model)."""
        return self.submit(pending.scores(second_pass), request, pending.votes(second_pass))

    def shutdown(self) -> None:
        with self._lock:
            self._pool.shutdown(wait=True, cancel_futures=True)


def decoder_pool(parts: DecodingParts, workers: int, kind: str) -> DecoderThreads | DecoderProcesses:
    """The server's decoding pool: `kind` "threads" or "processes" (server.decode_in)."""
    if kind == "processes":
        return DecoderProcesses(parts, workers)
    if kind == "threads":
        return DecoderThreads(parts, workers)
    raise ConfigError(f"decode_in must be 'threads' or 'processes', got {kind!r}")
