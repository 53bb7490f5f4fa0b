"""TrtRunner: availability where TensorRT or CUDA is missing, and the checks before loading."""

from __future__ import annotations

import sys

import pytest
import torch

from harmony.engines.trt_env import RUNTIMES, get_runtime
from harmony.errors import HarmonyError
from harmony.runtime.backends import get_backend
from harmony.runtime.sources import describe
from harmony.runtime.trt_runner import TrtRunner
from tests.engines.fakes import make_fake_tensorrt, write_engine, write_graph
from tests.helpers import blob_mask


@pytest.fixture
def no_tensorrt(monkeypatch):
    for runtime in RUNTIMES.values():  # importing them raises ImportError
        monkeypatch.setitem(sys.modules, runtime.module, None)


def test_unavailable_without_tensorrt_says_why_and_how_to_install(no_tensorrt):
    available = TrtRunner.availability("cuda")
    assert not available.ok
    assert "neither TensorRT nor TensorRT-RTX is installed" in available.reason
    assert "pip install 'harmony-deploy[tensorrt]'" in available.reason
    assert "pip install 'harmony-deploy[tensorrt-rtx]'" in available.reason


def test_unavailable_on_cpu():
    available = TrtRunner.availability("cpu")
    assert not available.ok and "CUDA devices only" in available.reason


def test_unavailable_without_a_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    available = TrtRunner.availability("cuda")
    assert not available.ok and "no CUDA device" in available.reason


def test_activate_without_tensorrt_is_a_harmony_error(no_tensorrt, tmp_path):
    runner = TrtRunner(write_engine(tmp_path / "aict.engine"))
    with pytest.raises(HarmonyError, match="trt backend unavailable: neither TensorRT nor"):
        runner.activate()
    assert not runner.is_active


def test_the_engine_is_read_on_activation_and_refused_from_its_manifest(tmp_path):
    engine = tmp_path / "aict.engine"
    runner = TrtRunner(engine)  # reads nothing
    assert runner.name == "trt:aict.engine" and runner.precision is None
    assert runner.memory_bytes() is None
    with pytest.raises(HarmonyError, match="does not exist; build it with `harmony build"):
        describe(engine)
    engine.write_bytes(b"serialized engine")
    with pytest.raises(HarmonyError, match="has no manifest"):
        describe(engine)
    write_engine(engine)  # an fp16 engine, profile 1024..2048
    source = describe(engine)
    assert (source.kind, source.precision, source.target) == ("engine", "fp16", "trt")
    refusal = get_backend("trt").refusal(source, None, "fp32", as_is=True)
    assert "built from a fp16 graph and runs at that precision only" in refusal
    write_engine(engine, precision="int4")
    with pytest.raises(HarmonyError, match=r"declares precision 'int4'; expected one of fp32"):
        describe(engine)


@pytest.mark.cuda
@pytest.mark.tensorrt
def test_engine_runs_like_the_graph(tmp_path, monkeypatch):
    """Real TensorRT or TensorRT-RTX on a GPU: build a plugin-free graph and run it (skips
    elsewhere)."""
    available = TrtRunner.availability("cuda")
    if not available.ok:
        pytest.skip(available.reason)
    from harmony.engines.build import BuildOptions, engine_from_onnx
    from harmony.engines.profiles import parse_resolutions, profile_from_resolutions

    runtime = get_runtime()
    targets = ()
    if runtime.builds_without_gpu:  # TensorRT-RTX: build for this GPU, if it is one of its own
        major, minor = torch.cuda.get_device_capability()
        targets = (f"{major}.{minor}",)
        if targets[0] not in runtime.compute_capabilities:
            pytest.skip(f"{runtime.title} does not run on compute capability {targets[0]}")
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "cache"))
    graph = write_graph(tmp_path / "mul.onnx")  # harmonized = image * mask
    built = engine_from_onnx(
        graph,
        profile_from_resolutions(parse_resolutions("64,128")),
        tmp_path / "mul.engine",
        BuildOptions(compute_capabilities=targets),
    )
    image = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    mask = blob_mask(96, 80)
    with TrtRunner(built.path) as runner:
        out = runner.infer(image, mask)
        runner.synchronize()
        assert runner.memory_bytes() > 0
        with pytest.raises(HarmonyError, match="the optimization profile of"):
            runner.infer(torch.rand(1, 3, 256, 256), blob_mask(256, 256))
    assert out.device.type == "cuda" and out.dtype == torch.float32
    torch.testing.assert_close(out.cpu(), image * mask)
