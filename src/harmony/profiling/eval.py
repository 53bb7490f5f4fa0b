"""`harmony eval`'s orchestration: runners prepared for every (backend, precision) target, then
scored over a dataset with `harmony.quality.evaluate`.

Runners are prepared before the first image (`harmony.artifacts`: cached exports); a target
that cannot run here is reported with its backend's refusal or the preparation's error, never
dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from harmony.artifacts import ArtifactRequest, prepare
from harmony.contract import DEFAULT_RESOLUTIONS
from harmony.errors import HarmonyError
from harmony.profiling.environment import environment
from harmony.quality import REFERENCE, QualityTarget, evaluate
from harmony.runtime.backends import default_device, get_backend, runner_for
from harmony.runtime.sources import ModelSource, identify


def prepare_runners(
    source: ModelSource, targets: list[QualityTarget], resolutions
) -> tuple[dict, dict]:
    """({label: inactive runner}, {label: why it cannot run}) for `targets` and the FP32
    PyTorch reference, artifacts prepared (exported) for `resolutions`."""
    runners, skipped = {}, {}
    for target in [QualityTarget(*REFERENCE), *targets]:
        if target.label in runners or target.label in skipped:
            continue
        backend = get_backend(target.backend)
        device = default_device(backend)
        reason = backend.refusal(source, device, target.precision)
        if reason is not None:
            skipped[target.label] = reason
            continue
        try:
            request = ArtifactRequest(source, target.precision, tuple(resolutions))
            artifact = prepare(backend, request)
            runners[target.label] = runner_for(artifact, target.backend, device, target.precision)
        except HarmonyError as exc:
            skipped[target.label] = str(exc)
    return runners, skipped


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
    {"environment", "data", "model", "arch", "weights", "resolution", "skipped", "custom_ops"
    (what computed the custom nodes, by target label), "images", "rows", "means", "drift"}."""
    source = identify(model_path)
    resolutions = [resolution] if resolution else DEFAULT_RESOLUTIONS
    runners, skipped = prepare_runners(source, targets, resolutions)
    with contextlib.ExitStack() as stack:
        for runner in runners.values():
            stack.enter_context(runner)
        custom_ops = {
            label: runner.custom_ops
            for label, runner in runners.items()
            if getattr(runner, "custom_ops", None)
        }
        result = evaluate(dataset, runners, resolution, limit, progress)
    return {
        "environment": environment(command),
        "data": data_label,
        "model": str(model_path),
        "arch": source.arch,
        "weights": source.weights,
        "resolution": None if resolution is None else list(resolution),
        "skipped": skipped,
        "custom_ops": custom_ops,
        **result,
    }
