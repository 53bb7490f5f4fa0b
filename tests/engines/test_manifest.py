"""The engine manifest: round trip, verification against the engine and the machine, and a
precise message for every kind of mismatch."""

import dataclasses
import json
import shlex

import pytest

from harmony.contract import CASCADED_LUT, ENGINE_MANIFEST_SCHEMA
from harmony.engines.manifest import (
    manifest_mismatches,
    manifest_path,
    read_manifest,
    verified_manifest,
)
from harmony.engines.trt_env import GpuIdentity, TrtEnvironment
from harmony.errors import HarmonyError
from tests.engines.fakes import ENVIRONMENT, GPU, make_manifest, write_engine


def test_round_trip_through_the_file(tmp_path):
    engine = tmp_path / "aict.engine"
    manifest = make_manifest(workspace_bytes=1 << 30, builder_flags=("FP16",))
    written = manifest.write(engine)
    assert written == manifest_path(engine) == tmp_path / "aict.engine.json"
    data = json.loads(written.read_text())
    assert data["schema"] == ENGINE_MANIFEST_SCHEMA
    assert data["runtime"] == {"name": "tensorrt", "version": "10.13.0.35"}
    assert data["gpu"] == {"name": GPU.name, "compute_capability": "9.0"}
    assert data["compute_capabilities"] == ["9.0"]
    assert data["build"]["fp32_islands"] == {"SOFTMAX": [10, 10], "PLUGIN_V3": [1, 1]}
    assert data["plugins"]["versions"] == {CASCADED_LUT.name: "1"}
    assert data["profiles"][0]["max"] == {"image": [1, 3, 2048, 2048], "mask": [1, 1, 2048, 2048]}
    assert read_manifest(engine) == manifest
    no_plugins = make_manifest(plugins=None)
    no_plugins.write(engine, force=True)
    assert read_manifest(engine) == no_plugins
    rtx = make_manifest(gpu=None, runtime="tensorrt-rtx", compute_capabilities=("8.6", "8.9"))
    rtx.write(engine, force=True)
    assert read_manifest(engine) == rtx
    with pytest.raises(HarmonyError, match="--force"):
        manifest.write(engine)


def test_matching_environment_passes(tmp_path):
    engine = write_engine(tmp_path / "aict.engine")
    assert verified_manifest(engine, environment=ENVIRONMENT) == read_manifest(engine)
    assert manifest_mismatches(make_manifest(), ENVIRONMENT) == []


def test_a_replaced_engine_is_refused(tmp_path):
    engine = write_engine(tmp_path / "aict.engine")
    engine.write_bytes(b"another engine")
    with pytest.raises(HarmonyError, match="not the one its manifest describes"):
        verified_manifest(engine, environment=ENVIRONMENT)


@pytest.mark.parametrize(
    ("environment", "what", "expected", "found"),
    [
        (
            dataclasses.replace(ENVIRONMENT, runtime_version="10.14.1.48"),
            "runtime version",
            "10.13.0.35",
            "10.14.1.48",
        ),
        (
            dataclasses.replace(ENVIRONMENT, gpu=GpuIdentity(GPU.name, "8.9")),
            "GPU compute capability",
            "9.0",
            "8.9",
        ),
        (
            dataclasses.replace(ENVIRONMENT, gpu=GpuIdentity("NVIDIA H200", "9.0")),
            "GPU name",
            GPU.name,
            "NVIDIA H200",
        ),
        (
            dataclasses.replace(ENVIRONMENT, plugin_sha256="b" * 64),
            "plugin library SHA-256",
            "a" * 64,
            "b" * 64,
        ),
        (
            dataclasses.replace(ENVIRONMENT, plugin_sha256=None),
            "plugin library SHA-256",
            "a" * 64,
            "(not built)",
        ),
        (
            dataclasses.replace(ENVIRONMENT, plugin_versions=((CASCADED_LUT.name, "2"),)),
            f"plugin {CASCADED_LUT.name} version",
            "1",
            "2",
        ),
        (
            dataclasses.replace(ENVIRONMENT, plugin_namespace="other"),
            "plugin namespace",
            "harmony",
            "other",
        ),
    ],
)
def test_each_mismatch_names_what_differs_and_how_to_rebuild(
    tmp_path, environment, what, expected, found
):
    engine = write_engine(tmp_path / "aict.engine")
    with pytest.raises(HarmonyError) as info:
        verified_manifest(engine, environment=environment)
    message = str(info.value)
    assert f"  {what}: engine built with {expected}, found {found}\n" in message
    assert message.count("engine built with") == 1
    command = message.split("Rebuild it on this machine with:\n  ")[1]
    assert shlex.split(command) == [
        "harmony",
        "build",
        "/models/my aict.onnx",
        "-o",
        str(engine),
        "--runtime",
        "tensorrt",
        "--min-shapes",
        "image:1x3x1024x1024,mask:1x1x1024x1024",
        "--opt-shapes",
        "image:1x3x1024x1024,mask:1x1x1024x1024",
        "--max-shapes",
        "image:1x3x2048x2048,mask:1x1x2048x2048",
        "--force",
    ]


RTX_MANIFEST = dict(runtime="tensorrt-rtx", runtime_version="1.7.1.116", gpu=None)
RTX_HOST = dataclasses.replace(
    ENVIRONMENT, runtime="tensorrt-rtx", runtime_version="1.7.1.116", gpu=GpuIdentity("RTX", "8.9")
)


@pytest.mark.parametrize(
    ("built", "host", "expected", "command"),
    [
        (  # a TensorRT engine where TensorRT-RTX runs
            {},
            RTX_HOST,
            "  runtime: engine built with tensorrt, found tensorrt-rtx\n",
            "--runtime tensorrt-rtx --cc 8.9",
        ),
        (  # the reverse
            {**RTX_MANIFEST, "compute_capabilities": ("8.6", "8.9")},
            ENVIRONMENT,
            "  runtime: engine built with tensorrt-rtx, found tensorrt\n",
            "--runtime tensorrt --min-shapes",
        ),
        (  # a GPU outside the targets
            {**RTX_MANIFEST, "compute_capabilities": ("8.6", "12.0")},
            dataclasses.replace(RTX_HOST, gpu=GpuIdentity("NVIDIA GeForce RTX 4090", "8.9")),
            "  GPU compute capability: engine built with 8.6 or 12.0, found 8.9 (NVIDIA GeForce "
            "RTX 4090)\n",
            "--runtime tensorrt-rtx --cc 8.9",
        ),
    ],
)
def test_runtime_and_target_mismatches_say_how_to_rebuild_here(
    tmp_path, built, host, expected, command
):
    engine = write_engine(tmp_path / "aict.engine", **built)
    with pytest.raises(HarmonyError) as info:
        verified_manifest(engine, environment=host)
    message = str(info.value)
    assert expected in message
    assert command in message.split("Rebuild it on this machine with:\n  ")[1]


def test_rtx_engine_runs_on_any_gpu_among_its_targets_and_embedded_plugins_need_no_library(
    tmp_path,
):
    built = {**RTX_MANIFEST, "compute_capabilities": ("8.6", "8.9", "12.0")}
    engine = write_engine(tmp_path / "aict.engine", **built)
    assert verified_manifest(engine, environment=RTX_HOST).runtime == "tensorrt-rtx"
    # Another plugin library here: refused, unless the engine carries its own.
    other_library = dataclasses.replace(RTX_HOST, plugin_sha256="f" * 64)
    with pytest.raises(HarmonyError, match="plugin library SHA-256"):
        verified_manifest(engine, environment=other_library)
    plugins = dataclasses.replace(make_manifest().plugins, embedded=True)
    write_engine(engine, **built, plugins=plugins)
    assert verified_manifest(engine, environment=other_library).plugins.embedded


def test_all_mismatches_are_listed_together():
    environment = TrtEnvironment(
        "tensorrt", "11.0.0.1", GpuIdentity("RTX 4090", "8.9"), (), "b" * 64
    )
    found = [what for what, _, _ in manifest_mismatches(make_manifest(), environment)]
    assert found == [
        "runtime version",
        "GPU compute capability",
        "GPU name",
        "plugin library SHA-256",
    ]


def test_engine_without_plugins_ignores_the_plugin_library(tmp_path):
    engine = write_engine(tmp_path / "hdnet.engine", plugins=None)
    environment = dataclasses.replace(ENVIRONMENT, plugin_sha256=None)
    assert verified_manifest(engine, environment=environment).plugins is None


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(HarmonyError, match=r"has no manifest: expected .*aict\.engine\.json"):
        read_manifest(tmp_path / "aict.engine")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "corrupt"),
        (json.dumps({"schema": ENGINE_MANIFEST_SCHEMA}), r"missing key '\w+'"),
        ('{"schema": "harmony-engine-manifest/1"}', "unsupported schema"),
        ('{"schema": "harmony-engine-manifest/9"}', "unsupported schema"),
        ("[]", "corrupt"),
    ],
)
def test_corrupt_manifest_is_a_clear_error(tmp_path, content, problem):
    engine = tmp_path / "aict.engine"
    manifest_path(engine).write_text(content)
    with pytest.raises(HarmonyError, match=problem) as info:
        read_manifest(engine)
    assert "harmony build" in str(info.value)


def test_wrongly_typed_fields_are_corrupt(tmp_path):
    engine = tmp_path / "aict.engine"
    data = make_manifest().to_dict()
    data["gpu"]["compute_capability"] = 9.0
    manifest_path(engine).write_text(json.dumps(data))
    with pytest.raises(HarmonyError, match=r"corrupt .*expected a string, got 9\.0"):
        read_manifest(engine)
    data = make_manifest().to_dict()
    data["profiles"] = []
    manifest_path(engine).write_text(json.dumps(data))
    with pytest.raises(HarmonyError, match="no optimization profile"):
        read_manifest(engine)
