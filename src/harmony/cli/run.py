"""`harmony run` / `harmony-run`: harmonize one composite image file."""

from __future__ import annotations

import time
from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.data import read_image, read_mask, write_image
from harmony.errors import HarmonyError
from harmony.runtime.factory import BACKENDS, runner_for
from harmony.runtime.torch_runner import KERNELS


@click.command("run")
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Checkpoint, .onnx (ORT target) or .engine.",
)
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
    help="Foreground mask of the same size.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output image (.png keeps 16-bit input at 16 bits).",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="Default: from the model file (checkpoint: torch, .onnx: ort, .engine: trt).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16"]),
    default="fp32",
    show_default=True,
    help="torch backend only.",
)
@click.option(
    "--kernels",
    type=click.Choice(["auto", *KERNELS]),
    default="auto",
    show_default=True,
    help="torch backend only: the fused ops from harmony.ops (reference) or the plugin kernels "
    "(fused, CUDA); auto: fused on CUDA when libharmony_cuda_ops.so is built.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@user_errors
def run_command(
    model_path, image_path, mask_path, output, backend, device, precision, kernels, force
):
    """Harmonize IMAGE inside MASK with MODEL and write the result at the input's bit depth."""
    if output.exists() and not force:  # checked before the (long) inference, not after
        raise HarmonyError(f"{output} already exists; pass --force to overwrite it")
    image, bit_depth = read_image(image_path)
    mask = read_mask(mask_path, size=tuple(image.shape[-2:]), image_path=image_path)
    kernels = None if kernels == "auto" else kernels
    with runner_for(model_path, backend, device, precision, kernels) as runner:
        start = time.perf_counter()
        result = runner.infer(image, mask)
        runner.synchronize()
        seconds = time.perf_counter() - start
    write_image(output, result.cpu(), bit_depth=bit_depth, force=force)
    height, width = image.shape[-2:]
    click.echo(
        f"wrote {output} ({width}x{height}, {bit_depth}-bit) with {runner.name} "
        f"in {seconds * 1e3:.0f} ms"
    )
