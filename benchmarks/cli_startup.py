"""Start-up time of the command-line tools: `--help` of every console script, wall clock of the
whole process, median of `--repeats` runs (the first run is a warm-up, for the file cache).

`--help` imports the command tree only: no torch, no onnx (ARCHITECTURE.md, "Layers"), so it
measures what a user waits for before any work starts.

    python benchmarks/cli_startup.py --json benchmarks/results/cli_startup.json \\
        --markdown benchmarks/results/cli_startup.md
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harmony.profiling.environment import environment
from results_files import command_line, machine_line, results_parser, write_results

COMMANDS = (
    ("harmony", "--help"),
    ("harmony-run", "--help"),
    ("harmony-export", "--help"),
    ("harmony-bench", "--help"),
)


def script(name: str) -> str:
    """The console script `name` of this interpreter's environment."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"cli_startup: {name} is not installed next to {sys.executable}")
    return found


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(repeats: int) -> list[dict]:
    rows = []
    for name, *arguments in COMMANDS:
        command = [script(name), *arguments]
        seconds(command)  # warm-up
        times = [seconds(command) for _ in range(repeats)]
        rows.append(
            {
                "command": " ".join([name, *arguments]),
                "median_s": statistics.median(times),
                "times_s": times,
            }
        )
    return rows


def markdown(document: dict) -> str:
    lines = [
        "# Start-up time of the command-line tools",
        "",
        machine_line(document["environment"]),
        f"Wall clock of the whole process, median of {document['repeats']} runs after a warm-up.",
        "",
        "| command | median s | runs s |",
        "| --- | ---: | --- |",
    ]
    for row in document["results"]:
        runs = ", ".join(f"{value:.3f}" for value in row["times_s"])
        lines.append(f"| `{row['command']}` | {row['median_s']:.3f} | {runs} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    document = {
        "environment": environment(command_line()),
        "repeats": args.repeats,
        "results": measure(args.repeats),
    }
    write_results(args, document, markdown)


if __name__ == "__main__":
    main()
