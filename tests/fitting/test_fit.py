import dataclasses

import pytest
import torch

from harmony.data import demo_composite
from harmony.errors import HarmonyError
from harmony.fitting.fit import (
    LOG_LOSS_FLOOR,
    FitSettings,
    fit_loss,
    fit_model,
    foreground_mse,
    initial_model,
)
from harmony.models.pipeline import HarmonizationPipeline

TINY = FitSettings("hdnet-lite", steps=3, batch=2, size=32, lr=1e-3, seed=5)


def test_foreground_mse_by_hand():
    real = torch.ones(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, :2, :2] = 1.0  # 4 foreground pixels; the second mask is empty
    output = real.clone()
    output[0, :, :2, :2] = 0.5  # error 0.5 on the foreground only
    output[1, 0, 0, 0] = 0.0  # error 1 in one value of an image without foreground

    # image 0: 12 * 0.25 / (3 * 4); image 1: 1 / (3 * 0.16), the floor of 1% of 16 pixels
    expected = torch.tensor([12 * 0.25 / 12, 1 / (3 * 0.16)])
    torch.testing.assert_close(foreground_mse(output, real, mask), expected)
    floored = torch.log(expected + LOG_LOSS_FLOOR).mean()
    torch.testing.assert_close(fit_loss(output, real, mask), floored)


def test_fit_is_deterministic_for_a_seed():
    first, again = fit_model(TINY), fit_model(TINY)
    other = fit_model(dataclasses.replace(TINY, seed=6))

    assert first.loss_curve == again.loss_curve != other.loss_curve
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key
    assert not torch.equal(first.model.model_layer0.weight, other.model.model_layer0.weight)


def test_hdnet_fit_starts_from_the_composite_through_its_tanh():
    composite, mask, _ = demo_composite(64, 64, seed=3)
    model = initial_model("hdnet-lite", seed=0).eval()

    with torch.no_grad():
        output = HarmonizationPipeline(model)(composite, mask)

    inside = mask.expand_as(composite) == 1
    expected = (torch.tanh(composite * 2 - 1) + 1) / 2
    assert (output - expected)[inside].abs().mean() < 0.03
    torch.testing.assert_close(output[~inside], composite[~inside], rtol=0, atol=1e-6)


def test_aict_fit_starts_from_an_identity_lut():
    composite, mask, _ = demo_composite(64, 64, seed=3)
    model = initial_model("aict", seed=0).eval()

    with torch.no_grad():
        output = HarmonizationPipeline(model, low_res=32)(composite, mask)

    assert (output - composite).abs().mean() < 0.01


@pytest.mark.parametrize(
    "change",
    [{"steps": 0}, {"batch": -1}, {"size": 36}, {"low_res": 30}, {"lr": 0.0}, {"arch": "x"}],
)
def test_invalid_settings_are_harmony_errors(change):
    with pytest.raises(HarmonyError):
        fit_model(dataclasses.replace(TINY, **change))
