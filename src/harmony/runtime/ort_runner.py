"""The ONNX Runtime backend: an ORT-target graph from `harmony-export --target ort`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from harmony.contract import GRAPH_INPUTS, GRAPH_OUTPUT
from harmony.errors import HarmonyError
from harmony.runtime.base import Availability, Runner

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OrtRunner(Runner):
    """Run an ONNX graph with ONNX Runtime.

    Args:
        onnx_path: a graph exported with `--target ort` (TensorRT-target graphs hold custom
            nodes that ONNX Runtime cannot run: they are refused with a message).
        device: "cpu" (default) or "cuda" (needs onnxruntime-gpu).
        precision: the precision the caller expects; None (default) takes the graph's own. A
            graph exported at another precision is refused (re-export it).
        threads: intra-op threads; None (default) lets ONNX Runtime decide.

    Raises:
        HarmonyError: an unreadable graph, one harmony-export did not write, a TensorRT-target
            graph, or a precision mismatch (checked here, before any session is created).
    """

    backend = "ort"

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        device: str = "cpu",
        precision: str | None = None,
        threads: int | None = None,
        name: str | None = None,
    ):
        from harmony.export.metadata import read_graph_metadata

        self.onnx_path = Path(onnx_path)
        self.threads = threads
        metadata = read_graph_metadata(self.onnx_path)
        if metadata["target"] != "ort":
            raise HarmonyError(
                f"{self.onnx_path} is a {metadata['target']}-target graph: its custom harmony "
                "nodes run in TensorRT, not in ONNX Runtime. Export an ONNX Runtime graph with "
                "harmony-export CHECKPOINT --target ort"
            )
        if precision is not None and precision != metadata["precision"]:
            raise HarmonyError(
                f"{self.onnx_path} is a {metadata['precision']} graph and runs at that precision "
                f"only; for {precision} export it again (harmony-export CHECKPOINT --target ort"
                f"{' --fp16' if precision == 'fp16' else ''})"
            )
        super().__init__(
            name or f"ort[{self.onnx_path.name},{device}]",
            device,
            metadata["precision"],
            metadata["arch"],
        )
        self.session = None
        self.input_types: dict[str, type] = {}

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

    def activate_impl(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        try:
            session = onnxruntime.InferenceSession(
                str(self.onnx_path), options, providers=[PROVIDERS[self.device]]
            )
        except Exception as exc:  # ORT raises its own exception types for bad graphs
            raise HarmonyError(
                f"ONNX Runtime cannot load {self.onnx_path}: {str(exc).splitlines()[0]}; "
                "re-export it with harmony-export --target ort"
            ) from None
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
