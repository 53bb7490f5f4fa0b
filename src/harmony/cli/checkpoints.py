"""`harmony init` and `harmony inspect`."""

from __future__ import annotations

from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.cli.options import force_option
from harmony.contract import ARCHS


@click.command("init")
@click.option("--arch", type=click.Choice(ARCHS), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@force_option
@user_errors
def init_command(arch: str, seed: int, output: Path, force: bool) -> None:
    """Write a RANDOMLY initialised checkpoint in the official format (for demos and tests)."""
    from harmony.models import load_checkpoint
    from harmony.models.init import make_random_checkpoint

    path = make_random_checkpoint(arch, seed, output, force=force)
    params = sum(p.numel() for p in load_checkpoint(path).parameters())
    click.echo(
        f"wrote {path}: {arch}, {params:,} parameters, RANDOM weights (seed {seed}); "
        "not a trained model, its outputs are not harmonized images"
    )


@click.command("inspect")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@user_errors
def inspect_command(checkpoint: Path) -> None:
    """Print the architecture, parameter count and format of CHECKPOINT."""
    from harmony.models import load_checkpoint
    from harmony.models.checkpoint import weights_label

    model = load_checkpoint(checkpoint)
    info = model.checkpoint
    params = sum(p.numel() for p in model.parameters())
    click.echo(f"file:        {checkpoint}")
    click.echo(f"arch:        {info.arch}")
    if info.hdnet_ngf is not None:
        click.echo(f"ngf:         {info.hdnet_ngf}  input_nc: {info.hdnet_input_nc}")
    click.echo(f"parameters:  {params:,}")
    click.echo(f"format:      {info.source_format}")
    click.echo(f"weights:     {weights_label(info.metadata)}")
    for key, value in sorted(info.metadata.items()):
        if key != "loss_curve":  # many numbers; in the provenance file
            click.echo(f"  {key}: {value}")
