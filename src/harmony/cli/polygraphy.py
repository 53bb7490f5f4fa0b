"""`harmony polygraphy ARGS`: Polygraphy's CLI with harmony's plugin libraries usable."""

from __future__ import annotations

import click

from harmony.cli.common import user_errors


@click.command(
    "polygraphy",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@user_errors
def polygraphy_command(args: tuple[str, ...]) -> None:
    """`polygraphy ARGS` with the `--plugins` libraries registered as TensorRT loads dynamic
    plugin libraries (libharmony_plugins.so registers nothing on a plain dlopen, the way
    `polygraphy convert` loads it), and TensorRT-RTX where it is the TensorRT installed.
    `polygraphy run` needs none of this: harmony's extension does it there."""
    from harmony.polygraphy_ext.command import run_polygraphy

    raise SystemExit(run_polygraphy(list(args)))
