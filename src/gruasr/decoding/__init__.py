"""Decoding CTC log-probabilities into text with word times and confidences."""

from gruasr.decoding.greedy import greedy_batch, greedy_decode
from gruasr.decoding.hypothesis import Hypothesis, Word

__all__ = ["Hypothesis", "Word", "greedy_batch", "greedy_decode"]
