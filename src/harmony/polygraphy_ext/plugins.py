"""TensorRT plugin libraries named in Polygraphy's `--plugins`, registered the way TensorRT loads
dynamic plugin libraries.

Polygraphy loads each `--plugins` library with a plain `dlopen` (`ctypes.CDLL`). That suits a
library that registers its creators when it is loaded (TensorRT's libnvinfer_plugin links
libnvinfer and does). libharmony_plugins.so links no TensorRT, so that it serves TensorRT and
TensorRT-RTX alike, and exports `getCreators` for `IPluginRegistry::loadLibrary` (trtexec
`--dynamicPlugins`, `registry.load_library`) instead: after a plain `dlopen` no creator exists and
the ONNX parser fails with "Plugin not found". `register_plugin_libraries` hands such libraries to
the registry of the TensorRT Polygraphy uses (`POLYGRAPHY_USE_TENSORRT_RTX` picks it), imported
the way harmony imports it (for TensorRT-RTX wheels, with the library name its ONNX parser loads
when it creates a plugin).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

# TensorRT's entry point of a dynamic plugin library (IPluginRegistry::loadLibrary).
CREATORS_ENTRY_POINT = "getCreators"

# Libraries registered in this process (TensorRT logs errors for creators registered twice).
_REGISTERED: set[Path] = set()


def register_plugin_libraries(paths) -> list[Path]:
    """Registers each library of `paths` that exports `getCreators` and registers nothing when it
    is merely loaded; returns those registered. A path that cannot be loaded is left to
    Polygraphy, which reports it.

    Raises:
        HarmonyError: the TensorRT Polygraphy uses is not installed, or could not load a library
            through its registry.
    """
    from polygraphy import config

    from harmony.engines.trt_env import RUNTIMES, import_runtime, register_library

    registry = None
    registered = []
    for path in (Path(path).resolve() for path in paths):
        if path in _REGISTERED:
            continue
        if registry is None:
            runtime = RUNTIMES["tensorrt-rtx" if config.USE_TENSORRT_RTX else "tensorrt"]
            registry = import_runtime(runtime).get_plugin_registry()
        creators = len(registry.all_creators)
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        if hasattr(library, CREATORS_ENTRY_POINT) and len(registry.all_creators) == creators:
            register_library(registry, path)
            _REGISTERED.add(path)
            registered.append(path)
    return registered
