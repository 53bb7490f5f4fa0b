"""The JSON manifest written next to every engine (`MODEL.engine.json`).

A TensorRT engine only runs with the runtime (TensorRT or TensorRT-RTX) and version, on the GPUs
(compute capabilities) and with the plugin library it was built for. The manifest records those,
plus what the engine was built from, so that loading can refuse a mismatched engine up front
with a message that says what differs and the exact `harmony build` command that rebuilds it.
It is written by `EngineManifest.write` and verified by `verified_manifest` only: the engine
cache and the runner both go through that one check.

Schema (`"schema": "harmony-engine-manifest/2"`):

    harmony_version    version of harmony-deploy that built it
    built_at           UTC build time, ISO 8601
    engine_sha256      SHA-256 of the engine file (detects a replaced or truncated engine)
    cache_key          the engine-cache key of the build (harmony.engines.cache)
    runtime            {"name": "tensorrt" or "tensorrt-rtx", "version": e.g. "10.8.0.43"}
    gpu                {"name": ..., "compute_capability": "9.0"} of a TensorRT build; null
                       for TensorRT-RTX (built for targets, on any machine)
    compute_capabilities  the GPUs it runs on: ["9.0"] for TensorRT, the targets for RTX
    onnx               {"path": absolute path at build time, "sha256": ...}
    precision          the graph's precision (ONNX metadata "precision"): fp32, fp16 or int8
    strongly_typed     whether the network was created STRONGLY_TYPED
    builder_flags      BuilderFlag names set (only FP16, on TensorRT < 10.12, for fp16 graphs)
    workspace_bytes    workspace memory-pool limit, or null for TensorRT's default
    plugins            null for a graph without custom ops, else {"library_sha256",
                       "library_path", "namespace", "versions": {plugin name: version},
                       "embedded": whether the library is serialized into the engine}
    profiles           [Profile.to_dict()], one entry per optimization profile
    build              {"seconds", "engine_bytes", "network_layers" (before fusion),
                       "fp32_islands": {layer type: [layers, of them FP32]},
                       "int8_quantize_layers": quantize layers to INT8 (int8 graphs; 0 where
                       absent)}
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harmony.contract import ENGINE_MANIFEST_SCHEMA, ENGINE_MANIFEST_SUFFIX
from harmony.engines.profiles import Profile
from harmony.engines.trt_env import (
    GpuIdentity,
    TrtEnvironment,
    get_runtime,
    host_environment,
    plugin_library,
)
from harmony.errors import HarmonyError
from harmony.files import write_bytes_atomic

SCHEMA = ENGINE_MANIFEST_SCHEMA
MANIFEST_SUFFIX = ENGINE_MANIFEST_SUFFIX


def manifest_path(engine_path: str | os.PathLike) -> Path:
    """`MODEL.engine` -> `MODEL.engine.json`."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + MANIFEST_SUFFIX)


@dataclass(frozen=True)
class PluginRecord:
    """The plugin library an engine was built with."""

    library_sha256: str
    library_path: str
    namespace: str
    versions: dict[str, str]
    embedded: bool = False


@dataclass(frozen=True)
class BuildRecord:
    """What a build took and made (see `harmony.engines.builder.NetworkSummary`)."""

    seconds: float
    engine_bytes: int
    network_layers: int
    fp32_islands: dict[str, tuple[int, int]]
    int8_quantize_layers: int = 0


@dataclass(frozen=True)
class EngineManifest:
    """Everything an engine depends on and was built from (see the module docstring)."""

    harmony_version: str
    built_at: str
    engine_sha256: str
    cache_key: str
    runtime: str
    runtime_version: str
    gpu: GpuIdentity | None
    compute_capabilities: tuple[str, ...]
    onnx_path: str
    onnx_sha256: str
    precision: str
    strongly_typed: bool
    builder_flags: tuple[str, ...]
    workspace_bytes: int | None
    plugins: PluginRecord | None
    profiles: tuple[Profile, ...]
    build: BuildRecord
    schema: str = field(default=SCHEMA)

    def to_dict(self) -> dict:
        """The JSON object written to disk."""
        return {
            "schema": self.schema,
            "harmony_version": self.harmony_version,
            "built_at": self.built_at,
            "engine_sha256": self.engine_sha256,
            "cache_key": self.cache_key,
            "runtime": {"name": self.runtime, "version": self.runtime_version},
            "gpu": None if self.gpu is None else asdict(self.gpu),
            "compute_capabilities": list(self.compute_capabilities),
            "onnx": {"path": self.onnx_path, "sha256": self.onnx_sha256},
            "precision": self.precision,
            "strongly_typed": self.strongly_typed,
            "builder_flags": list(self.builder_flags),
            "workspace_bytes": self.workspace_bytes,
            "plugins": None if self.plugins is None else asdict(self.plugins),
            "profiles": [profile.to_dict() for profile in self.profiles],
            "build": {
                "seconds": self.build.seconds,
                "engine_bytes": self.build.engine_bytes,
                "network_layers": self.build.network_layers,
                "fp32_islands": {k: list(v) for k, v in self.build.fp32_islands.items()},
                "int8_quantize_layers": self.build.int8_quantize_layers,
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> EngineManifest:
        """Inverse of `to_dict`. Raises KeyError/TypeError/ValueError/HarmonyError if malformed
        (`read_manifest` turns them into one message)."""
        if data["schema"] != SCHEMA:
            raise ValueError(f"unsupported schema {data['schema']!r} (expected {SCHEMA!r})")
        plugins = data["plugins"]
        workspace = data["workspace_bytes"]
        gpu = data["gpu"]
        build = data["build"]
        manifest = cls(
            harmony_version=_str(data["harmony_version"]),
            built_at=_str(data["built_at"]),
            engine_sha256=_str(data["engine_sha256"]),
            cache_key=_str(data["cache_key"]),
            runtime=_str(data["runtime"]["name"]),
            runtime_version=_str(data["runtime"]["version"]),
            gpu=None
            if gpu is None
            else GpuIdentity(
                name=_str(gpu["name"]), compute_capability=_str(gpu["compute_capability"])
            ),
            compute_capabilities=tuple(_str(cc) for cc in data["compute_capabilities"]),
            onnx_path=_str(data["onnx"]["path"]),
            onnx_sha256=_str(data["onnx"]["sha256"]),
            precision=_str(data["precision"]),
            strongly_typed=bool(data["strongly_typed"]),
            builder_flags=tuple(_str(flag) for flag in data["builder_flags"]),
            workspace_bytes=None if workspace is None else int(workspace),
            plugins=None
            if plugins is None
            else PluginRecord(
                library_sha256=_str(plugins["library_sha256"]),
                library_path=_str(plugins["library_path"]),
                namespace=_str(plugins["namespace"]),
                versions={_str(k): _str(v) for k, v in plugins["versions"].items()},
                embedded=bool(plugins["embedded"]),
            ),
            profiles=tuple(Profile.from_dict(p) for p in data["profiles"]),
            build=BuildRecord(
                seconds=float(build["seconds"]),
                engine_bytes=int(build["engine_bytes"]),
                network_layers=int(build["network_layers"]),
                fp32_islands={
                    _str(k): (int(v[0]), int(v[1])) for k, v in build["fp32_islands"].items()
                },
                int8_quantize_layers=int(build.get("int8_quantize_layers", 0)),
            ),
        )
        if not manifest.profiles:
            raise ValueError("no optimization profile recorded")
        return manifest

    def write(self, engine_path: str | os.PathLike, force: bool = False) -> Path:
        """Write this manifest next to `engine_path` atomically; returns the manifest's path."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"
        return write_bytes_atomic(manifest_path(engine_path), text.encode(), force=force)

    def rebuild_command(
        self, engine_path: str | os.PathLike, here: TrtEnvironment | None = None
    ) -> str:
        """The `harmony build` command that rebuilds this engine at `engine_path`: for the
        runtime and GPU of `here` (a running process's environment), else as it was built."""
        runtime = self.runtime if here is None else here.runtime
        args = ["harmony", "build", self.onnx_path, "-o", str(engine_path)]
        args += ["--runtime", runtime]
        if get_runtime(runtime).builds_without_gpu:  # TensorRT-RTX: built for targets
            targets = self.compute_capabilities if self.gpu is None else ()
            if here is not None and here.gpu is not None:
                targets = (here.gpu.compute_capability,)
            if targets:
                args += ["--cc", ",".join(targets)]
        if self.plugins is not None and self.plugins.embedded:
            args.append("--embed-plugins")
        args += self.profiles[0].cli_args()
        if self.workspace_bytes is not None:
            args += ["--workspace", str(self.workspace_bytes // (1 << 20))]
        args.append("--force")
        return shlex.join(args)


def read_manifest(engine_path: str | os.PathLike) -> EngineManifest:
    """The manifest next to `engine_path`.

    Raises:
        HarmonyError: it is missing, unreadable or malformed (the message says how to rebuild).
    """
    path = manifest_path(engine_path)
    hint = (
        f"rebuild the engine with `harmony build MODEL.onnx -o {shlex.quote(str(engine_path))} "
        "--force` (it writes the manifest next to the engine)"
    )
    if not path.is_file():
        raise HarmonyError(
            f"the engine {engine_path} has no manifest: expected {path}, which does not exist. "
            f"Engines must be built by harmony; {hint}"
        )
    try:
        return EngineManifest.from_dict(json.loads(path.read_text()))
    except OSError as exc:
        raise HarmonyError(f"cannot read the engine manifest {path}: {exc}; {hint}") from None
    except (ValueError, KeyError, TypeError, AttributeError, HarmonyError) as exc:
        problem = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise HarmonyError(f"the engine manifest {path} is corrupt ({problem}); {hint}") from None


def manifest_mismatches(
    manifest: EngineManifest, environment: TrtEnvironment
) -> list[tuple[str, str, str]]:
    """What differs between the build (`manifest`) and `environment` (a build's or the running
    process's, `harmony.engines.trt_env`): (what, expected, found).

    A TensorRT engine needs its GPU (name and compute capability), a TensorRT-RTX engine a GPU
    among its targets; an engine that embeds its plugin library does not need ours.
    """
    found: list[tuple[str, str, str]] = []

    def compare(what: str, expected: object, actual: object) -> None:
        if expected != actual:
            found.append((what, str(expected), str(actual)))

    compare("runtime", manifest.runtime, environment.runtime)
    compare("runtime version", manifest.runtime_version, environment.runtime_version)
    gpu = environment.gpu
    if gpu is not None and manifest.gpu is not None:
        compare("GPU compute capability", manifest.gpu.compute_capability, gpu.compute_capability)
        compare("GPU name", manifest.gpu.name, gpu.name)
    elif gpu is not None and gpu.compute_capability not in manifest.compute_capabilities:
        found.append(
            (
                "GPU compute capability",
                " or ".join(manifest.compute_capabilities),
                f"{gpu.compute_capability} ({gpu.name})",
            )
        )
    if environment.targets:
        compare(
            "target compute capabilities",
            ",".join(manifest.compute_capabilities),
            ",".join(environment.targets),
        )
    if manifest.plugins is not None and not manifest.plugins.embedded:
        plugins = manifest.plugins
        compare(
            "plugin library SHA-256",
            plugins.library_sha256,
            "(not built)" if environment.plugin_sha256 is None else environment.plugin_sha256,
        )
        compare("plugin namespace", plugins.namespace, environment.plugin_namespace)
        versions = dict(environment.plugin_versions)
        for name, version in sorted(plugins.versions.items()):
            compare(f"plugin {name} version", version, versions.get(name, "(absent)"))
    return found


def verified_manifest(
    engine_path: str | os.PathLike,
    engine_bytes: bytes | None = None,
    environment: TrtEnvironment | None = None,
) -> EngineManifest:
    """The manifest of `engine_path`, checked against `environment` and the engine's bytes.

    `engine_bytes` defaults to the file's content; `environment` to this process's
    (`host_environment` of the engine's runtime, or of the installed one where that is missing).

    Raises:
        HarmonyError: the manifest is missing or corrupt, the engine file is not the one it
        describes, or TensorRT/GPU/plugin library differ (the message names each difference
        and gives the `harmony build` command that rebuilds the engine).
    """
    manifest = read_manifest(engine_path)
    if engine_bytes is None:
        engine_bytes = Path(engine_path).read_bytes()
    if hashlib.sha256(engine_bytes).hexdigest() != manifest.engine_sha256:
        raise HarmonyError(
            f"the engine {engine_path} is not the one its manifest describes (SHA-256 differs: "
            "replaced or truncated); rebuild it with:\n  "
            f"{manifest.rebuild_command(engine_path)}"
        )
    if environment is None:
        runtime = get_runtime(manifest.runtime)
        if not runtime.is_installed():
            runtime = get_runtime()  # the one installed here: the runtime mismatch is reported
        needs_library = manifest.plugins is not None and not manifest.plugins.embedded
        environment = host_environment(runtime, plugin_library() if needs_library else None)
    mismatches = manifest_mismatches(manifest, environment)
    if mismatches:
        lines = "\n".join(
            f"  {what}: engine built with {expected}, found {actual}"
            for what, expected, actual in mismatches
        )
        raise HarmonyError(
            f"the engine {engine_path} was built for another setup and cannot run here:\n"
            f"{lines}\nRebuild it on this machine with:\n  "
            f"{manifest.rebuild_command(engine_path, environment)}"
        )
    return manifest


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value
