"""The `harmony` command group; `harmony-export`, `harmony-bench`, `harmony-run` are aliases."""

from __future__ import annotations

import click

from harmony import __version__
from harmony.cli.checkpoints import init_command, inspect_command
from harmony.cli.common import not_implemented, user_errors
from harmony.cli.demo import demo_command, demo_data_command


@click.command("export", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@user_errors
def export_command(args) -> None:
    """Export a checkpoint to a validated ONNX graph (not implemented yet)."""
    not_implemented("harmony export", "harmony-export")


@click.command("bench", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@user_errors
def bench_command(args) -> None:
    """Benchmark backends at 1024^2 / 2048^2 (not implemented yet)."""
    not_implemented("harmony bench", "runtime / harmony-bench")


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@user_errors
def run_command(args) -> None:
    """Harmonize an image file (not implemented yet)."""
    not_implemented("harmony run", "runtime / harmony-run")


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
    run_command,
):
    cli.add_command(_command)

export_alias = export_command
bench_alias = bench_command
run_alias = run_command
