"""`harmony build`: argument handling, the no-TensorRT message, and a build with a fake TensorRT."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from harmony.cli.main import cli
from harmony.engines import build as engine_module
from harmony.engines import trt_env
from harmony.engines.manifest import read_manifest
from harmony.engines.trt_env import GpuIdentity
from tests.engines.fakes import make_fake_tensorrt, write_graph


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(cli, ["build", *map(str, args)])


def test_without_tensorrt_exits_1_with_install_hint(runner, tmp_path, monkeypatch):
    for runtime in trt_env.RUNTIMES.values():
        monkeypatch.setitem(sys.modules, runtime.module, None)
    graph = write_graph(tmp_path / "m.onnx")
    result = invoke(runner, graph, "-o", tmp_path / "m.engine")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: TensorRT is not installed")
    assert "pip install 'harmony-deploy[tensorrt]'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.engine").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--res", "big"], "bad resolution 'big'"),
        (["--res", "1024,1x2"], "bad resolution '1x2'"),
        (["--batch", "0"], "batch must be a positive integer"),
        (["--min-shapes", "image:1x3x64x64,mask:1x1x64x64"], "also needs --opt-shapes"),
        (
            ["--res", "64", "--min-shapes", "image:1x3x64x64,mask:1x1x64x64"],
            "not both",
        ),
        (
            [
                "--min-shapes",
                "image:1x3x64x64,mask:1x1x32x64",
                "--opt-shapes",
                "image:1x3x64x64,mask:1x1x64x64",
                "--max-shapes",
                "image:1x3x64x64,mask:1x1x64x64",
            ],
            "must share batch, height and width",
        ),
    ],
)
def test_bad_profile_options_exit_1_before_anything_else(
    runner, tmp_path, monkeypatch, args, message
):
    def no_tensorrt_please():
        raise AssertionError("TensorRT must not be touched before the options are checked")

    monkeypatch.setattr(engine_module, "import_runtime", no_tensorrt_please)
    monkeypatch.setattr(trt_env, "import_runtime", no_tensorrt_please)
    result = invoke(runner, tmp_path / "missing.onnx", *args)
    # A malformed value is a usage error (click: exit 2), a bad combination a HarmonyError (1).
    assert result.exit_code == (2 if args[0] == "--res" and len(args) == 2 else 1), result.output
    assert message in result.output and "Traceback" not in result.output


def test_missing_onnx_file(runner, tmp_path):
    result = invoke(runner, tmp_path / "missing.onnx")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_build_then_reuse_then_refuse_to_overwrite(runner, tmp_path, monkeypatch):
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "libharmony_plugins.so").write_bytes(b"fake library")
    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(plugin_dir))
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(trt_env, "gpu_identity", lambda: GpuIdentity("Fake GPU", "8.9"))
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("10.8.0.43"))
    graph = write_graph(tmp_path / "aict.onnx", precision="fp16", custom_op=True)
    engine = tmp_path / "aict.engine"
    args = [graph, "-o", engine, "--res", "512,1024", "--timing-cache", tmp_path / "t.cache"]

    built = invoke(runner, *args)
    assert built.exit_code == 0, built.output
    assert built.output.startswith(
        f"built {engine}\n  runtime    TensorRT 10.8.0.43, for Fake GPU (sm 8.9)\n"
        "  graph      fp16, batch 1, 512x512 (opt 512x512) .. 1024x1024\n"
    )
    manifest = read_manifest(engine)
    assert manifest.builder_flags == ("FP16",) and not manifest.strongly_typed
    assert (tmp_path / "t.cache").is_file()

    refused = invoke(runner, *args)
    assert refused.exit_code == 1 and "--force" in refused.output

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("10.8.0.43"))
    reused = invoke(runner, *args, "--force")
    assert reused.exit_code == 0, reused.output
    assert reused.output.startswith(f"reused cached engine {engine}")
    assert sys.modules["tensorrt"].calls == []


def test_build_is_listed_in_help(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0 and "build" in result.output
    result = runner.invoke(cli, ["build", "--help"])
    assert "--min-shapes" in result.output and "--timing-cache" in result.output
