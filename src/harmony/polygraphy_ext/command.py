"""`harmony polygraphy ARGS`: Polygraphy's own CLI (`polygraphy ARGS`) for every tool, with the
TensorRT of this install and harmony's plugin libraries usable.

- `--plugins` libraries that follow TensorRT's dynamic-library convention (libharmony_plugins.so)
  are registered before Polygraphy runs (`plugins.register_plugin_libraries`): `polygraphy
  convert`, `debug` and `inspect` load plugins with a plain dlopen and have no extension hook;
  `polygraphy run` gets the same from harmony's run extension.
  A script written by `polygraphy run --gen-script` does not hold that registration: add
  `from harmony.polygraphy_ext.plugins import register_plugin_libraries` and
  `register_plugin_libraries(["LIB"])` at its top.
- Where the `tensorrt` module is not installed and `tensorrt_rtx` is (the tensorrt-rtx extra),
  TensorRT-RTX is used as if `POLYGRAPHY_USE_TENSORRT_RTX=1` were set; an explicit value wins.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec

from harmony.errors import HarmonyError

RTX_SWITCH = "POLYGRAPHY_USE_TENSORRT_RTX"


def plugin_paths(argv: list[str]) -> list[str]:
    """The values of every `--plugins` option (`--plugins A B` up to the next option, or
    `--plugins=A`)."""
    paths = []
    collecting = False
    for arg in argv:
        if arg.startswith("--plugins="):
            paths.append(arg.partition("=")[2])
            collecting = False
        elif arg.startswith("-"):
            collecting = arg == "--plugins"
        elif collecting:
            paths.append(arg)
    return paths


def run_polygraphy(argv: list[str]) -> int:
    """Polygraphy's main on `argv`; returns its exit status.

    Raises:
        HarmonyError: Polygraphy is not installed, or TensorRT refused a plugin library.
    """
    if find_spec("polygraphy") is None:
        raise HarmonyError(
            "harmony polygraphy needs Polygraphy: pip install 'harmony-deploy[polygraphy]'"
        )
    only_rtx = find_spec("tensorrt") is None and find_spec("tensorrt_rtx") is not None
    if RTX_SWITCH not in os.environ and only_rtx:
        os.environ[RTX_SWITCH] = "1"  # read by polygraphy.config on import
    paths = plugin_paths(argv)
    if paths:
        from harmony.polygraphy_ext.plugins import register_plugin_libraries

        register_plugin_libraries(paths)
    from polygraphy.tools import main

    sys.argv = ["polygraphy", *argv]
    return main()
