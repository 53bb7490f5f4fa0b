"""harmony-bench's engine: one configuration per subprocess, records as plain dicts.

The parent plans configurations (`harmony.profiling.plan`), prepares their artifacts
(`harmony.profiling.prepare`) and starts `python -m harmony.profiling.bench <config JSON>` for
each one, so that peak memory is the configuration's own. A configuration that cannot run
(backend missing, no GPU, too large, out of memory, a crash) becomes a record with `skipped`
and the reason: never dropped. The timed region is the runner's `infer` on inputs already on
the device (`harmony.profiling.latency`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from harmony import __version__
from harmony.data import demo_composite
from harmony.profiling.latency import measure_latency
from harmony.profiling.memory import MIB, peak_rss_mb


@dataclass(frozen=True)
class BenchConfig:
    """One measurement: what runs (source, backend, precision, device) and on what."""

    arch: str
    source: str  # the file given: a checkpoint or an ONNX graph
    backend: str
    precision: str
    device: str
    height: int
    width: int
    batch: int
    warmup: int
    iterations: int
    params: int | None = None
    kernels: str | None = None  # torch backend: "reference" (harmony.ops) or "fused" (CUDA)
    cuda_graphs: bool | None = None  # torch backend: replay on/off (None: where capturable)
    skip_reason: str | None = None  # known before running (backend unavailable, too large)
    model: str | None = None  # the artifact the backend runs (prepared: checkpoint/.onnx/.engine)
    macs: dict | None = None
    macs_paper_style: int | None = None
    # Held-out composites whose harmonization is scored after timing (0: none; planned only
    # for fitted weights, whose quality means something).
    quality_images: int = 0

    def label(self) -> str:
        backend = f"{self.backend}+fused" if self.kernels == "fused" else self.backend
        return (
            f"{self.arch} {backend} {self.precision} {self.device} "
            f"{self.height}x{self.width} b{self.batch}"
        )


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
    command = [sys.executable, "-m", "harmony.profiling.bench", json.dumps(asdict(config))]
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
    from harmony.runtime.backends import runner_for

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
        quality = _held_out_quality(runner, config) if config.quality_images else None
    peak = device_bytes / MIB if device_bytes is not None else peak_rss_mb()
    return _record(
        config,
        latency_ms=stats.as_dict(),
        throughput_ips=config.batch * 1e3 / stats.mean,
        peak_memory_mb=peak,
        peak_memory_kind="device" if device_bytes is not None else "process RSS",
        cuda_graphs=cuda_graphs,
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
    from harmony.data.demo import held_out_composites
    from harmony.profiling.quality import BASELINE, evaluate

    result = evaluate(
        held_out_composites(config.quality_images),
        {"output": _AsConfigured(runner, config)},
        resolution=(config.height, config.width),
    )
    means = result["means"]
    return {"images": result["images"], "composite": means[BASELINE], "output": means["output"]}


def environment(command: str) -> dict:
    """Machine, library versions and the command line of a run."""
    from harmony.runtime.trt_env import RUNTIMES, import_runtime

    versions = {"harmony": __version__, "torch": torch.__version__}
    for module in ("onnxruntime", "onnx"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    for runtime in RUNTIMES.values():
        installed = runtime.is_installed()
        versions[runtime.name] = (
            import_runtime(runtime).__version__ if installed else ("not installed")
        )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "command": command,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": platform.python_version(),
        "versions": versions,
    }


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (else the platform's processor name)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    print(json.dumps(measure_config(BenchConfig(**json.loads(sys.argv[1])))))
