"""The ONNX Runtime backends: `ort` runs ORT-target graphs (`harmony-export --target ort`,
standard operators only), `ort-custom` runs TensorRT-target graphs unchanged, their custom nodes
computed by the plugins' math (`harmony.plugins.ort`: libharmony_ort_ops.so where built, else
onnxruntime-extensions with libharmony_cpu_ops.so)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from harmony.contract import GRAPH_INPUTS, GRAPH_OUTPUT
from harmony.errors import HarmonyError
from harmony.plugins.ort import PROVIDERS, custom_ops_implementation, inference_session
from harmony.runtime.backends import Availability
from harmony.runtime.base import Runner
from harmony.runtime.sources import ModelSource, describe

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OrtRunner(Runner):
    """Run an ORT-target ONNX graph with ONNX Runtime.

    Args:
        onnx_path: a graph exported with `--target ort` (a TensorRT-target graph is refused on
            activation with a message pointing at the ort-custom backend).
        device: "cpu" (default) or "cuda" (needs onnxruntime-gpu).
        precision: the precision the caller expects; None (default) takes the graph's own. A
            graph exported at another precision is refused on activation (re-export it).
        threads: intra-op threads; None (default) lets ONNX Runtime decide.

    `activate()` raises HarmonyError for an unreadable graph, one harmony-export did not write,
    a graph of the other target or a precision mismatch (before any session is created).
    """

    backend = "ort"
    # Whether the graphs it runs hold the custom nodes (TensorRT-target graphs).
    custom_nodes = False
    # Sessions without ORT's memory pattern (`harmony.plugins.ort.inference_session`).
    low_memory = False

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        device: str = "cpu",
        precision: str | None = None,
        threads: int | None = None,
        name: str | None = None,
    ):
        self.onnx_path = Path(onnx_path)
        self.threads = threads
        super().__init__(
            name or f"{self.backend}[{self.onnx_path.name},{device}]", device, precision
        )
        self.session = None
        self.input_types: dict[str, type] = {}
        # What computes the custom nodes (`harmony.plugins.ort.CUSTOM_OPS_IMPLEMENTATIONS`),
        # known once active; None for graphs without them.
        self.custom_ops: str | None = None

    @classmethod
    def availability(cls, device: str, precision: str | None = None) -> Availability:
        try:
            import onnxruntime
        except ImportError:
            return Availability(False, "onnxruntime is not installed")
        provider = PROVIDERS.get(device)
        if provider not in onnxruntime.get_available_providers():
            return Availability(
                False,
                f"ONNX Runtime {onnxruntime.__version__} has no {provider} "
                "(install onnxruntime-gpu: pip install 'harmony-deploy[gpu]')",
            )
        return Availability(True)

    def source_impl(self) -> ModelSource:
        return describe(self.onnx_path)

    def activate_impl(self) -> None:
        self.custom_ops = custom_ops_implementation() if self.custom_nodes else None
        session = inference_session(
            self.onnx_path,
            self.device,
            custom_ops=self.custom_nodes,
            implementation=self.custom_ops,
            threads=self.threads,
            low_memory=self.low_memory,
        )
        names = [i.name for i in session.get_inputs()]
        if tuple(names) != GRAPH_INPUTS:
            raise HarmonyError(
                f"{self.onnx_path} has inputs {names}; expected {list(GRAPH_INPUTS)} "
                "(a graph exported by harmony-export)"
            )
        self.input_types = {i.name: _NUMPY_TYPES[i.type] for i in session.get_inputs()}
        self.session = session

    def infer_impl(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feed = {
            name: tensor.detach().cpu().numpy().astype(self.input_types[name])
            for name, tensor in zip(GRAPH_INPUTS, (image, mask), strict=True)
        }
        (output,) = self.session.run([GRAPH_OUTPUT], feed)
        return torch.from_numpy(output.astype(np.float32))

    def deactivate_impl(self) -> None:
        self.session = None


class OrtCustomOpRunner(OrtRunner):
    """Run a TensorRT-target graph with ONNX Runtime, the custom nodes in the plugins' math:
    libharmony_ort_ops.so where built (CPU kernels; on CUDA, with onnxruntime-gpu, the plugin
    kernels where the library was built with nvcc), else onnxruntime-extensions with
    libharmony_cpu_ops.so (`custom_ops` says which, once active); O(N * k) memory for HDNet's KNN
    fusion."""

    backend = "ort-custom"
    custom_nodes = True
    # Made for 2048x2048 on the CPU: peak memory stays that of one run.
    low_memory = True

    @classmethod
    def availability(cls, device: str, precision: str | None = None) -> Availability:
        available = super().availability(device, precision)
        if not available.ok:
            return available
        try:
            custom_ops_implementation()
        except HarmonyError as exc:
            return Availability(False, str(exc))
        return Availability(True)
