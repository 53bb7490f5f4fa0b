"""From what the user gave to what a backend consumes: the checkpoint itself, an exported graph,
or a built engine.

`prepare(backend, request)` turns an `ArtifactRequest` (a model source, a precision, the input
sizes and batch) into the file the backend's runner consumes, by the kind of artifact the
backend declares. Exports and engines are cached (exports under
`harmony.files.cache_dir("exports")` by checkpoint hash and options, engines by the engine
cache), so preparing the same artifact twice does the work once. Preparation happens before and
outside measurement (harmony-bench prepares, then measures; harmony eval prepares, then scores).
This is the one module that calls both the exporter and the engine builder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harmony.contract import DEFAULT_RESOLUTIONS
from harmony.engines.build import BuildOptions, BuiltEngine, engine_from_onnx
from harmony.engines.profiles import Profile, profile_from_resolutions
from harmony.errors import HarmonyError
from harmony.export.exporter import ExportReport, onnx_from_checkpoint
from harmony.files import cache_dir, sha256_file
from harmony.runtime.backends import Backend
from harmony.runtime.sources import ModelSource
from harmony.version import __version__


@dataclass(frozen=True)
class ArtifactRequest:
    """What to prepare: from `source`, at `precision`, for inputs of `resolutions` (height,
    width) at batch `batch` (an engine's profile spans them all)."""

    source: ModelSource
    precision: str
    resolutions: tuple[tuple[int, int], ...] = DEFAULT_RESOLUTIONS
    batch: int = 1


def prepare(backend: Backend, request: ArtifactRequest) -> Path:
    """The file `backend` runs for `request`, exported or built on first use and cached.

    Raises:
        HarmonyError: the backend cannot run the source (`Backend.refusal`), or the export or
            build failed.
    """
    reason = backend.refusal(request.source, None, request.precision)
    if reason is not None:
        raise HarmonyError(reason)
    source = request.source
    if backend.artifact == "checkpoint" or source.kind == backend.artifact:
        return source.path
    graph = (
        source.path
        if source.kind == "onnx"
        else cached_export(source.path, backend.export_target, request.precision)
    )
    if backend.artifact == "onnx":
        return graph
    profile = profile_from_resolutions(request.resolutions, request.batch)
    return engine_from_onnx(graph, profile).path


def cached_export(checkpoint: Path, target: str, precision: str) -> Path:
    """The verified export of `checkpoint` for `target` at `precision`, from the export cache
    (keyed by the checkpoint's SHA-256, target, precision and harmony version)."""
    key = f"{sha256_file(checkpoint)[:16]}.{target}.{precision}.v{__version__}"
    path = cache_dir("exports") / f"{checkpoint.stem}.{key}.onnx"
    if not path.exists():
        onnx_from_checkpoint(checkpoint, path, target=target, precision=precision)
    return path


def exported_engine(
    checkpoint: Path,
    engine: Path,
    profile: Profile,
    options: BuildOptions,
    exported: Callable[[ExportReport], None],
    force: bool = False,
    **export_options,
) -> BuiltEngine:
    """`harmony-export --engine`: `checkpoint` exported (`onnx_from_checkpoint` with
    `export_options`, its report handed to `exported`), then the engine of that graph built to
    `engine` for `profile`."""
    report = onnx_from_checkpoint(checkpoint, force=force, **export_options)
    exported(report)
    return engine_from_onnx(report.path, profile, engine, options, force=force)


def macs_graph(source: ModelSource) -> Path:
    """The graph MACs are counted on: the given graph, or the checkpoint's TensorRT-target FP32
    export (the network as written, custom nodes counted by formula)."""
    if source.kind == "onnx":
        return source.path
    return cached_export(source.path, "trt", "fp32")
