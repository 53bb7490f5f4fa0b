"""Decode, infer, encode side by side: the next items load and the previous ones finish in a
pool of threads while the runner infers, with bounded queues so memory stays flat however many
items pass (decoding and encoding images release the GIL, so do the runners).

`overlapped(items, load, finish, runner, batch, workers)` yields `Outcome`s in the items'
order. Up to `batch` loaded items at a time go to `harmony.runtime.batches.infer_by_size`
(same-size items run as one batch where the runner takes a batch). A load, an inference or a
finish that raises HarmonyError fails that item alone; any other exception is a bug and stops
the run.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from harmony.errors import HarmonyError
from harmony.runtime.batches import infer_by_size

# Items loading ahead of the runner, and finishing behind it, per worker thread.
QUEUE_PER_WORKER = 2
_END = object()


@dataclass
class Outcome:
    """What became of one item.

    Attributes:
        item: the item as it came in.
        result: what `finish` returned; None where the item failed.
        error: the HarmonyError that failed it; None where it succeeded.
        seconds: the item's load and finish time plus its share of the inference.
    """

    item: Any
    result: Any = None
    error: HarmonyError | None = None
    seconds: float = 0.0


def overlapped(
    items: Iterable,
    load: Callable[[Any], tuple[torch.Tensor, torch.Tensor]],
    finish: Callable[[Any, torch.Tensor], Any] | None,
    runner,
    batch: int = 1,
    workers: int = 2,
    size_check: bool = True,
) -> Iterator[Outcome]:
    """Run every item through load -> the active `runner` -> finish; yield their `Outcome`s
    in order.

    Args:
        load: item -> (image [1,3,H,W], mask [1,1,H,W]), in a worker thread.
        finish: (item, output [1,3,H,W] float32 on the CPU) -> result, in a worker thread;
            None: the result is the output.
        batch: the most items one inference takes.
        workers: threads that load and finish.
        size_check: refuse a batch whose estimated memory exceeds the guard (`infer_by_size`).
    """
    depth = QUEUE_PER_WORKER * workers + batch
    source = iter(items)
    loading: deque[tuple[Outcome, Future]] = deque()
    finishing: deque[tuple[Outcome, Future | None]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="harmony-batch") as pool:
        while True:
            while len(loading) < depth:  # keep `depth` items loading ahead
                item = next(source, _END)
                if item is _END:
                    break
                outcome = Outcome(item)
                loading.append((outcome, pool.submit(_timed, outcome, load, item)))
            if not loading:
                break
            taken = []  # in order: (outcome, its pair or None where the load failed)
            while loading and sum(pair is not None for _, pair in taken) < batch:
                outcome, future = loading.popleft()
                taken.append((outcome, _result(outcome, future)))
            outputs = iter(
                _infer(runner, [t for t in taken if t[1] is not None], batch, size_check)
            )
            for outcome, pair in taken:
                output = next(outputs) if pair is not None else None
                future = None
                if output is not None and finish is None:
                    outcome.result = output
                elif output is not None:
                    future = pool.submit(_timed, outcome, finish, outcome.item, output)
                finishing.append((outcome, future))
            while finishing and (len(finishing) > depth or _done(finishing[0][1])):
                yield _finished(*finishing.popleft())
        while finishing:
            yield _finished(*finishing.popleft())


def _timed(outcome: Outcome, function: Callable, *arguments):
    start = time.perf_counter()
    try:
        return function(*arguments)
    finally:
        outcome.seconds += time.perf_counter() - start


def _result(outcome: Outcome, future: Future):
    """The future's result, or None with the HarmonyError kept in `outcome`."""
    try:
        return future.result()
    except HarmonyError as exc:
        outcome.error = exc
        return None


def _infer(runner, ready: list, batch: int, size_check: bool) -> list[torch.Tensor | None]:
    """The outputs of the (outcome, pair)s in `ready`, in order; None (the error kept in the
    outcome) for a pair that failed."""
    if not ready:
        return []
    start = time.perf_counter()
    outputs = infer_by_size(runner, [pair for _, pair in ready], batch, size_check)
    share = (time.perf_counter() - start) / len(ready)
    results = []
    for (outcome, _), output in zip(ready, outputs, strict=True):
        outcome.seconds += share
        if isinstance(output, HarmonyError):
            outcome.error = output
            output = None
        results.append(output)
    return results


def _done(future: Future | None) -> bool:
    return future is None or future.done()


def _finished(outcome: Outcome, future: Future | None) -> Outcome:
    if future is not None:
        outcome.result = _result(outcome, future)
    return outcome
