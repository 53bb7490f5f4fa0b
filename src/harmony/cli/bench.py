"""`harmony bench` / `harmony-bench`: latency, memory, FLOPs of backends at 1024^2 / 2048^2."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.errors import HarmonyError
from harmony.models import ARCHS
from harmony.runtime.torch_runner import KERNELS


def _csv(choices):
    def parse(ctx, param, value):
        items = [item.strip() for item in value.split(",") if item.strip()]
        bad = [item for item in items if item not in choices]
        if bad:
            raise click.BadParameter(f"{bad} not in {list(choices)}")
        return items

    return parse


def _resolutions(ctx, param, value):
    from harmony.runtime.profiles import parse_resolution

    try:
        return [parse_resolution(item.strip()) for item in value.split(",") if item.strip()]
    except HarmonyError as exc:
        raise click.BadParameter(str(exc)) from None


def _kernels(ctx, param, value):
    return None if value == "auto" else _csv(KERNELS)(ctx, param, value)


@click.command("bench")
@click.argument("models", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--arch",
    default=",".join(ARCHS),
    show_default=True,
    callback=_csv(ARCHS),
    help="With no MODEL: the demo checkpoints of these architectures.",
)
@click.option(
    "--res",
    "resolutions",
    default="1024,2048",
    show_default=True,
    callback=_resolutions,
    help="N (NxN) or HxW, comma-separated.",
)
@click.option(
    "--backend",
    "backends",
    default="torch,ort,trt",
    show_default=True,
    callback=_csv(("torch", "ort", "trt")),
)
@click.option(
    "--precision", "precisions", default="fp32", show_default=True, callback=_csv(("fp32", "fp16"))
)
@click.option(
    "--kernels",
    default="auto",
    show_default=True,
    callback=_kernels,
    help="torch backend: reference (harmony.ops), fused (plugin kernels, CUDA), comma-separated; "
    "auto: both on CUDA, reference on the CPU.",
)
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True)
@click.option("--iters", "iterations", type=click.IntRange(1), default=5, show_default=True)
@click.option(
    "--json", "json_path", type=click.Path(path_type=Path), help="Write the results JSON."
)
@click.option(
    "--markdown", "markdown_path", type=click.Path(path_type=Path), help="Write a Markdown report."
)
@click.option(
    "--plot", "plot_path", type=click.Path(path_type=Path), help="Write a latency bar chart (PNG)."
)
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@user_errors
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
    json_path,
    markdown_path,
    plot_path,
    force,
):
    """Measure latency, throughput, peak memory, parameters and MACs of MODELs (checkpoints or
    ORT-target .onnx graphs; default: the demo checkpoints), each configuration in its own
    process. Configurations that cannot run here are reported as skipped, with the reason."""
    from tqdm import tqdm

    from harmony.cli.common import format_table
    from harmony.profiling.bench import environment, run_configs
    from harmony.profiling.plan import model_entry, plan_configs
    from harmony.profiling.report import (
        bench_document,
        write_json,
        write_markdown,
        write_plot,
    )

    for path in (json_path, markdown_path, plot_path):
        if path is not None and path.exists() and not force:
            raise HarmonyError(f"{path} already exists; pass --force to overwrite it")
    paths = list(models) or _demo_checkpoints(arch)
    click.echo(f"preparing {len(paths)} model(s) (exports are cached) ...", err=True)
    entries = [model_entry(path) for path in paths]
    configs = plan_configs(
        entries, backends, precisions, resolutions, batch, warmup, iterations, kernels
    )
    bar = tqdm(total=len(configs), unit="config", file=sys.stderr, disable=None)

    def progress(config):
        bar.set_description(config.label())
        bar.update(1)

    records = run_configs(configs, progress)
    bar.close()
    command = "harmony-bench " + shlex.join(sys.argv[1:])
    document = bench_document(environment(command), records)
    click.echo(format_table(*summary_table(records)))
    for path, write in ((json_path, write_json), (markdown_path, write_markdown)):
        if path is not None:
            write(path, document, force)
            click.echo(f"wrote {path}")
    if plot_path is not None:
        write_plot(plot_path, records, force)
        click.echo(f"wrote {plot_path}")


def _demo_checkpoints(archs: list[str]) -> list[Path]:
    from harmony.files import cache_dir
    from harmony.models.init import make_random_checkpoint
    from harmony.quickstart import DEMO_SEED

    folder = cache_dir("demo-checkpoints")
    paths = []
    for arch in archs:
        path = folder / f"{arch}.seed{DEMO_SEED}.pth"
        if not path.exists():
            make_random_checkpoint(arch, DEMO_SEED, path)
        paths.append(path)
    return paths


def summary_table(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the terminal summary of bench records."""
    from harmony.profiling.report import backend_label

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
        "note",
    ]
    rows = []
    for r in records:
        macs = f"{r['macs']['total'] / 1e9:.1f}" if r.get("macs") else ""
        size = f"{r['height']}x{r['width']}"
        base = [r["arch"], backend_label(r), r["precision"], r["device"], size]
        if r.get("skipped"):
            rows.append([*base, "-", "-", "-", macs, f"skipped: {r['skipped']}"])
        else:
            lat = r["latency_ms"]
            rows.append(
                [
                    *base,
                    f"{lat['mean']:.1f}",
                    f"{lat['p90']:.1f}",
                    f"{r['peak_memory_mb']:.0f}",
                    macs,
                    "",
                ]
            )
    return header, rows
