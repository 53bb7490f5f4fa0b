"""Latency statistics of a callable: warm-up, then timed iterations."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds over the timed iterations."""

    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    iterations: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure_latency(
    run: Callable[[], object],
    synchronize: Callable[[], None],
    warmup: int = 3,
    iterations: int = 10,
) -> LatencyStats:
    """Call `run` `warmup` times untimed, then `iterations` times, each timed to `synchronize`.

    Returns mean, median, 90th/99th percentile and minimum in milliseconds.
    """
    if iterations < 1 or warmup < 0:
        raise ValueError(f"need iterations >= 1 and warmup >= 0, got {iterations}, {warmup}")
    for _ in range(warmup):
        run()
    synchronize()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    ms = np.asarray(times)
    return LatencyStats(
        mean=float(ms.mean()),
        p50=float(np.percentile(ms, 50)),
        p90=float(np.percentile(ms, 90)),
        p99=float(np.percentile(ms, 99)),
        min=float(ms.min()),
        iterations=iterations,
    )
