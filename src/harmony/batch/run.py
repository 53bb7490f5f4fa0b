"""`harmony batch`: many composites through one runner, resumable and logged.

- Outputs that exist are done: every output is written atomically (`harmony.files`), so an
  existing one is complete; they are skipped unless `force`. A run killed at any point (kill -9
  included) resumes where it stopped: its temporaries are swept before the run starts.
- Each job ends in one line of the JSON-lines log: image, mask, output, status (done, skipped,
  failed), error, warnings, ms. A job that fails (missing or corrupt file, mask of another size,
  refused size) is logged and the run goes on, unless `fail_fast`.
- Images decode and outputs encode beside the inference (`harmony.batch.overlap`); outputs keep
  the input's bit depth.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harmony.batch.jobs import Job
from harmony.batch.overlap import overlapped
from harmony.data import check_image_output, mask_problems, read_image, read_mask, write_image
from harmony.errors import HarmonyError, HarmonyWarning
from harmony.files import check_not_an_input

STATUSES = ("done", "skipped", "failed")


@dataclass(frozen=True)
class RunOptions:
    """How `run_jobs` runs.

    Attributes:
        batch: the most same-size images one inference takes.
        workers: threads that decode and encode.
        force: replace outputs that exist (default: skip them).
        fail_fast: stop at the first failure.
        size_check: refuse images whose estimated memory exceeds the guard.
    """

    batch: int = 1
    workers: int = 2
    force: bool = False
    fail_fast: bool = False
    size_check: bool = True


@dataclass
class Summary:
    """What a run did: counts by status, wall time, where the log is."""

    total: int
    log: Path
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    seconds: float = 0.0
    first_failure: str | None = None

    @property
    def images_per_s(self) -> float:
        return self.counts["done"] / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        counts = ", ".join(f"{self.counts[status]} {status}" for status in STATUSES)
        return (
            f"{counts} of {self.total} in {self.seconds:.1f} s "
            f"({self.images_per_s:.2f} images/s); log: {self.log}"
        )


@dataclass
class _Task:
    """A job on its way: what loading found out that writing needs."""

    job: Job
    bit_depth: int = 8
    warnings: list[str] = field(default_factory=list)


def run_jobs(
    jobs: list[Job],
    runner,
    options: RunOptions,
    log: Path,
    on_outcome: Callable[[str], None] = lambda status: None,
) -> Summary:
    """Harmonize `jobs` with the active `runner`, appending one line per job to `log`
    (`check_log` first); `on_outcome(status)` after each (progress)."""
    summary = Summary(len(jobs), log)
    start = time.perf_counter()
    with open(log, "a+", encoding="utf-8", buffering=1) as records:
        _end_last_line(records)

        def record(job: Job, status: str, error=None, warned=(), seconds=0.0) -> None:
            entry = {
                "image": str(job.image),
                "mask": str(job.mask) if job.mask is not None else None,
                "output": str(job.output),
                "status": status,
                "error": str(error) if error is not None else None,
                "warnings": list(warned),
                "ms": round(seconds * 1e3, 1),
            }
            records.write(json.dumps(entry) + "\n")
            summary.counts[status] += 1
            if status == "failed" and summary.first_failure is None:
                summary.first_failure = f"{job.image}: {error}"
            on_outcome(status)

        pending = []
        for job in jobs:
            if job.output.exists() and not options.force:
                record(job, "skipped")
            else:
                pending.append(_Task(job))
        outcomes = overlapped(
            pending,
            _load,
            lambda task, output: _write(task, output, options.force),
            runner,
            options.batch,
            options.workers,
            options.size_check,
        )
        for outcome in outcomes:
            task: _Task = outcome.item
            status = "failed" if outcome.error is not None else "done"
            record(task.job, status, outcome.error, task.warnings, outcome.seconds)
            if status == "failed" and options.fail_fast:
                outcomes.close()
                break
    summary.seconds = time.perf_counter() - start
    return summary


def _end_last_line(records) -> None:
    """Start on a line of its own after a run killed in the middle of writing one."""
    if records.tell() > 0:
        records.seek(records.tell() - 1)
        if records.read(1) != "\n":
            records.write("\n")


def _load(task: _Task):
    job = task.job
    if job.problem is not None:
        raise HarmonyError(job.problem)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HarmonyWarning)
        image, task.bit_depth = read_image(job.image)
        mask = read_mask(job.mask, size=tuple(image.shape[-2:]), image_path=job.image)
    task.warnings += [str(warning.message) for warning in caught]
    task.warnings += mask_problems(job.image, job.mask, mask)
    check_image_output(job.output, task.bit_depth, force=True)  # the suffix fits the bit depth
    return image, mask


def _write(task: _Task, output, force: bool) -> Path:
    return write_image(task.job.output, output, task.bit_depth, force)


def check_log(log: Path, source: Path) -> None:
    """Raise HarmonyError unless the log can be appended to (created if missing) and is not
    the source manifest; run it before the work."""
    check_not_an_input(log, {"manifest": source})
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise HarmonyError(f"cannot write the log {log}: {exc.strerror or exc}") from None


def default_log(source: Path, out_dir: Path | None, shard_label: str | None) -> Path:
    """Where the log goes unless named: the output folder, else beside the manifest; one log
    per shard."""
    name = "harmony-batch" + (f".{shard_label}" if shard_label else "") + ".jsonl"
    return (out_dir if out_dir is not None else source.parent) / name
