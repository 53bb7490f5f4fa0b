"""The recolouring families and mask shapes of the demo composites."""

from __future__ import annotations

import numpy as np
import pytest

from harmony.data.demo import DemoComposites
from harmony.data.masks import MASK_FRACTION, SHAPES, foreground_mask
from harmony.data.recolouring import FAMILIES, _lab, color_transfer


def _pixels(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.95, (count, 3))


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_a_visible_deterministic_change_within_range(family):
    pixels, reference = _pixels(500, 0), _pixels(300, 1) ** 2
    first = FAMILIES[family](pixels, np.random.default_rng(5), reference)
    again = FAMILIES[family](pixels, np.random.default_rng(5), reference)
    other = FAMILIES[family](pixels, np.random.default_rng(6), reference)

    assert first.shape == pixels.shape and np.array_equal(first, again)
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.abs(first - pixels).mean() > 0.01
    assert not np.array_equal(first, other)


def test_color_transfer_moves_the_statistics_toward_the_reference():
    pixels = _pixels(2000, 2) * np.array([0.9, 0.6, 0.3])  # a warm foreground
    reference = _pixels(2000, 3) * np.array([0.3, 0.5, 0.9])  # a cool photograph
    moved = color_transfer(pixels, np.random.default_rng(0), reference)

    before = np.abs(_lab(pixels).mean(0) - _lab(reference).mean(0))
    after = np.abs(_lab(moved).mean(0) - _lab(reference).mean(0))
    assert np.all(after < 0.5 * before)


@pytest.mark.parametrize("shape", SHAPES)
def test_each_mask_shape_covers_the_drawn_fraction(shape):
    masks = [foreground_mask(shape, 60, 90, np.random.default_rng(seed)) for seed in range(4)]

    for mask in masks:
        assert mask.shape == (60, 90) and mask.dtype == bool
        assert MASK_FRACTION[0] - 0.01 <= mask.mean() <= MASK_FRACTION[1] + 0.01
    assert len({mask.tobytes() for mask in masks}) == 4


def test_demo_sets_draw_every_family_and_shape_or_the_families_asked_for():
    mixed = [DemoComposites(120, seed=0, size=(24, 32)).arrays(i) for i in range(120)]
    assert {sample.family for sample in mixed} == set(FAMILIES)
    assert {sample.shape for sample in mixed} == set(SHAPES)

    only = DemoComposites(5, seed=0, size=(24, 32), families=("lut3d",))
    assert {only.arrays(i).family for i in range(5)} == {"lut3d"}
