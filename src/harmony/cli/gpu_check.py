"""`harmony gpu-check`: what only a GPU shows, in one run, into gpu_check.{json,md}."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.cli.options import force_option
from harmony.errors import HarmonyError


@click.command("gpu-check")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for gpu_check.json and gpu_check.md.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Every step on the CPU at 64x64 (the plugins' CPU build for the kernels): checks that "
    "the check works, measures nothing worth reporting.",
)
@force_option
@user_errors
def gpu_check_command(out_dir: Path, dry_run: bool, force: bool) -> None:
    """Parity of the CUDA kernels (eager and from CUDA graphs) and of the fused pipeline against
    the references, a kernel micro-benchmark beside the GPU's peaks, and harmony-bench of the
    torch backend on the GPU. Exits 1 when a parity check fails. `scripts/gpu_check.sh` installs,
    builds the CUDA kernels for this GPU, runs this and the suite's GPU tests."""
    import torch

    from harmony.files import check_writable, write_bytes_atomic
    from harmony.profiling.gpu_check import failed_checks, gpu_check_document, markdown
    from harmony.profiling.report import write_json

    if not dry_run and not torch.cuda.is_available():
        raise HarmonyError(
            "no CUDA device visible to PyTorch; harmony gpu-check --dry-run checks the check "
            "on the CPU"
        )
    outputs = [out_dir / "gpu_check.json", out_dir / "gpu_check.md"]
    for path in outputs:
        check_writable(path, force)  # before the measurements, not after them
    command = "harmony gpu-check " + shlex.join(sys.argv[2:])
    document = gpu_check_document(dry_run, command)
    write_json(outputs[0], document, force)
    write_bytes_atomic(outputs[1], markdown(document).encode(), force=force)
    click.echo(f"wrote {outputs[0]} and {outputs[1]}")
    failed = failed_checks(document)
    for check in failed:
        click.echo(f"gpu_check: parity FAILED: {check}", err=True)
    if failed:
        raise SystemExit(1)
