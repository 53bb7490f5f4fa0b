"""Build TensorRT engines from exported ONNX graphs: `engine_from_onnx`, the one entry point
(`harmony build`, `harmony-export --engine`, harmony-bench's engine loader).

It is three small parts put together: the spec and cache key (`harmony.engines.cache`,
derived once), the TensorRT calls (`harmony.engines.builder`) and the manifest
(`harmony.engines.manifest`, written next to every engine and verified before reuse). Engine,
manifest and timing cache are written atomically: a failed parse or build leaves no file.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harmony.contract import ENGINE_SUFFIXES
from harmony.engines.builder import serialized_engine_impl
from harmony.engines.cache import EngineSpec, engine_spec
from harmony.engines.manifest import BuildRecord, EngineManifest, PluginRecord, manifest_path
from harmony.engines.profiles import Profile
from harmony.engines.trt_env import PLUGIN_VERSIONS, TrtRuntime, get_runtime, import_runtime
from harmony.errors import HarmonyError
from harmony.files import atomic_output, check_writable, write_bytes_atomic
from harmony.version import __version__


@dataclass(frozen=True)
class BuiltEngine:
    """Result of `engine_from_onnx`: the engine's path, its manifest, and whether the engine
    came from the cache instead of a fresh build."""

    path: Path
    manifest: EngineManifest
    reused: bool


@dataclass(frozen=True)
class BuildOptions:
    """How an engine is built, beside its graph and profile.

    Attributes:
        runtime: "tensorrt" or "tensorrt-rtx" (`harmony.engines.trt_env.RUNTIMES`); None: the
            installed one, TensorRT where both are.
        compute_capabilities: TensorRT-RTX targets such as ("8.6", "8.9"); empty: its default.
        embed_plugins: serialize the plugin library into the engine, so that it runs without
            the library installed (graphs with custom ops).
        timing_cache: a TensorRT timing-cache file, loaded if it exists and saved after a build.
        workspace_mib: workspace memory-pool limit in MiB; None leaves TensorRT's default.
    """

    runtime: str | None = None
    compute_capabilities: tuple[str, ...] = ()
    embed_plugins: bool = False
    timing_cache: Path | None = None
    workspace_mib: int | None = None

    def check(
        self, output: str | os.PathLike | None, force: bool, precision: str | None = None
    ) -> TrtRuntime:
        """The runtime of the build, after the checks that need neither the graph nor the
        runtime's module: the destinations (`output` and its manifest, the timing cache), the
        workspace, the runtime's name, the targets it can build for (at the graph's `precision`
        where known) and whether it has a timing cache.

        Raises:
            HarmonyError: what would make the build fail, said before any work.
        """
        workspace = self.workspace_mib
        if workspace is not None and (isinstance(workspace, bool) or workspace <= 0):
            raise HarmonyError(f"workspace must be a positive number of MiB, got {workspace!r}")
        if output is not None:
            if Path(output).suffix.lower() not in ENGINE_SUFFIXES:
                raise HarmonyError(
                    f"the engine must be a {' or '.join(ENGINE_SUFFIXES)} file (what harmony-run "
                    f"and the trt backend take), got {output}"
                )
            for path in (Path(output), manifest_path(output)):
                check_writable(path, force)
        if self.timing_cache is not None:
            check_writable(self.timing_cache, force=True)
        trt_runtime = get_runtime(self.runtime)
        targets = trt_runtime.check_targets(tuple(self.compute_capabilities))
        if precision is not None:
            trt_runtime.check_precision(precision, targets)
        trt_runtime.check_timing_cache(self.timing_cache)
        return trt_runtime

    @property
    def workspace_bytes(self) -> int | None:
        return None if self.workspace_mib is None else int(self.workspace_mib) << 20


def engine_from_onnx(
    onnx_path: str | os.PathLike,
    profile: Profile,
    output: str | os.PathLike | None = None,
    options: BuildOptions | None = None,
    *,
    force: bool = False,
    use_cache: bool = True,
) -> BuiltEngine:
    """Build (or reuse from the cache) the engine of `onnx_path` for `profile`.

    Args:
        output: where to put the engine (its manifest goes to `<output>.json`); None keeps it
            in the cache only. Existing files are only replaced with `force`.
        options: runtime, targets, plugin embedding, timing cache and workspace; None: the
            defaults of `BuildOptions`.
        use_cache: look up and store the engine in the engine cache (default); False always
            builds, straight into `output` (then required).

    Raises:
        HarmonyError: bad inputs, the runtime (or for TensorRT a GPU) missing, a graph it cannot
        parse or build (with the parser's messages); nothing is written then.
    """
    onnx_path = Path(onnx_path)
    options = BuildOptions() if options is None else options
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be a harmony Profile, got {type(profile).__name__}")
    if output is None and not use_cache:
        raise HarmonyError("pass an output path (-o ENGINE) when not using the engine cache")
    options.check(output, force)

    spec = engine_spec(  # the graph is read first
        onnx_path,
        profile,
        options.workspace_bytes,
        runtime=options.runtime,
        compute_capabilities=tuple(options.compute_capabilities),
        embed_plugins=options.embed_plugins,
    )
    trt = import_runtime(spec.runtime)
    timing_cache = None if options.timing_cache is None else Path(options.timing_cache)
    if not use_cache:
        destination = Path(output)  # type: ignore[arg-type]
        return BuiltEngine(destination, _build(trt, spec, destination, force, timing_cache), False)
    cached = spec.cached_path
    manifest = spec.cached_manifest()
    reused = manifest is not None
    if manifest is None:
        manifest = _build(trt, spec, cached, True, timing_cache)  # a leftover is invalid
    if output is None:
        return BuiltEngine(cached, manifest, reused)
    destination = Path(output)
    if destination.resolve() != cached.resolve():
        _copy_file(cached, destination, force)
        _copy_file(manifest_path(cached), manifest_path(destination), force)
    return BuiltEngine(destination, manifest, reused)


def _copy_file(source: Path, destination: Path, force: bool) -> None:
    with atomic_output(destination, force) as temp:
        shutil.copyfile(source, temp)


def _build(
    trt, spec: EngineSpec, destination: Path, replace: bool, timing_cache: Path | None
) -> EngineManifest:
    """Build, then write timing cache, engine and manifest (each atomically)."""
    cache_in = None
    if timing_cache is not None and timing_cache.is_file():
        cache_in = timing_cache.read_bytes()  # loaded if present, created otherwise
    start = time.perf_counter()
    built = serialized_engine_impl(
        trt,
        spec.onnx_path,
        spec.profile,
        spec.plan,
        plugin_path=None if spec.plugins is None else spec.plugins.path,
        timing_cache=cache_in,
        use_timing_cache=timing_cache is not None,
        workspace_bytes=spec.workspace_bytes,
    )
    seconds = time.perf_counter() - start
    engine_bytes = built.engine
    if timing_cache is not None and built.timing_cache is not None:
        write_bytes_atomic(timing_cache, built.timing_cache, force=True)
    environment = spec.environment
    manifest = EngineManifest(
        harmony_version=__version__,
        built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        engine_sha256=hashlib.sha256(engine_bytes).hexdigest(),
        cache_key=spec.key,
        runtime=environment.runtime,
        runtime_version=environment.runtime_version,
        gpu=environment.gpu,
        compute_capabilities=environment.targets,
        onnx_path=str(spec.onnx_path),
        onnx_sha256=spec.onnx_sha256,
        precision=spec.facts.precision,
        strongly_typed=spec.plan.strongly_typed,
        builder_flags=spec.plan.builder_flags,
        workspace_bytes=spec.workspace_bytes,
        plugins=None
        if spec.plugins is None
        else PluginRecord(
            library_sha256=spec.plugins.sha256,
            library_path=str(spec.plugins.path),
            namespace=environment.plugin_namespace,
            versions={name: PLUGIN_VERSIONS[name] for name in spec.facts.plugins},
            embedded=spec.plan.embed_plugins,
        ),
        profiles=(spec.profile,),
        build=BuildRecord(
            seconds=round(seconds, 2),
            engine_bytes=len(engine_bytes),
            network_layers=built.network.layers,
            fp32_islands=built.network.fp32_islands,
            int8_quantize_layers=built.network.int8_quantize_layers,
        ),
    )
    write_bytes_atomic(destination, engine_bytes, force=replace)
    manifest.write(destination, force=replace)
    return manifest
