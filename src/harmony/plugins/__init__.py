"""Locate and call the native libraries built from `plugins/`: the TensorRT plugin library and
the two C-ABI builds of the fused ops (CPU: `harmony.plugins.cpu`, CUDA: `harmony.plugins.cuda`).

`scripts/build_plugins.sh` builds them into `build/plugins/` under the repository root; the
environment variable HARMONY_PLUGIN_DIR points elsewhere (a directory holding the .so files).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from harmony.errors import HarmonyError

PLUGIN_DIR_ENV = "HARMONY_PLUGIN_DIR"
PLUGIN_LIBRARY = "libharmony_plugins.so"
CPU_OPS_LIBRARY = "libharmony_cpu_ops.so"
CUDA_OPS_LIBRARY = "libharmony_cuda_ops.so"

# src/harmony/plugins/__init__.py -> repository root (editable install / source checkout).
_REPO_ROOT = Path(__file__).resolve().parents[3]
_BUILD_HINT = (
    "build it with `scripts/build_plugins.sh` (the CUDA libraries need nvcc, the TensorRT plugin "
    "library also TENSORRT_ROOT=<dir with include/NvInfer.h>), or set HARMONY_PLUGIN_DIR to the "
    "directory that holds it"
)


def plugin_dir() -> Path:
    """Directory of the built libraries: $HARMONY_PLUGIN_DIR, default <repo>/build/plugins."""
    override = os.environ.get(PLUGIN_DIR_ENV)
    return Path(override) if override else _REPO_ROOT / "build" / "plugins"


def library_path() -> Path:
    """Path of libharmony_plugins.so (for trt.get_plugin_registry().load_library / trtexec).

    Raises:
        HarmonyError: the library has not been built (the message says how to build it).
    """
    return _existing(PLUGIN_LIBRARY)


def cpu_library_path() -> Path:
    """Path of libharmony_cpu_ops.so, the CPU build of both ops (see harmony.plugins.cpu).

    Raises:
        HarmonyError: the library has not been built (the message says how to build it).
    """
    return _existing(CPU_OPS_LIBRARY)


def cuda_library_path() -> Path:
    """Path of libharmony_cuda_ops.so, the kernels behind a C ABI (see harmony.plugins.cuda).

    Raises:
        HarmonyError: the library has not been built (the message says how to build it).
    """
    return _existing(CUDA_OPS_LIBRARY)


def call_checked(library: ctypes.CDLL, function: str, last_error: str, *args) -> None:
    """Call `function` of a C-ABI library (0 = success); raise RuntimeError with the message of
    `last_error` otherwise. Callers validate arguments first, so a failure is a library bug or
    (CUDA) a failed launch."""
    status = getattr(library, function)(*args)
    if status != 0:
        message = getattr(library, last_error)().decode()
        raise RuntimeError(f"{function} failed with status {status}: {message}")


def _existing(name: str) -> Path:
    path = plugin_dir() / name
    if not path.is_file():
        raise HarmonyError(
            f"expected the plugin build output {path}, but it does not exist; {_BUILD_HINT}"
        )
    return path


__all__ = [
    "PLUGIN_DIR_ENV",
    "call_checked",
    "cpu_library_path",
    "cuda_library_path",
    "library_path",
    "plugin_dir",
]
