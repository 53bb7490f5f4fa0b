"""Replay a function of (image, mask) as CUDA graphs, one captured per input signature.

The recipe of PyTorch's CUDA graphs notes: warm up on a side stream (at least once: it also
loads every kernel, which lazy module loading would otherwise try during the capture), capture
once into static input and output tensors, then per call copy the inputs in, replay, and hand
back a copy of the output (so a result stays valid after the next call). A graph is captured
per (shape, dtype, device) of the inputs, the least recently used one dropped beyond
`max_graphs`. All graphs share one memory pool: they are replayed one at a time on one stream
and each output is copied out right after its replay, so one graph's replay may overwrite
another's memory, never a result. The function must not synchronise with the host (no
`.item()`, `nonzero()`); autocast inside it must run with `cache_enabled=False`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

from harmony.errors import HarmonyError

Signature = tuple[tuple[int, ...], torch.dtype, tuple[int, ...], torch.dtype, torch.device]


@dataclass
class _Captured:
    graph: Any  # torch.cuda.CUDAGraph
    image: torch.Tensor
    mask: torch.Tensor
    output: torch.Tensor


class GraphedCall:
    """`GraphedCall(fn)(image, mask)` equals `fn(image, mask)`, replayed from a CUDA graph.

    Args:
        fn: the captured function (device tensors in, one device tensor out).
        max_graphs: how many input signatures keep a captured graph.
        warmup: eager calls on a side stream before each capture (>= 1).
        cuda: the `torch.cuda` module (tests pass a recording stand-in).
    """

    def __init__(
        self,
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        max_graphs: int = 4,
        warmup: int = 2,
        cuda: ModuleType = torch.cuda,
    ):
        if max_graphs < 1 or warmup < 1:
            raise ValueError(f"max_graphs and warmup must be >= 1, got {max_graphs}, {warmup}")
        self.fn = fn
        self.max_graphs = max_graphs
        self.warmup = warmup
        self.cuda = cuda
        self.graphs: OrderedDict[Signature, _Captured] = OrderedDict()
        self.pool = None  # the shared memory pool, created with the first capture

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        key = (tuple(image.shape), image.dtype, tuple(mask.shape), mask.dtype, image.device)
        captured = self.graphs.get(key)
        if captured is None:
            captured = self._capture(image, mask)
            self.graphs[key] = captured
            while len(self.graphs) > self.max_graphs:
                self.graphs.popitem(last=False)
        else:
            self.graphs.move_to_end(key)
        captured.image.copy_(image)
        captured.mask.copy_(mask)
        captured.graph.replay()
        return captured.output.clone()

    def _capture(self, image: torch.Tensor, mask: torch.Tensor) -> _Captured:
        static_image, static_mask = image.clone(), mask.clone()
        side = self.cuda.Stream()
        side.wait_stream(self.cuda.current_stream())
        with self.cuda.stream(side):
            for _ in range(self.warmup):
                self.fn(static_image, static_mask)
        self.cuda.current_stream().wait_stream(side)
        if self.pool is None:
            self.pool = self.cuda.graph_pool_handle()
        graph = self.cuda.CUDAGraph()
        try:
            with self.cuda.graph(graph, pool=self.pool):
                output = self.fn(static_image, static_mask)
        except RuntimeError as error:
            raise HarmonyError(
                f"CUDA graph capture failed for inputs {list(image.shape)}: {error} (a host "
                "synchronisation inside the model, or a failed launch); run without CUDA graphs"
            ) from error
        return _Captured(graph, static_image, static_mask, output)

    def clear(self) -> None:
        """Drop every captured graph and the shared memory pool."""
        self.graphs.clear()
        self.pool = None
