"""Pick and create the runner of a model file: checkpoint: torch, .onnx: ort, .engine: trt."""

from __future__ import annotations

import os
from pathlib import Path

from harmony.errors import HarmonyError
from harmony.runtime.base import Runner

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
BACKEND_OF_SUFFIX = {
    **dict.fromkeys(CHECKPOINT_SUFFIXES, "torch"),
    ".onnx": "ort",
    ".engine": "trt",
    ".plan": "trt",
}
BACKENDS = ("torch", "ort", "trt")


def backend_for(model_path: str | os.PathLike, backend: str | None = None) -> str:
    """The backend that runs `model_path`: `backend` if given and compatible, else by suffix."""
    suffix = Path(model_path).suffix.lower()
    natural = BACKEND_OF_SUFFIX.get(suffix)
    if natural is None:
        raise HarmonyError(
            f"cannot tell what {model_path} is from its suffix '{suffix}'; expected a checkpoint "
            f"({', '.join(CHECKPOINT_SUFFIXES)}), an .onnx graph or an .engine"
        )
    if backend is None or backend == natural:
        return natural
    raise HarmonyError(
        f"--backend {backend} cannot run {model_path} (a {suffix} file runs on '{natural}'); "
        f"{_conversion_hint(natural, backend)}"
    )


def _conversion_hint(natural: str, wanted: str) -> str:
    if natural == "torch":
        target = "ort" if wanted == "ort" else "trt"
        return f"export it first: harmony-export MODEL --target {target}"
    if natural == "ort" and wanted == "trt":
        return "build an engine first: harmony build MODEL.onnx -o MODEL.engine"
    return "pass the checkpoint for the torch backend"


def runner_for(
    model_path: str | os.PathLike,
    backend: str | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    kernels: str | None = None,
) -> Runner:
    """A (not yet active) runner for `model_path` on `device`.

    `precision` and `kernels` (see TorchRunner) apply to the torch backend; ONNX graphs and
    engines carry their own precision and run the fused ops as exported.
    """
    backend = backend_for(model_path, backend)
    if kernels is not None and backend != "torch":
        raise HarmonyError(
            f"kernels apply to the torch backend; a {backend} model runs the fused ops as exported"
        )
    if backend == "torch":
        from harmony.runtime.torch_runner import TorchRunner

        return TorchRunner(model_path, device=device, precision=precision, kernels=kernels)
    if backend == "ort":
        from harmony.runtime.ort_runner import OrtRunner

        return OrtRunner(model_path, device=device)
    from harmony.runtime.trt_runner import TrtRunner

    return TrtRunner(model_path, device="cuda" if device == "cpu" else device)
