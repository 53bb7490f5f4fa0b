"""The JSON manifest written next to every engine (`MODEL.engine.json`).

A TensorRT engine only runs with the TensorRT version, the GPU (compute capability) and the
plugin library it was built with. The manifest records those, plus what the engine was built
from, so that loading can refuse a mismatched engine up front with a message that says what
differs and the exact `harmony build` command that rebuilds it. It is written by
`EngineManifest.write` and verified by `verified_manifest` only: the engine cache and the runner
both go through that one check.

Schema (`"schema": "harmony-engine-manifest/1"`):

    harmony_version    version of harmony-deploy that built it
    built_at           UTC build time, ISO 8601
    engine_sha256      SHA-256 of the engine file (detects a replaced or truncated engine)
    cache_key          the engine-cache key of the build (harmony.runtime.engine)
    tensorrt_version   trt.__version__ at build time, e.g. "10.8.0.43"
    gpu                {"name": ..., "compute_capability": "9.0"}
    onnx               {"path": absolute path at build time, "sha256": ...}
    precision          the graph's precision (ONNX metadata "precision"): fp32, fp16 or int8
    strongly_typed     whether the network was created STRONGLY_TYPED
    builder_flags      BuilderFlag names set (only FP16, on TensorRT < 10.12, for fp16 graphs)
    workspace_bytes    workspace memory-pool limit, or null for TensorRT's default
    plugins            null for a graph without custom ops, else {"library_sha256",
                       "library_path", "namespace", "versions": {plugin name: version}}
    profiles           [Profile.to_dict()], one entry per optimization profile
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harmony.errors import HarmonyError
from harmony.files import write_bytes_atomic
from harmony.runtime.profiles import Profile
from harmony.runtime.trt_env import (
    GpuIdentity,
    TrtEnvironment,
    current_environment,
    plugin_library,
)

SCHEMA = "harmony-engine-manifest/1"
MANIFEST_SUFFIX = ".json"


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


@dataclass(frozen=True)
class EngineManifest:
    """Everything an engine depends on and was built from (see the module docstring)."""

    harmony_version: str
    built_at: str
    engine_sha256: str
    cache_key: str
    tensorrt_version: str
    gpu: GpuIdentity
    onnx_path: str
    onnx_sha256: str
    precision: str
    strongly_typed: bool
    builder_flags: tuple[str, ...]
    workspace_bytes: int | None
    plugins: PluginRecord | None
    profiles: tuple[Profile, ...]
    schema: str = field(default=SCHEMA)

    def to_dict(self) -> dict:
        """The JSON object written to disk."""
        return {
            "schema": self.schema,
            "harmony_version": self.harmony_version,
            "built_at": self.built_at,
            "engine_sha256": self.engine_sha256,
            "cache_key": self.cache_key,
            "tensorrt_version": self.tensorrt_version,
            "gpu": asdict(self.gpu),
            "onnx": {"path": self.onnx_path, "sha256": self.onnx_sha256},
            "precision": self.precision,
            "strongly_typed": self.strongly_typed,
            "builder_flags": list(self.builder_flags),
            "workspace_bytes": self.workspace_bytes,
            "plugins": None if self.plugins is None else asdict(self.plugins),
            "profiles": [profile.to_dict() for profile in self.profiles],
        }

    @classmethod
    def from_dict(cls, data: dict) -> EngineManifest:
        """Inverse of `to_dict`. Raises KeyError/TypeError/ValueError/HarmonyError if malformed
        (`read_manifest` turns them into one message)."""
        if data["schema"] != SCHEMA:
            raise ValueError(f"unsupported schema {data['schema']!r} (expected {SCHEMA!r})")
        plugins = data["plugins"]
        workspace = data["workspace_bytes"]
        manifest = cls(
            harmony_version=_str(data["harmony_version"]),
            built_at=_str(data["built_at"]),
            engine_sha256=_str(data["engine_sha256"]),
            cache_key=_str(data["cache_key"]),
            tensorrt_version=_str(data["tensorrt_version"]),
            gpu=GpuIdentity(
                name=_str(data["gpu"]["name"]),
                compute_capability=_str(data["gpu"]["compute_capability"]),
            ),
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
            ),
            profiles=tuple(Profile.from_dict(p) for p in data["profiles"]),
        )
        if not manifest.profiles:
            raise ValueError("no optimization profile recorded")
        return manifest

    def write(self, engine_path: str | os.PathLike, force: bool = False) -> Path:
        """Write this manifest next to `engine_path` atomically; returns the manifest's path."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"
        return write_bytes_atomic(manifest_path(engine_path), text.encode(), force=force)

    def rebuild_command(self, engine_path: str | os.PathLike) -> str:
        """The `harmony build` command that rebuilds this engine at `engine_path` here."""
        args = ["harmony", "build", self.onnx_path, "-o", str(engine_path)]
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
    """What differs between the build (`manifest`) and `environment`: (what, expected, found)."""
    found: list[tuple[str, str, str]] = []

    def compare(what: str, expected: object, actual: object) -> None:
        if expected != actual:
            found.append((what, str(expected), str(actual)))

    compare("TensorRT version", manifest.tensorrt_version, environment.tensorrt_version)
    compare(
        "GPU compute capability",
        manifest.gpu.compute_capability,
        environment.gpu.compute_capability,
    )
    compare("GPU name", manifest.gpu.name, environment.gpu.name)
    if manifest.plugins is not None:
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

    `engine_bytes` defaults to the file's content; `environment` to `current_environment(...)`.

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
        plugins = None if manifest.plugins is None else plugin_library()
        environment = current_environment(plugins)
    mismatches = manifest_mismatches(manifest, environment)
    if mismatches:
        lines = "\n".join(
            f"  {what}: engine built with {expected}, found {actual}"
            for what, expected, actual in mismatches
        )
        raise HarmonyError(
            f"the engine {engine_path} was built for another setup and cannot run here:\n"
            f"{lines}\nRebuild it on this machine with:\n  {manifest.rebuild_command(engine_path)}"
        )
    return manifest


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value
