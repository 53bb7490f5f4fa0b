"""Silencing libraries that print progress or log warnings the user cannot act on."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings


@contextlib.contextmanager
def silenced(*loggers: str):
    """Within the block: no stdout, no Python warnings, and the named loggers ("" for the root
    logger) at ERROR only. Errors still raise."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    with (
        warnings.catch_warnings(),
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        warnings.simplefilter("ignore")
        for name in loggers:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)
