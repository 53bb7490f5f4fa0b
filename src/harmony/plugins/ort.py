"""ONNX Runtime sessions, with the custom nodes computed by the plugins' math where a graph holds
them.

`inference_session(...)` creates every ONNX Runtime session of the package (the ort and ort-custom
backends, the exporter's verification, INT8 calibration). With `custom_ops=True` a
TensorRT-target graph runs whole in one session, its custom nodes (`CascadedLut3D` and
`KnnTopkFusion` of the "harmony" domain) computed by one of two implementations of the same
kernels (`custom_ops_implementation` picks the first available, the same results bit for bit):

- `ORT_OPS`: libharmony_ort_ops.so, built from `plugins/ort/` against ONNX Runtime's C API
  headers (versioned and backward compatible: it loads in any runtime at least as new as the
  headers it was built with, an older one refuses it at registration and the message says so);
- `EXTENSIONS`: onnxruntime-extensions' Python ops calling libharmony_cpu_ops.so
  (`harmony.plugins.ort_bridge`), for every install without those headers.
"""

from __future__ import annotations

import os
import re

import onnx

from harmony.errors import HarmonyError
from harmony.plugins import (
    BUILD_HINT,
    CPU_OPS_LIBRARY,
    ORT_OPS_LIBRARY,
    cpu_library_path,
    missing_libraries,
    ort_bridge,
    ort_ops_library_path,
)
from harmony.plugins.attention_tiling import tiled_attention
from harmony.plugins.deconvolution import stride_one_convolutions

# The implementations of the custom nodes in ONNX Runtime, as reports name them.
ORT_OPS = "libharmony_ort_ops.so"
EXTENSIONS = "onnxruntime-extensions + libharmony_cpu_ops.so"
CUSTOM_OPS_IMPLEMENTATIONS = (ORT_OPS, EXTENSIONS)
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# Graph transformers no session of the package runs. ONNX Runtime's QDQ propagation moves
# Q/DQ pairs across the ops between them; on the int8 AICT graph (FP16 Q/DQ) ONNX Runtime's
# defaults give 32.7 dB PSNR against FP32 on the CPU, and the same graph with this transformer
# disabled (every other fusion on) 73.0 dB (benchmarks/results/int8_ablations.md).
DISABLED_OPTIMIZERS = ("QDQPropagationTransformer",)
# ONNX Runtime's exception text starts with "[ONNXRuntimeError] : <code> : <NAME> : ".
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")


def custom_ops_implementation() -> str:
    """How the custom nodes run in ONNX Runtime here: `ORT_OPS` where libharmony_ort_ops.so is
    built, else `EXTENSIONS` where onnxruntime-extensions is installed and
    libharmony_cpu_ops.so built.

    Raises:
        HarmonyError: neither can run, with what each needs.
    """
    native = missing_libraries(ORT_OPS_LIBRARY)
    if not native:
        return ORT_OPS
    extensions = ort_bridge.extensions_available()
    cpu = missing_libraries(CPU_OPS_LIBRARY)
    if extensions is None and not cpu:
        return EXTENSIONS
    absent = [f"{path} does not exist" for path in native + cpu]
    if extensions is not None:
        absent.append(extensions)
    raise HarmonyError(
        f"the custom nodes need {ORT_OPS} or {EXTENSIONS}, and here {'; '.join(absent)}. "
        f"To get {ORT_OPS} or the CPU library, {BUILD_HINT}"
    )


def inference_session(
    model: str | os.PathLike | bytes,
    device: str = "cpu",
    *,
    custom_ops: bool = False,
    implementation: str | None = None,
    threads: int | None = None,
    low_memory: bool = False,
    profile_prefix: str | None = None,
):
    """An `onnxruntime.InferenceSession` of `model` (a path or serialized bytes) on `device`.

    Args:
        custom_ops: compute the graph's custom nodes (TensorRT-target graphs).
        implementation: with `custom_ops`, `ORT_OPS` or `EXTENSIONS`; None (default):
            `custom_ops_implementation()`.
        threads: intra-op threads (the ORT_OPS custom ops run on them too); None lets ORT
            decide.
        low_memory: no memory pattern: nothing is reserved from a run's plan of its shapes, so
            repeated runs, at one size or several, peak like one run. The CPU memory arena
            stays: without it every run maps and faults in its large tensors again. Measured
            (2-core Xeon, TensorRT-target HDNet at 2048^2, the custom nodes by ORT_OPS): 27.8 s
            and 8.3 GB peak RSS over two runs with the arena, 42.5 s and 7.9 GB without;
            HDNet-lite 5.5 s / 2.7 GB against 8.0 s / 2.4 GB, and 5.3 s / 5.0 GB with the memory
            pattern too.
        profile_prefix: ONNX Runtime's per-node profiling on, written where
            `session.end_profiling()` says (a path starting with this prefix).

    On the CPU, the session runs the graph as `cpu_rewrites` leaves it: the same outputs within
    float rounding, faster.

    Raises:
        HarmonyError: no implementation of the custom nodes can run here (what each needs is
            named), or ONNX Runtime refuses the graph (e.g. a custom node of another plugin
            version): its first line.
    """
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # errors reach the caller as exceptions
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.enable_mem_pattern = not low_memory
    if threads is not None:
        options.intra_op_num_threads = threads
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if custom_ops and implementation is None:
        implementation = custom_ops_implementation()
    source = model if isinstance(model, bytes) else os.fspath(model)
    what = "the graph" if isinstance(model, bytes) else source
    token = None
    try:
        bridged = custom_ops and implementation != ORT_OPS
        if device == "cpu" or bridged:
            graph = (
                onnx.ModelProto.FromString(source)
                if isinstance(source, bytes)
                else onnx.load(source)
            )
            if device == "cpu" and cpu_rewrites(graph):
                source = graph.SerializeToString()
        if custom_ops and not bridged:
            options.register_custom_ops_library(str(ort_ops_library_path()))
        elif bridged:
            cpu_library_path()  # missing: the build hint, before ONNX Runtime's own error
            options.register_custom_ops_library(ort_bridge.library_path())
            token = ort_bridge.new_token()
            source = ort_bridge.bridged_graph(graph, token)
        session = onnxruntime.InferenceSession(
            source,
            options,
            providers=[PROVIDERS[device]],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
        )
    except HarmonyError:
        raise
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        raise HarmonyError(f"ONNX Runtime cannot load {what}: {error_message(exc)}") from None
    return session if token is None else ort_bridge.BridgeSession(session, token)


def cpu_rewrites(graph: onnx.ModelProto) -> int:
    """Rewrite `graph`, in place, into what ONNX Runtime's CPU kernels run fastest: attention in
    blocks of query rows (`harmony.plugins.attention_tiling`), stride-1 transposed convolutions
    as convolutions (`harmony.plugins.deconvolution`). Returns the number of rewrites."""
    return tiled_attention(graph) + stride_one_convolutions(graph)


def error_message(exc: Exception) -> str:
    """The first line of an ONNX Runtime error, without its "[ONNXRuntimeError] : ..." prefix."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return _ORT_PREFIX.sub("", lines[0])


__all__ = [
    "CUSTOM_OPS_IMPLEMENTATIONS",
    "EXTENSIONS",
    "ORT_OPS",
    "PROVIDERS",
    "cpu_rewrites",
    "custom_ops_implementation",
    "error_message",
    "inference_session",
]
