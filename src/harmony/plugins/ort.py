"""ONNX Runtime sessions, with libharmony_ort_ops.so where a graph holds the custom nodes.

`inference_session(...)` creates every ONNX Runtime session of the package (the ort and ort-custom
backends, the exporter's verification). With `custom_ops=True` it registers the custom-op
library built from `plugins/ort/` (`CascadedLut3D` and `KnnTopkFusion` of the "harmony" domain,
computing the plugins' math on the CPU), so a TensorRT-target graph runs unchanged in one
session. The library is written against ONNX Runtime's C API, versioned and backward compatible:
it loads in any runtime at least as new as the headers it was built with (an older one refuses
it at registration, and the message says so).
"""

from __future__ import annotations

import os
import re

from harmony.errors import HarmonyError
from harmony.plugins import ort_ops_library_path

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# Graph transformers no session of the package runs. ONNX Runtime's QDQ propagation moves
# Q/DQ pairs across the ops between them; on the int8 AICT graph (FP16 Q/DQ) ONNX Runtime's
# defaults give 32.7 dB PSNR against FP32 on the CPU, and the same graph with this transformer
# disabled (every other fusion on) 73.0 dB (benchmarks/results/int8_ablations.md).
DISABLED_OPTIMIZERS = ("QDQPropagationTransformer",)
# ONNX Runtime's exception text starts with "[ONNXRuntimeError] : <code> : <NAME> : ".
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")


def inference_session(
    model: str | os.PathLike | bytes,
    device: str = "cpu",
    *,
    custom_ops: bool = False,
    threads: int | None = None,
    low_memory: bool = False,
):
    """An `onnxruntime.InferenceSession` of `model` (a path or serialized bytes) on `device`.

    Args:
        custom_ops: register libharmony_ort_ops.so (for graphs with the custom nodes).
        threads: intra-op threads (the custom ops run on them too); None lets ORT decide.
        low_memory: no CPU memory arena and no memory pattern: memory goes back after each run
            and none is reserved from the first run's plan, so repeated runs peak like one
            (the ort-custom rows of benchmarks/results/ort_custom.md), at some speed.

    Raises:
        HarmonyError: the custom-op library is not built or not loadable here, or ONNX Runtime
            refuses the graph (e.g. a custom node of another plugin version): its first line.
    """
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # errors reach the caller as exceptions
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = not low_memory
    options.enable_mem_pattern = not low_memory
    if threads is not None:
        options.intra_op_num_threads = threads
    library = ort_ops_library_path() if custom_ops else None
    source = model if isinstance(model, bytes) else os.fspath(model)
    what = "the graph" if isinstance(model, bytes) else source
    try:
        if library is not None:
            options.register_custom_ops_library(str(library))
        return onnxruntime.InferenceSession(
            source,
            options,
            providers=[PROVIDERS[device]],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
        )
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        raise HarmonyError(f"ONNX Runtime cannot load {what}: {error_message(exc)}") from None


def error_message(exc: Exception) -> str:
    """The first line of an ONNX Runtime error, without its "[ONNXRuntimeError] : ..." prefix."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return _ORT_PREFIX.sub("", lines[0])


__all__ = ["PROVIDERS", "error_message", "inference_session"]
