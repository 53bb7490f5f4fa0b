"""What harmony-bench measures: configurations with their model files, MACs and skip reasons.

Checkpoints are exported to the graph each backend needs (ORT-target ONNX for `ort`, a
TensorRT engine for `trt`), once, into the cache (`harmony.files.cache_dir("exports")`),
keyed by the checkpoint's hash and the export options. MACs are counted on an exported graph
(`harmony.profiling.macs`); AICT also gets the paper's thop-style count.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from harmony.errors import HarmonyError
from harmony.files import cache_dir, sha256_file
from harmony.profiling.bench import BenchConfig
from harmony.profiling.macs import graph_macs
from harmony.profiling.paper_macs import paper_style_macs
from harmony.runtime.factory import CHECKPOINT_SUFFIXES

PRECISIONS = ("fp32", "fp16")


def default_kernels() -> list[str]:
    """The torch backend's fused-op implementations worth comparing here: both on CUDA (with
    and without the plugin kernels), the reference alone on the CPU."""
    from harmony.runtime.torch_runner import KERNELS

    return list(KERNELS) if torch.cuda.is_available() else ["reference"]


@dataclass
class ModelEntry:
    """A model given to harmony-bench: a checkpoint, or an exported ONNX graph."""

    path: Path
    arch: str
    checkpoint: Path | None  # None for an ONNX graph given directly
    params: int | None
    graph_precision: str | None = None  # an ONNX graph's own precision


def model_entry(path: str | os.PathLike) -> ModelEntry:
    """Identify a checkpoint or ONNX graph; engines are run with `harmony run` / TrtRunner."""
    path = Path(path)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        from harmony.models import load_checkpoint

        model = load_checkpoint(path)
        params = sum(p.numel() for p in model.parameters())
        return ModelEntry(path, model.arch, path, params)
    if path.suffix.lower() == ".onnx":
        import onnx

        from harmony.export.metadata import read_metadata

        if not path.is_file():
            raise HarmonyError(f"ONNX file {path} does not exist")
        metadata = read_metadata(onnx.load(str(path), load_external_data=False))
        if "arch" not in metadata:
            raise HarmonyError(f"{path} was not exported by harmony-export (no harmony metadata)")
        params = int(metadata["params"]) if "params" in metadata else None
        return ModelEntry(path, metadata["arch"], None, params, metadata.get("precision"))
    raise HarmonyError(
        f"harmony-bench takes checkpoints ({', '.join(CHECKPOINT_SUFFIXES)}) or .onnx graphs, "
        f"got {path}"
    )


def plan_configs(
    models: list[ModelEntry],
    backends: list[str],
    precisions: list[str],
    resolutions: list[tuple[int, int]],
    batch: int,
    warmup: int,
    iterations: int,
    kernels: list[str] | None = None,
) -> list[BenchConfig]:
    """Every (model, backend, precision, resolution) configuration, with artifacts prepared
    and a skip reason where it cannot run here; the torch backend once per entry of `kernels`
    ("reference", "fused"; default: `default_kernels()`)."""
    configs = []
    for entry in models:
        for backend in backends:
            for precision in precisions:
                model_file, reason = _target(entry, backend, precision, resolutions, batch)
                for kernel in (kernels or default_kernels()) if backend == "torch" else [None]:
                    target = (model_file, reason or _kernels_unavailable(kernel))
                    for height, width in resolutions:
                        configs.append(
                            _config(
                                entry,
                                backend,
                                precision,
                                target,
                                height,
                                width,
                                batch,
                                warmup,
                                iterations,
                                kernel,
                            )
                        )
    return configs


def _kernels_unavailable(kernels: str | None) -> str | None:
    """Why the torch backend cannot run with `kernels` here (None: it can)."""
    from harmony.runtime.torch_runner import fused_kernels_unavailable

    return fused_kernels_unavailable() if kernels == "fused" else None


def _target(
    entry: ModelEntry,
    backend: str,
    precision: str,
    resolutions: list[tuple[int, int]],
    batch: int,
) -> tuple[str | None, str | None]:
    """(file the backend runs, reason it cannot) for one model/backend/precision; for `trt` an
    engine whose profile spans every resolution (built once, then taken from the cache)."""
    cuda = torch.cuda.is_available()
    if backend == "torch":
        if entry.checkpoint is None:
            return None, "the torch backend needs a checkpoint, not an ONNX graph"
        if precision == "fp16" and not cuda:
            return None, "fp16 in PyTorch needs a CUDA device (none here)"
        return str(entry.checkpoint), None
    if backend == "ort":
        if entry.checkpoint is None:
            if precision != entry.graph_precision:
                return None, f"{entry.path.name} is a {entry.graph_precision} graph"
            return str(entry.path), None
        return str(exported_graph(entry.checkpoint, "ort", precision)), None
    if backend == "trt":
        from harmony.runtime.trt_runner import TrtRunner

        available = TrtRunner.availability("cuda")
        if not available.ok:
            return None, available.reason
        if entry.checkpoint is None:
            return None, "the trt backend is benchmarked from a checkpoint (exported for TensorRT)"
        from harmony.runtime.engine import engine_from_onnx
        from harmony.runtime.profiles import profile_from_resolutions

        graph = exported_graph(entry.checkpoint, "trt", precision)
        profile = profile_from_resolutions([f"{h}x{w}" for h, w in resolutions], batch)
        return str(engine_from_onnx(graph, profile).path), None
    raise HarmonyError(f"unknown backend '{backend}'")


def _config(entry, backend, precision, target, height, width, batch, warmup, iterations, kernels):
    model_file, reason = target
    if reason is None and backend == "ort" and entry.arch.startswith("hdnet"):
        reason = _ort_knn_too_large(height, width, batch)
    device = (
        "cuda" if backend == "trt" or (backend == "torch" and torch.cuda.is_available()) else "cpu"
    )
    graph = model_file if model_file and model_file.endswith(".onnx") else None
    return BenchConfig(
        arch=entry.arch,
        model=model_file or str(entry.path),
        backend=backend,
        precision=precision,
        device=device,
        height=height,
        width=width,
        batch=batch,
        warmup=warmup,
        iterations=iterations,
        params=entry.params,
        macs=_macs(entry, graph, batch, height, width),
        macs_paper_style=_paper_macs(entry, height, width),
        skip_reason=reason,
        kernels=kernels,
    )


def _ort_knn_too_large(height: int, width: int, batch: int) -> str | None:
    from harmony.export import ORT_KNN_MAX_PIXELS
    from harmony.export.torch_ops import knn_graph_bytes

    if height * width > ORT_KNN_MAX_PIXELS:
        return (
            f"the ORT-target HDNet graph materialises the N x N similarity "
            f"({knn_graph_bytes(height, width, batch) / 2**30:.0f} GiB at {height}x{width}); "
            "above the export's memory budget"
        )
    return None


def _macs(entry: ModelEntry, graph: str | None, batch: int, height: int, width: int) -> dict:
    if graph is None and entry.checkpoint is None:
        graph = str(entry.path)  # an ONNX graph given directly: count it
    elif graph is None:
        graph = str(exported_graph(entry.checkpoint, "trt", "fp32", verify=False))
    return _graph_macs(graph, batch, height, width)


@functools.cache
def _graph_macs(graph: str, batch: int, height: int, width: int) -> dict:
    return graph_macs(graph, batch, height, width).as_dict()


def _paper_macs(entry: ModelEntry, height: int, width: int) -> int | None:
    if entry.arch != "aict":
        return None
    return _aict_paper_macs(height, width)


@functools.cache
def _aict_paper_macs(height: int, width: int) -> int:
    from harmony.models import build_model

    return paper_style_macs(build_model("aict"), height, width)


def exported_graph(checkpoint: Path, target: str, precision: str, verify: bool = True) -> Path:
    """The cached export of `checkpoint` for `target`/`precision`, exported on first use."""
    from harmony import __version__
    from harmony.export import onnx_from_checkpoint

    key = f"{sha256_file(checkpoint)[:16]}.{target}.{precision}.v{__version__}"
    path = cache_dir("exports") / f"{checkpoint.stem}.{key}.onnx"
    if not path.exists():
        onnx_from_checkpoint(
            checkpoint, path, target=target, fp16=precision == "fp16", verify=verify
        )
    return path
