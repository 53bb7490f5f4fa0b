"""What every command shares: user errors become a message and exit 1, never a traceback."""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Iterator

import click

from harmony.errors import HarmonyError


def user_errors(command):
    """Wrap a command callback so a HarmonyError prints `error: ...` and exits 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except HarmonyError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None

    return wrapper


def format_table(header: list[str], rows: list[list]) -> str:
    """Plain-text table with left-aligned columns."""
    cells = [header, *[[str(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


@contextlib.contextmanager
def elapsed_progress(description: str) -> Iterator[None]:
    """While the block runs, show `description` and the elapsed time on stderr, refreshed every
    second (on a terminal; elsewhere one line up front), so a long run is never silent."""
    from tqdm import tqdm

    bar = tqdm(
        desc=description, total=None, bar_format="{desc}: {elapsed}", file=sys.stderr, disable=None
    )
    if bar.disable:
        click.echo(f"{description} ...", err=True)
        yield
        return
    stopped = threading.Event()

    def refresh() -> None:
        while not stopped.wait(1.0):
            bar.refresh()

    ticker = threading.Thread(target=refresh, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stopped.set()
        ticker.join()
        bar.close()
