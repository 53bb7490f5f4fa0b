"""What a batch run works on: one job per composite (image, mask, output), from an iHarmony4
folder or a manifest file, and the deterministic shard of them one machine takes.

- A folder: every composite of `<folder>/composite_images/` with its mask `masks/X_Y`
  (`harmony.data.iharmony`), written to `<out>/<composite file name>`. A composite without its
  mask is still a job: it fails alone when it runs.
- A manifest: CSV with a header row, or JSON lines, naming `image`, `mask` and optionally
  `output` per row (other columns are ignored); relative paths are the manifest folder's; a row
  without an output is written to `<out>/<image file name>`.
- `--shard I/N`: a job belongs to shard `sha256(key) mod N`, its key being the composite's path
  as the source gives it: stable under reruns and reorderings, and N shards partition the jobs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from harmony.data.iharmony import composites_in, mask_of
from harmony.errors import HarmonyError, listing

MANIFEST_SUFFIXES = {".csv": "csv", ".jsonl": "json lines", ".ndjson": "json lines"}
MANIFEST_COLUMNS = ("image", "mask", "output")


@dataclass(frozen=True)
class Job:
    """One composite to harmonize.

    Attributes:
        key: the composite as the source names it (what shards are drawn by).
        image: the composite file.
        mask: its mask file; None where the folder has none (the job fails with `problem`).
        output: where the result goes.
        problem: why the job cannot run, found while listing (a missing mask); None otherwise.
    """

    key: str
    image: Path
    mask: Path | None
    output: Path
    problem: str | None = None


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` -> Shard(I, N).

        Raises:
            HarmonyError: not two integers with 0 <= I < N.
        """
        index, slash, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            shard = None
        if not slash or shard is None or not 0 <= shard.index < shard.count:
            raise HarmonyError(
                f"a shard is I/N with 0 <= I < N (e.g. 0/4 for the first of four), got '{text}'"
            )
        return shard

    def holds(self, job: Job) -> bool:
        digest = hashlib.sha256(job.key.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    @property
    def label(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def jobs_from_source(source: Path, out_dir: Path | None) -> list[Job]:
    """The jobs of an iHarmony4 folder or a manifest file (module docstring), every output
    distinct and none an input.

    Raises:
        HarmonyError: no such source, a malformed manifest, a missing output folder where one is
            needed, or two jobs writing one file.
    """
    if source.is_dir():
        if out_dir is None:
            raise HarmonyError(f"{source} is a folder: pass the output folder with -o")
        jobs = [_folder_job(path, out_dir) for path in composites_in(source)]
    elif source.is_file():
        jobs = _manifest_jobs(source, out_dir)
    else:
        raise HarmonyError(
            f"{source} does not exist; expected an iHarmony4 folder (composite_images/, masks/) "
            "or a manifest file (.csv, .jsonl)"
        )
    _check_outputs(jobs)
    return jobs


def _folder_job(composite: Path, out_dir: Path) -> Job:
    try:
        mask, problem = mask_of(composite), None
    except HarmonyError as exc:
        mask, problem = None, str(exc)
    return Job(composite.name, composite, mask, out_dir / composite.name, problem)


def _manifest_jobs(manifest: Path, out_dir: Path | None) -> list[Job]:
    kind = MANIFEST_SUFFIXES.get(manifest.suffix.lower())
    if kind is None:
        raise HarmonyError(
            f"{manifest} is not a manifest: expected a .csv (header image,mask[,output]) or "
            ".jsonl file, or an iHarmony4 folder"
        )
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HarmonyError(f"cannot read the manifest {manifest}: {exc}") from None
    rows = _csv_rows(text, manifest) if kind == "csv" else _json_rows(text, manifest)
    folder = manifest.parent
    jobs, problems = [], []
    for line, row in rows:
        missing = [column for column in ("image", "mask") if not row.get(column)]
        if not row.get("output") and out_dir is None:
            missing.append("output (or pass -o)")
        if missing:
            problems.append(f"line {line}: no {', '.join(missing)}")
            continue
        image = folder / row["image"]
        output = folder / row["output"] if row.get("output") else out_dir / image.name
        jobs.append(Job(str(row["image"]), image, folder / row["mask"], output))
    if problems:
        raise HarmonyError(
            f"{manifest}: {len(problems)} malformed row(s): {listing(problems, '; ')}"
        )
    if not jobs:
        raise HarmonyError(f"{manifest} lists no composites")
    return jobs


def _csv_rows(text: str, manifest: Path) -> list[tuple[int, dict]]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"image", "mask"} <= set(reader.fieldnames):
        raise HarmonyError(
            f"{manifest}: the first row must name the columns image,mask[,output], got "
            f"{','.join(reader.fieldnames or [])!r}"
        )
    return [(reader.line_num, row) for row in reader]


def _json_rows(text: str, manifest: Path) -> list[tuple[int, dict]]:
    rows, problems = [], []
    for line, content in enumerate(text.splitlines(), 1):
        if not content.strip():
            continue
        try:
            row = json.loads(content)
        except json.JSONDecodeError as exc:
            problems.append(f"line {line}: {exc.msg}")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {line}: not an object")
            continue
        rows.append((line, row))
    if problems:
        raise HarmonyError(f"{manifest}: {len(problems)} bad line(s): {listing(problems, '; ')}")
    return rows


def _check_outputs(jobs: list[Job]) -> None:
    seen: dict[Path, Job] = {}
    twice, inputs = [], {os.path.abspath(job.image) for job in jobs}
    inputs |= {os.path.abspath(job.mask) for job in jobs if job.mask is not None}
    for job in jobs:
        output = Path(os.path.abspath(job.output))
        if output in seen:
            twice.append(f"{job.output} ({seen[output].key} and {job.key})")
        seen[output] = job
        if str(output) in inputs:
            raise HarmonyError(
                f"{job.output} is one of the inputs: writing there would destroy it; choose "
                "another output folder"
            )
    if twice:
        raise HarmonyError(
            f"{len(twice)} output(s) would be written twice: {listing(twice, '; ')}; give them "
            "distinct names (a manifest's output column)"
        )
