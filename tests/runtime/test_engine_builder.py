"""Engine building with a fake `tensorrt` module: what is asked of TensorRT, what is written."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from harmony.contract import CASCADED_LUT
from harmony.errors import HarmonyError
from harmony.files import sha256_file
from harmony.runtime import trt_env
from harmony.runtime.engine import engine_cache_path, engine_from_onnx
from harmony.runtime.engine_builder import BuildPlan, build_plan, check_graph, onnx_facts
from harmony.runtime.engine_cache import engine_cache_dir, engine_cache_key
from harmony.runtime.manifest import manifest_path, read_manifest
from harmony.runtime.profiles import (
    parse_resolutions,
    profile_from_resolutions,
    profile_from_shapes,
)
from harmony.runtime.trt_env import GpuIdentity, TrtEnvironment
from tests.runtime.fakes import call_names, make_fake_tensorrt, write_graph

GPU = GpuIdentity(name="Fake GPU 80GB", compute_capability="9.0")
PROFILE = profile_from_resolutions(parse_resolutions("1024,2048"))


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A fake GPU, a fake plugin library, a fresh engine cache and plugin-load memory."""
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    library = plugin_dir / "libharmony_plugins.so"
    library.write_bytes(b"\x7fELF fake plugin library")
    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(plugin_dir))
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(trt_env, "gpu_identity", lambda: GPU)
    monkeypatch.setattr(trt_env, "_LOADED_LIBRARIES", {})
    return library.resolve()


def install(monkeypatch, **kwargs):
    trt = make_fake_tensorrt(**kwargs)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


@pytest.mark.parametrize(
    ("version", "precision", "expected"),
    [
        ((11, 0, 0), "fp16", BuildPlan(strongly_typed=True)),
        ((11, 1, 0), "fp32", BuildPlan(strongly_typed=True)),
        ((10, 12, 0), "fp16", BuildPlan(strongly_typed=True)),
        ((10, 11, 0), "fp16", BuildPlan(strongly_typed=False, builder_flags=("FP16",))),
        ((10, 0, 1), "fp16", BuildPlan(strongly_typed=False, builder_flags=("FP16",))),
        ((10, 8, 0), "fp32", BuildPlan(strongly_typed=True)),
    ],
)
def test_build_plan_strong_typing_and_fp16_flag(version, precision, expected):
    assert build_plan(version, precision) == expected


def test_build_plan_rejects_old_tensorrt_and_unknown_precision():
    with pytest.raises(HarmonyError, match=r"TensorRT 8\.6 is too old.*>= 10"):
        build_plan((8, 6), "fp32")
    with pytest.raises(HarmonyError, match="unknown precision 'bf8'"):
        build_plan((10, 8), "bf8")


def test_build_on_tensorrt_11_is_strongly_typed_and_serializes_the_plugin(
    tmp_path, monkeypatch, machine
):
    trt = install(monkeypatch, version="11.1.0.7")
    graph = write_graph(tmp_path / "aict.onnx", precision="fp16", custom_op=True)
    out = tmp_path / "out" / "aict.engine"
    built = engine_from_onnx(graph, PROFILE, out)

    strongly_typed = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert ("create_network", strongly_typed) in trt.calls
    assert "set_flag" not in call_names(trt)  # TensorRT 11 has no precision flags
    assert ("clear_flag", "TF32") in trt.calls  # fp32 math stays fp32
    names = call_names(trt)
    # The plugin library is registered before the parser looks for its creators.
    assert names.index("load_library") < names.index("parse_from_file")
    assert ("load_library", str(machine)) in trt.calls
    assert ("plugins_to_serialize", [str(machine)]) in trt.calls
    assert ("parse_from_file", str(graph.resolve())) in trt.calls
    assert ("set_shape", "image", (1, 3, 1024, 1024), (1, 3, 1024, 1024), (1, 3, 2048, 2048)) in (
        trt.calls
    )
    assert ("set_shape", "mask", (1, 1, 1024, 1024), (1, 1, 1024, 1024), (1, 1, 2048, 2048)) in (
        trt.calls
    )
    assert names.count("add_optimization_profile") == 1
    assert "create_timing_cache" not in names  # none asked for

    assert built.path == out and not built.reused
    assert out.read_bytes().startswith(b"engine built by fake TensorRT 11.1.0.7")
    manifest = read_manifest(out)
    assert manifest == built.manifest
    assert manifest.tensorrt_version == "11.1.0.7"
    assert manifest.gpu == GPU
    assert manifest.precision == "fp16"
    assert manifest.strongly_typed and manifest.builder_flags == ()
    assert manifest.onnx_sha256 == sha256_file(graph)
    assert manifest.engine_sha256 == sha256_file(out)
    assert manifest.plugins is not None
    assert manifest.plugins.library_sha256 == sha256_file(machine)
    assert manifest.plugins.versions == {CASCADED_LUT.name: "1"}
    assert manifest.plugins.namespace == "harmony"
    assert manifest.profiles == (PROFILE,)


@pytest.mark.parametrize(
    ("version", "precision", "strongly_typed", "flags"),
    [
        ("10.8.0.43", "fp16", False, ["FP16"]),
        ("10.8.0.43", "fp32", True, []),
        ("10.12.0.36", "fp16", True, []),
    ],
)
def test_fp16_flag_only_for_fp16_graphs_on_tensorrt_before_10_12(
    tmp_path, monkeypatch, machine, version, precision, strongly_typed, flags
):
    trt = install(monkeypatch, version=version)
    graph = write_graph(tmp_path / "m.onnx", precision=precision)
    built = engine_from_onnx(graph, PROFILE, tmp_path / "m.engine")
    assert ("create_network", 1 if strongly_typed else 0) in trt.calls
    assert [call[1] for call in trt.calls if call[0] == "set_flag"] == flags
    assert built.manifest.builder_flags == tuple(flags)
    assert built.manifest.strongly_typed is strongly_typed


def test_graph_without_custom_ops_needs_no_plugin_library(tmp_path, monkeypatch, machine):
    machine.unlink()  # not built
    trt = install(monkeypatch)
    graph = write_graph(tmp_path / "hdnet.onnx", precision=None)  # no metadata: fp32
    built = engine_from_onnx(graph, PROFILE, tmp_path / "hdnet.engine")
    assert "load_library" not in call_names(trt)
    assert "plugins_to_serialize" not in call_names(trt)
    assert built.manifest.plugins is None
    assert built.manifest.precision == "fp32"


def test_custom_op_graph_without_plugin_library_says_how_to_build_it(
    tmp_path, monkeypatch, machine
):
    machine.unlink()
    trt = install(monkeypatch)
    graph = write_graph(tmp_path / "aict.onnx", custom_op=True)
    with pytest.raises(HarmonyError, match=r"build_plugins\.sh"):
        engine_from_onnx(graph, PROFILE, tmp_path / "aict.engine")
    assert "Builder" not in call_names(trt)


def test_timing_cache_is_created_loaded_and_saved(tmp_path, monkeypatch, machine):
    trt = install(monkeypatch)
    graph = write_graph(tmp_path / "m.onnx")
    cache = tmp_path / "timing.cache"
    engine_from_onnx(graph, PROFILE, tmp_path / "a.engine", timing_cache=cache, use_cache=False)
    assert ("create_timing_cache", b"") in trt.calls
    assert ("set_timing_cache", False) in trt.calls
    assert cache.read_bytes() == b"+tuned"

    trt = install(monkeypatch)
    engine_from_onnx(graph, PROFILE, tmp_path / "b.engine", timing_cache=cache, use_cache=False)
    assert ("create_timing_cache", b"+tuned") in trt.calls
    assert cache.read_bytes() == b"+tuned+tuned"


def test_mismatched_timing_cache_is_a_clear_error(tmp_path, monkeypatch, machine):
    install(monkeypatch, timing_cache_matches=False)
    graph = write_graph(tmp_path / "m.onnx")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"from another gpu")
    with pytest.raises(HarmonyError, match="timing cache was made on another GPU"):
        engine_from_onnx(graph, PROFILE, tmp_path / "m.engine", timing_cache=cache)
    assert cache.read_bytes() == b"from another gpu"
    assert not (tmp_path / "m.engine").exists()


def test_workspace_limit_goes_to_the_memory_pool(tmp_path, monkeypatch, machine):
    trt = install(monkeypatch)
    graph = write_graph(tmp_path / "m.onnx")
    built = engine_from_onnx(graph, PROFILE, tmp_path / "m.engine", workspace_mib=256)
    assert ("set_memory_pool_limit", "WORKSPACE", 256 << 20) in trt.calls
    assert built.manifest.workspace_bytes == 256 << 20
    assert "--workspace 256" in built.manifest.rebuild_command(tmp_path / "m.engine")


@pytest.mark.parametrize("failure", ["parse", "build"])
def test_failed_parse_or_build_writes_nothing_and_surfaces_messages(
    tmp_path, monkeypatch, machine, failure
):
    if failure == "parse":
        install(monkeypatch, parse_errors=(f"In node 0 ({CASCADED_LUT.name}): plugin not found",))
        expected = rf"could not parse .*\n  In node 0 \({CASCADED_LUT.name}\): plugin not found"
    else:
        install(monkeypatch, build_fails=True)
        expected = "failed to build an engine"
    graph = write_graph(tmp_path / "m.onnx", custom_op=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cache = tmp_path / "timing.cache"
    with pytest.raises(HarmonyError, match=expected):
        engine_from_onnx(graph, PROFILE, out_dir / "m.engine", timing_cache=cache)
    assert list(out_dir.iterdir()) == []
    cache_dir = tmp_path / "cache" / "engines"
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []
    assert not cache.exists()


def test_same_key_reuses_the_cached_engine(tmp_path, monkeypatch, machine):
    install(monkeypatch)
    graph = write_graph(tmp_path / "m.onnx", custom_op=True)
    first = engine_from_onnx(graph, PROFILE, tmp_path / "a.engine")
    assert not first.reused

    trt = install(monkeypatch)
    second = engine_from_onnx(graph, PROFILE, tmp_path / "b.engine")
    assert second.reused and "Builder" not in call_names(trt)
    assert (tmp_path / "b.engine").read_bytes() == (tmp_path / "a.engine").read_bytes()
    assert json.loads(manifest_path(tmp_path / "b.engine").read_text())["cache_key"] == (
        first.manifest.cache_key
    )

    # Anything in the key changes -> a new build (here: the profile).
    trt = install(monkeypatch)
    third = engine_from_onnx(
        graph, profile_from_resolutions(parse_resolutions("512")), tmp_path / "c.engine"
    )
    assert not third.reused and "Builder" in call_names(trt)
    assert third.manifest.cache_key != first.manifest.cache_key


def test_corrupt_cached_engine_is_rebuilt(tmp_path, monkeypatch, machine):
    install(monkeypatch)
    graph = write_graph(tmp_path / "m.onnx")
    first = engine_from_onnx(graph, PROFILE)
    first.path.write_bytes(b"truncated")
    trt = install(monkeypatch)
    again = engine_from_onnx(graph, PROFILE)
    assert not again.reused and "Builder" in call_names(trt)
    assert again.path == first.path and sha256_file(again.path) == again.manifest.engine_sha256


def test_cache_path_matches_what_the_builder_uses(tmp_path, monkeypatch, machine):
    install(monkeypatch, version="10.9.0.34")
    graph = write_graph(tmp_path / "m.onnx", custom_op=True)
    built = engine_from_onnx(graph, PROFILE)
    environment = TrtEnvironment("10.9.0.34", GPU, sha256_file(machine))
    assert engine_cache_path(graph, PROFILE, environment=environment) == built.path
    assert built.path.parent == tmp_path / "cache" / "engines"
    assert built.path.name == f"{built.manifest.cache_key}.engine"


def test_existing_output_is_refused_before_building(tmp_path, monkeypatch, machine):
    trt = install(monkeypatch)
    graph = write_graph(tmp_path / "m.onnx")
    out = tmp_path / "m.engine"
    out.write_bytes(b"keep me")
    with pytest.raises(HarmonyError, match="--force"):
        engine_from_onnx(graph, PROFILE, out)
    assert out.read_bytes() == b"keep me" and trt.calls == []
    engine_from_onnx(graph, PROFILE, out, force=True)
    assert out.read_bytes() != b"keep me"


def test_missing_tensorrt_is_a_harmony_error(tmp_path, monkeypatch, machine):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt raises ImportError
    graph = write_graph(tmp_path / "m.onnx")
    with pytest.raises(
        HarmonyError, match=r"TensorRT is not installed.*harmony-deploy\[tensorrt\]"
    ):
        engine_from_onnx(graph, PROFILE, tmp_path / "m.engine")


BASE_KEY_ARGS = dict(
    onnx_sha256="a" * 64,
    profile=PROFILE,
    precision="fp16",
    plan=BuildPlan(strongly_typed=True),
    environment=TrtEnvironment("10.13.0.35", GPU, "b" * 64),
    workspace_bytes=None,
)


def test_cache_key_is_stable():
    key = engine_cache_key(**BASE_KEY_ARGS)
    assert key == engine_cache_key(**dict(BASE_KEY_ARGS))
    assert len(key) == 32 and int(key, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "c" * 64},
        {"profile": profile_from_resolutions(parse_resolutions("1024,2048"), batch=2)},
        {"profile": profile_from_resolutions(parse_resolutions("2048,1024"))},
        {"precision": "fp32"},
        {"plan": BuildPlan(strongly_typed=False, builder_flags=("FP16",))},
        {"workspace_bytes": 1 << 30},
        {"environment": TrtEnvironment("10.13.2.6", GPU, "b" * 64)},
        {"environment": TrtEnvironment("10.13.0.35", GpuIdentity("Other", "9.0"), "b" * 64)},
        {"environment": TrtEnvironment("10.13.0.35", GpuIdentity(GPU.name, "8.9"), "b" * 64)},
        {"environment": TrtEnvironment("10.13.0.35", GPU, "d" * 64)},
        {"environment": TrtEnvironment("10.13.0.35", GPU, None)},
        {
            "environment": TrtEnvironment(
                "10.13.0.35", GPU, "b" * 64, plugin_versions=((CASCADED_LUT.name, "2"),)
            )
        },
    ],
)
def test_cache_key_changes_with_every_ingredient(change):
    assert engine_cache_key(**{**BASE_KEY_ARGS, **change}) != engine_cache_key(**BASE_KEY_ARGS)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "c"))
    assert engine_cache_dir() == tmp_path / "c" / "engines"
    monkeypatch.delenv("HARMONY_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert engine_cache_dir() == tmp_path / "xdg" / "harmony" / "engines"


def test_onnx_facts_read_precision_plugins_and_io(tmp_path):
    facts = onnx_facts(write_graph(tmp_path / "m.onnx", precision="fp16", custom_op=True))
    assert facts.precision == "fp16"
    assert facts.plugins == (CASCADED_LUT.name,)
    assert facts.inputs == {"image": (None, 3, None, None), "mask": (None, 1, None, None)}
    assert facts.outputs == ("harmonized",)
    assert onnx_facts(write_graph(tmp_path / "plain.onnx", precision=None)).precision == "fp32"
    with pytest.raises(HarmonyError, match=r"declares precision 'fp8'.*fp32, fp16"):
        onnx_facts(write_graph(tmp_path / "bad.onnx", precision="fp8"))
    with pytest.raises(HarmonyError, match=r"is int8: INT8 needs a graph with calibrated Q/DQ"):
        onnx_facts(write_graph(tmp_path / "int8.onnx", precision="int8"))
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(HarmonyError, match="not a readable ONNX graph"):
        onnx_facts(tmp_path / "junk.onnx")


def test_check_graph_rejects_wrong_io_and_fixed_sizes_outside_the_profile(tmp_path):
    wrong = onnx_facts(write_graph(tmp_path / "w.onnx", inputs=("img", "mask")))
    with pytest.raises(HarmonyError, match=r"expected inputs \['image', 'mask'\]"):
        check_graph(wrong, PROFILE, "w.onnx")
    fixed = onnx_facts(write_graph(tmp_path / "f.onnx", static_hw=(1024, 1024)))
    check_graph(fixed, profile_from_resolutions(parse_resolutions("1024")), "f.onnx")
    with pytest.raises(HarmonyError, match=r"fixed at \?x3x1024x1024.*max shape is 1x3x2048x2048"):
        check_graph(fixed, PROFILE, "f.onnx")


def test_rebuild_command_reproduces_the_profile(tmp_path, monkeypatch, machine):
    install(monkeypatch)
    profile = profile_from_shapes(
        "image:1x3x512x768,mask:1x1x512x768",
        "image:2x3x1024x1024,mask:2x1x1024x1024",
        "image:4x3x2048x2048,mask:4x1x2048x2048",
    )
    graph = write_graph(tmp_path / "m.onnx")
    built = engine_from_onnx(graph, profile, tmp_path / "m.engine")
    command = built.manifest.rebuild_command(tmp_path / "m.engine").split()
    shapes = {command[i]: command[i + 1] for i in range(len(command) - 1)}
    rebuilt = profile_from_shapes(
        shapes["--min-shapes"], shapes["--opt-shapes"], shapes["--max-shapes"]
    )
    assert rebuilt == profile
    assert dataclasses.replace(built.manifest).profiles == (profile,)
