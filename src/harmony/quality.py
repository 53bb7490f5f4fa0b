"""Harmonization quality of runners over a set of composites, in the papers' units.

`evaluate` runs every runner (anything with `infer(image, mask)`) on every composite of a
dataset and scores each output against the real photograph with `harmony.metrics` (MSE, fMSE,
PSNR, fPSNR, SSIM), as it scores the composite itself (the papers' baseline row). Each metric's
difference to the FP32 PyTorch output of the same model is the precision's drift. Only the
scores are kept, one row per image and target, so memory does not grow with the number of
images. `harmony eval`, `harmony fit`, the export verification and harmony-bench all score
with it; `gain_over_composite` is the one place the gain over the composite is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harmony.errors import HarmonyError
from harmony.metrics import METRICS, scores

REFERENCE = ("torch", "fp32")
BASELINE = "composite"


@dataclass(frozen=True)
class QualityTarget:
    """One way of running the model: a registered backend at a precision."""

    backend: str
    precision: str

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"


def gain_over_composite(means: dict, label: str = QualityTarget(*REFERENCE).label) -> dict:
    """The harmonization gain of target `label` in `means` (`evaluate`'s "means"):
    {"psnr_gain_db": PSNR(output) - PSNR(composite), "fmse_reduction": 1 - fMSE(output) /
    fMSE(composite)} (0.3 = fMSE 30% lower)."""
    composite, output = means[BASELINE], means[label]
    return {
        "psnr_gain_db": output["psnr"] - composite["psnr"],
        "fmse_reduction": 1.0 - output["fmse"] / composite["fmse"],
    }


def _resized(tensor: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    if size is None or tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=True)


def evaluate(
    dataset,
    runners: dict,
    resolution: tuple[int, int] | None = None,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Scores of the composites and of every runner's output over `dataset` (at most `limit`
    images, each resized to `resolution` when given): {"rows": [{"image", "target", metric:
    value, ...}], "means": {target: {metric: mean}}, "drift": {target: {metric: mean of the
    per-image difference to the reference}}, "images": count, "failed": None}. A sample that
    cannot be read (a HarmonyError) ends the run there: the scores are those of the images
    before it, and "failed" is {"index", "error"}."""
    reference = QualityTarget(*REFERENCE).label
    count = len(dataset) if limit is None else min(limit, len(dataset))
    rows: list[dict] = []
    sums: dict[str, dict[str, float]] = {}
    drift_sums: dict[str, dict[str, float]] = {}
    failed = None
    done = 0
    for index in range(count):
        try:
            sample = dataset[index]
        except HarmonyError as exc:
            failed = {"index": index, "error": str(exc)}
            break
        composite, mask, real = (
            _resized(sample[key], resolution) for key in ("composite", "mask", "real")
        )
        composite, mask = composite.clamp(0, 1), mask.clamp(0, 1)
        real_np, mask_np = real.numpy(), mask.numpy()
        results = {BASELINE: scores(composite.numpy(), real_np, mask_np).as_dict()}
        for label, runner in runners.items():
            output = runner.infer(composite, mask).float().cpu()
            results[label] = scores(output.numpy(), real_np, mask_np).as_dict()
        for label, values in results.items():
            rows.append({"image": sample["name"], "target": label, **values})
            total = sums.setdefault(label, dict.fromkeys(METRICS, 0.0))
            for metric, value in values.items():
                total[metric] += value
            if label != BASELINE and reference in results:
                drift = drift_sums.setdefault(label, dict.fromkeys(METRICS, 0.0))
                for metric, value in values.items():
                    drift[metric] += value - results[reference][metric]
        done += 1
        if progress is not None:
            progress(sample["name"])
    return {
        "images": done,
        "rows": rows,
        "means": {k: {m: v / max(done, 1) for m, v in s.items()} for k, s in sums.items()},
        "drift": {k: {m: v / max(done, 1) for m, v in s.items()} for k, s in drift_sums.items()},
        "failed": failed,
    }


__all__ = [
    "BASELINE",
    "REFERENCE",
    "QualityTarget",
    "evaluate",
    "gain_over_composite",
]
