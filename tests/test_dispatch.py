"""The fused ops as PyTorch custom operators: what the models call, how an implementation is
chosen (per thread, never process-wide), and that tracing and compilation see single ops."""

from __future__ import annotations

import threading

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harmony import dispatch
from harmony.contract import CASCADED_LUT, KNN_TOPK_FUSION
from harmony.errors import HarmonyError
from harmony.models import HarmonizationPipeline, build_model, harmonize, randomize_
from tests.helpers import blob_mask


class _RecordOps(TorchDispatchMode):
    """Records every op that reaches the dispatcher, with its argument dtypes."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        dtypes = [a.dtype for a in args if isinstance(a, torch.Tensor)]
        self.calls.append((func, dtypes))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    ("arch", "contract"), [("aict", CASCADED_LUT), ("hdnet-lite", KNN_TOPK_FUSION)]
)
def test_the_models_call_their_custom_op_once_in_float32(arch, contract):
    model = randomize_(build_model(arch), seed=1).eval()
    image, mask = torch.rand(1, 3, 32, 40), blob_mask(32, 40)
    with _RecordOps() as recorded, torch.inference_mode():
        HarmonizationPipeline(model)(image, mask)
    ours = [(func, dtypes) for func, dtypes in recorded.calls if func.namespace == "harmony"]
    assert ours == [(dispatch.torch_op(contract), [torch.float32] * len(contract.inputs))]


def test_compiled_pipelines_keep_the_ops_whole():
    """torch.compile (fullgraph: no graph break) traces the ops through their fake kernels."""
    model = randomize_(build_model("hdnet-lite"), seed=4).eval()
    pipeline = HarmonizationPipeline(model)
    compiled = torch.compile(pipeline, fullgraph=True, backend="aot_eager", dynamic=False)
    image, mask = torch.rand(1, 3, 48, 40), blob_mask(48, 40)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(image, mask), harmonize(model, image, mask))


@pytest.fixture
def fused_available(monkeypatch):
    """A stand-in for a GPU where libharmony_cuda_ops.so loads."""
    monkeypatch.setattr(dispatch, "fused_kernels_unavailable", lambda index=None: None)


def test_the_choice_of_kernels_holds_for_the_calling_thread_only(fused_available):
    device = torch.device("cuda", 0)
    inside_block = threading.Barrier(2)
    seen = {}

    def with_reference():
        with dispatch.use_kernels("reference"):
            inside_block.wait()
            seen["reference thread"] = dispatch.cuda_kernels(device)
            inside_block.wait()

    def by_default():
        inside_block.wait()  # the other thread is inside its use_kernels block now
        seen["other thread"] = dispatch.cuda_kernels(device)
        inside_block.wait()

    threads = [threading.Thread(target=with_reference), threading.Thread(target=by_default)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"reference thread": "reference", "other thread": "fused"}
    assert dispatch.cuda_kernels(device) == "fused"


def test_fused_kernels_where_they_cannot_run(monkeypatch):
    monkeypatch.setattr(dispatch, "fused_kernels_unavailable", lambda index=None: "no GPU here")
    device = torch.device("cuda", 0)
    assert dispatch.cuda_kernels(device) == "reference"  # the default falls back
    with pytest.raises(HarmonyError, match="the fused CUDA kernels cannot run: no GPU here"):
        dispatch.cuda_kernels(device, "fused")
    with dispatch.use_kernels("fused"), pytest.raises(HarmonyError, match="no GPU here"):
        dispatch.cuda_kernels(device)
    with pytest.raises(HarmonyError, match="kernels must be one of reference, fused"):
        dispatch.use_kernels("fastest").__enter__()
