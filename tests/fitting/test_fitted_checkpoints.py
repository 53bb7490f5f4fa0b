"""The fitted checkpoints shipped in harmony.weights: size, provenance, and the quality bar."""

from __future__ import annotations

import hashlib
import json

import pytest

import harmony.weights
from harmony.errors import HarmonyError
from harmony.fitting.fit import held_out_quality
from harmony.fitting.provenance import provenance_path
from harmony.models.checkpoint import FITTED_LABEL, load_checkpoint
from harmony.quality import gain_over_composite
from harmony.weights import fitted_archs, fitted_checkpoint

SHIPPED = ("aict", "hdnet-lite")
MAX_SHIPPED_BYTES = 15 * 10**6
# What each shipped checkpoint must keep on the held-out set (every recolouring family): mean
# PSNR gain over the composite (dB) and fMSE cut, a little below what the shipped files score
# (their provenance). Not the goal: issue 26's +2 dB / fMSE x0.6, which HDNet-lite meets and
# AICT does not (benchmarks/results/quality.md, src/harmony/weights/README.md).
HELD_OUT_FLOOR = {"aict": (0.3, 0.10), "hdnet-lite": (2.5, 0.45)}


def test_both_fitted_checkpoints_are_shipped_within_the_size_budget():
    assert set(SHIPPED) <= set(fitted_archs())
    total = sum(fitted_checkpoint(arch).stat().st_size for arch in fitted_archs())
    assert total <= MAX_SHIPPED_BYTES


@pytest.mark.parametrize("arch", SHIPPED)
def test_provenance_describes_the_shipped_file(arch):
    checkpoint = fitted_checkpoint(arch)
    provenance = json.loads(provenance_path(checkpoint).read_text())
    metadata = load_checkpoint(checkpoint).checkpoint.metadata

    assert provenance["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert metadata["label"] == provenance["label"] == FITTED_LABEL
    assert provenance["command"].startswith(f"harmony fit {arch}")
    min_gain_db, min_fmse_reduction = HELD_OUT_FLOOR[arch]
    assert provenance["held_out"]["psnr_gain_db"] >= min_gain_db
    assert provenance["held_out"]["fmse_reduction"] >= min_fmse_reduction


@pytest.mark.slow
@pytest.mark.parametrize("arch", SHIPPED)
def test_fitted_checkpoint_harmonizes_held_out_composites(arch):
    quality = held_out_quality(fitted_checkpoint(arch))  # the 8 composites of the provenance

    gain = gain_over_composite(quality["means"])
    min_gain_db, min_fmse_reduction = HELD_OUT_FLOOR[arch]
    assert gain["psnr_gain_db"] >= min_gain_db, quality["means"]
    assert gain["fmse_reduction"] >= min_fmse_reduction, quality["means"]


def test_a_missing_fitted_checkpoint_names_how_to_make_one(monkeypatch, tmp_path):
    monkeypatch.setattr(harmony.weights, "WEIGHTS_DIR", tmp_path)

    with pytest.raises(HarmonyError, match=r"\(shipped: none\).*`harmony fit aict -o aict"):
        fitted_checkpoint("aict")
