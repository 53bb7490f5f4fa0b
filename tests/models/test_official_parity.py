"""Our AICT / HDNet against the official code, through official-format checkpoint files.

The official networks are imported from external checkouts named by `HARMONY_OFFICIAL_AICT`
(github.com/aipixel/AICT) and `HARMONY_OFFICIAL_HDNET` (github.com/chenhaoxing/HDNet); each
test skips when its variable is unset, which is the case in CI (no network there). The AICT
checkout also needs `einops` installed. Recorded run: benchmarks/results/official_parity.md.

Each case gives the official module non-degenerate random weights, saves them exactly as the
official training code does, loads the file with `harmony.models.load_checkpoint` and compares
outputs on realistic composites (batch of 2).
"""

from __future__ import annotations

import pytest
import torch

from harmony.models import load_checkpoint
from tests.support.official import (
    AICT_ENV,
    AICT_FULL_RES,
    HDNET_ENV,
    OFFICIAL_REPOSITORY,
    aict_network_parity,
    aict_pipeline_parity,
    hdnet_parity,
    official_aict,
    official_checkout,
    official_hdnet,
    randomize_,
    save_official_checkpoint,
)

pytestmark = [pytest.mark.official, pytest.mark.slow]

# HDNet: the same float32 operations in a different order (measured <= 1e-6). AICT: the
# official float32 LUT stage is itself up to 8e-5 away from its float64 result on these steep
# random curves (ours: 3e-6), so the two float32 results may differ by about that much.
HDNET_ATOL = 1e-4
AICT_NETWORK_ATOL = 2e-4
MIN_PSNR_DB = 60.0


def _checkout(env_var: str):
    root = official_checkout(env_var)
    if root is None:
        pytest.skip(
            f"{env_var} is not set: point it at a work tree of {OFFICIAL_REPOSITORY[env_var]}"
        )
    return root


@pytest.fixture(scope="module", autouse=True)
def _two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def aict_pair(tmp_path_factory):
    """(official AICT with random weights, ours loaded from its official checkpoint)."""
    official = randomize_(official_aict(_checkout(AICT_ENV)), seed=7)
    path = save_official_checkpoint(official, tmp_path_factory.mktemp("aict") / "checkpoint.pth")
    ours = load_checkpoint(path)
    assert ours.arch == "aict"
    return official, ours


@pytest.mark.parametrize("size", [(256, 256), (256, 320)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("ngf", "arch"), [(32, "hdnet"), (8, "hdnet-lite")])
def test_hdnet_matches_official(tmp_path, ngf, arch, size):
    official = randomize_(official_hdnet(_checkout(HDNET_ENV), ngf), seed=ngf)
    ours = load_checkpoint(save_official_checkpoint(official, tmp_path / "latest_net_G.pth"))
    assert ours.arch == arch

    figures = hdnet_parity(official, ours, *size)

    assert figures["output - input mean abs"] > 0.02, "degenerate weights: output ~ input"
    assert figures["generator max abs"] <= HDNET_ATOL, figures
    assert figures["harmonized max abs"] <= HDNET_ATOL, figures


def test_aict_network_matches_official(aict_pair):
    figures = aict_network_parity(*aict_pair, *AICT_FULL_RES)

    assert figures["output - input mean abs"] > 0.01, "degenerate weights: output ~ input"
    for name in ("knots", "curve", "low-res output", "full-res output"):
        assert figures[f"{name} max abs"] <= AICT_NETWORK_ATOL, figures
    assert figures["full-res output PSNR dB"] >= MIN_PSNR_DB, figures


def test_aict_harmonize_matches_official_pipeline(aict_pair):
    figures = aict_pipeline_parity(*aict_pair, *AICT_FULL_RES)

    assert figures["full-res output PSNR dB"] >= MIN_PSNR_DB, figures
