"""Harmonization quality of one model over an iHarmony4-layout folder (`harmony eval`).

Every requested (backend, precision) harmonizes every composite; each output is scored against
the real photograph with `harmony.metrics` (MSE, fMSE, PSNR, fPSNR, SSIM), as is the composite
itself (the papers' baseline row). Each metric's difference to the FP32 PyTorch output of the
same model is the precision's drift in the papers' units. Only the scores are kept, one row per
image and target, so memory does not grow with the number of images. Runners are prepared with
the backend registry's loaders (cached exports) before the first image; a target that cannot
run here is reported with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

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


def prepare_runners(source, targets: list[QualityTarget], resolutions) -> tuple[dict, dict]:
    """({label: inactive runner}, {label: why it cannot run}) for `targets` and the FP32
    PyTorch reference, artifacts prepared (exported) for `resolutions`."""
    from harmony.errors import HarmonyError
    from harmony.profiling.plan import unrunnable
    from harmony.runtime.backends import default_device, get_backend, runner_for
    from harmony.runtime.loaders import ArtifactRequest

    runners, skipped = {}, {}
    for target in [QualityTarget(*REFERENCE), *targets]:
        if target.label in runners or target.label in skipped:
            continue
        backend = get_backend(target.backend)
        device = default_device(backend)
        reason = unrunnable(backend, device, source, target.precision)
        if reason is not None:
            skipped[target.label] = reason
            continue
        try:
            request = ArtifactRequest(source, target.precision, tuple(resolutions))
            artifact = backend.prepare(request)
            runners[target.label] = runner_for(artifact, target.backend, device, target.precision)
        except HarmonyError as exc:
            skipped[target.label] = str(exc)
    return runners, skipped


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
    per-image difference to the reference}}, "images": count}."""
    reference = QualityTarget(*REFERENCE).label
    count = len(dataset) if limit is None else min(limit, len(dataset))
    rows: list[dict] = []
    sums: dict[str, dict[str, float]] = {}
    drift_sums: dict[str, dict[str, float]] = {}
    for index in range(count):
        sample = dataset[index]
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
        if progress is not None:
            progress(sample["name"])
    return {
        "images": count,
        "rows": rows,
        "means": {k: {m: v / max(count, 1) for m, v in s.items()} for k, s in sums.items()},
        "drift": {k: {m: v / max(count, 1) for m, v in s.items()} for k, s in drift_sums.items()},
    }


def quality_document(
    dataset,
    data_label: str,
    model_path,
    targets: list[QualityTarget],
    resolution: tuple[int, int] | None = None,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
    command: str = "",
) -> dict:
    """`harmony eval`'s document: the model at `model_path` run by `targets` (and FP32
    PyTorch) over `dataset` (named `data_label`) with `evaluate`, and what it ran on:
    {"environment", "data", "model", "arch", "weights", "resolution", "skipped", "images",
    "rows", "means", "drift"}."""
    from harmony.contract import DEFAULT_RESOLUTIONS
    from harmony.profiling.bench import environment
    from harmony.runtime.loaders import identify

    source = identify(model_path)
    resolutions = [resolution] if resolution else DEFAULT_RESOLUTIONS
    runners, skipped = prepare_runners(source, targets, resolutions)
    with contextlib.ExitStack() as stack:
        for runner in runners.values():
            stack.enter_context(runner)
        result = evaluate(dataset, runners, resolution, limit, progress)
    return {
        "environment": environment(command),
        "data": data_label,
        "model": str(model_path),
        "arch": source.arch,
        "weights": source.weights,
        "resolution": None if resolution is None else list(resolution),
        "skipped": skipped,
        **result,
    }


__all__ = [
    "BASELINE",
    "REFERENCE",
    "QualityTarget",
    "evaluate",
    "gain_over_composite",
    "prepare_runners",
    "quality_document",
]
