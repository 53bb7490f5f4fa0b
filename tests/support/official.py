"""Import and drive the official AICT and HDNet networks from external checkouts: parity checks
and official-code baselines.

The official code is never copied into this repository: it is imported from two checkouts named
by environment variables (`HARMONY_OFFICIAL_AICT`: a work tree of `github.com/aipixel/AICT`,
`HARMONY_OFFICIAL_HDNET`: one of `github.com/chenhaoxing/HDNet`). Where one is unset the caller
skips. Dependencies of the official network files:

* AICT `iharm/model/modeling/vit_base.py` needs `einops` (used by the forward: install it);
  `iharm/model/base/aict_net.py` imports `cv2` and `matplotlib.pyplot` and never uses them:
  they are replaced by empty stub modules while the official package is imported, unless the
  real packages are installed.
* HDNet `models/networks.py` needs nothing beyond torch (`import imp` works up to Python 3.11).

Both official packages use generic top-level names (`iharm`, `models`): they are imported with
their checkout first on `sys.path`, and every module they added is taken out of `sys.modules`
afterwards (the classes keep working; a test package called `models` is left untouched).

Besides the importers, this module holds what the parity test
(`tests/models/test_official_parity.py`), `scripts/official_parity.py` and
`benchmarks/pytorch_highres.py` share: the non-degenerate random weights, the composites (the
project's demo composites), a cv2-like float bilinear resize written independently of
`torch.nn.functional.interpolate`, and the parity measurements. It is test support, not part of
the package: the scripts import it from the checkout's root (`PYTHONPATH=.`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harmony.data import demo_composite
from harmony.metrics import psnr_db

AICT_ENV = "HARMONY_OFFICIAL_AICT"
HDNET_ENV = "HARMONY_OFFICIAL_HDNET"
OFFICIAL_REPOSITORY = {
    AICT_ENV: "https://github.com/aipixel/AICT",
    HDNET_ENV: "https://github.com/chenhaoxing/HDNet",
}
# A file that must exist in each checkout: catches a variable pointing at the wrong folder.
_MARKER_FILE = {
    AICT_ENV: "iharm/model/base/aict_net.py",
    HDNET_ENV: "models/networks.py",
}
# Full-resolution size (height, width) of the AICT parity cases of the test and the script.
AICT_FULL_RES = (384, 512)
# Modules that the official network files import but never call.
_UNUSED_IMPORTS = ("cv2", "matplotlib", "matplotlib.pyplot")


def official_checkout(env_var: str) -> Path | None:
    """Path of the official work tree named by `env_var`, or None when the variable is unset.

    Raises:
        FileNotFoundError: the variable is set but the folder is not such a work tree.
    """
    value = os.environ.get(env_var)
    if not value:
        return None
    root = Path(value).expanduser().resolve()
    marker = root / _MARKER_FILE[env_var]
    if not marker.is_file():
        raise FileNotFoundError(
            f"{env_var}={value!r} should be a work tree of {OFFICIAL_REPOSITORY[env_var]}, "
            f"but {marker} does not exist; extract one with `git archive HEAD | tar -x -C DIR`."
        )
    return root


@contextlib.contextmanager
def _official_import_path(root: Path, packages: tuple[str, ...], stubs: tuple[str, ...] = ()):
    """Import `packages` from `root`, then remove them (and `stubs`) from `sys.modules` again."""

    def owned(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in packages + stubs)

    saved = {name: mod for name, mod in sys.modules.items() if owned(name)}
    for name in saved:
        del sys.modules[name]
    for name in stubs:
        sys.modules[name] = types.ModuleType(name, "stub: imported by the official code, unused")
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if owned(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


def _missing(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if importlib.util.find_spec(n.split(".")[0]) is None)


@functools.cache
def official_aict_module(root: Path) -> types.ModuleType:
    """The official `iharm.mconfigs.base` module (holds `BMCONFIGS` and, through it, `AICT`)."""
    if importlib.util.find_spec("einops") is None:
        raise ModuleNotFoundError(
            "the official AICT encoder uses einops: `pip install einops` into the test venv"
        )
    with _official_import_path(root, ("iharm",), stubs=_missing(_UNUSED_IMPORTS)):
        return importlib.import_module("iharm.mconfigs.base")


@functools.cache
def official_hdnet_module(root: Path) -> types.ModuleType:
    """The official `models.networks` module (holds `define_G` and `HDNet`)."""
    with _official_import_path(root, ("models",)):
        return importlib.import_module("models.networks")


def official_aict(root: Path) -> nn.Module:
    """The official AICT as evaluated (`ViT_aict` config: mean 0 / std 1, 8 knots, clamp)."""
    config = official_aict_module(root).BMCONFIGS["ViT_aict"]
    return config["model"](**config["params"]).eval()


def official_hdnet(root: Path, ngf: int) -> nn.Module:
    """The official generator built as `HDNetModel` does (options defaults, `ngf` varied)."""
    networks = official_hdnet_module(root)
    with contextlib.redirect_stdout(None):  # define_G prints "initialize network with normal"
        net = networks.define_G(3, 3, ngf, "hdnet", "RAIN", True, "normal", 0.02, [])
    return net.eval()


# ---------------------------------------------------------------------------------------------
# Non-degenerate weights: the project's own random weights (harmony.models.randomize_), loaded
# strictly into the official module, which also checks that the two state_dicts agree.


def randomize_(net: nn.Module, seed: int) -> nn.Module:
    """Give the official AICT/HDNet module `net` harmony's non-degenerate random weights."""
    from harmony.models import build_model
    from harmony.models import randomize_ as harmony_randomize_

    if hasattr(net, "params_layer"):
        ours = build_model("aict")
    else:
        ours = build_model("hdnet", ngf=net.model_layer0.weight.shape[0])
    net.load_state_dict(harmony_randomize_(ours, seed).state_dict(), strict=True)
    return net


# ---------------------------------------------------------------------------------------------
# Inputs.


def cv2_linear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """`cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)` for float data.

    Half-pixel centres, no antialiasing, source index clamped at both borders (OpenCV's
    `resizeGeneric_` rules), float arithmetic. `image` is [H,W] or [H,W,C]; returns float32.
    """

    def taps(src: int, dst: int):
        pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
        lo = np.floor(pos).astype(np.int64)
        frac = (pos - lo).astype(np.float32)
        frac[lo < 0] = 0.0
        lo = np.clip(lo, 0, src - 1)
        frac[lo >= src - 1] = 0.0
        return lo, np.minimum(lo + 1, src - 1), frac

    image = np.asarray(image, dtype=np.float32)
    r0, r1, fr = taps(image.shape[0], height)
    c0, c1, fc = taps(image.shape[1], width)
    fr = fr.reshape(-1, *([1] * (image.ndim - 1)))
    rows = image[r0] * (1.0 - fr) + image[r1] * fr
    fc = fc.reshape(1, -1, *([1] * (image.ndim - 2)))
    return (rows[:, c0] * (1.0 - fc) + rows[:, c1] * fc).astype(np.float32)


def composites(height: int, width: int, soft_mask: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of 2 realistic composites: (image [2,3,H,W] in [0,1], mask [2,1,H,W]).

    The project's demo composites (`harmony.data.demo_composite`, seeds 0 and 1: photographs
    with a re-coloured blob); with `soft_mask` the blob's edge is feathered (a box blur of about
    4 % of the shorter side), a matte with soft edges like real masks.
    """
    samples = [demo_composite(height, width, seed=seed)[:2] for seed in (0, 1)]
    image = torch.cat([sample[0] for sample in samples])
    mask = torch.cat([sample[1] for sample in samples])
    if soft_mask:
        radius = max(1, round(0.02 * min(height, width)))
        padded = F.pad(mask, (radius,) * 4, mode="replicate")
        mask = F.avg_pool2d(padded, 2 * radius + 1, stride=1)
    return image, mask


def resize_batch_cv2(batch: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """`cv2_linear_resize` applied to every image of an NCHW batch."""
    arrays = [cv2_linear_resize(x.permute(1, 2, 0).numpy(), height, width) for x in batch]
    out = torch.from_numpy(np.stack(arrays))
    return (out[..., None] if out.dim() == 3 else out).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------------------------
# Parity cases: the official network and ours loaded from the same official-format checkpoint.


def save_official_checkpoint(official: nn.Module, path: Path) -> Path:
    """`torch.save` `official`'s weights as its training code does; returns `path`.

    AICT (`iharm/utils/misc.py save_checkpoint`): {'model': state_dict, 'optimizer': ..,
    'epoch': ..}; HDNet (`BaseModel.save_networks`): the bare state_dict.
    """
    state_dict = official.state_dict()
    is_aict = hasattr(official, "params_layer")
    torch.save({"model": state_dict, "optimizer": {}, "epoch": 3} if is_aict else state_dict, path)
    return path


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


@torch.no_grad()
def hdnet_parity(official: nn.Module, ours: nn.Module, height: int, width: int) -> dict:
    """Figures of ours vs the official HDNet on a batch of 2 composites with binary masks.

    "generator": raw tanh outputs; "harmonized": `harmony.models.harmonize` (in [0,1]) vs
    `HDNetModel.forward`'s `output * mask + comp * (1 - mask)` mapped from [-1,1] to [0,1].
    """
    from harmony.models import harmonize

    image, mask = composites(height, width, soft_mask=False)
    comp = image * 2.0 - 1.0  # official ToTensor + Normalize(0.5, 0.5)
    generated = official(comp, mask)
    reference = (generated * mask + comp * (1.0 - mask) + 1.0) / 2.0
    ours_generated = ours(comp, mask)
    ours_harmonized = harmonize(ours, image, mask)
    return {
        "generator max abs": max_abs(ours_generated, generated),
        "harmonized max abs": max_abs(ours_harmonized, reference),
        "harmonized PSNR dB": psnr_db(reference.detach().numpy(), ours_harmonized.detach().numpy()),
        "output - input mean abs": (reference - image).abs().mean().item(),
    }


@torch.no_grad()
def aict_network_parity(
    official: nn.Module, ours: nn.Module, height: int, width: int, with_float64: bool = False
) -> dict:
    """Ours vs the official AICT fed the same 256 inputs (isolates the network and the LUT).

    The 256x256 inputs are `cv2_linear_resize` of the full-resolution composite and soft mask;
    full resolution is height x width; batch of 2. With `with_float64`, both float32 results
    are also compared with the official forward run in float64 (the rounding baseline).
    """
    from harmony.ops import cascaded_lut

    image, mask = composites(height, width, soft_mask=True)
    image_lr, mask_lr = resize_batch_cv2(image, 256, 256), resize_batch_cv2(mask, 256, 256)
    reference = official(image_lr, image, mask_lr, mask)
    knots, curve = ours.lut_maps(image_lr, mask_lr)
    # Official knots: a zero, then the cumulative sum of the softmaxed intervals (get_new_color).
    ref_knots = F.pad(torch.cumsum(reference["color_dis"], dim=2), (0, 0, 0, 0, 1, 0))
    ours_low = cascaded_lut(image_lr, mask_lr, knots, curve)
    ours_full = ours(image_lr, mask_lr, image, mask)
    figures = {
        "knots max abs": max_abs(knots, ref_knots),
        "curve max abs": max_abs(curve, reference["params"].reshape(curve.shape)),
        "low-res output max abs": max_abs(ours_low, reference["images"]),
        "full-res output max abs": max_abs(ours_full, reference["images_fullres"]),
        "full-res output PSNR dB": psnr_db(
            reference["images_fullres"].detach().numpy(), ours_full.detach().numpy()
        ),
        "output - input mean abs": (reference["images_fullres"] - image).abs().mean().item(),
    }
    if with_float64:
        exact = _official_aict_float64(official, image_lr, image, mask_lr, mask)
        for res, ours_out in (("low-res", ours_low), ("full-res", ours_full)):
            key = "images" if res == "low-res" else "images_fullres"
            figures[f"{res}: official fp32 vs official fp64 max abs"] = max_abs(
                reference[key], exact[key]
            )
            figures[f"{res}: ours fp32 vs official fp64 max abs"] = max_abs(ours_out, exact[key])
    return figures


def _official_aict_float64(official: nn.Module, *inputs: torch.Tensor) -> dict:
    """The official AICT forward in float64 (its coordinate grids use the default dtype)."""
    net = copy.deepcopy(official).double()
    net.mean, net.std = net.mean.double(), net.std.double()  # plain attributes, not buffers
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return net(*(x.double() for x in inputs))
    finally:
        torch.set_default_dtype(default)


@torch.no_grad()
def aict_pipeline_parity(official: nn.Module, ours: nn.Module, height: int, width: int) -> dict:
    """`harmony.models.harmonize` (resizes by itself) vs the official forward on 256 inputs
    made with a cv2-like float bilinear resize of the composite and soft mask (batch of 2)."""
    from harmony.models import harmonize

    image, mask = composites(height, width, soft_mask=True)
    image_lr, mask_lr = resize_batch_cv2(image, 256, 256), resize_batch_cv2(mask, 256, 256)
    reference = official(image_lr, image, mask_lr, mask)["images_fullres"]
    result = harmonize(ours, image, mask)
    return {
        "full-res output max abs": max_abs(result, reference),
        "full-res output PSNR dB": psnr_db(reference.detach().numpy(), result.detach().numpy()),
    }
