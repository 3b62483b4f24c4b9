"""Timing helpers for the benchmarks: wall-clock medians that wait for the GPU to finish."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def one_thread(fn: Callable[[], T]) -> T:
    """fn() with torch limited to one thread (as a one-core deployment would run it), then the old count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (kernels run asynchronously); nothing to do on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeat: int) -> float:
    """Median wall time of `repeat` calls of fn, after one warm-up call (allocations, cuDNN plans)."""
    fn()
    sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
