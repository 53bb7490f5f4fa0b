"""harmony-bench's measurement: one configuration per subprocess, records as plain dicts.

The parent plans configurations (`harmony.profiling.plan`), prepares their artifacts
(`harmony.profiling.prepare`) and starts `python -m harmony.profiling.measure <config JSON>` for
each one, so that peak memory is the configuration's own. A configuration that cannot run
(backend missing, no GPU, too large, out of memory, a crash) becomes a record with `skipped`
and the reason: never dropped. The timed region is the runner's `infer` on inputs already on
the device (`harmony.profiling.latency`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict

import torch

from harmony.data import demo_composite
from harmony.data.demo import held_out_composites
from harmony.profiling.config import BenchConfig
from harmony.profiling.latency import measure_latency
from harmony.profiling.memory import MIB, peak_rss_mb
from harmony.quality import BASELINE, evaluate
from harmony.runtime.backends import runner_for


def run_configs(
    configs: Iterable[BenchConfig],
    progress: Callable[[BenchConfig], None] | None = None,
    timeout_s: float = 3600,
) -> list[dict]:
    """Run each configuration in its own subprocess; returns one record per configuration."""
    records = []
    for config in configs:
        if progress is not None:
            progress(config)
        if config.skip_reason:
            records.append(_record(config, skipped=config.skip_reason))
            continue
        records.append(_run_in_subprocess(config, timeout_s))
    return records


def _run_in_subprocess(config: BenchConfig, timeout_s: float) -> dict:
    command = [sys.executable, "-m", "harmony.profiling.measure", json.dumps(asdict(config))]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return _record(config, skipped=f"timed out after {timeout_s:.0f} s")
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    if proc.returncode in (-9, 137):
        return _record(config, skipped="out of memory (the process was killed)")
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return _record(config, skipped=f"failed (exit {proc.returncode}): {last}")


def _record(config: BenchConfig, **measured) -> dict:
    """The JSON record of a configuration (schema: see harmony-bench --help / README)."""
    return {
        "arch": config.arch,
        "backend": config.backend,
        "precision": config.precision,
        "device": config.device,
        "height": config.height,
        "width": config.width,
        "batch": config.batch,
        "kernels": config.kernels,
        "cuda_graphs": config.cuda_graphs,  # as requested; a run records what it resolved
        "custom_ops": None,  # ort-custom: what computed the custom nodes (set by a run)
        "source": config.source,
        "model": config.model,
        "params": config.params,
        "macs": config.macs,
        **({"macs_paper_style": config.macs_paper_style} if config.arch == "aict" else {}),
        "latency_ms": None,
        "throughput_ips": None,
        "peak_memory_mb": None,
        "quality": None,
        "skipped": None,
        **measured,
    }


def measure_config(config: BenchConfig) -> dict:
    """Run one configuration in this process (the subprocess side) and return its record."""
    image, mask, _ = demo_composite(config.height, config.width)
    image, mask = image.expand(config.batch, -1, -1, -1), mask.expand(config.batch, -1, -1, -1)
    runner = runner_for(
        config.model,
        config.backend,
        config.device,
        config.precision,
        kernels=config.kernels,
        cuda_graphs=config.cuda_graphs,
    )
    with runner:
        if config.device == "cuda":
            image, mask = image.cuda(), mask.cuda()
            torch.cuda.reset_peak_memory_stats()
        stats = measure_latency(
            lambda: runner.infer(image, mask), runner.synchronize, config.warmup, config.iterations
        )
        device_bytes = runner.memory_bytes()
        cuda_graphs = getattr(runner, "cuda_graphs", None)  # what the torch backend resolved
        custom_ops = getattr(runner, "custom_ops", None)  # ort-custom: which implementation
        quality = _held_out_quality(runner, config) if config.quality_images else None
    peak = device_bytes / MIB if device_bytes is not None else peak_rss_mb()
    return _record(
        config,
        latency_ms=stats.as_dict(),
        throughput_ips=config.batch * 1e3 / stats.mean,
        peak_memory_mb=peak,
        peak_memory_kind="device" if device_bytes is not None else "process RSS",
        cuda_graphs=cuda_graphs,
        custom_ops=custom_ops,
        quality=quality,
    )


class _AsConfigured:
    """A runner's `infer` of one image, as the configuration runs it: moved to its device and
    repeated to its batch (an engine or graph may take that batch only); the first output."""

    def __init__(self, runner, config: BenchConfig):
        self.runner, self.config = runner, config

    def infer(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, device = self.config.batch, self.config.device
        image = image.expand(batch, -1, -1, -1).to(device)
        mask = mask.expand(batch, -1, -1, -1).to(device)
        return self.runner.infer(image, mask)[:1]


def _held_out_quality(runner, config: BenchConfig) -> dict:
    """Mean scores (`harmony.metrics`) of the composites and of the runner's outputs on the
    first `config.quality_images` held-out composites, resized to the configuration's size:
    {"images", "composite": {metric: mean}, "output": {metric: mean}}. Measured after timing,
    outside the timed region."""
    result = evaluate(
        held_out_composites(config.quality_images),
        {"output": _AsConfigured(runner, config)},
        resolution=(config.height, config.width),
    )
    means = result["means"]
    return {"images": result["images"], "composite": means[BASELINE], "output": means["output"]}


if __name__ == "__main__":
    print(json.dumps(measure_config(BenchConfig(**json.loads(sys.argv[1])))))
