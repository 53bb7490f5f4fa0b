"""Build TensorRT engines from exported ONNX graphs, with a manifest and an engine cache.

`engine_from_onnx(onnx, profile, output)` is the one entry point (`harmony build`, and later
`harmony-export --engine`). It

* reads the graph's precision from its ONNX metadata (key "precision": fp32, fp16, int8; a graph
  without it is fp32) and which harmony plugins it uses, and checks its inputs against the profile;
* loads libharmony_plugins.so into the plugin registry and lists it in `plugins_to_serialize`
  (only for graphs with custom ops);
* creates the network STRONGLY_TYPED, so precision comes from the graph, except for an fp16 graph
  on TensorRT 10.0-10.11, which is built weakly typed with BuilderFlag.FP16 (see `build_plan`);
* sets the one optimization profile on both inputs, uses and updates a timing cache file if given;
* writes engine and manifest atomically: a failed parse or build leaves no file behind;
* caches engines under `engine_cache_dir()` by a key over everything that determines the engine
  (`engine_cache_key`); building with the same key again reuses the cached engine.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from harmony import __version__
from harmony.contract import GRAPH_INPUTS, GRAPH_OUTPUT, ONNX_DOMAIN, OPS
from harmony.errors import HarmonyError
from harmony.export.metadata import PREFIX as METADATA_PREFIX
from harmony.export.metadata import read_metadata
from harmony.files import atomic_output, cache_dir, sha256_file, write_bytes_atomic
from harmony.runtime.manifest import (
    SCHEMA,
    EngineManifest,
    PluginRecord,
    manifest_mismatches,
    manifest_path,
    read_manifest,
)
from harmony.runtime.profiles import Profile
from harmony.runtime.trt_env import (
    PLUGIN_VERSIONS,
    PluginLibrary,
    TrtEnvironment,
    current_environment,
    gpu_identity,
    import_tensorrt,
    load_plugin_library,
    plugin_library,
    version_tuple,
)

PRECISION_KEY = "precision"
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_PRECISION = "fp32"  # a graph without the metadata key: nothing was lowered
# TensorRT 10.12 deprecated weak typing; from there on (and in 11, where it is the only mode)
# every network is strongly typed.
STRONG_TYPING_ONLY_FROM = (10, 12)


@dataclass(frozen=True)
class OnnxFacts:
    """What the builder needs to know about an ONNX graph (read without its weights)."""

    precision: str
    plugins: tuple[str, ...]  # harmony custom ops used, sorted
    inputs: dict[str, tuple[int | None, ...]]  # static dims as ints, dynamic ones as None
    outputs: tuple[str, ...]


def onnx_facts(onnx_path: str | os.PathLike) -> OnnxFacts:
    """Precision metadata, custom ops and IO of the graph at `onnx_path`.

    Raises:
        HarmonyError: unreadable graph, unknown precision value, or an unknown harmony op.
    """
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise HarmonyError(f"cannot read the ONNX graph {onnx_path}: {exc}") from None
    precision = read_metadata(model).get(PRECISION_KEY, DEFAULT_PRECISION)
    if precision not in PRECISIONS:
        raise HarmonyError(
            f"{onnx_path} declares precision '{precision}' (ONNX metadata "
            f"'{METADATA_PREFIX}{PRECISION_KEY}'); "
            f"expected one of {', '.join(PRECISIONS)}. Re-export the graph with harmony export"
        )
    known = {op.name for op in OPS}
    used = sorted({node.op_type for node in model.graph.node if node.domain == ONNX_DOMAIN})
    unknown = [name for name in used if name not in known]
    if unknown:
        raise HarmonyError(
            f"{onnx_path} uses {', '.join(unknown)} in domain '{ONNX_DOMAIN}', which the plugin "
            f"library does not provide (it has {', '.join(sorted(known))}); re-export the graph "
            "with this version of harmony"
        )
    initializers = {init.name for init in model.graph.initializer}
    inputs = {
        value.name: tuple(
            dim.dim_value if dim.HasField("dim_value") else None
            for dim in value.type.tensor_type.shape.dim
        )
        for value in model.graph.input
        if value.name not in initializers
    }
    outputs = tuple(value.name for value in model.graph.output)
    return OnnxFacts(precision=precision, plugins=tuple(used), inputs=inputs, outputs=outputs)


def check_graph(facts: OnnxFacts, profile: Profile, onnx_path: str | os.PathLike) -> None:
    """Raise HarmonyError unless the graph has inputs image/mask and output harmonized, and its
    static dimensions agree with every shape of `profile`."""
    if sorted(facts.inputs) != sorted(GRAPH_INPUTS) or GRAPH_OUTPUT not in facts.outputs:
        raise HarmonyError(
            f"{onnx_path} has inputs {sorted(facts.inputs)} and outputs {list(facts.outputs)}; "
            f"expected inputs {list(GRAPH_INPUTS)} and output '{GRAPH_OUTPUT}'. Build engines "
            "from graphs written by harmony export"
        )
    for name in GRAPH_INPUTS:
        dims = facts.inputs[name]
        if len(dims) != 4:
            raise HarmonyError(f"{onnx_path}: input {name} has rank {len(dims)}, expected 4")
        for level in ("min", "opt", "max"):
            shape = profile.shape(name, level)
            if any(d is not None and d != s for d, s in zip(dims, shape, strict=True)):
                fixed = "x".join("?" if d is None else str(d) for d in dims)
                raise HarmonyError(
                    f"{onnx_path}: input {name} is fixed at {fixed} but the profile's {level} "
                    f"shape is {'x'.join(map(str, shape))}; choose shapes that match the graph "
                    "or export it with dynamic height and width"
                )


@dataclass(frozen=True)
class BuildPlan:
    """How the network is created and configured: STRONGLY_TYPED and BuilderFlag names."""

    strongly_typed: bool
    builder_flags: tuple[str, ...] = ()


def build_plan(tensorrt_version: tuple[int, ...], precision: str) -> BuildPlan:
    """Strongly typed on every TensorRT >= 10, so the graph's types decide precision, except
    an fp16 graph on TensorRT 10.0-10.11: weakly typed with BuilderFlag.FP16.

    Raises:
        HarmonyError: TensorRT older than 10, or an unknown precision.
    """
    if precision not in PRECISIONS:
        raise HarmonyError(f"unknown precision '{precision}'; expected one of {PRECISIONS}")
    if tensorrt_version[:1] < (10,):
        raise HarmonyError(
            f"TensorRT {'.'.join(map(str, tensorrt_version))} is too old: harmony-deploy needs "
            "TensorRT >= 10; pip install --upgrade 'harmony-deploy[tensorrt]'"
        )
    if precision == "fp16" and tensorrt_version[:2] < STRONG_TYPING_ONLY_FROM:
        return BuildPlan(strongly_typed=False, builder_flags=("FP16",))
    return BuildPlan(strongly_typed=True)


def engine_cache_dir() -> Path:
    """Where cached engines live: `harmony.files.cache_dir("engines")`."""
    return cache_dir("engines")


def engine_cache_key(
    onnx_sha256: str,
    profile: Profile,
    precision: str,
    plan: BuildPlan,
    environment: TrtEnvironment,
    workspace_bytes: int | None = None,
) -> str:
    """32 hex digits of SHA-256 over everything that determines the engine: the graph's hash,
    the profile, precision and build plan, workspace limit, TensorRT version, GPU name and
    compute capability, plugin library hash, plugin versions and namespace, the harmony version
    and the manifest schema. The timing cache is not part of it (it only speeds builds up)."""
    ingredients = {
        "schema": SCHEMA,
        "harmony_version": __version__,
        "onnx_sha256": onnx_sha256,
        "profiles": [profile.to_dict()],
        "precision": precision,
        "strongly_typed": plan.strongly_typed,
        "builder_flags": list(plan.builder_flags),
        "workspace_bytes": workspace_bytes,
        "tensorrt_version": environment.tensorrt_version,
        "gpu_name": environment.gpu.name,
        "compute_capability": environment.gpu.compute_capability,
        "plugin_sha256": environment.plugin_sha256,
        "plugin_namespace": environment.plugin_namespace,
        "plugin_versions": [list(item) for item in environment.plugin_versions],
    }
    text = json.dumps(ingredients, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def engine_cache_path(
    onnx_path: str | os.PathLike,
    profile: Profile,
    *,
    workspace_bytes: int | None = None,
    environment: TrtEnvironment | None = None,
) -> Path:
    """`engine_cache_dir() / "<key>.engine"` for this graph and profile on this machine.

    `environment` defaults to `current_environment(...)` (needs TensorRT and a GPU).
    """
    facts = onnx_facts(onnx_path)
    if environment is None:
        environment = current_environment(with_plugins=bool(facts.plugins))
    plan = build_plan(version_tuple(environment.tensorrt_version), facts.precision)
    key = engine_cache_key(
        sha256_file(onnx_path), profile, facts.precision, plan, environment, workspace_bytes
    )
    return engine_cache_dir() / f"{key}.engine"


@dataclass(frozen=True)
class BuiltEngine:
    """Result of `engine_from_onnx`: the engine's path, its manifest, and whether the engine
    came from the cache instead of a fresh build."""

    path: Path
    manifest: EngineManifest
    reused: bool


def engine_from_onnx(
    onnx_path: str | os.PathLike,
    profile: Profile,
    output: str | os.PathLike | None = None,
    *,
    timing_cache: str | os.PathLike | None = None,
    workspace_mib: int | None = None,
    force: bool = False,
    use_cache: bool = True,
) -> BuiltEngine:
    """Build (or reuse from the cache) the engine of `onnx_path` for `profile`.

    Args:
        output: where to put the engine (its manifest goes to `<output>.json`); None keeps it
            in the cache only. Existing files are only replaced with `force`.
        timing_cache: a TensorRT timing-cache file, loaded if it exists and saved after a build.
        workspace_mib: workspace memory-pool limit in MiB; None leaves TensorRT's default.
        use_cache: look up and store the engine in `engine_cache_dir()` (default); False always
            builds, straight into `output` (then required).

    Raises:
        HarmonyError: bad inputs, TensorRT or a GPU missing, a graph TensorRT cannot parse or
        build (with the parser's messages); nothing is written then.
    """
    onnx_path = Path(onnx_path).resolve()
    if not onnx_path.is_file():
        raise HarmonyError(f"ONNX graph {onnx_path} does not exist; export it with harmony export")
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be a harmony Profile, got {type(profile).__name__}")
    if workspace_mib is not None and (isinstance(workspace_mib, bool) or workspace_mib <= 0):
        raise HarmonyError(f"workspace must be a positive number of MiB, got {workspace_mib!r}")
    if output is None and not use_cache:
        raise HarmonyError("pass an output path (-o ENGINE) when not using the engine cache")
    if output is not None and not force:
        for path in (Path(output), manifest_path(output)):
            if path.exists():
                raise HarmonyError(
                    f"{path} already exists; refusing to overwrite it. Pass --force "
                    "(force=True) to replace it, or choose another output path."
                )
    workspace_bytes = None if workspace_mib is None else int(workspace_mib) << 20

    trt = import_tensorrt()
    facts = onnx_facts(onnx_path)
    check_graph(facts, profile, onnx_path)
    plan = build_plan(version_tuple(str(trt.__version__)), facts.precision)
    plugins = plugin_library() if facts.plugins else None
    environment = TrtEnvironment(
        tensorrt_version=str(trt.__version__),
        gpu=gpu_identity(),
        plugin_sha256=None if plugins is None else plugins.sha256,
    )
    onnx_sha256 = sha256_file(onnx_path)
    key = engine_cache_key(
        onnx_sha256, profile, facts.precision, plan, environment, workspace_bytes
    )

    def build(destination: Path, replace: bool) -> EngineManifest:
        return _build_engine(
            trt,
            destination,
            replace,
            onnx_path=onnx_path,
            onnx_sha256=onnx_sha256,
            facts=facts,
            profile=profile,
            plan=plan,
            plugins=plugins,
            environment=environment,
            cache_key=key,
            timing_cache=None if timing_cache is None else Path(timing_cache),
            workspace_bytes=workspace_bytes,
        )

    if not use_cache:
        destination = Path(output)  # type: ignore[arg-type]
        return BuiltEngine(destination, build(destination, force), reused=False)
    cached = engine_cache_dir() / f"{key}.engine"
    manifest = _valid_cached_manifest(cached, key, environment)
    reused = manifest is not None
    if manifest is None:
        manifest = build(cached, True)  # a leftover there is invalid: replace it
    if output is None:
        return BuiltEngine(cached, manifest, reused)
    destination = Path(output)
    if destination.resolve() != cached.resolve():
        _copy_file(cached, destination, force)
        _copy_file(manifest_path(cached), manifest_path(destination), force)
    return BuiltEngine(destination, manifest, reused)


def _valid_cached_manifest(
    engine_path: Path, key: str, environment: TrtEnvironment
) -> EngineManifest | None:
    """The manifest of a cached engine that is complete and matches `key` and `environment`."""
    if not engine_path.is_file():
        return None
    try:
        manifest = read_manifest(engine_path)
    except HarmonyError:
        return None
    if manifest.cache_key != key or manifest_mismatches(manifest, environment):
        return None
    if sha256_file(engine_path) != manifest.engine_sha256:
        return None
    return manifest


def _copy_file(source: Path, destination: Path, force: bool) -> None:
    with atomic_output(destination, force) as temp:
        shutil.copyfile(source, temp)


def _build_engine(
    trt: ModuleType,
    destination: Path,
    replace: bool,
    *,
    onnx_path: Path,
    onnx_sha256: str,
    facts: OnnxFacts,
    profile: Profile,
    plan: BuildPlan,
    plugins: PluginLibrary | None,
    environment: TrtEnvironment,
    cache_key: str,
    timing_cache: Path | None,
    workspace_bytes: int | None,
) -> EngineManifest:
    """Build, then write timing cache, engine and manifest (each atomically)."""
    cache_in = None
    if timing_cache is not None and timing_cache.is_file():
        cache_in = timing_cache.read_bytes()  # loaded if present, created otherwise
    engine_bytes, cache_out = serialized_engine_impl(
        trt,
        onnx_path,
        profile,
        plan,
        plugin_path=None if plugins is None else plugins.path,
        timing_cache=cache_in,
        use_timing_cache=timing_cache is not None,
        workspace_bytes=workspace_bytes,
    )
    if timing_cache is not None and cache_out is not None:
        write_bytes_atomic(timing_cache, cache_out, force=True)
    manifest = EngineManifest(
        harmony_version=__version__,
        built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        engine_sha256=hashlib.sha256(engine_bytes).hexdigest(),
        cache_key=cache_key,
        tensorrt_version=environment.tensorrt_version,
        gpu=environment.gpu,
        onnx_path=str(onnx_path),
        onnx_sha256=onnx_sha256,
        precision=facts.precision,
        strongly_typed=plan.strongly_typed,
        builder_flags=plan.builder_flags,
        workspace_bytes=workspace_bytes,
        plugins=None
        if plugins is None
        else PluginRecord(
            library_sha256=plugins.sha256,
            library_path=str(plugins.path),
            namespace=environment.plugin_namespace,
            versions={name: PLUGIN_VERSIONS[name] for name in facts.plugins},
        ),
        profiles=(profile,),
    )
    write_bytes_atomic(destination, engine_bytes, force=replace)
    manifest.write(destination, force=replace)
    return manifest


def serialized_engine_impl(
    trt: ModuleType,
    onnx_path: Path,
    profile: Profile,
    plan: BuildPlan,
    *,
    plugin_path: Path | None,
    timing_cache: bytes | None,
    use_timing_cache: bool,
    workspace_bytes: int | None,
) -> tuple[bytes, bytes | None]:
    """The TensorRT calls: parse `onnx_path`, configure, build. Returns the serialized engine
    and, with `use_timing_cache`, the updated timing cache (else None). Writes nothing.

    Checked against the TensorRT 10.x / 11.x Python API (pyCore.cpp, pyOnnx.cpp, pyPlugin.cpp).
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if plugin_path is not None:
        # The parser finds plugin creators for the custom nodes in the (process-wide) registry.
        load_plugin_library(builder.get_plugin_registry(), plugin_path)
    flags = 0
    if plan.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    # parse_from_file (not parse(bytes)) so that the parser can resolve external weights.
    parsed = parser.parse_from_file(str(onnx_path))
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    if not parsed or errors:
        details = "\n".join(f"  {error}" for error in errors) or "  (no parser errors recorded)"
        raise HarmonyError(
            f"TensorRT {trt.__version__} could not parse {onnx_path}:\n{details}\n"
            "Check that the graph came from harmony export and that the plugin library was "
            "built for this TensorRT version"
        )

    config = builder.create_builder_config()
    # TF32 is on by default: fp32 graphs and the fp32 islands of fp16 graphs mean fp32 math.
    config.clear_flag(trt.BuilderFlag.TF32)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if plugin_path is not None:
        config.plugins_to_serialize = [str(plugin_path)]
    trt_profile = builder.create_optimization_profile()
    for name in GRAPH_INPUTS:
        trt_profile.set_shape(name, *profile.shapes(name))
    if config.add_optimization_profile(trt_profile) < 0:
        raise HarmonyError(f"TensorRT rejected the optimization profile {profile.describe()}")
    if use_timing_cache:
        cache = config.create_timing_cache(timing_cache or b"")
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            raise HarmonyError(
                "the timing cache was made on another GPU or TensorRT version; delete it or "
                "pass a different --timing-cache file"
            )

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise HarmonyError(
            f"TensorRT {trt.__version__} failed to build an engine from {onnx_path} for "
            f"{profile.describe()} (see the TensorRT log above)"
        )
    engine_bytes = bytes(memoryview(serialized))
    cache_out = (
        bytes(memoryview(config.get_timing_cache().serialize())) if use_timing_cache else None
    )
    return engine_bytes, cache_out
