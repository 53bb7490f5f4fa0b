import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harmony import ops
from harmony.models import build_model
from harmony.profiling.macs import _evaluate, graph_macs
from harmony.profiling.paper_macs import paper_style_macs
from tests.helpers import blob_mask

# Counted independently of this code (torch FlopCounterMode and thop on the official networks,
# cross-checked by hand; docs/models.md, "Cost").
AICT_NETWORK_MACS = 98.23e9
AICT_PAPER_MACS = 14.35e9
HDNET_MACS = {("hdnet", 1024): 527.78e9, ("hdnet", 2048): 2935.75e9, ("hdnet-lite", 1024): 46.38e9}
HDNET_LD_MACS_1024 = 68.72e9  # the N x N similarity at N = 16,384, C = 256
HDNET_PAPER_MACS_256 = {"hdnet": 48.04e9, "hdnet-lite": 3.04e9}


@pytest.fixture(scope="module")
def graphs(exported):
    return {arch: exported(arch, "trt", "fp32")[0] for arch in ("aict", "hdnet", "hdnet-lite")}


class _GridSampleTaps(TorchDispatchMode):
    """Counts the weighted taps of the grid samples that run: 2^d per sampled point, channel and
    spatial dimension d of the sampled input (8 for a trilinear lookup)."""

    def __init__(self):
        super().__init__()
        self.taps = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.grid_sampler_3d, torch.ops.aten.grid_sampler_2d):
            source, grid = args[0], args[1]
            points = grid.numel() // grid.shape[-1]
            self.taps += points * source.shape[1] * 2 ** (source.dim() - 2)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("size", [1024, 2048])
def test_aict_true_macs_by_stage(graphs, size):
    count = graph_macs(graphs["aict"], 1, size, size)
    assert count.by_stage["parameter_network"] == pytest.approx(AICT_NETWORK_MACS, rel=5e-3)
    assert count.total == sum(count.by_stage.values())
    # The LUT stage is the taps the reference LUT (the official grid_sample chain) computes.
    knots = torch.rand(1, 3, 9, 8, 8).sort(dim=2).values
    with _GridSampleTaps() as counted:
        ops.cascaded_lut(
            torch.rand(1, 3, size, size), blob_mask(size, size), knots, knots[:, :, 1:]
        )
    assert count.by_stage["lut"] == counted.taps


@pytest.mark.parametrize(("arch", "size"), list(HDNET_MACS))
def test_hdnet_macs_equal_the_hand_count(graphs, arch, size):
    count = graph_macs(graphs[arch], 1, size, size)
    assert count.total == pytest.approx(HDNET_MACS[(arch, size)], rel=5e-3)
    assert set(count.by_stage) == {"encoder", "local_dynamics", "decoder"}


def test_hdnet_local_dynamics_is_dominated_by_the_similarity(graphs):
    count = graph_macs(graphs["hdnet"], 1, 1024, 1024)
    conv1d = 256 * 512 * 128 * 128
    assert count.by_stage["local_dynamics"] == pytest.approx(HDNET_LD_MACS_1024 + conv1d, rel=1e-3)


def test_batch_scales_macs(graphs):
    one, two = (graph_macs(graphs["hdnet-lite"], b, 256, 320).total for b in (1, 2))
    assert two == 2 * one


def test_paper_style_counts_reproduce_the_published_figures():
    assert paper_style_macs(build_model("aict"), 1024, 1024) == pytest.approx(
        AICT_PAPER_MACS, rel=5e-3
    )
    for arch, expected in HDNET_PAPER_MACS_256.items():
        assert paper_style_macs(build_model(arch), 256, 256) == pytest.approx(expected, rel=5e-3)


def test_dimension_expressions_are_evaluated_not_executed():
    symbols = {"height": 37, "width": 50, "batch": 2}
    assert _evaluate("((height + (Mod(8 - (Mod(height, 8)), 8)))//2)", symbols) == 20
    assert _evaluate("2*(((width + (Mod(8 - (Mod(width, 8)), 8)))//8))", symbols) == 14
    for hostile in ("__import__('os').getcwd()", "height.__class__", "depth + 1"):
        with pytest.raises(ValueError, match="unsupported dimension expression"):
            _evaluate(hostile, symbols)
