"""Locate and call the native libraries built from `plugins/`: the TensorRT plugin library, the
two C-ABI builds of the fused ops (CPU: `harmony.plugins.cpu`, CUDA: `harmony.plugins.cuda`) and
the ONNX Runtime custom-op library (`harmony.plugins.ort`).

Where they are looked up (`plugin_dir()`), first match wins:

1. $HARMONY_PLUGIN_DIR, a directory holding the .so files (e.g. a TensorRT plugin build made
   with `TENSORRT_ROOT=... scripts/build_plugins.sh`);
2. `lib/` of this installed package: a wheel (`pip install .`) carries what its build made;
3. `build/plugins/` of the source checkout this package runs from (an editable install), where
   `scripts/build_plugins.sh` writes.
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
ORT_OPS_LIBRARY = "libharmony_ort_ops.so"

_PACKAGED_DIR = Path(__file__).resolve().parent / "lib"
# src/harmony/plugins/__init__.py -> the checkout's root, when the package runs from one.
_CHECKOUT_DIR = Path(__file__).resolve().parents[3]
BUILD_HINT = (
    "build it with `scripts/build_plugins.sh` in a checkout of harmony-deploy (the CUDA libraries "
    "need nvcc, the TensorRT plugin library also TENSORRT_ROOT=<dir with include/NvInfer.h>, the "
    "ONNX Runtime custom ops ONNXRUNTIME_ROOT=<dir with include/onnxruntime_c_api.h>) and "
    f"set {PLUGIN_DIR_ENV} to the directory it wrote, or reinstall with `pip install .` there"
)


def plugin_dir() -> Path:
    """Directory of the built libraries: $HARMONY_PLUGIN_DIR, else this package's `lib/` when it
    was installed from a wheel, else `build/plugins/` of the checkout it runs from."""
    override = os.environ.get(PLUGIN_DIR_ENV)
    if override:
        return Path(override)
    if _PACKAGED_DIR.is_dir():
        return _PACKAGED_DIR
    return _CHECKOUT_DIR / "build" / "plugins"


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


def ort_ops_library_path() -> Path:
    """Path of libharmony_ort_ops.so, the ONNX Runtime custom ops (see harmony.plugins.ort).

    Raises:
        HarmonyError: the library has not been built (the message says how to build it).
    """
    return _existing(ORT_OPS_LIBRARY)


def call_checked(library: ctypes.CDLL, function: str, last_error: str, *args) -> None:
    """Call `function` of a C-ABI library (0 = success); raise RuntimeError with the message of
    `last_error` otherwise. Callers validate arguments first, so a failure is a library bug or
    (CUDA) a failed launch."""
    status = getattr(library, function)(*args)
    if status != 0:
        message = getattr(library, last_error)().decode()
        raise RuntimeError(f"{function} failed with status {status}: {message}")


def missing_libraries(*names: str) -> list[Path]:
    """The paths of the libraries `names` that are not built in `plugin_dir()`."""
    return [path for path in (plugin_dir() / name for name in names) if not path.is_file()]


def _existing(name: str) -> Path:
    path = plugin_dir() / name
    if not path.is_file():
        raise HarmonyError(
            f"expected the plugin build output {path}, but it does not exist; {BUILD_HINT}"
        )
    return path


__all__ = [
    "BUILD_HINT",
    "PLUGIN_DIR_ENV",
    "call_checked",
    "cpu_library_path",
    "cuda_library_path",
    "library_path",
    "missing_libraries",
    "ort_ops_library_path",
    "plugin_dir",
]
