"""The main job on the embedded default: demo data, demo checkpoints, one harmonization each,
their export to validated ONNX graphs, and a benchmark of those graphs in ONNX Runtime.

Everything is local (photographs from the scikit-image wheel; the fitted checkpoints shipped in
`harmony.weights`, random non-degenerate weights for an architecture without one), so it runs
on a machine with no GPU, no TensorRT and no network. The composite harmonized is one of a
photograph held out from fitting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from harmony.contract import ARCHS, QUALITY_CHECK_IMAGES
from harmony.data import make_demo_dataset, read_image, read_mask, write_image
from harmony.metrics import psnr_db
from harmony.models import harmonize, load_checkpoint
from harmony.models.checkpoint import weights_label
from harmony.models.init import make_random_checkpoint
from harmony.weights import fitted_archs, fitted_checkpoint

DEMO_SEED = 0
DEMO_SAMPLES = 4


@dataclass
class DemoResult:
    """One architecture's run on the first demo composite."""

    arch: str
    checkpoint: Path
    weights: str  # how the weights were made (`weights_label`)
    params: int
    output: Path
    height: int
    width: int
    seconds: float
    psnr_composite: float  # composite vs real image
    psnr_output: float  # harmonized vs real image


def demo_checkpoint(arch: str, folder: Path, force: bool = False, exists_ok: bool = False) -> Path:
    """The fitted checkpoint of `arch` shipped in the package, or, for an architecture without
    one, random weights (seed `DEMO_SEED`) written to `folder/<arch>.pth`; an existing file
    there is replaced with `force`, or used as it is with `exists_ok` (a cache)."""
    if arch in fitted_archs():
        return fitted_checkpoint(arch)
    path = folder / f"{arch}.pth"
    if exists_ok and path.is_file():
        return path
    return make_random_checkpoint(arch, DEMO_SEED, path, force=force)


def run_demo(out_dir: Path, force: bool = False) -> list[DemoResult]:
    """Write demo data under `out_dir` and harmonize its first composite (a photograph held
    out from fitting) with each architecture's demo checkpoint (`demo_checkpoint`).

    Layout: `data/` (iHarmony4 layout), `checkpoints/<arch>.pth` (random weights only),
    `harmonized/<arch>.png`. Existing files are only replaced with `force=True`.
    """
    samples = make_demo_dataset(out_dir / "data", count=DEMO_SAMPLES, seed=DEMO_SEED, force=force)
    sample = samples[0]
    image, _ = read_image(sample.composite_path)
    mask = read_mask(sample.mask_path, size=tuple(image.shape[-2:]))
    real, _ = read_image(sample.real_path)
    results = []
    for arch in ARCHS:
        checkpoint = demo_checkpoint(arch, out_dir / "checkpoints", force)
        model = load_checkpoint(checkpoint)
        start = time.perf_counter()
        output = harmonize(model, image, mask)
        seconds = time.perf_counter() - start
        path = write_image(out_dir / "harmonized" / f"{arch}.png", output, force=force)
        results.append(
            DemoResult(
                arch=arch,
                checkpoint=checkpoint,
                weights=weights_label(model.checkpoint.metadata),
                params=sum(p.numel() for p in model.parameters()),
                output=path,
                height=int(image.shape[-2]),
                width=int(image.shape[-1]),
                seconds=seconds,
                psnr_composite=psnr_db(real.numpy(), image.numpy()),
                psnr_output=psnr_db(real.numpy(), output.numpy()),
            )
        )
    return results


BENCH_RESOLUTION = (1024, 1024)
# The sizes (H, W) the demo's exports are verified at; None: the exporter's default.
VERIFY_SIZES: tuple[tuple[int, int], ...] | None = None


def export_demo_graphs(results: list[DemoResult], out_dir: Path, force: bool = False) -> list:
    """Export each result's checkpoint to a verified ORT-target FP32 graph
    `out_dir/<arch>.ort.fp32.onnx`; the reports."""
    from harmony.export.exporter import onnx_from_checkpoint
    from harmony.export.verify import DEFAULT_SIZES

    return [
        onnx_from_checkpoint(
            r.checkpoint,
            out_dir / f"{r.arch}.ort.fp32.onnx",
            target="ort",
            force=force,
            verify_sizes=VERIFY_SIZES or DEFAULT_SIZES,
        )
        for r in results
    ]


def bench_demo_graphs(graphs: list[Path], iterations: int = 3) -> list[dict]:
    """harmony-bench's records for `graphs` in ONNX Runtime on the CPU at 1024x1024 (graphs of
    fitted weights also scored on held-out composites)."""
    from harmony.profiling.measure import run_configs
    from harmony.profiling.plan import plan_configs
    from harmony.profiling.prepare import prepare_configs
    from harmony.runtime.sources import identify

    sources = [identify(graph) for graph in graphs]
    configs = plan_configs(
        sources, ["ort"], ["fp32"], [BENCH_RESOLUTION], 1, 1, iterations, None, QUALITY_CHECK_IMAGES
    )
    return run_configs(prepare_configs(configs, sources))
