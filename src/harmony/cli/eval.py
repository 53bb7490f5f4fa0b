"""`harmony eval`: harmonization quality (MSE, fMSE, PSNR, fPSNR, SSIM) over an iHarmony4 folder."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.cli.groups import ReportArgs, option_groups
from harmony.cli.options import backends_option, precisions_option
from harmony.errors import HarmonyError


@click.command("eval")
@user_errors
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
@option_groups(ReportArgs())
def eval_command(data_dir, model_path, backends, precisions, resolution, limit, reports):
    """Score MODEL's harmonization of the composites of DATA_DIR (composite_images/, masks/,
    real_images/) against the real photographs, for every backend and precision, beside the
    composites' own scores and each metric's drift from the FP32 PyTorch output."""
    from tqdm import tqdm

    from harmony.cli.common import format_table
    from harmony.data.iharmony import IHarmonyDataset
    from harmony.engines.profiles import parse_resolution
    from harmony.profiling.eval import quality_document
    from harmony.profiling.report import quality_markdown, quality_table
    from harmony.quality import QualityTarget

    size = None if resolution is None else parse_resolution(resolution)
    dataset = IHarmonyDataset(data_dir)
    dataset.check_files(limit)  # every pair, before a model is loaded
    targets = [QualityTarget(b, p) for b in backends for p in precisions]
    total = len(dataset) if limit is None else min(limit, len(dataset))
    bar = tqdm(total=total, unit="image", file=sys.stderr, disable=None)
    document = quality_document(
        dataset,
        str(data_dir),
        model_path,
        targets,
        size,
        limit,
        lambda _: bar.update(1),
        "harmony eval " + shlex.join(sys.argv[2:]),
    )
    bar.close()
    header, rows = quality_table(document)
    click.echo(f"{model_path}: {document['arch']}, weights {document['weights'] or 'not recorded'}")
    click.echo(format_table(header, rows))
    for label, implementation in document["custom_ops"].items():
        click.echo(f"{label}: custom nodes computed by {implementation}")
    for label, reason in document["skipped"].items():
        click.echo(f"skipped {label}: {reason}")
    if reports.json is not None:
        from harmony.profiling.report import write_json

        write_json(reports.json, document, reports.force)
        click.echo(f"wrote {reports.json}")
    if reports.markdown is not None:
        from harmony.files import write_bytes_atomic

        write_bytes_atomic(
            reports.markdown, quality_markdown(document).encode(), force=reports.force
        )
        click.echo(f"wrote {reports.markdown}")
    failed = document["failed"]
    if failed is not None:
        raise HarmonyError(
            f"stopped at image {failed['index'] + 1} of {total}: {failed['error']}; the scores "
            f"above are those of the {document['images']} image(s) before it"
        )
