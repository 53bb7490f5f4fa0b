"""The `harmony` command group; `harmony-export`, `harmony-bench`, `harmony-run` are aliases."""

from __future__ import annotations

import click

from harmony.cli.batch import batch_command
from harmony.cli.bench import bench_command
from harmony.cli.build import build_command
from harmony.cli.checkpoints import init_command, inspect_command
from harmony.cli.demo import demo_command, demo_data_command
from harmony.cli.eval import eval_command
from harmony.cli.export import export_command
from harmony.cli.fit import fit_command
from harmony.cli.gpu_check import gpu_check_command
from harmony.cli.polygraphy import polygraphy_command
from harmony.cli.run import run_command
from harmony.cli.serve import serve_command, triton_repo_command
from harmony.version import __version__


@click.group()
@click.version_option(__version__, prog_name="harmony")
def cli() -> None:
    """harmony-deploy: AICT and HDNet image harmonization, from checkpoints to fast inference."""


for _command in (
    demo_command,
    demo_data_command,
    init_command,
    inspect_command,
    export_command,
    bench_command,
    eval_command,
    fit_command,
    run_command,
    batch_command,
    build_command,
    gpu_check_command,
    polygraphy_command,
    serve_command,
    triton_repo_command,
):
    cli.add_command(_command)

export_alias = export_command
bench_alias = bench_command
run_alias = run_command
