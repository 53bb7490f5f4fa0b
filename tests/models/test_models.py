import json
from pathlib import Path

import pytest
import torch

from harmony.models import HDNet, build_model, harmonize, randomize_
from tests.helpers import blob_mask

REFERENCE = Path(__file__).parent / "data"
PARAMS = {"aict": 5_181_140, "hdnet": 10_414_389, "hdnet-lite": 652_893}
REFERENCE_FILES = {
    "aict": "aict_state_dict.json",
    "hdnet": "hdnet_state_dict.json",
    "hdnet-lite": "hdnet_lite_state_dict.json",
}


@pytest.mark.parametrize("arch", list(PARAMS))
def test_state_dict_equals_official_keys_shapes_and_order(arch):
    model = build_model(arch)
    expected = json.loads((REFERENCE / REFERENCE_FILES[arch]).read_text())
    assert [[key, list(value.shape)] for key, value in model.state_dict().items()] == expected
    assert sum(p.numel() for p in model.parameters()) == PARAMS[arch]


@pytest.fixture(scope="module")
def lite():
    return randomize_(build_model("hdnet-lite"), seed=1).eval()


def test_hdnet_output_is_independent_of_batch_composition(lite, rng):
    image = torch.rand(3, 3, 64, 48, generator=rng)
    mask = blob_mask(64, 48, batch=3)
    together = harmonize(lite, image, mask)
    for i in range(3):
        alone = harmonize(lite, image[i : i + 1], mask[i : i + 1])
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=0)


def test_hdnet_sizes_off_the_multiple_of_8_are_padded_and_cropped(lite, rng):
    image = torch.rand(1, 3, 37, 45, generator=rng)
    mask = blob_mask(37, 45)
    out = harmonize(lite, image, mask)
    assert out.shape == image.shape
    assert torch.equal(out * (1 - mask), image * (1 - mask))  # background is the composite
    assert (out - image).abs().mul(mask).amax() > 0.05


def test_aict_batch_and_any_resolution(rng):
    model = randomize_(build_model("aict"), seed=2).eval()
    image = torch.rand(2, 3, 90, 130, generator=rng)
    mask = blob_mask(90, 130, batch=2, soft=True)
    out = harmonize(model, image, mask)
    torch.testing.assert_close(out[1:], harmonize(model, image[1:], mask[1:]), atol=1e-5, rtol=0)
    assert torch.equal(out * (mask == 0), image * (mask == 0))
    assert (out - image).abs().mul(mask).amax() > 0.02


@pytest.mark.parametrize("arch", ["aict", "hdnet-lite"])
def test_random_weights_are_non_degenerate_in_every_stage(arch, rng):
    """Perturbing any top-level stage moves the output: no stage is dead or saturated."""
    model = randomize_(build_model(arch), seed=3).eval()
    image = torch.rand(1, 3, 64, 64, generator=rng)
    mask = blob_mask(64, 64)
    base = harmonize(model, image, mask)
    assert base.mul(mask).std() > 0.05
    for name, stage in model.named_children():
        params = [p for p in stage.parameters() if name != "model_layer11att" or p.dim() > 1]
        if not params or (name.endswith("att") and "conv_guide" in name):
            continue
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p in params:
                p.mul_(1.5).add_(0.05)
        moved = (harmonize(model, image, mask) - base).abs().max()
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        assert moved > 1e-3, f"stage {name} does not change the output ({moved:.2e})"


def test_hdnet_reads_input_nc_4():
    model = HDNet(ngf=8, input_nc=4)
    assert model.model_layer0.weight.shape == (8, 4, 3, 3)
    out = model(torch.zeros(1, 3, 16, 16), torch.ones(1, 1, 16, 16))
    assert out.shape == (1, 3, 16, 16)


@pytest.mark.parametrize("size", [2, 8])
def test_hdnet_runs_where_its_bottleneck_is_a_single_pixel(models, exported, size):
    """Up to 8x8 (padded), the bottleneck is 1x1: InstanceNorm of one element is 0 in PyTorch as
    in the ONNX graph (F.instance_norm would refuse it)."""
    import onnxruntime as ort

    model = models("hdnet-lite")
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 2 :, :] = 1
    result = harmonize(model, image, mask)
    session = ort.InferenceSession(str(exported("hdnet-lite", "ort", "fp32")[0]))
    (graph,) = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})
    torch.testing.assert_close(result, torch.from_numpy(graph), atol=1e-4, rtol=0)
