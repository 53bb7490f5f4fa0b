"""The engine cache: engines stored under a key over everything that determines them.

`engine_spec` gathers those ingredients once (the graph's hash and facts, the profile, the build
plan, the workspace limit, the runtime and its version, the GPU or target compute capabilities,
and the plugin library), and the cache key is
derived from that one `EngineSpec`, whether the caller builds the engine or only asks where it
would be. A cached engine is taken only if its manifest verifies (`verified_manifest`) and was
written under the same key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from harmony.engines.builder import BuildPlan, OnnxFacts, build_plan, check_graph, onnx_facts
from harmony.engines.manifest import SCHEMA, EngineManifest, verified_manifest
from harmony.engines.profiles import Profile
from harmony.engines.trt_env import (
    PluginLibrary,
    TrtEnvironment,
    TrtRuntime,
    build_environment,
    get_runtime,
    import_runtime,
    plugin_library,
    version_tuple,
)
from harmony.errors import HarmonyError
from harmony.files import cache_dir, sha256_file
from harmony.version import __version__


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
    the profile, precision and build plan, workspace limit, the whole environment (runtime and
    version, GPU or targets, plugin library hash, plugin versions and namespace), the harmony
    version and the manifest schema. The timing cache is not part of it (it only speeds builds
    up)."""
    ingredients = {
        "schema": SCHEMA,
        "harmony_version": __version__,
        "onnx_sha256": onnx_sha256,
        "profiles": [profile.to_dict()],
        "precision": precision,
        "plan": dataclasses.asdict(plan),
        "workspace_bytes": workspace_bytes,
        "environment": dataclasses.asdict(environment),
    }
    text = json.dumps(ingredients, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class EngineSpec:
    """Everything that determines one engine, gathered once, and its cache key."""

    onnx_path: Path
    onnx_sha256: str
    facts: OnnxFacts
    profile: Profile
    runtime: TrtRuntime
    plan: BuildPlan
    environment: TrtEnvironment
    plugins: PluginLibrary | None
    workspace_bytes: int | None

    @functools.cached_property
    def key(self) -> str:
        return engine_cache_key(
            self.onnx_sha256,
            self.profile,
            self.facts.precision,
            self.plan,
            self.environment,
            self.workspace_bytes,
        )

    @property
    def cached_path(self) -> Path:
        """`engine_cache_dir() / "<key>.engine"`."""
        return engine_cache_dir() / f"{self.key}.engine"

    def cached_manifest(self) -> EngineManifest | None:
        """The manifest of the cached engine if it is complete, verifies against this spec's
        environment and was built under this key; None otherwise (build it)."""
        path = self.cached_path
        if not path.is_file():
            return None
        try:
            manifest = verified_manifest(path, environment=self.environment)
        except HarmonyError:
            return None
        return manifest if manifest.cache_key == self.key else None


def engine_spec(
    onnx_path: str | os.PathLike,
    profile: Profile,
    workspace_bytes: int | None = None,
    *,
    runtime: str | None = None,
    compute_capabilities: tuple[str, ...] = (),
    embed_plugins: bool = False,
    environment: TrtEnvironment | None = None,
    trt: ModuleType | None = None,
) -> EngineSpec:
    """The spec of the engine of `onnx_path` for `profile`, built here by `runtime` (default:
    the installed one, `get_runtime`) for `compute_capabilities` (TensorRT-RTX; default its
    own), with the plugin library embedded or not.

    `environment` defaults to `build_environment(...)` (TensorRT needs a GPU, TensorRT-RTX
    none; `trt` is the runtime's module, imported when None).

    Raises:
        HarmonyError: an unreadable graph or one that does not fit the profile, the runtime (or
            for TensorRT a GPU) missing, targets it cannot build for, or the plugin library not
            built for a graph with custom ops.
    """
    onnx_path = Path(onnx_path).resolve()
    trt_runtime = get_runtime(runtime)
    if environment is None and trt is None:
        trt = import_runtime(trt_runtime)  # a missing runtime is named before anything else
    facts = onnx_facts(onnx_path)
    check_graph(facts, profile, onnx_path)
    plugins = plugin_library() if facts.plugins else None
    if environment is None:
        environment = build_environment(trt_runtime, plugins, compute_capabilities, trt)
    return EngineSpec(
        onnx_path=onnx_path,
        onnx_sha256=sha256_file(onnx_path),
        facts=facts,
        profile=profile,
        runtime=trt_runtime,
        plan=build_plan(
            trt_runtime,
            version_tuple(environment.runtime_version),
            facts.precision,
            compute_capabilities,
            embed_plugins and plugins is not None,
        ),
        environment=environment,
        plugins=plugins,
        workspace_bytes=workspace_bytes,
    )
