"""Loaders: what the user gave, and how each backend's artifact is prepared from it.

`identify(path)` reads what a model file is (checkpoint or ONNX graph, architecture, parameter
count, a graph's own precision and target) without running anything. The loaders named by the
backend registry turn an `ArtifactRequest` into the file a runner consumes: the checkpoint as it
is, an exported ONNX graph, or a built engine. Exports and engines are cached (exports under
`harmony.files.cache_dir("exports")` by checkpoint hash and options, engines by the engine
cache), so preparing the same artifact twice does the work once. Preparation happens before
measurement and outside planning (Polygraphy's loader/runner split).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harmony.contract import DEFAULT_RESOLUTIONS
from harmony.errors import HarmonyError
from harmony.files import cache_dir, sha256_file
from harmony.runtime.backends import CHECKPOINT_SUFFIXES, Backend


@dataclass(frozen=True)
class ModelSource:
    """A model file given by the user.

    Attributes:
        path: the file.
        kind: "checkpoint" or "onnx".
        arch: "aict", "hdnet" or "hdnet-lite".
        params: parameter count (None where an ONNX graph does not record it).
        precision: an ONNX graph's own precision; None for a checkpoint (any precision).
        target: an ONNX graph's export target ("trt" or "ort"); None for a checkpoint.
        weights: how the weights were made (`harmony.models.checkpoint.weights_label`; a graph
            carries its checkpoint's), "" where a graph does not record it.
    """

    path: Path
    kind: str
    arch: str
    params: int | None
    precision: str | None = None
    target: str | None = None
    weights: str = ""

    @property
    def fitted(self) -> bool:
        """Whether the weights were fitted by `harmony fit` (their quality means something)."""
        from harmony.models.checkpoint import FITTED_LABEL

        return self.weights.startswith(FITTED_LABEL)


def identify(path: str | os.PathLike) -> ModelSource:
    """What `path` holds: a checkpoint (loaded and validated) or an ONNX graph written by
    harmony-export (its metadata read, weights not loaded).

    Raises:
        HarmonyError: a missing, unreadable or foreign file, or another kind of file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        from harmony.models import load_checkpoint
        from harmony.models.checkpoint import weights_label

        model = load_checkpoint(path)
        params = sum(p.numel() for p in model.parameters())
        weights = weights_label(model.checkpoint.metadata)
        return ModelSource(path, "checkpoint", model.arch, params, weights=weights)
    if suffix == ".onnx":
        from harmony.export.metadata import read_graph_metadata

        metadata = read_graph_metadata(path)
        params = int(metadata["params"]) if "params" in metadata else None
        return ModelSource(
            path,
            "onnx",
            metadata["arch"],
            params,
            metadata["precision"],
            metadata["target"],
            metadata.get("weights", ""),
        )
    raise HarmonyError(
        f"expected a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) or a .onnx graph, got {path}"
    )


@dataclass(frozen=True)
class ArtifactRequest:
    """What to prepare: from `source`, at `precision`, for inputs of `resolutions` (height,
    width) at batch `batch` (an engine's profile spans them all)."""

    source: ModelSource
    precision: str
    resolutions: tuple[tuple[int, int], ...] = DEFAULT_RESOLUTIONS
    batch: int = 1


def source_mismatch(backend: Backend, source: ModelSource, precision: str) -> str | None:
    """Why `backend` cannot run `source` at `precision`, or None when its loader can prepare
    it (checked from metadata, before any export or build)."""
    if source.kind == "checkpoint":
        return None
    if backend.artifact == "checkpoint":
        return f"the {backend.name} backend runs checkpoints, not a .onnx graph"
    if source.precision != precision:
        return f"{source.path.name} is a {source.precision} graph"
    if backend.artifact == "onnx" and source.target != backend.export_target:
        return (
            f"{source.path.name} is a {source.target}-target graph; the {backend.name} backend "
            f"runs {backend.export_target}-target graphs"
        )
    if source.target != backend.export_target:
        return f"the {backend.name} backend builds from {backend.export_target}-target graphs"
    return None


def _require(backend: Backend, request: ArtifactRequest) -> None:
    reason = source_mismatch(backend, request.source, request.precision)
    if reason is not None:
        raise HarmonyError(reason)


def checkpoint(backend: Backend, request: ArtifactRequest) -> Path:
    """The torch backend's artifact: the checkpoint itself."""
    _require(backend, request)
    return request.source.path


def exported_graph(backend: Backend, request: ArtifactRequest) -> Path:
    """An ONNX graph for `backend.export_target` at the requested precision: the given graph,
    or the checkpoint's cached export (exported and verified on first use)."""
    _require(backend, request)
    if request.source.kind == "onnx":
        return request.source.path
    return cached_export(request.source.path, backend.export_target, request.precision)


def built_engine(backend: Backend, request: ArtifactRequest) -> Path:
    """An engine whose profile spans every requested resolution at the requested batch, built
    from the exported graph (or taken from the engine cache)."""
    from harmony.runtime.engine import engine_from_onnx
    from harmony.runtime.profiles import profile_from_resolutions

    graph = exported_graph(backend, request)
    profile = profile_from_resolutions(request.resolutions, request.batch)
    return engine_from_onnx(graph, profile).path


def cached_export(checkpoint: Path, target: str, precision: str) -> Path:
    """The verified export of `checkpoint` for `target` at `precision`, from the export cache
    (keyed by the checkpoint's SHA-256, target, precision and harmony version)."""
    from harmony import __version__
    from harmony.export import onnx_from_checkpoint

    key = f"{sha256_file(checkpoint)[:16]}.{target}.{precision}.v{__version__}"
    path = cache_dir("exports") / f"{checkpoint.stem}.{key}.onnx"
    if not path.exists():
        onnx_from_checkpoint(
            checkpoint, path, target=target, fp16=precision == "fp16", int8=precision == "int8"
        )
    return path


def macs_graph(source: ModelSource) -> Path:
    """The graph MACs are counted on: the given graph, or the checkpoint's TensorRT-target FP32
    export (the network as written, custom nodes counted by formula)."""
    if source.kind == "onnx":
        return source.path
    return cached_export(source.path, "trt", "fp32")
