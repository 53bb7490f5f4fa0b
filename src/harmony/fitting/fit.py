"""`harmony fit`: stand-in checkpoints fitted on synthetic composites (not a training framework).

No official weights can be obtained offline, so the project fits its own: AICT or HDNet(-lite)
learns to undo the demo re-colourings (every family of `harmony.data.recolouring`, or some) on
composites of `FIT_PHOTOS` (`fitting.batches`) with the log of the foreground-normalised MSE
the papers train with (squared error summed over the image, divided by the foreground area;
the log weighs every composite alike, `fit_loss`), Adam with a linear warm-up and a cosine
decay, gradients clipped.
The run is deterministic for a seed (one torch thread count: the count is recorded). Where the
fused ops have no gradient (they are inference custom ops), the fit runs their differentiable
references instead: the LUT's `grid_sample` form and the materialized KNN (its top-k values
carry the gradient, as in the official training).

The result is written in the official format with float16 weights (half the size; the model
computes in float32 as before) and provenance metadata (`fitted: True`, command, seed, photos,
loss curve); held-out scores come from `harmony.profiling.eval` on composites of
`HELD_OUT_PHOTOS`, measured on the file as written.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from harmony.contract import ARCHS, CASCADED_LUT, KNN_TOPK_FUSION, LUT_CHANNELS, LUT_CURVE_POINTS
from harmony.data.demo import (
    FIT_PHOTOS,
    HELD_OUT_COUNT,
    HELD_OUT_PHOTOS,
    checked_families,
    held_out_composites,
)
from harmony.dispatch import replaced_ops
from harmony.errors import HarmonyError
from harmony.fitting.batches import training_batch
from harmony.models.aict import AICT
from harmony.models.checkpoint import FITTED_LABEL, build_model, save_checkpoint
from harmony.models.pipeline import HarmonizationPipeline
from harmony.ops import cascaded_lut
from harmony.ops.knn import knn_topk_fusion_materialized

# Loss floor on the foreground area (a fraction of the image), so a tiny mask cannot blow up
# its sample's weight.
MIN_FOREGROUND_FRACTION = 0.01
# Added to an image's foreground MSE (on [0,1] images) before the log: about 50 dB, below which
# a sample stops pulling (8-bit quantization alone is 59 dB).
LOG_LOSS_FLOOR = 1e-5
WARMUP_FRACTION = 0.05
FINAL_LR_FRACTION = 0.05
GRADIENT_CLIP = 1.0
LOSS_CURVE_POINTS = 40
# Fraction of the default initialisation kept where the fit starts from the identity.
IDENTITY_INIT_SCALE = 0.05


@dataclass(frozen=True)
class FitSettings:
    """What determines a fit: architecture, steps, batch, training size, learning rate, seed."""

    arch: str
    steps: int
    batch: int
    size: int  # side of the square training composites
    lr: float
    seed: int = 0
    low_res: int | None = None  # AICT: side its parameter network sees while fitting
    families: tuple[str, ...] | None = None  # recolouring families fitted on; None: all

    def checked(self) -> FitSettings:
        checked_families(self.families)
        if self.arch not in ARCHS:
            raise HarmonyError(f"harmony fit takes {', '.join(ARCHS)}, received '{self.arch}'")
        for name in ("steps", "batch", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HarmonyError(f"--{name} must be a positive integer, received {value!r}")
        low_res_ok = self.low_res is None or (self.low_res >= 4 and self.low_res % 4 == 0)
        if self.size % 8 or not low_res_ok:
            raise HarmonyError(
                f"--size must be a multiple of 8 and AICT's --low-res a positive multiple of 4, "
                f"received {self.size} and {self.low_res}"
            )
        if not self.lr > 0:
            raise HarmonyError(f"--lr must be positive, received {self.lr}")
        return self


# Per-architecture defaults: for aict and hdnet-lite those of the shipped checkpoints (each fits
# in 15-25 minutes on a 2-core CPU; see their provenance). hdnet's were not run here: its
# float16 weights (20.8 MB) alone exceed what the package ships.
DEFAULT_SETTINGS = {
    "aict": FitSettings("aict", steps=1000, batch=8, size=256, lr=4e-4, low_res=64),
    "hdnet-lite": FitSettings("hdnet-lite", steps=2000, batch=8, size=128, lr=1e-3),
    "hdnet": FitSettings("hdnet", steps=1000, batch=4, size=128, lr=5e-4),
}


@dataclass
class FitResult:
    """The fitted model (eval mode) and how the fit went."""

    model: nn.Module
    settings: FitSettings
    loss_curve: list[tuple[int, float]]  # (last step of a window, mean loss over it)
    seconds: float
    threads: int


def foreground_mse(output: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image, sum((output - real)^2) / (3 * foreground area) (floored at
    `MIN_FOREGROUND_FRACTION` of the image): the foreground MSE where the output keeps the
    background, as both networks' blends do. [B]"""
    area = mask.sum(dim=(1, 2, 3)).clamp_min(MIN_FOREGROUND_FRACTION * mask[0].numel())
    return ((output - real) ** 2).sum(dim=(1, 2, 3)).div(3.0 * area)


def fit_loss(output: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of log(foreground MSE + `LOG_LOSS_FLOOR`): what the mean fPSNR gain
    measures, up to a constant. The papers' plain foreground MSE lets the strongest recolourings
    rule the fit, which then over-corrects the mild ones (worse than the composite there)."""
    return torch.log(foreground_mse(output, real, mask) + LOG_LOSS_FLOOR).mean()


def initial_model(arch: str, seed: int) -> nn.Module:
    """PyTorch's default initialisation for `seed`, changed so the fit starts from (about) the
    composite itself rather than from noise: see `_start_aict_at_identity` and
    `_start_hdnet_at_identity`."""
    torch.manual_seed(seed)
    model = build_model(arch)
    with torch.no_grad():
        if isinstance(model, AICT):
            _start_aict_at_identity(model)
        else:
            _start_hdnet_at_identity(model)
    return model


def _start_aict_at_identity(model: AICT) -> None:
    """Curve value k/7 at knot k with class weight 1, plus small position-dependent terms."""
    model.params_layer.weight.mul_(IDENTITY_INIT_SCALE)
    identity = torch.linspace(0.0, 1.0, LUT_CURVE_POINTS).repeat(LUT_CHANNELS)
    model.params_layer.bias.copy_(identity)
    model.class_layer.weight.mul_(IDENTITY_INIT_SCALE)
    model.class_layer.bias.fill_(1.0)


def _start_hdnet_at_identity(model: nn.Module) -> None:
    """Pass the composite through the full-resolution skip: the first convolution writes +x and
    -x into its first six channels, the last dynamic convolution starts as the identity (its
    generated kernel is its bias), and the output layer takes ReLU(+x) - ReLU(-x) = x from the
    leaky-ReLU'd skip, without bias; every other input of the output layer starts small. The
    output is then about tanh(x): contrast-compressed, the detail kept."""
    first = model.model_layer0.weight  # [ngf, 3, 3, 3]
    first.mul_(IDENTITY_INIT_SCALE)
    for channel in range(3):
        first[channel, :, 1, 1] = 0.0
        first[channel + 3, :, 1, 1] = 0.0
        first[channel, channel, 1, 1] = 1.0
        first[channel + 3, channel, 1, 1] = -1.0
    kernel_conv = model.model_layer13att.conv_kernel[3]
    channels = model.model_layer13att.channels
    kernel_conv.weight.mul_(IDENTITY_INIT_SCALE)
    identity = torch.eye(channels).flatten()
    kernel_conv.bias.copy_(torch.cat([identity, identity]))
    out = model.model_out[1].weight  # ConvTranspose2d: [in, 3, 3, 3]
    out.mul_(IDENTITY_INIT_SCALE)
    model.model_out[1].bias.zero_()
    for channel in range(3):
        out[channel, channel, 1, 1] = 1.0
        out[channel + 3, channel, 1, 1] = -1.0


def fit_model(
    settings: FitSettings, progress: Callable[[int, float], None] | None = None
) -> FitResult:
    """Fit a fresh `settings.arch` model; `progress(step, loss)` is called after every step."""
    settings = settings.checked()
    model = initial_model(settings.arch, settings.seed).train()
    low_res = settings.low_res or settings.size
    pipeline = HarmonizationPipeline(model, low_res=low_res)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(settings.steps))
    rng = np.random.default_rng(settings.seed)
    families = checked_families(settings.families)
    window = max(1, settings.steps // LOSS_CURVE_POINTS)
    curve, window_losses = [], []
    start = time.perf_counter()
    with replaced_ops({CASCADED_LUT: cascaded_lut, KNN_TOPK_FUSION: knn_topk_fusion_materialized}):
        for step in range(1, settings.steps + 1):
            composite, mask, real = training_batch(rng, settings.batch, settings.size, families)
            loss = fit_loss(pipeline(composite, mask), real, mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRADIENT_CLIP)
            optimizer.step()
            schedule.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise HarmonyError(
                    f"the fit diverged at step {step} (loss {value}); lower --lr "
                    f"(was {settings.lr})"
                )
            window_losses.append(value)
            if len(window_losses) == window or step == settings.steps:
                curve.append((step, float(np.mean(window_losses))))
                window_losses = []
            if progress is not None:
                progress(step, value)
    return FitResult(
        model.eval(), settings, curve, time.perf_counter() - start, torch.get_num_threads()
    )


def _lr_factor(steps: int) -> Callable[[int], float]:
    warmup = max(1, round(WARMUP_FRACTION * steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * cosine

    return factor


def write_fitted_checkpoint(
    result: FitResult, path: str | os.PathLike, command: str, force: bool = False
):
    """Write `result.model` with float16 weights and its provenance; returns the path."""
    from harmony.version import __version__

    metadata = {
        "fitted": True,
        "label": FITTED_LABEL,
        "arch": result.settings.arch,
        "command": command,
        "settings": asdict(result.settings),
        "fit_photos": list(FIT_PHOTOS),
        "families": list(checked_families(result.settings.families)),
        "held_out_photos": list(HELD_OUT_PHOTOS),
        "loss": f"mean log(foreground-normalised MSE + {LOG_LOSS_FLOOR}) on [0,1] images",
        "loss_curve": [[step, round(loss, 7)] for step, loss in result.loss_curve],
        "seconds": round(result.seconds, 1),
        "torch_threads": result.threads,
        "torch_version": str(torch.__version__),
        "harmony_version": __version__,
        "weights_dtype": "float16",
        "note": "stand-in weights fitted by harmony fit; not the official weights",
    }
    return save_checkpoint(result.model, path, metadata, force=force, dtype=torch.float16)


def held_out_quality(checkpoint: str | os.PathLike, count: int = HELD_OUT_COUNT) -> dict:
    """`harmony eval` of the checkpoint file in PyTorch FP32 on the first `count` held-out
    composites (`harmony.profiling.eval.quality_document`: "images", "rows", "means", ...).

    Raises:
        HarmonyError: PyTorch cannot run the checkpoint here (the reason is named).
    """
    from harmony.profiling.eval import quality_document

    document = quality_document(held_out_composites(count), "held-out", checkpoint, [])
    if document["skipped"]:
        raise HarmonyError(f"cannot score {checkpoint}: {document['skipped']}")
    return document


__all__ = [
    "DEFAULT_SETTINGS",
    "FitResult",
    "FitSettings",
    "fit_loss",
    "fit_model",
    "foreground_mse",
    "held_out_quality",
    "write_fitted_checkpoint",
]
