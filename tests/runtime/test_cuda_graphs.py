"""GraphedCall's capture/replay bookkeeping, with a stand-in for torch.cuda that replays a
capture by re-running what was recorded into the static output (no GPU needed)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from harmony.errors import HarmonyError
from harmony.models import build_model, harmonize, randomize_
from harmony.runtime.cuda_graphs import GraphedCall
from harmony.runtime.torch_runner import TorchRunner
from tests.helpers import blob_mask


class FakeStream:
    def wait_stream(self, other) -> None:
        pass


class FakeGraph:
    def __init__(self):
        self.recorded = []

    def replay(self) -> None:
        for step in self.recorded:
            step()


class FakeCuda:
    """The parts of torch.cuda GraphedCall uses; `capturing` is the graph being captured."""

    def __init__(self):
        self.capturing: FakeGraph | None = None
        self.captures = 0
        self.pools = set()
        self.fail_capture = False

    Stream = FakeStream
    CUDAGraph = FakeGraph

    def graph_pool_handle(self) -> object:
        return object()

    def current_stream(self) -> FakeStream:
        return FakeStream()

    def stream(self, stream):
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def graph(self, graph: FakeGraph, pool):
        self.pools.add(id(pool))
        self.captures += 1
        self.capturing = graph
        try:
            if self.fail_capture:
                raise RuntimeError("operation not permitted when stream is capturing")
            yield
        finally:
            self.capturing = None


@pytest.fixture
def fake():
    return FakeCuda()


def _blend(fake: FakeCuda):
    """fn(image, mask) = image * mask + 1, recorded into the graph when captured."""
    calls = []

    def fn(image, mask):
        calls.append(fake.capturing is not None)
        out = image * mask + 1
        if fake.capturing is not None:
            fake.capturing.recorded.append(lambda: torch.mul(image, mask, out=out).add_(1))
        return out

    return fn, calls


def test_one_capture_per_signature_then_replays_on_new_values(fake):
    fn, calls = _blend(fake)
    graphed = GraphedCall(fn, warmup=2, cuda=fake)
    image, mask = torch.rand(1, 3, 4, 5), torch.rand(1, 1, 4, 5)
    first = graphed(image, mask)
    assert calls == [False, False, True]  # two warm-up calls, then the capture
    second = graphed(image * 0.5, mask)
    assert fake.captures == 1 and len(calls) == 3  # replayed: fn not called again
    torch.testing.assert_close(second, image * 0.5 * mask + 1)
    torch.testing.assert_close(first, image * mask + 1)  # a copy: not overwritten by the replay
    graphed(torch.rand(1, 3, 6, 5), torch.rand(1, 1, 6, 5))
    graphed(image.double(), mask.double())
    assert fake.captures == 3  # new shape, new dtype: new captures
    assert len(fake.pools) == 1  # in one shared memory pool


def test_least_recently_used_graph_is_dropped(fake):
    fn, _ = _blend(fake)
    graphed = GraphedCall(fn, max_graphs=2, warmup=1, cuda=fake)
    sizes = [(4, 4), (5, 5), (4, 4), (6, 6)]  # (5, 5) is the least recently used at the end
    for h, w in sizes:
        graphed(torch.rand(1, 3, h, w), torch.rand(1, 1, h, w))
    assert [key[0][2:] for key in graphed.graphs] == [(4, 4), (6, 6)]
    graphed(torch.rand(1, 3, 5, 5), torch.rand(1, 1, 5, 5))
    assert fake.captures == 4


def test_a_failed_capture_says_why(fake):
    fn, _ = _blend(fake)
    fake.fail_capture = True
    graphed = GraphedCall(fn, cuda=fake)
    with pytest.raises(HarmonyError, match=r"CUDA graph capture failed.*run without CUDA graphs"):
        graphed(torch.rand(1, 3, 4, 4), torch.rand(1, 1, 4, 4))
    assert not graphed.graphs


@pytest.mark.parametrize("requested", [None, True])
def test_runner_falls_back_to_eager_only_where_graphs_were_not_asked_for(fake, requested):
    """A capture failure (the GPU is stood in for): auto mode warns and runs eagerly from then
    on, cuda_graphs=True raises."""
    model = randomize_(build_model("hdnet-lite"), seed=2).eval()
    image, mask = torch.rand(1, 3, 24, 32), blob_mask(24, 32)
    fake.fail_capture = True
    with TorchRunner(model) as runner:
        runner._graphed = GraphedCall(runner._forward, cuda=fake)
        runner._requested = (None, requested)
        if requested:
            with pytest.raises(HarmonyError, match="capture failed"):
                runner.infer(image, mask)
            return
        with pytest.warns(UserWarning, match="runs eagerly from now on"):
            result = runner.infer(image, mask)
        assert torch.equal(result, harmonize(model, image, mask))
        assert runner.cuda_graphs is False and runner._graphed is None
        runner.infer(image, mask)
        assert fake.captures == 1
