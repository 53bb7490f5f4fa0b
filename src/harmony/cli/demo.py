"""`harmony demo` (the main job on the embedded default) and `harmony demo-data`."""

from __future__ import annotations

from pathlib import Path

import click

from harmony.cli.common import format_table, user_errors
from harmony.cli.options import force_option


@click.command("demo")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=Path("demo"), show_default=True
)
@force_option
@user_errors
def demo_command(out_dir: Path, force: bool) -> None:
    """Make demo data, harmonize a demo composite of a held-out photograph with each
    architecture's demo checkpoint (fitted where one is shipped, else random), export them to
    validated ONNX graphs and benchmark those in ONNX Runtime at 1024x1024."""
    from harmony.cli.bench import summary_table
    from harmony.quickstart import DEMO_SAMPLES, bench_demo_graphs, export_demo_graphs, run_demo

    results = run_demo(out_dir, force=force)
    click.echo(f"demo data: {DEMO_SAMPLES} composites in {out_dir / 'data'} (iHarmony4 layout)")
    first = results[0]
    click.echo(
        f"harmonized {first.height}x{first.width} composite (a photograph held out from fitting) "
        "with each checkpoint (CPU, PyTorch):\n"
    )
    rows = [
        [
            r.arch,
            r.weights,
            f"{r.params:,}",
            f"{r.seconds:.2f}",
            f"{r.psnr_composite:.2f}",
            f"{r.psnr_output:.2f}",
            r.output,
        ]
        for r in results
    ]
    header = ["arch", "weights", "params", "seconds", "PSNR comp/real", "PSNR out/real", "output"]
    click.echo(format_table(header, rows))
    reports = export_demo_graphs(results, out_dir / "onnx", force=force)
    click.echo(
        "\nexported (ONNX Runtime target, FP32), verified against PyTorch (parity on demo "
        "composites; fitted weights also scored on held-out composites):\n"
    )
    click.echo(
        format_table(
            ["arch", "file", "nodes", "MB", "min PSNR dB", "max abs err", "held-out PSNR dB"],
            [
                [
                    report.arch,
                    report.path,
                    sum(report.node_counts.values()),
                    f"{report.file_bytes / 1e6:.1f}",
                    f"{min(p.psnr_db for p in report.parity):.1f}",
                    f"{max(p.max_abs for p in report.parity):.2e}",
                    _graph_quality(report),
                ]
                for report in reports
            ],
        )
    )
    click.echo("\nharmony-bench: ONNX Runtime on this CPU, 1024x1024, batch 1:\n")
    click.echo(format_table(*summary_table(bench_demo_graphs([r.path for r in reports]))))
    click.echo(
        "\nNo official weights are obtainable offline: fitted checkpoints are stand-ins fitted on "
        "synthetic composites of other photographs (harmony fit); RANDOM ones show that the "
        "pipeline runs, not harmonization quality."
    )


def _graph_quality(report) -> str:
    """The graph's held-out PSNR beside the composites' (fitted weights only)."""
    from harmony.profiling.report import psnr_beside_composite

    if not report.quality:
        return ""
    means = report.quality["means"]
    return psnr_beside_composite(means[f"onnx {report.precision}"], means["composite"])


@click.command("demo-data")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--count", type=int, default=4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--held-out",
    is_flag=True,
    help="Only the photographs held out from fitting (harmony fit never sees them): the set to "
    "score fitted checkpoints on with harmony eval.",
)
@force_option
@user_errors
def demo_data_command(out_dir: Path, count: int, seed: int, held_out: bool, force: bool) -> None:
    """Write deterministic demo composites (iHarmony4 layout) made from bundled photographs."""
    from harmony.data import make_demo_dataset
    from harmony.data.demo import HELD_OUT_PHOTOS

    photos = HELD_OUT_PHOTOS if held_out else None
    samples = make_demo_dataset(out_dir, count=count, seed=seed, force=force, photos=photos)
    for sample in samples:
        click.echo(
            f"{sample.composite_path}  mask {sample.mask_path.name}  real {sample.real_path.name}"
        )
    click.echo(f"wrote {len(samples)} samples to {out_dir}")
