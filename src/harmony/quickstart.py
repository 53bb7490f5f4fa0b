"""The main job on the embedded default: demo data, demo checkpoints, one harmonization each.

Everything is made locally (photographs from the scikit-image wheel, random non-degenerate
weights), so it runs on a machine with no GPU, no TensorRT and no network.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from harmony.data import make_demo_dataset, read_image, read_mask, write_image
from harmony.models import ARCHS, harmonize, load_checkpoint
from harmony.models.init import make_random_checkpoint

DEMO_SEED = 0
DEMO_SAMPLES = 4


@dataclass
class DemoResult:
    """One architecture's run on the first demo composite."""

    arch: str
    checkpoint: Path
    params: int
    output: Path
    height: int
    width: int
    seconds: float
    psnr_composite: float  # composite vs real image
    psnr_output: float  # harmonized vs real image (random weights: not a quality figure)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two tensors in [0,1]; inf when equal."""
    mse = float(torch.mean((a.double() - b.double()) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def run_demo(out_dir: Path, force: bool = False) -> list[DemoResult]:
    """Write demo data and random checkpoints under `out_dir` and harmonize one composite.

    Layout: `data/` (iHarmony4 layout), `checkpoints/<arch>.pth`, `harmonized/<arch>.png`.
    Existing files are only replaced with `force=True`.
    """
    samples = make_demo_dataset(out_dir / "data", count=DEMO_SAMPLES, seed=DEMO_SEED, force=force)
    sample = samples[0]
    image, _ = read_image(sample.composite_path)
    mask = read_mask(sample.mask_path, size=tuple(image.shape[-2:]))
    real, _ = read_image(sample.real_path)
    results = []
    for arch in ARCHS:
        checkpoint = make_random_checkpoint(
            arch, DEMO_SEED, out_dir / "checkpoints" / f"{arch}.pth", force=force
        )
        model = load_checkpoint(checkpoint)
        start = time.perf_counter()
        output = harmonize(model, image, mask)
        seconds = time.perf_counter() - start
        path = write_image(out_dir / "harmonized" / f"{arch}.png", output, force=force)
        results.append(
            DemoResult(
                arch=arch,
                checkpoint=checkpoint,
                params=sum(p.numel() for p in model.parameters()),
                output=path,
                height=int(image.shape[-2]),
                width=int(image.shape[-1]),
                seconds=seconds,
                psnr_composite=psnr(image, real),
                psnr_output=psnr(output, real),
            )
        )
    return results
