"""TrtRunner: availability where TensorRT or CUDA is missing, and the checks before loading."""

from __future__ import annotations

import hashlib
import sys

import pytest
import torch

from harmony.errors import HarmonyError
from harmony.runtime.manifest import read_manifest
from harmony.runtime.trt_env import GpuIdentity, TrtEnvironment
from harmony.runtime.trt_runner import TrtRunner, verified_manifest
from tests.helpers import blob_mask
from tests.runtime.fakes import ENVIRONMENT, make_fake_tensorrt, make_manifest, write_graph


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt raises ImportError


def test_unavailable_without_tensorrt_says_why_and_how_to_install(no_tensorrt):
    available = TrtRunner.availability("cuda")
    assert not available.ok
    assert "TensorRT is not installed" in available.reason
    assert "pip install 'harmony-deploy[tensorrt]'" in available.reason


def test_unavailable_on_cpu():
    available = TrtRunner.availability("cpu")
    assert not available.ok and "CUDA devices only" in available.reason


def test_unavailable_without_a_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    available = TrtRunner.availability("cuda")
    assert not available.ok and "no CUDA device" in available.reason


def test_activate_without_tensorrt_is_a_harmony_error(no_tensorrt, tmp_path):
    runner = TrtRunner(tmp_path / "aict.engine", precision="fp16")
    with pytest.raises(HarmonyError, match="trt backend unavailable: TensorRT is not installed"):
        runner.activate()
    assert not runner.is_active


def test_precision_defaults_to_the_manifest_and_a_missing_one_is_an_error(tmp_path):
    engine = tmp_path / "aict.engine"
    with pytest.raises(HarmonyError, match="does not exist; build it with `harmony build"):
        TrtRunner(engine)
    engine.write_bytes(b"serialized engine")
    with pytest.raises(HarmonyError, match="has no manifest"):
        TrtRunner(engine)
    make_manifest(precision="int8").write(engine)
    runner = TrtRunner(engine)
    assert runner.precision == "int8" and runner.backend == "trt"
    assert runner.name == "trt:aict.engine" and runner.memory_bytes() is None


def write_engine(tmp_path, content: bytes = b"serialized engine"):
    engine = tmp_path / "aict.engine"
    engine.write_bytes(content)
    make_manifest(engine_sha256=hashlib.sha256(content).hexdigest()).write(engine)
    return engine


def test_verified_manifest_accepts_the_matching_setup(tmp_path):
    engine = write_engine(tmp_path)
    assert verified_manifest(engine, environment=ENVIRONMENT) == read_manifest(engine)


def test_verified_manifest_refuses_another_setup_with_the_rebuild_command(tmp_path):
    engine = write_engine(tmp_path)
    elsewhere = TrtEnvironment("10.13.0.35", GpuIdentity("NVIDIA A100", "8.0"), "a" * 64)
    with pytest.raises(HarmonyError) as info:
        verified_manifest(engine, environment=elsewhere)
    message = str(info.value)
    assert "GPU compute capability: engine built with 9.0, found 8.0" in message
    assert "GPU name: engine built with NVIDIA H100 80GB HBM3, found NVIDIA A100" in message
    assert f"-o {engine}" in message and "--force" in message


def test_verified_manifest_refuses_a_replaced_engine(tmp_path):
    engine = write_engine(tmp_path)
    engine.write_bytes(b"another engine")
    with pytest.raises(HarmonyError, match="not the one its manifest describes"):
        verified_manifest(engine, environment=ENVIRONMENT)


@pytest.mark.cuda
@pytest.mark.tensorrt
def test_engine_runs_like_the_graph(tmp_path, monkeypatch):
    """Real TensorRT on a GPU: build a plugin-free graph and run it (skips elsewhere)."""
    available = TrtRunner.availability("cuda")
    if not available.ok:
        pytest.skip(available.reason)
    from harmony.runtime.engine import engine_from_onnx
    from harmony.runtime.profiles import profile_from_resolutions

    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "cache"))
    graph = write_graph(tmp_path / "mul.onnx")  # harmonized = image * mask
    built = engine_from_onnx(graph, profile_from_resolutions("64,128"), tmp_path / "mul.engine")
    image = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    mask = blob_mask(96, 80)
    with TrtRunner(built.path) as runner:
        out = runner.infer(image, mask)
        runner.synchronize()
        assert runner.memory_bytes() > 0
        with pytest.raises(HarmonyError, match="outside the profile"):
            runner.infer(torch.rand(1, 3, 256, 256), blob_mask(256, 256))
    assert out.device.type == "cuda" and out.dtype == torch.float32
    torch.testing.assert_close(out.cpu(), image * mask)
