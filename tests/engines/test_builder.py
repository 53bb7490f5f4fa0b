"""Engine building with standard TensorRT, through a fake `tensorrt` module (the builder needs a
GPU): its version-dependent choices and what is asked of it. What TensorRT-RTX's CPU builder can
answer is tested against the real one in test_rtx_builder.py."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harmony.contract import CASCADED_LUT
from harmony.engines import trt_env
from harmony.engines.build import BuildOptions, engine_from_onnx
from harmony.engines.builder import BuildPlan, build_plan, check_graph, onnx_facts
from harmony.engines.cache import engine_cache_dir, engine_cache_key
from harmony.engines.manifest import read_manifest
from harmony.engines.profiles import (
    parse_resolutions,
    profile_from_resolutions,
)
from harmony.engines.trt_env import RUNTIMES, GpuIdentity, TrtEnvironment
from harmony.errors import HarmonyError
from harmony.files import sha256_file
from tests.engines.fakes import call_names, make_fake_tensorrt, write_graph

REPO_ROOT = Path(__file__).resolve().parents[2]

TENSORRT = RUNTIMES["tensorrt"]
GPU = GpuIdentity(name="Fake GPU 80GB", compute_capability="9.0")
PROFILE = profile_from_resolutions(parse_resolutions("1024,2048"))


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A fake GPU, a fake plugin library and a fresh engine cache."""
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    library = plugin_dir / "libharmony_plugins.so"
    library.write_bytes(b"\x7fELF fake plugin library")
    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(plugin_dir))
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(trt_env, "gpu_identity", lambda: GPU)
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
    assert build_plan(TENSORRT, version, precision) == expected


def test_build_plan_rejects_old_tensorrt_unknown_precision_and_targets():
    with pytest.raises(HarmonyError, match=r"TensorRT 8\.6 is too old.*>= 10"):
        build_plan(TENSORRT, (8, 6), "fp32")
    with pytest.raises(HarmonyError, match="unknown precision 'bf8'"):
        build_plan(TENSORRT, (10, 8), "bf8")
    with pytest.raises(HarmonyError, match="--cc applies to tensorrt-rtx only"):
        build_plan(TENSORRT, (10, 8), "fp32", ("8.6",))


def test_build_on_tensorrt_11_is_strongly_typed_and_embeds_the_plugin_when_asked(
    tmp_path, monkeypatch, machine
):
    trt = install(monkeypatch, version="11.1.0.7")
    graph = write_graph(tmp_path / "aict.onnx", precision="fp16", custom_op=True)
    out = tmp_path / "out" / "aict.engine"
    built = engine_from_onnx(graph, PROFILE, out, BuildOptions(embed_plugins=True))

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
    assert (manifest.runtime, manifest.runtime_version) == ("tensorrt", "11.1.0.7")
    assert manifest.gpu == GPU and manifest.compute_capabilities == ("9.0",)
    assert manifest.precision == "fp16"
    assert manifest.strongly_typed and manifest.builder_flags == ()
    assert manifest.onnx_sha256 == sha256_file(graph)
    assert manifest.engine_sha256 == sha256_file(out)
    assert manifest.plugins is not None
    assert manifest.plugins.library_sha256 == sha256_file(machine)
    assert manifest.plugins.versions == {CASCADED_LUT.name: "1"}
    assert manifest.plugins.namespace == "harmony"
    assert manifest.plugins.embedded
    assert manifest.profiles == (PROFILE,)

    trt = install(monkeypatch, version="11.1.0.7")
    engine_from_onnx(graph, PROFILE, tmp_path / "loads_the_library.engine")
    assert "plugins_to_serialize" not in call_names(trt)


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


def test_timing_cache_is_created_loaded_and_saved(tmp_path, monkeypatch, machine):
    """Standard TensorRT: a missing cache file is created, an existing one is loaded into the
    build and written back with what the build added."""
    trt = install(monkeypatch)
    graph = write_graph(tmp_path / "m.onnx")
    cache = tmp_path / "timing.cache"
    engine_from_onnx(
        graph, PROFILE, tmp_path / "a.engine", BuildOptions(timing_cache=cache), use_cache=False
    )
    assert ("create_timing_cache", b"") in trt.calls
    assert ("set_timing_cache", False) in trt.calls
    assert cache.read_bytes() == b"+tuned"

    trt = install(monkeypatch)
    engine_from_onnx(
        graph, PROFILE, tmp_path / "b.engine", BuildOptions(timing_cache=cache), use_cache=False
    )
    assert ("create_timing_cache", b"+tuned") in trt.calls
    assert cache.read_bytes() == b"+tuned+tuned"


def test_mismatched_timing_cache_is_a_clear_error(tmp_path, monkeypatch, machine):
    install(monkeypatch, timing_cache_matches=False)
    graph = write_graph(tmp_path / "m.onnx")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"from another gpu")
    with pytest.raises(HarmonyError, match="timing cache was made on another GPU"):
        engine_from_onnx(graph, PROFILE, tmp_path / "m.engine", BuildOptions(timing_cache=cache))
    assert cache.read_bytes() == b"from another gpu"
    assert not (tmp_path / "m.engine").exists()


def test_workspace_limit_goes_to_the_memory_pool(tmp_path, monkeypatch, machine):
    trt = install(monkeypatch)
    graph = write_graph(tmp_path / "m.onnx")
    built = engine_from_onnx(graph, PROFILE, tmp_path / "m.engine", BuildOptions(workspace_mib=256))
    assert ("set_memory_pool_limit", "WORKSPACE", 256 << 20) in trt.calls
    assert built.manifest.workspace_bytes == 256 << 20
    assert "--workspace 256" in built.manifest.rebuild_command(tmp_path / "m.engine")


def test_failed_build_writes_nothing(tmp_path, monkeypatch, machine):
    install(monkeypatch, build_fails=True)
    expected = "failed to build an engine"
    graph = write_graph(tmp_path / "m.onnx", custom_op=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cache = tmp_path / "timing.cache"
    with pytest.raises(HarmonyError, match=expected):
        engine_from_onnx(graph, PROFILE, out_dir / "m.engine", BuildOptions(timing_cache=cache))
    assert list(out_dir.iterdir()) == []
    cache_dir = tmp_path / "cache" / "engines"
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []
    assert not cache.exists()


def test_missing_tensorrt_is_a_harmony_error(tmp_path, monkeypatch, machine):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt raises ImportError
    graph = write_graph(tmp_path / "m.onnx")
    with pytest.raises(
        HarmonyError, match=r"TensorRT is not installed.*harmony-deploy\[tensorrt\]"
    ):
        engine_from_onnx(graph, PROFILE, tmp_path / "m.engine", BuildOptions(runtime="tensorrt"))


BASE_KEY_ARGS = dict(
    onnx_sha256="a" * 64,
    profile=PROFILE,
    precision="fp16",
    plan=BuildPlan(strongly_typed=True),
    environment=TrtEnvironment("tensorrt", "10.13.0.35", GPU, ("9.0",), "b" * 64),
    workspace_bytes=None,
)


def _environment(**changes) -> TrtEnvironment:
    return dataclasses.replace(BASE_KEY_ARGS["environment"], **changes)


def test_cache_key_is_stable_across_processes():
    """The key depends on what was built, not on the process (hash seed, dict order)."""
    key = engine_cache_key(**BASE_KEY_ARGS)
    program = (
        "from tests.engines.test_builder import BASE_KEY_ARGS; "
        "from harmony.engines.cache import engine_cache_key; "
        "print(engine_cache_key(**BASE_KEY_ARGS))"
    )
    other = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == key
    assert len(key) == 32 and int(key, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "c" * 64},
        {"profile": profile_from_resolutions(parse_resolutions("1024,2048"), batch=2)},
        {"profile": profile_from_resolutions(parse_resolutions("2048,1024"))},
        {"precision": "fp32"},
        {"plan": BuildPlan(strongly_typed=False, builder_flags=("FP16",))},
        {"plan": BuildPlan(strongly_typed=True, embed_plugins=True)},
        {"plan": BuildPlan(strongly_typed=True, compute_capabilities=("8.6",))},
        {"workspace_bytes": 1 << 30},
        {"environment": _environment(runtime="tensorrt-rtx")},
        {"environment": _environment(runtime_version="10.13.2.6")},
        {"environment": _environment(gpu=GpuIdentity("Other", "9.0"))},
        {"environment": _environment(gpu=GpuIdentity(GPU.name, "8.9"))},
        {"environment": _environment(gpu=None, targets=("8.6", "8.9"))},
        {"environment": _environment(plugin_sha256="d" * 64)},
        {"environment": _environment(plugin_sha256=None)},
        {"environment": _environment(plugin_versions=((CASCADED_LUT.name, "2"),))},
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
    with pytest.raises(HarmonyError, match=r"declares precision 'fp8'.*fp32, fp16, int8"):
        onnx_facts(write_graph(tmp_path / "bad.onnx", precision="fp8"))
    assert onnx_facts(write_graph(tmp_path / "q.onnx", precision="int8")).precision == "int8"
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
