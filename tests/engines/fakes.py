"""Test doubles: a `tensorrt` module that records the builder calls, ONNX graphs, a manifest.

The fake stands in for the half of TensorRT that needs a GPU, which no test machine has:
standard TensorRT's builder (it builds on the GPU it targets) and its version-dependent choices
(BuilderFlag.FP16 before 10.12, TensorRT 11's missing precision flags, the workspace pool, a
timing cache from another GPU). Everything TensorRT-RTX's CPU builder can answer is tested
against the real one (tests/engines/test_rtx_builder.py).

Only the part of the TensorRT 10/11 Python API that harmony.engines.builder uses, with the
same names and signatures (checked against python/src/infer/pyCore.cpp, parsers/pyOnnx.cpp and
infer/pyPlugin.cpp of NVIDIA/TensorRT). It runs nothing: `build_serialized_network` returns bytes
derived from what was configured, so tests can see what reached the engine.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib.machinery
import types
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from harmony.contract import CASCADED_LUT, DEFAULT_RESOLUTIONS, ONNX_DOMAIN, PLUGIN_VERSION_ATTR
from harmony.custom_nodes import plugin_attributes
from harmony.engines.manifest import BuildRecord, EngineManifest, PluginRecord
from harmony.engines.profiles import profile_from_resolutions
from harmony.engines.trt_env import GpuIdentity, TrtEnvironment
from harmony.export.metadata import PREFIX as METADATA_PREFIX


def make_fake_tensorrt(
    version: str = "10.13.0.35",
    parse_errors: tuple[str, ...] = (),
    build_fails: bool = False,
    timing_cache_matches: bool = True,
) -> types.ModuleType:
    """A fake `tensorrt` module; every call lands in `module.calls` as a tuple."""
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.__version__ = version
    calls: list[tuple] = []
    trt.calls = calls

    trt.NetworkDefinitionCreationFlag = enum.IntEnum(
        "NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 0}
    )
    # TensorRT 11 removed the precision flags (FP16, INT8, ...): asking for one is an error.
    major = int(version.split(".")[0])
    flags = {"TF32": 7} if major >= 11 else {"FP16": 0, "INT8": 1, "TF32": 7}
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", flags)
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    layer_types = ("CONVOLUTION", "SOFTMAX", "CUMULATIVE", "NORMALIZATION", "REDUCE", "PLUGIN_V3")
    trt.LayerType = enum.IntEnum("LayerType", layer_types)
    trt.DataType = enum.IntEnum("DataType", {"FLOAT": 0, "HALF": 1})

    class Logger:
        WARNING = "WARNING"

        def __init__(self, min_severity=WARNING):
            calls.append(("Logger", min_severity))

    class PluginRegistry:
        def __init__(self):
            self.all_creators = []

        def load_library(self, plugin_path):
            calls.append(("load_library", plugin_path))
            return object()

    class Network:
        num_layers = 0

    class OptimizationProfile:
        def set_shape(self, input, min, opt, max):
            calls.append(("set_shape", input, tuple(min), tuple(opt), tuple(max)))

    class TimingCache:
        def __init__(self, data: bytes):
            self.data = bytes(data)

        def serialize(self):
            return self.data + b"+tuned"

    class BuilderConfig:
        def __init__(self):
            self._plugins: list[str] = []
            self._timing_cache = None
            self.profiles = []

        def set_flag(self, flag):
            calls.append(("set_flag", flag.name))

        def clear_flag(self, flag):
            calls.append(("clear_flag", flag.name))

        def set_memory_pool_limit(self, pool, pool_size):
            calls.append(("set_memory_pool_limit", pool.name, pool_size))

        @property
        def plugins_to_serialize(self):
            return list(self._plugins)

        @plugins_to_serialize.setter
        def plugins_to_serialize(self, paths):
            calls.append(("plugins_to_serialize", list(paths)))
            self._plugins = list(paths)

        def add_optimization_profile(self, profile):
            calls.append(("add_optimization_profile",))
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, serialized_timing_cache):
            calls.append(("create_timing_cache", bytes(serialized_timing_cache)))
            return TimingCache(serialized_timing_cache)

        def set_timing_cache(self, cache, ignore_mismatch):
            calls.append(("set_timing_cache", ignore_mismatch))
            self._timing_cache = cache
            return timing_cache_matches

        def get_timing_cache(self):
            return self._timing_cache

    class Builder:
        def __init__(self, logger):
            calls.append(("Builder",))
            self.registry = PluginRegistry()

        def get_plugin_registry(self):
            return self.registry

        def create_network(self, flags=0):
            calls.append(("create_network", flags))
            return Network()

        def create_builder_config(self):
            return BuilderConfig()

        def create_optimization_profile(self):
            return OptimizationProfile()

        def build_serialized_network(self, network, config):
            calls.append(("build_serialized_network",))
            if build_fails:
                return None
            return f"engine built by fake TensorRT {version} with {config._plugins}".encode()

    class ParserError:
        def __init__(self, text):
            self.text = text

        def __str__(self):
            return self.text

    class OnnxParser:
        def __init__(self, network, logger):
            self.errors = [ParserError(text) for text in parse_errors]

        def parse_from_file(self, model):
            calls.append(("parse_from_file", model))
            return not self.errors

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, index):
            return self.errors[index]

    for cls in (Logger, Builder, OnnxParser):
        setattr(trt, cls.__name__, cls)
    return trt


def call_names(trt) -> list[str]:
    """The names of the recorded calls, in order."""
    return [call[0] for call in trt.calls]


def write_graph(
    path: Path,
    precision: str | None = "fp32",
    custom_op: bool = False,
    inputs: tuple[str, str] = ("image", "mask"),
    static_hw: tuple[int, int] | None = None,
    plugin_version: str = CASCADED_LUT.version,
) -> Path:
    """A tiny harmonization-shaped ONNX graph: harmonized = image * mask (or a CascadedLut3D
    node of `plugin_version` when `custom_op`), with dynamic B/H/W unless `static_hw`, and
    metadata `precision`."""
    height, width = static_hw if static_hw else ("H", "W")
    image = helper.make_tensor_value_info(inputs[0], TensorProto.FLOAT, ["B", 3, height, width])
    mask = helper.make_tensor_value_info(inputs[1], TensorProto.FLOAT, ["B", 1, height, width])
    out = helper.make_tensor_value_info("harmonized", TensorProto.FLOAT, ["B", 3, height, width])
    if custom_op:
        initializers = [
            helper.make_tensor("knots", TensorProto.FLOAT, [1, 3, 9], [0.0] * 27),
            helper.make_tensor("curve", TensorProto.FLOAT, [1, 3, 8], [0.0] * 24),
        ]
        node = helper.make_node(
            CASCADED_LUT.name,
            [inputs[0], inputs[1], "knots", "curve"],
            ["harmonized"],
            domain=ONNX_DOMAIN,
            **{**plugin_attributes(), PLUGIN_VERSION_ATTR: plugin_version},
        )
    else:
        initializers = []
        node = helper.make_node("Mul", list(inputs), ["harmonized"])
    graph = helper.make_graph([node], "g", [image, mask], [out], initializer=initializers)
    opsets = [helper.make_opsetid("", 17)]
    if custom_op:
        opsets.append(helper.make_opsetid(ONNX_DOMAIN, 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8  # what opset 17 needs; older ONNX parsers reject newer IR versions
    if precision is not None:
        helper.set_model_props(model, {METADATA_PREFIX + "precision": precision})
    onnx.save(model, str(path))
    return path


GPU = GpuIdentity(name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
ENVIRONMENT = TrtEnvironment(
    runtime="tensorrt",
    runtime_version="10.13.0.35",
    gpu=GPU,
    targets=(),
    plugin_sha256="a" * 64,
)


def make_manifest(**changes) -> EngineManifest:
    """A manifest of an fp16 AICT engine built for ENVIRONMENT, with `changes` applied."""
    manifest = EngineManifest(
        harmony_version="0.1.0",
        built_at="2026-11-24T12:00:00+00:00",
        engine_sha256="e" * 64,
        cache_key="k" * 32,
        runtime="tensorrt",
        runtime_version="10.13.0.35",
        gpu=GPU,
        compute_capabilities=("9.0",),
        onnx_path="/models/my aict.onnx",
        onnx_sha256="o" * 64,
        precision="fp16",
        strongly_typed=True,
        builder_flags=(),
        workspace_bytes=None,
        plugins=PluginRecord(
            library_sha256="a" * 64,
            library_path="/build/plugins/libharmony_plugins.so",
            namespace="harmony",
            versions={CASCADED_LUT.name: "1"},
        ),
        profiles=(profile_from_resolutions(DEFAULT_RESOLUTIONS),),
        build=BuildRecord(
            seconds=41.5,
            engine_bytes=17,
            network_layers=1315,
            fp32_islands={"SOFTMAX": (10, 10), "PLUGIN_V3": (1, 1)},
        ),
    )
    return dataclasses.replace(manifest, **changes)


def write_engine(path: Path, content: bytes = b"serialized engine", **changes) -> Path:
    """An engine file and its manifest (`make_manifest(**changes)`, the engine's true hash);
    replaces both where they exist."""
    path.write_bytes(content)
    manifest = make_manifest(engine_sha256=hashlib.sha256(content).hexdigest(), **changes)
    manifest.write(path, force=True)
    return path
