"""What the benchmark scripts that write `--json` and `--markdown` share: their arguments, the
command line they record, and the writing of both files (atomic, `--force` to overwrite)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from harmony.files import write_bytes_atomic
from harmony.profiling.report import write_json


def results_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with --json, --markdown (both required) and --force."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--markdown", type=Path, required=True)
    parser.add_argument("--force", action="store_true")
    return parser


def command_line() -> str:
    """How this script was run, as the results record it."""
    return f"python benchmarks/{Path(sys.argv[0]).name} {shlex.join(sys.argv[1:])}"


def machine_line(environment: dict) -> str:
    """The Markdown line naming the CPU machine, every version and the command of a CPU run
    (`environment` as `harmony.profiling.environment.environment` gives it)."""
    versions = ", ".join(f"{name} {version}" for name, version in environment["versions"].items())
    return (
        f"{environment['cpu']} ({environment['cpu_cores']} cores), no GPU; {versions}. "
        f"Command: `{environment['command']}`."
    )


def write_results(args: argparse.Namespace, document: dict, markdown: Callable[[dict], str]):
    """Write `document` as JSON and `markdown(document)` to the paths of `args`."""
    write_json(args.json, document, args.force)
    write_bytes_atomic(args.markdown, markdown(document).encode(), force=args.force)
