import pytest
import torch
import torch.nn.functional as F

from harmony.export.lowering import lut_separable
from harmony.ops import cascaded_lut
from tests.helpers import blob_mask


def official_grid_sample_chain(image, mask, knots, curve):
    """The official AICT `mapping`: two 5-D grid_sample lookups per channel (docs/models.md,
    "The cascaded LUT")."""
    b, _, height, width = image.shape
    gy, gx = torch.meshgrid(
        torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij"
    )
    spatial = torch.stack([gx, gy], dim=-1).expand(b, 1, height, width, 2)
    flags = dict(mode="bilinear", padding_mode="border", align_corners=True)
    outs = []
    for c in range(3):
        z = ((image[:, c] - 0.5) * 2)[:, None, :, :, None]
        grid = torch.cat([spatial, z], dim=-1)
        x_hat = F.grid_sample(((knots[:, c] - 0.5) * 2)[:, None], grid, **flags)
        grid2 = torch.cat([spatial, x_hat[:, 0, :, :, :, None].permute(0, 1, 2, 3, 4)], dim=-1)
        outs.append(F.grid_sample(curve[:, c][:, None], grid2, **flags)[:, 0, 0])
    y = torch.stack(outs, dim=1).clamp(0, 1)
    return y * mask + image * (1 - mask)


def random_maps(batch, h, w, generator):
    logits = torch.randn(batch, 3, 8, h, w, generator=generator) * 2
    knots = F.pad(torch.softmax(logits, dim=2).cumsum(2), (0, 0, 0, 0, 1, 0))
    curve = torch.rand(batch, 3, 8, h, w, generator=generator) * 1.4 - 0.2
    return knots, curve


@pytest.mark.parametrize(
    ("height", "width", "h", "w"), [(37, 53, 7, 5), (64, 48, 16, 16), (2, 3, 4, 4)]
)
@pytest.mark.parametrize("soft", [False, True])
def test_equals_official_grid_sample_chain(height, width, h, w, soft, rng):
    image = torch.rand(2, 3, height, width, generator=rng)
    mask = blob_mask(height, width, batch=2, soft=soft)
    knots, curve = random_maps(2, h, w, rng)
    out = cascaded_lut(image, mask, knots, curve)
    expected = official_grid_sample_chain(image, mask, knots, curve)
    # Same lookups; the grid comes from arange arithmetic instead of linspace (last-bit
    # coordinate differences, amplified by these steep random curves).
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    # The separable form (resize each knot plane, then interpolate along the knots) is an
    # independent formulation of the same lookups (docs/models.md, "The cascaded LUT"): float32
    # apart, no more.
    separable = lut_separable(image, mask, knots, curve)
    torch.testing.assert_close(out, separable, atol=1e-5, rtol=0)


def test_identity_curves_return_the_image(rng):
    image = torch.rand(1, 3, 33, 41, generator=rng)
    knots = torch.linspace(0, 1, 9)[None, None, :, None, None].expand(1, 3, 9, 6, 5).contiguous()
    curve = torch.linspace(0, 1, 8)[None, None, :, None, None].expand(1, 3, 8, 6, 5).contiguous()
    out = cascaded_lut(image, torch.ones(1, 1, 33, 41), knots, curve)
    torch.testing.assert_close(out, image, atol=1e-6, rtol=0)


def test_half_inputs_interpolate_in_float32(rng):
    image = torch.rand(1, 3, 40, 40, generator=rng)
    mask = blob_mask(40, 40)
    knots, curve = random_maps(1, 8, 8, rng)
    out = cascaded_lut(image.half(), mask.half(), knots.half(), curve.half())
    assert out.dtype == torch.float16
    reference = cascaded_lut(
        image.half().float(), mask.half().float(), knots.half().float(), curve.half().float()
    )
    torch.testing.assert_close(out.float(), reference, atol=1e-3, rtol=0)


def test_rejects_mismatched_shapes(rng):
    knots, curve = random_maps(1, 4, 4, rng)
    with pytest.raises(ValueError, match="mask must be"):
        cascaded_lut(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 9), knots, curve)
    with pytest.raises(ValueError, match="curve must be"):
        cascaded_lut(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8), knots, curve[:, :, :7])
