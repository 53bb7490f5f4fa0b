"""What every command shares: user errors become a message and exit 1, never a traceback;
warnings become `warning: ...` lines as they happen; SIGTERM ends a command like Ctrl-C does
(the clean-up runs: no temporary file is left), with exit status 143."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

import click

from harmony.errors import HarmonyError, HarmonyWarning

# The exit status of a process ended by SIGTERM (128 + 15), as shells report it.
TERMINATED_EXIT = 128 + signal.SIGTERM


def user_errors(command):
    """Wrap a command callback: a HarmonyError prints `error: ...` and exits 1; a HarmonyWarning
    prints `warning: ...` at once; SIGTERM raises SystemExit(143) wherever the command is, so
    its `finally` blocks (temporary files) run as they do for Ctrl-C."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with _sigterm_as_exit(), warnings.catch_warnings():
            warnings.simplefilter("always", HarmonyWarning)
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except HarmonyError as exc:
                click.echo(f"error: {exc}", err=True)
                raise SystemExit(1) from None

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, HarmonyWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True)


def _terminated(signum, frame) -> None:
    raise SystemExit(TERMINATED_EXIT)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (a command called from a test's)
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
