"""Engines built by the real TensorRT-RTX builder, which runs on the CPU (no GPU here or in CI).

Everything up to the serialized engine is real: the ONNX parser, our plugin library's creators
and build-time methods, the builder's shape analysis over the dynamic profile, serialization.
What needs a GPU (deserializing, enqueueing) is not covered here. The exported graphs with
custom nodes need libharmony_plugins.so, built against the TensorRT headers (TENSORRT_ROOT);
the rest runs wherever the tensorrt-rtx wheels install.
"""

from __future__ import annotations

import json
import re
import struct

import onnx
import pytest

from harmony.contract import (
    KNN_TOPK_FUSION,
    ONNX_DOMAIN,
    OPS,
    PLUGIN_NAMESPACE,
)
from harmony.custom_nodes import op_attributes
from harmony.engines.build import BuildOptions, engine_from_onnx
from harmony.engines.cache import engine_cache_dir
from harmony.engines.manifest import manifest_path, read_manifest
from harmony.engines.profiles import (
    parse_resolutions,
    profile_from_resolutions,
    profile_from_shapes,
)
from harmony.engines.trt_env import RUNTIMES, import_runtime
from harmony.errors import HarmonyError
from harmony.files import sha256_file
from tests.engines.fakes import write_graph

RTX = RUNTIMES["tensorrt-rtx"]
pytestmark = pytest.mark.skipif(
    not RTX.is_installed(), reason=f"TensorRT-RTX is not installed: {RTX.install_hint()}"
)

# 256^2..2048^2 (opt 1024^2), batch 1..2: dynamic height, width and batch in one profile.
PROFILE = profile_from_shapes(
    "image:1x3x256x256,mask:1x1x256x256",
    "image:1x3x1024x1024,mask:1x1x1024x1024",
    "image:2x3x2048x2048,mask:2x1x2048x2048",
)


@pytest.fixture
def build_here(tmp_path, monkeypatch):
    """A fresh engine cache and no plugin library (tests that need one point at it)."""
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(tmp_path / "no-plugins"))


def rtx_build(graph, output=None, profile=PROFILE, force=False, use_cache=True, **options):
    """`engine_from_onnx` by TensorRT-RTX with `BuildOptions(**options)`."""
    build_options = BuildOptions(runtime=RTX.name, **options)
    return engine_from_onnx(graph, profile, output, build_options, force=force, use_cache=use_cache)


def test_graph_without_custom_ops_builds_without_gpu_or_plugin_library(tmp_path, build_here):
    graph = write_graph(tmp_path / "m.onnx", precision=None)
    out = tmp_path / "m.engine"
    built = rtx_build(graph, out)
    manifest = read_manifest(out)
    assert manifest == built.manifest and not built.reused
    assert (manifest.runtime, manifest.runtime_version) == (
        RTX.name,
        import_runtime(RTX).__version__,
    )
    assert manifest.gpu is None and manifest.compute_capabilities == RTX.default_targets
    assert manifest.plugins is None and manifest.precision == "fp32"
    assert manifest.engine_sha256 == sha256_file(out)
    assert manifest.build.engine_bytes == out.stat().st_size
    assert manifest.build.network_layers == 1  # the Mul


def test_custom_op_graph_without_plugin_library_says_how_to_build_it(tmp_path, build_here):
    graph = write_graph(tmp_path / "aict.onnx", custom_op=True)
    with pytest.raises(HarmonyError, match=r"build_plugins\.sh"):
        rtx_build(graph, tmp_path / "aict.engine")
    assert not (tmp_path / "aict.engine").exists()


def test_unknown_plugin_version_is_refused_before_building(tmp_path, build_here):
    graph = write_graph(tmp_path / "aict.onnx", custom_op=True, plugin_version="2")
    with pytest.raises(HarmonyError, match=r"needs plugin version '2'.*re-export"):
        rtx_build(graph, tmp_path / "aict.engine")


def test_parse_errors_are_surfaced_and_nothing_is_written(tmp_path, build_here):
    graph = write_graph(tmp_path / "m.onnx")
    model = onnx.load(graph)
    model.graph.node[0].op_type = "NoSuchOperator"
    onnx.save(model, graph)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(HarmonyError, match=r"could not parse .*\n  .*NoSuchOperator"):
        rtx_build(graph, out_dir / "m.engine")
    assert list(out_dir.iterdir()) == []
    assert not engine_cache_dir().exists() or list(engine_cache_dir().iterdir()) == []


def test_timing_cache_is_refused_before_building(tmp_path, build_here):
    graph = write_graph(tmp_path / "m.onnx")
    with pytest.raises(HarmonyError, match="TensorRT-RTX has no timing cache"):
        rtx_build(graph, tmp_path / "m.engine", timing_cache=tmp_path / "timing.cache")
    assert not (tmp_path / "m.engine").exists() and not (tmp_path / "timing.cache").exists()


def test_cache_reuses_by_key_and_rebuilds_a_corrupt_engine(tmp_path, build_here):
    graph = write_graph(tmp_path / "m.onnx")
    first = rtx_build(graph)
    assert first.path == engine_cache_dir() / f"{first.manifest.cache_key}.engine"
    assert not first.reused
    copy = rtx_build(graph, tmp_path / "copy.engine")
    assert copy.reused and copy.path.read_bytes() == first.path.read_bytes()
    assert json.loads(manifest_path(copy.path).read_text())["cache_key"] == first.manifest.cache_key
    other = rtx_build(graph, profile=profile_from_resolutions(parse_resolutions("512")))
    assert not other.reused and other.manifest.cache_key != first.manifest.cache_key
    targets = rtx_build(graph, compute_capabilities=("8.6",))
    assert not targets.reused and targets.manifest.cache_key != first.manifest.cache_key

    first.path.write_bytes(b"truncated")
    again = rtx_build(graph)
    assert not again.reused and again.path == first.path
    assert sha256_file(again.path) == again.manifest.engine_sha256


def test_existing_output_is_refused_before_building(tmp_path, build_here):
    graph = write_graph(tmp_path / "m.onnx")
    out = tmp_path / "m.engine"
    out.write_bytes(b"keep me")
    with pytest.raises(HarmonyError, match="--force"):
        rtx_build(graph, out)
    assert out.read_bytes() == b"keep me"
    rtx_build(graph, out, force=True)
    assert out.read_bytes() != b"keep me"


def test_targets_are_recorded_and_the_rebuild_command_reproduces_them(tmp_path, build_here):
    graph = write_graph(tmp_path / "m.onnx")
    built = rtx_build(graph, tmp_path / "m.engine", compute_capabilities=("12.0", "8.6"))
    assert built.manifest.compute_capabilities == ("8.6", "12.0")
    command = built.manifest.rebuild_command(tmp_path / "m.engine").split()
    options = {command[i]: command[i + 1] for i in range(len(command) - 1)}
    assert options["--runtime"] == RTX.name and options["--cc"] == "8.6,12.0"
    rebuilt = profile_from_shapes(
        options["--min-shapes"], options["--opt-shapes"], options["--max-shapes"]
    )
    assert rebuilt == PROFILE
    with pytest.raises(HarmonyError, match=r"cannot build for compute capability 9\.0"):
        rtx_build(graph, tmp_path / "h200.engine", compute_capabilities=("9.0",))


def _assert_int8_build(built, model: onnx.ModelProto) -> None:
    """An int8 graph's engine: every activation QuantizeLinear became an INT8 quantize layer
    of the strongly typed network (no INT8 flag, no calibrator: the graph carries the scales)."""
    quantize = sum(node.op_type == "QuantizeLinear" for node in model.graph.node)
    manifest = built.manifest
    assert manifest.precision == "int8" and manifest.strongly_typed
    assert manifest.builder_flags == ()
    assert manifest.build.int8_quantize_layers == quantize >= 20


def test_portable_int8_hdnet_graph_builds_for_dynamic_sizes(exported, tmp_path, build_here):
    """The ORT-target graph shares the pipeline's shape expressions (the pad to a multiple of 8)
    and needs no plugin library, so this runs wherever TensorRT-RTX installs: INT8 Q/DQ
    (symmetric, per-channel weights, FP16 elsewhere) parses and builds."""
    path, model = exported("hdnet-lite", "ort", "int8")
    built = rtx_build(path, tmp_path / "lite.engine", use_cache=False)
    assert built.manifest.plugins is None and built.manifest.build.network_layers > 100
    _assert_int8_build(built, model)


def test_int8_graph_with_custom_nodes_builds_with_the_plugins(
    exported, cpu_ops_dir, tensorrt_plugins_dir, tmp_path, monkeypatch
):
    # Calibrated through onnxruntime-extensions with libharmony_cpu_ops.so (no ORT headers).
    path, model = exported("hdnet-lite", "trt", "int8")
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(tensorrt_plugins_dir))
    built = rtx_build(path, tmp_path / "lite.engine", use_cache=False)
    assert sorted(built.manifest.plugins.versions) == [KNN_TOPK_FUSION.name]
    _assert_int8_build(built, model)


def _length_prefixed(text: str) -> bytes:
    return struct.pack("<Q", len(text)) + text.encode()


def serialized_plugin(engine: bytes, name: str) -> bytes:
    """The bytes after `name`'s record in a serialized engine, as far as its fields go (the
    plan stores each string with a little-endian 64-bit length before it)."""
    start = engine.find(_length_prefixed(name))
    assert start >= 0, f"the engine holds no {name} plugin"
    return engine[start : start + 512]


def serialized_int_field(record: bytes, field: str) -> int:
    match = re.search(
        re.escape(_length_prefixed(field))
        + rb".{0,32}?"
        + re.escape(_length_prefixed("INT32"))
        + rb".{0,32}?"
        + re.escape(struct.pack("<Q", 4))
        + rb"(.{4})",
        record,
        re.DOTALL,
    )
    assert match is not None, f"no INT32 field {field!r} serialized"
    return struct.unpack("<i", match.group(1))[0]


@pytest.fixture
def plugins_here(tensorrt_plugins_dir, monkeypatch, build_here):
    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(tensorrt_plugins_dir))
    return tensorrt_plugins_dir


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("arch", ["aict", "hdnet", "hdnet-lite"])
def test_exported_graphs_build_with_the_plugins(exported, plugins_here, tmp_path, arch, precision):
    path, model = exported(arch, "trt", precision)
    built = rtx_build(path, tmp_path / f"{arch}.engine", use_cache=False)
    manifest = built.manifest
    engine = built.path.read_bytes()
    nodes = [node for node in model.graph.node if node.domain == ONNX_DOMAIN]
    contracts = {op.name: op for op in OPS}
    assert manifest.plugins is not None and not manifest.plugins.embedded
    assert sorted(manifest.plugins.versions) == sorted({node.op_type for node in nodes})
    for node in nodes:
        contract = contracts[node.op_type]
        record = serialized_plugin(engine, contract.name)
        assert _length_prefixed(contract.version) in record
        assert _length_prefixed(PLUGIN_NAMESPACE) in record
        if contract is KNN_TOPK_FUSION:
            k = op_attributes(node, contract)["k"]
            assert serialized_int_field(record, "k") == k
    islands = manifest.build.fp32_islands
    assert islands["PLUGIN_V3"] == (len(nodes), len(nodes))
    # Strongly typed: every FP32 island of an FP16 graph stays FP32 in the network.
    assert all(fp32 == total for total, fp32 in islands.values()), islands
    assert manifest.build.network_layers > 100


@pytest.mark.parametrize("arch", ["aict", "hdnet", "hdnet-lite"])
def test_odd_sizes_inside_the_profile_build(exported, plugins_here, tmp_path, arch):
    """257x391 is inside PROFILE; an engine for exactly that size proves that every shape
    expression of the graph (resizes, the pad to a multiple of 8, the crop) holds there."""
    size = (257, 391)
    bounds = zip(PROFILE.min[1:], size, PROFILE.max[1:], strict=True)
    assert all(low <= n <= high for low, n, high in bounds)
    path, _ = exported(arch, "trt", "fp32")
    odd = profile_from_resolutions((size,))
    built = rtx_build(path, tmp_path / f"{arch}.engine", profile=odd, use_cache=False)
    assert built.manifest.profiles == (odd,)


def test_embedded_plugins_travel_in_the_engine(exported, plugins_here, tmp_path):
    path, _ = exported("aict", "trt", "fp32")
    separate = rtx_build(path, tmp_path / "separate.engine", use_cache=False)
    embedded = rtx_build(path, tmp_path / "embedded.engine", use_cache=False, embed_plugins=True)
    assert embedded.manifest.plugins.embedded and not separate.manifest.plugins.embedded
    library = (plugins_here / "libharmony_plugins.so").read_bytes()
    assert b"\x7fELF" in embedded.path.read_bytes() and b"\x7fELF" not in separate.path.read_bytes()
    grown = embedded.manifest.build.engine_bytes - separate.manifest.build.engine_bytes
    assert grown >= len(library) // 2  # the library, perhaps compressed
    assert "--embed-plugins" in embedded.manifest.rebuild_command(embedded.path)
