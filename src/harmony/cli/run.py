"""`harmony run` / `harmony-run`: harmonize one composite image file."""

from __future__ import annotations

import time
from pathlib import Path

import click

from harmony.cli.common import elapsed_progress, user_errors
from harmony.cli.groups import RunnerArgs, RunnerRequest, option_groups
from harmony.cli.options import force_option


@click.command("run")
@user_errors
@click.option(
    "--image",
    "image_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Composite image: 8/16-bit PNG or JPEG.",
)
@click.option(
    "--mask",
    "mask_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Foreground mask of the same size: its alpha channel if it has one that is not "
    "uniformly opaque, else its brightest channel; 0/1 label maps are recognised.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output image (.png keeps 16-bit input at 16 bits).",
)
@option_groups(RunnerArgs())
@force_option
def run_command(image_path, mask_path, output, request: RunnerRequest, force):
    """Harmonize IMAGE inside MASK with MODEL and write the result at the input's bit depth.

    Every argument is checked before the inference starts: the output (suffix, bit depth,
    existing file, writable folder), the model and its options, the image and mask, and
    whether the run fits in memory.
    """
    from harmony.data import check_image_output, mask_problems, read_image, read_mask
    from harmony.files import check_not_an_input
    from harmony.runtime.backends import get_backend

    inputs = {"composite": image_path, "mask": mask_path, "model": request.model}
    check_not_an_input(output, inputs)
    check_image_output(output, force=force)
    runner = request.runner()
    image, bit_depth = read_image(image_path)
    check_image_output(output, bit_depth, force)
    mask = read_mask(mask_path, size=tuple(image.shape[-2:]), image_path=image_path)
    for problem in mask_problems(image_path, mask_path, mask):
        click.echo(f"warning: {problem}", err=True)
    height, width = image.shape[-2:]
    with runner:
        if request.size_check and runner.arch is not None:
            from harmony.runtime.limits import refuse_if_too_large

            refuse_if_too_large(
                get_backend(runner.backend),
                runner.arch,
                runner.device,
                height,
                width,
                override="--no-size-check",
            )
        with elapsed_progress(f"harmonizing {width}x{height} with {runner.name}"):
            start = time.perf_counter()
            result = runner.infer(image, mask)
            runner.synchronize()
            seconds = time.perf_counter() - start
    from harmony.data import write_image

    write_image(output, result.cpu(), bit_depth=bit_depth, force=force)
    click.echo(
        f"wrote {output} ({width}x{height}, {bit_depth}-bit) with {runner.name} "
        f"in {seconds * 1e3:.0f} ms"
    )
