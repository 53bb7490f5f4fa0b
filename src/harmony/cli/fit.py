"""`harmony fit`: a stand-in checkpoint fitted on synthetic composites, with its provenance."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.cli.options import force_option
from harmony.contract import ARCHS
from harmony.errors import HarmonyError


@click.command("fit")
@click.argument("arch", type=click.Choice(ARCHS))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option(
    "--steps", type=click.IntRange(min=1), default=None, help="Optimizer steps [default: per arch]."
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=None,
    help="Composites per step [default: per arch].",
)
@click.option(
    "--size",
    type=click.IntRange(min=8),
    default=None,
    help="Training side in pixels, a multiple of 8 [default: per arch].",
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Peak learning rate [default: per arch].",
)
@click.option(
    "--low-res",
    type=click.IntRange(min=4),
    default=None,
    help="AICT: side its parameter network sees while fitting, a multiple of 4.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--families",
    default=None,
    metavar="NAME,...",
    help="Recolouring families to fit on, comma-separated (default: all; an unknown name is "
    "refused with the list).",
)
@click.option(
    "--no-size-check",
    is_flag=True,
    help="Fit even where the estimated peak memory exceeds what is available.",
)
@force_option
@user_errors
def fit_command(
    arch, output, steps, batch, size, lr, low_res, seed, families, no_size_check, force
) -> None:
    """Fit ARCH on synthetic composites of the bundled fit photographs (deterministic for a
    seed), write it with float16 weights in the official format, score it on composites of the
    held-out photographs and write OUTPUT.provenance.json (settings, loss curve, scores)."""
    from dataclasses import replace

    from tqdm import tqdm

    from harmony.cli.common import format_table
    from harmony.files import check_writable
    from harmony.fitting.fit import (
        DEFAULT_SETTINGS,
        fit_model,
        held_out_quality,
        write_fitted_checkpoint,
    )
    from harmony.fitting.provenance import provenance_path, write_provenance
    from harmony.models.checkpoint import FITTED_LABEL

    if output.suffix not in (".pth", ".pt"):
        raise click.BadParameter(
            f"{output} must end in .pth or .pt (the official formats)", param_hint="--output"
        )
    overrides = {"steps": steps, "batch": batch, "size": size, "lr": lr, "low_res": low_res}
    if families is not None:
        overrides["families"] = tuple(name.strip() for name in families.split(","))
    try:
        settings = replace(
            DEFAULT_SETTINGS[arch],
            seed=seed,
            **{key: value for key, value in overrides.items() if value is not None},
        ).checked()
    except HarmonyError as exc:  # a bad combination of option values: a usage error
        raise click.UsageError(str(exc)) from None
    check_writable(output, force)
    check_writable(provenance_path(output), force)
    if not no_size_check:
        from harmony.runtime.limits import fit_size_refusal

        reason = fit_size_refusal(arch, settings.size, settings.batch)
        if reason is not None:
            raise HarmonyError(f"{reason}; or pass --no-size-check to try anyway")
    click.echo(f"fitting {arch}: {settings}")
    bar = tqdm(total=settings.steps, unit="step", file=sys.stderr, disable=None)

    def progress(step: int, loss: float) -> None:
        bar.set_postfix(loss=f"{loss:.5f}", refresh=False)
        bar.update(1)

    result = fit_model(settings, progress)
    bar.close()
    command = "harmony fit " + shlex.join(sys.argv[2:])
    path = write_fitted_checkpoint(result, output, command, force=force)
    quality = held_out_quality(path)
    written = write_provenance(path, quality, force=force)
    rows = [
        [label, f"{means['psnr']:.2f}", f"{means['fmse']:.1f}", f"{means['ssim']:.4f}"]
        for label, means in quality["means"].items()
    ]
    click.echo(format_table(["held-out", "PSNR dB", "fMSE", "SSIM"], rows))
    click.echo(f"wrote {path} ({FITTED_LABEL}, {result.seconds / 60:.1f} min) and {written}")
