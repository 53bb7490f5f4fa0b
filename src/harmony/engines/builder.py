"""The TensorRT side of engine building: what a graph needs, how the network is configured, and
the calls that parse and build it. Writes nothing (the cache and the manifest do that).

* `onnx_facts` reads the graph's precision (ONNX metadata "precision"; none: fp32) and which
  harmony plugins it uses, and `check_graph` its inputs against the profile;
* `build_plan`: the network is created STRONGLY_TYPED, so precision comes from the graph, except
  an fp16 graph on TensorRT 10.0-10.11, which is built weakly typed with BuilderFlag.FP16;
  TensorRT-RTX builds for the plan's compute capabilities (its defaults when none are given);
* `serialized_engine_impl` loads the plugin library into the registry (graphs with custom ops
  only) and, to embed it, lists it in `plugins_to_serialize`, sets the one optimization profile
  on both inputs, uses and updates a timing cache if given, and returns the serialized engine
  with what the parsed network says about it (`NetworkSummary`).

The same calls serve TensorRT and TensorRT-RTX (their Python APIs agree on all of them but
the compute-capability targets, which only TensorRT-RTX has).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from harmony.contract import GRAPH_INPUTS, GRAPH_OUTPUT, ONNX_DOMAIN, OPS, PRECISIONS
from harmony.engines.profiles import Profile
from harmony.engines.trt_env import TrtRuntime, load_plugin_library
from harmony.errors import HarmonyError

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
        HarmonyError: unreadable graph, unsupported precision value, an unknown harmony op, or
            a custom node whose plugin version, namespace or attributes the library does not
            provide.
    """
    from harmony.custom_nodes import op_attributes
    from harmony.export.metadata import graph_precision, load_graph, read_metadata

    model = load_graph(onnx_path)
    precision = graph_precision(read_metadata(model), onnx_path)
    known = {op.name for op in OPS}
    used = sorted({node.op_type for node in model.graph.node if node.domain == ONNX_DOMAIN})
    unknown = [name for name in used if name not in known]
    if unknown:
        raise HarmonyError(
            f"{onnx_path} uses {', '.join(unknown)} in domain '{ONNX_DOMAIN}', which the plugin "
            f"library does not provide (it has {', '.join(sorted(known))}); re-export the graph "
            "with this version of harmony"
        )
    contracts = {op.name: op for op in OPS}
    for node in model.graph.node:
        if node.domain == ONNX_DOMAIN:
            try:
                op_attributes(node, contracts[node.op_type])
            except ValueError as exc:
                raise HarmonyError(
                    f"{onnx_path}: {exc}; the plugin library provides {node.op_type} version "
                    f"{contracts[node.op_type].version}: re-export the graph with this version "
                    "of harmony"
                ) from None
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
    """How the network is created and configured: STRONGLY_TYPED, BuilderFlag names, the
    compute capabilities to build for (TensorRT-RTX; empty: its defaults) and whether the
    plugin library is serialized into the engine."""

    strongly_typed: bool
    builder_flags: tuple[str, ...] = ()
    compute_capabilities: tuple[str, ...] = ()
    embed_plugins: bool = False


def build_plan(
    runtime: TrtRuntime,
    version: tuple[int, ...],
    precision: str,
    compute_capabilities: tuple[str, ...] = (),
    embed_plugins: bool = False,
) -> BuildPlan:
    """Strongly typed on TensorRT-RTX and every TensorRT >= 10, so the graph's types decide
    precision (an int8 graph's Q/DQ nodes make its INT8 layers: no INT8 flag, no calibrator),
    except an fp16 graph on TensorRT 10.0-10.11: weakly typed with BuilderFlag.FP16.
    `compute_capabilities` are checked against the runtime (`TrtRuntime.check_targets`).

    Raises:
        HarmonyError: TensorRT older than 10, an unknown precision, or targets the runtime
            cannot build for (at that precision).
    """
    if precision not in PRECISIONS:
        raise HarmonyError(f"unknown precision '{precision}'; expected one of {PRECISIONS}")
    if compute_capabilities:
        compute_capabilities = runtime.check_targets(compute_capabilities)
        runtime.check_precision(precision, compute_capabilities)
    if runtime.builds_without_gpu:
        return BuildPlan(True, (), compute_capabilities, embed_plugins)
    if version[:1] < (10,):
        raise HarmonyError(
            f"TensorRT {'.'.join(map(str, version))} is too old: harmony-deploy needs "
            "TensorRT >= 10; pip install --upgrade 'harmony-deploy[tensorrt]'"
        )
    if precision == "fp16" and version[:2] < STRONG_TYPING_ONLY_FROM:
        return BuildPlan(False, ("FP16",), embed_plugins=embed_plugins)
    return BuildPlan(True, embed_plugins=embed_plugins)


# Layer types holding the math that FP16 graphs keep in FP32 (the exporter's FP32 islands):
# interval softmax and attention softmax, the cumulative sum, LayerNorm/InstanceNorm, the
# reductions of the normalization statistics, and the plugins.
FP32_ISLAND_LAYERS = ("SOFTMAX", "CUMULATIVE", "NORMALIZATION", "REDUCE", "PLUGIN_V3")


@dataclass(frozen=True)
class NetworkSummary:
    """What the parsed network says about the engine, without a GPU: its layer count (before
    the builder fuses layers), per FP32-island layer type (layers, of them FP32), and its
    quantize layers to INT8 (an int8 graph's Q/DQ inputs). In a strongly typed network the
    builder keeps these types."""

    layers: int
    fp32_islands: dict[str, tuple[int, int]]
    int8_quantize_layers: int = 0


def network_summary(trt: ModuleType, network) -> NetworkSummary:
    """Layer count and FP32-island types of a parsed network."""
    counts = {kind: [0, 0] for kind in FP32_ISLAND_LAYERS}
    island_types = {getattr(trt.LayerType, kind): kind for kind in FP32_ISLAND_LAYERS}
    int8_quantize = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.type == trt.LayerType.QUANTIZE:
            int8_quantize += int(layer.get_output(0).dtype == trt.DataType.INT8)
        kind = island_types.get(layer.type)
        if kind is not None:
            counts[kind][0] += 1
            counts[kind][1] += int(layer.get_output(0).dtype == trt.DataType.FLOAT)
    return NetworkSummary(
        layers=network.num_layers,
        fp32_islands={kind: (total, fp32) for kind, (total, fp32) in counts.items() if total},
        int8_quantize_layers=int8_quantize,
    )


@dataclass(frozen=True)
class SerializedEngine:
    """A build's result: the engine, the updated timing cache (None unless one was used) and
    the network summary."""

    engine: bytes
    timing_cache: bytes | None
    network: NetworkSummary


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
) -> SerializedEngine:
    """The TensorRT calls: parse `onnx_path`, configure, build. Writes nothing.

    Checked against the TensorRT 10.x / 11.x Python API (pyCore.cpp, pyOnnx.cpp, pyPlugin.cpp)
    and run against TensorRT-RTX 1.7 in the tests.
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
            f"{trt.__name__} {trt.__version__} could not parse {onnx_path}:\n{details}\n"
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
    if plan.compute_capabilities:
        config.num_compute_capabilities = len(plan.compute_capabilities)
        for index, cc in enumerate(plan.compute_capabilities):
            target = getattr(trt.ComputeCapability, "SM" + cc.replace(".", ""))
            if not config.set_compute_capability(target, index):
                raise HarmonyError(f"{trt.__name__} refused compute capability {cc}")
    if plan.embed_plugins and plugin_path is not None:
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
            f"{trt.__name__} {trt.__version__} failed to build an engine from {onnx_path} for "
            f"{profile.describe()} (see the TensorRT log above)"
        )
    cache_out = (
        bytes(memoryview(config.get_timing_cache().serialize())) if use_timing_cache else None
    )
    return SerializedEngine(bytes(memoryview(serialized)), cache_out, network_summary(trt, network))
