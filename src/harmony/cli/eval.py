"""`harmony eval`: harmonization quality (MSE, fMSE, PSNR, fPSNR, SSIM) over an iHarmony4 folder."""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.cli.options import backends_option, force_option, precisions_option

# How each metric is printed: (column, format).
_COLUMNS = {
    "mse": ("MSE", "{:.2f}"),
    "fmse": ("fMSE", "{:.2f}"),
    "psnr": ("PSNR dB", "{:.2f}"),
    "fpsnr": ("fPSNR dB", "{:.2f}"),
    "ssim": ("SSIM", "{:.4f}"),
}


@click.command("eval")
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path))
@backends_option
@precisions_option
@click.option(
    "--res",
    "resolution",
    default=None,
    help="Resize every image (and its mask and real photo) to N (NxN) or HxW before running; "
    "default: each image's own size.",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N images.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the scores.")
@click.option(
    "--markdown", "markdown_path", type=click.Path(path_type=Path), help="Write a Markdown report."
)
@force_option
@user_errors
def eval_command(
    data_dir, model_path, backends, precisions, resolution, limit, json_path, markdown_path, force
):
    """Score MODEL's harmonization of the composites of DATA_DIR (composite_images/, masks/,
    real_images/) against the real photographs, for every backend and precision, beside the
    composites' own scores and each metric's drift from the FP32 PyTorch output."""
    from tqdm import tqdm

    from harmony.cli.common import format_table
    from harmony.contract import DEFAULT_RESOLUTIONS
    from harmony.data.iharmony import IHarmonyDataset
    from harmony.files import check_writable
    from harmony.profiling.bench import environment
    from harmony.profiling.quality import QualityTarget, evaluate, prepare_runners
    from harmony.runtime.loaders import identify
    from harmony.runtime.profiles import parse_resolution

    for path in (json_path, markdown_path):
        if path is not None:
            check_writable(path, force)
    size = None if resolution is None else parse_resolution(resolution)
    dataset = IHarmonyDataset(data_dir)
    source = identify(model_path)
    targets = [QualityTarget(b, p) for b in backends for p in precisions]
    runners, skipped = prepare_runners(source, targets, [size] if size else DEFAULT_RESOLUTIONS)
    total = len(dataset) if limit is None else min(limit, len(dataset))
    with contextlib.ExitStack() as stack:
        for runner in runners.values():
            stack.enter_context(runner)
        bar = tqdm(total=total, unit="image", file=sys.stderr, disable=None)
        result = evaluate(dataset, runners, size, limit, lambda _: bar.update(1))
        bar.close()
    document = {
        "environment": environment("harmony eval " + shlex.join(sys.argv[2:])),
        "data": str(data_dir),
        "model": str(model_path),
        "arch": source.arch,
        "resolution": None if size is None else list(size),
        "skipped": skipped,
        **result,
    }
    header, rows = quality_table(document)
    click.echo(format_table(header, rows))
    for label, reason in skipped.items():
        click.echo(f"skipped {label}: {reason}")
    if json_path is not None:
        from harmony.profiling.report import write_json

        write_json(json_path, document, force)
        click.echo(f"wrote {json_path}")
    if markdown_path is not None:
        from harmony.files import write_bytes_atomic

        write_bytes_atomic(markdown_path, quality_markdown(document).encode(), force=force)
        click.echo(f"wrote {markdown_path}")


def quality_table(document: dict) -> tuple[list[str], list[list[str]]]:
    """Mean scores per target (the composite first), with the drift from FP32 PyTorch."""
    header = ["", *(column for column, _ in _COLUMNS.values()), "drift vs torch fp32"]
    rows = []
    for label, means in document["means"].items():
        drift = document["drift"].get(label)
        drift_text = (
            ", ".join(f"{_COLUMNS[m][0]} {v:+.3g}" for m, v in drift.items()) if drift else ""
        )
        values = [fmt.format(means[m]) for m, (_, fmt) in _COLUMNS.items()]
        rows.append([label, *values, drift_text])
    return header, rows


def quality_markdown(document: dict) -> str:
    env = document["environment"]
    header, rows = quality_table(document)
    lines = [
        "# harmony eval",
        "",
        f"- command: `{env['command']}`",
        f"- model: {document['model']} ({document['arch']}); data: {document['data']}, "
        f"{document['images']} images"
        + (
            f" resized to {document['resolution'][0]}x{document['resolution'][1]}"
            if document["resolution"]
            else " at their own size"
        ),
        f"- device: {env['cpu']} ({env['cpu_cores']} cores); versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "- MSE and fMSE on the 0-255 scale (fMSE over the mask), PSNR/fPSNR from them, SSIM over "
        "the image; means over the images; drift: mean per-image difference to torch fp32",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    lines += [f"- skipped {label}: {reason}" for label, reason in document["skipped"].items()]
    return "\n".join(lines) + "\n"


__all__ = ["eval_command", "quality_markdown", "quality_table"]
