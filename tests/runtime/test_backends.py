"""`Backend.refusal`: the one answer to "can this backend run this model here, and if not, why and
what to do", for every kind of model against every kind of backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harmony.errors import HarmonyError
from harmony.runtime.backends import get_backend, runner_for
from harmony.runtime.sources import ModelSource, describe

CHECKPOINT = ModelSource(Path("m.pth"), "checkpoint")
ORT_FP32 = ModelSource(Path("m.ort.fp32.onnx"), "onnx", "aict", precision="fp32", target="ort")
TRT_FP16 = ModelSource(Path("m.trt.fp16.onnx"), "onnx", "aict", precision="fp16", target="trt")
ENGINE_FP16 = ModelSource(Path("m.engine"), "engine", precision="fp16", target="trt")


@pytest.mark.parametrize(
    ("backend", "source", "precision", "as_is", "expected"),
    [
        # checkpoints: every backend prepares from one; only torch runs one as it is
        ("torch", CHECKPOINT, "fp32", True, None),
        ("ort", CHECKPOINT, "fp16", False, None),
        ("ort", CHECKPOINT, None, True, "export it first: harmony-export MODEL --target ort"),
        ("trt", CHECKPOINT, None, True, "--target trt --engine MODEL.engine"),
        # graphs: their own precision and target only
        ("ort", ORT_FP32, None, True, None),
        ("ort", ORT_FP32, "fp32", False, None),
        ("ort", ORT_FP32, "fp16", False, "is a fp32 graph and runs at that precision only"),
        ("ort", ORT_FP32, "int8", True, "harmony-export CHECKPOINT --target ort --int8"),
        ("ort", TRT_FP16, None, True, "trt-target graph; the ort backend runs ort-target graphs"),
        ("ort-custom", ORT_FP32, None, True, "run it with --backend ort"),
        ("torch", ORT_FP32, "fp32", False, "runs checkpoints, not a .onnx graph; pass the"),
        ("trt", ORT_FP32, None, False, "export one with --target trt"),
        ("trt", TRT_FP16, None, False, None),  # an engine is built from it
        ("trt", TRT_FP16, None, True, "harmony build MODEL.onnx -o MODEL.engine"),
        # engines: the trt backend, at their own precision
        ("trt", ENGINE_FP16, None, True, None),
        ("trt", ENGINE_FP16, "fp32", True, "built from a fp16 graph and runs at that precision"),
        ("ort", ENGINE_FP16, None, True, "runs .onnx graphs, not an engine"),
    ],
)
def test_the_model_is_refused_with_what_to_do(backend, source, precision, as_is, expected):
    """device None: the model alone (what preparing an artifact checks)."""
    reason = get_backend(backend).refusal(source, None, precision, as_is=as_is)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_the_environment_is_checked_before_the_model():
    torch_backend = get_backend("torch")
    reason = torch_backend.refusal(CHECKPOINT, "cpu", "fp16")
    assert reason == "torch backend unavailable: fp16 in PyTorch needs a CUDA device"
    reason = torch_backend.refusal(CHECKPOINT, "cpu", "int8")
    assert reason.startswith("torch backend unavailable: int8 is a graph precision")
    reason = get_backend("trt").refusal(ENGINE_FP16, "cpu")
    assert reason == "trt backend unavailable: it runs on cuda, not cpu"
    if not torch.cuda.is_available():
        assert "no CUDA device" in torch_backend.refusal(None, "cuda")


def test_runner_for_refuses_before_the_runner_exists(exported, tmp_path):
    graph, _ = exported("hdnet-lite", "ort", "fp32")
    with pytest.raises(HarmonyError, match=r"is a fp32 graph and runs at that precision only"):
        runner_for(graph, precision="fp16")
    with pytest.raises(HarmonyError, match=r"cannot run the checkpoint missing\.pth"):
        runner_for(tmp_path / "missing.pth", "ort")
    assert describe(graph).target == "ort" and runner_for(graph).backend == "ort"
