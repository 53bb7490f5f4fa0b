"""`harmony batch`: harmonize a folder or a manifest of composites, resumable and sharded."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.cli.groups import RunnerArgs, RunnerRequest, option_groups
from harmony.cli.options import force_option, harmony_errors_as_bad_parameter
from harmony.errors import HarmonyError

# Seconds between two progress lines where stderr is not a terminal.
PLAIN_PROGRESS_EVERY_S = 10.0


def _shard(value: str | None):
    if value is None:
        return None
    from harmony.batch.jobs import Shard

    return Shard.parse(value)


@click.command("batch")
@user_errors
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder: outputs keep their composite's file name (a manifest's "
    "output column, where given, wins).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Most same-size images one inference takes (where the model takes a batch).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Threads decoding and encoding beside the inference.",
)
@click.option(
    "--shard",
    callback=harmony_errors_as_bad_parameter(_shard),
    default=None,
    metavar="I/N",
    help="Take shard I of N (0-based): a deterministic slice, stable "
    "under reruns, for N machines with no coordination.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON-lines log, appended to. Default: harmony-batch[.shard-I-of-N].jsonl "
    "in the output folder (beside the manifest without -o).",
)
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed image.")
@click.option("--quiet", is_flag=True, help="No progress and no summary; errors only.")
@option_groups(RunnerArgs())
@force_option
def batch_command(
    source,
    out_dir,
    batch,
    workers,
    shard,
    log_path,
    fail_fast,
    quiet,
    request: RunnerRequest,
    force,
):
    """Harmonize every composite of SOURCE with MODEL: an iHarmony4 folder (composite_images/,
    masks/) or a manifest (.csv with a header image,mask[,output], or .jsonl with those keys;
    relative paths are the manifest's folder's). Outputs keep the input's bit depth and are
    written atomically; those that exist are skipped (unless --force), so a rerun resumes an
    interrupted run. A failed image is logged and the run goes on; the exit status is 1 if
    any failed."""
    from harmony.batch.jobs import jobs_from_source
    from harmony.batch.run import RunOptions, check_log, default_log, run_jobs

    jobs = jobs_from_source(source, out_dir)
    listed = len(jobs)
    if shard is not None:
        jobs = [job for job in jobs if shard.holds(job)]
    log = log_path or default_log(source, out_dir, shard.label if shard else None)
    check_log(log, source)
    runner = request.runner()
    options = RunOptions(batch, workers, force, fail_fast, request.size_check)
    of_shard = f" (shard {shard.index}/{shard.count} of {listed})" if shard else ""
    with runner, _progress(len(jobs), quiet) as advance:
        if not quiet:
            click.echo(f"harmonizing {len(jobs)} composites{of_shard} with {runner.name}", err=True)
        summary = run_jobs(jobs, runner, options, log, advance)
    if not quiet:
        click.echo(summary.line(), err=True)
    failed = summary.counts["failed"]
    if failed and fail_fast:
        raise HarmonyError(f"stopped at the first failure: {summary.first_failure} (log: {log})")
    if failed:
        raise HarmonyError(f"{failed} of {summary.total} composites failed; see {log}")


@contextlib.contextmanager
def _progress(total: int, quiet: bool):
    """A callback counting outcomes by status: a tqdm bar (rate, ETA) on a terminal, a plain
    line every PLAIN_PROGRESS_EVERY_S elsewhere, nothing when quiet."""
    counts: dict[str, int] = {}
    if quiet:
        yield lambda status: None
        return
    if sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True) as bar:

            def advance(status: str) -> None:
                counts[status] = counts.get(status, 0) + 1
                bar.set_postfix(counts, refresh=False)
                bar.update()

            yield advance
        return
    start = last = time.monotonic()

    def advance(status: str) -> None:
        nonlocal last
        counts[status] = counts.get(status, 0) + 1
        now = time.monotonic()
        if now - last < PLAIN_PROGRESS_EVERY_S:
            return
        last = now
        finished = sum(counts.values())
        rate = counts.get("done", 0) / (now - start)
        left = (total - finished) / rate if rate else float("nan")
        states = ", ".join(f"{count} {status}" for status, count in counts.items())
        click.echo(
            f"{finished}/{total} ({states}), {rate:.2f} images/s, about {left:.0f} s left",
            err=True,
        )

    yield advance
