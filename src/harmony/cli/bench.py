"""`harmony bench` / `harmony-bench`: latency, memory, FLOPs of backends at 1024^2 / 2048^2."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from harmony.cli.common import user_errors
from harmony.cli.groups import ReportArgs, ReportPaths, option_groups
from harmony.cli.options import (
    backends_option,
    comma_separated,
    kernels_option,
    precisions_option,
    resolutions_option,
)
from harmony.contract import ARCHS, DEFAULT_RESOLUTIONS, QUALITY_CHECK_IMAGES


@click.command("bench")
@user_errors
@click.argument("models", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--arch",
    default=",".join(ARCHS),
    show_default=True,
    callback=comma_separated(ARCHS),
    help="With no MODEL: the demo checkpoints of these architectures, comma-separated.",
)
@resolutions_option("Input sizes to measure:")
@backends_option
@precisions_option
@kernels_option(multiple=True)
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True)
@click.option("--iters", "iterations", type=click.IntRange(1), default=5, show_default=True)
@click.option(
    "--quality-images",
    type=click.IntRange(0),
    default=QUALITY_CHECK_IMAGES,
    show_default=True,
    help="Held-out composites (resized to each size) whose harmonization is scored after "
    "timing, for fitted weights only; 0: none.",
)
@option_groups(ReportArgs(plot=True))
def bench_command(
    models,
    arch,
    resolutions,
    backends,
    precisions,
    kernels,
    batch,
    warmup,
    iterations,
    quality_images,
    reports: ReportPaths,
):
    """Measure latency, throughput, peak memory, parameters and MACs of MODELs (checkpoints or
    exported .onnx graphs; default: the demo checkpoints), each configuration in its own
    process. Configurations that cannot run here are reported as skipped, with the reason.
    Without --backend, every backend is measured and the fastest on the CPU is named for each
    file, precision and size (and recorded as "fastest_cpu" in the JSON report)."""
    from tqdm import tqdm

    from harmony.cli.common import format_table
    from harmony.profiling.environment import environment
    from harmony.profiling.measure import run_configs
    from harmony.profiling.plan import plan_configs
    from harmony.profiling.prepare import prepare_configs
    from harmony.profiling.report import (
        bench_document,
        fastest_cpu_backends,
        pick_sentence,
        write_json,
        write_markdown,
        write_plot,
    )
    from harmony.runtime.sources import identify

    if not models:
        click.echo(
            f"no MODEL given: measuring the demo checkpoints of {', '.join(arch)} "
            "(harmony-bench --help lists the options)",
            err=True,
        )
    paths = list(models) or _demo_checkpoints(arch)
    sources = [identify(path) for path in paths]
    sizes = list(resolutions or DEFAULT_RESOLUTIONS)
    configs = plan_configs(
        sources, backends, precisions, sizes, batch, warmup, iterations, kernels, quality_images
    )
    configs = prepare_configs(configs, sources, lambda what: click.echo(f"{what} ...", err=True))
    bar = tqdm(total=len(configs), unit="config", file=sys.stderr, disable=None)

    def progress(config):
        bar.set_description(config.label())
        bar.update(1)

    records = run_configs(configs, progress)
    bar.close()
    command = "harmony-bench " + shlex.join(sys.argv[1:])
    chosen = click.get_current_context().get_parameter_source("backends")
    picks = fastest_cpu_backends(records) if chosen is ParameterSource.DEFAULT else None
    document = bench_document(environment(command), records, picks)
    click.echo(format_table(*summary_table(records)))
    for pick in picks or ():
        click.echo(pick_sentence(pick))
    for path, write in ((reports.json, write_json), (reports.markdown, write_markdown)):
        if path is not None:
            write(path, document, reports.force)
            click.echo(f"wrote {path}")
    if reports.plot is not None:
        write_plot(reports.plot, records, reports.force)
        click.echo(f"wrote {reports.plot}")


def _demo_checkpoints(archs: list[str]) -> list[Path]:
    """The demo's checkpoints (`quickstart.demo_checkpoint`), random ones kept in the cache."""
    from harmony.files import cache_dir
    from harmony.quickstart import demo_checkpoint

    folder = cache_dir("demo-checkpoints")
    return [demo_checkpoint(arch, folder, exists_ok=True) for arch in archs]


def summary_table(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the terminal summary of bench records."""
    from harmony.profiling.report import backend_label, held_out_psnr

    header = [
        "arch",
        "backend",
        "prec",
        "device",
        "size",
        "mean ms",
        "p90 ms",
        "peak MB",
        "GMACs",
        "held-out PSNR",
        "note",
    ]
    rows = []
    for r in records:
        macs = f"{r['macs']['total'] / 1e9:.1f}" if r.get("macs") else ""
        size = f"{r['height']}x{r['width']}"
        base = [r["arch"], backend_label(r), r["precision"], r["device"], size]
        if r.get("skipped"):
            rows.append([*base, "-", "-", "-", macs, "", f"skipped: {r['skipped']}"])
        else:
            lat = r["latency_ms"]
            rows.append(
                [
                    *base,
                    f"{lat['mean']:.1f}",
                    f"{lat['p90']:.1f}",
                    f"{r['peak_memory_mb']:.0f}",
                    macs,
                    held_out_psnr(r),
                    "",
                ]
            )
    return header, rows
