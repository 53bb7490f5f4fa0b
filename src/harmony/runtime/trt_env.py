"""What an engine depends on at this machine: TensorRT, the GPU, the plugin library.

`current_environment()` collects them into a `TrtEnvironment`; the engine manifest records the
one an engine was built in, and loading compares the two. Everything here imports `tensorrt`
and `harmony.plugins` lazily so that the package imports (and its tests run) without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from harmony.contract import OPS, PLUGIN_NAMESPACE
from harmony.errors import HarmonyError
from harmony.files import sha256_file

TENSORRT_INSTALL_HINT = (
    "install it with `pip install 'harmony-deploy[tensorrt]'` (TensorRT >= 10 needs an NVIDIA GPU "
    "and driver)"
)
# Plugin name -> version, as the plugin library registers them (harmony.contract).
PLUGIN_VERSIONS = {op.name: op.version for op in OPS}


def import_tensorrt() -> ModuleType:
    """The `tensorrt` module; raises HarmonyError saying how to install it when it is missing."""
    try:
        import tensorrt
    except (ImportError, OSError) as exc:  # OSError: the wheel is there, libnvinfer is not
        raise HarmonyError(
            f"TensorRT is not installed (import tensorrt failed: {exc}); {TENSORRT_INSTALL_HINT}"
        ) from None
    return tensorrt


def version_tuple(version: str) -> tuple[int, ...]:
    """`"10.8.0.43"` -> (10, 8, 0, 43); leading digits of each dot-separated part."""
    numbers = []
    for part in version.split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
    if not numbers:
        raise HarmonyError(f"cannot read the TensorRT version '{version}'")
    return tuple(numbers)


@dataclass(frozen=True)
class GpuIdentity:
    """The GPU an engine is built for: its name and compute capability ("9.0")."""

    name: str
    compute_capability: str


def gpu_identity() -> GpuIdentity:
    """Name and compute capability of the current CUDA device (torch.cuda).

    Raises:
        HarmonyError: no CUDA device is visible.
    """
    import torch

    if not torch.cuda.is_available():
        raise HarmonyError(
            "TensorRT needs an NVIDIA GPU, but torch.cuda.is_available() is False; run on a "
            "machine with a CUDA device and driver (and a CUDA build of torch)"
        )
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return GpuIdentity(
        name=torch.cuda.get_device_name(index), compute_capability=f"{major}.{minor}"
    )


@dataclass(frozen=True)
class PluginLibrary:
    """The built libharmony_plugins.so: where it is and its SHA-256."""

    path: Path
    sha256: str


def plugin_library() -> PluginLibrary:
    """The plugin library `harmony.plugins.library_path()` points at, with its hash.

    Raises:
        HarmonyError: the library is not built (the message says how to build it).
    """
    try:
        from harmony.plugins import library_path
    except ImportError as exc:
        raise HarmonyError(f"the plugin locator harmony.plugins is unavailable: {exc}") from None
    path = Path(library_path()).resolve()
    return PluginLibrary(path=path, sha256=sha256_file(path))


@dataclass(frozen=True)
class TrtEnvironment:
    """TensorRT version, GPU and plugin library of a build or of the running process.

    `plugin_sha256` is None when no plugin library is involved (a graph without custom ops).
    """

    tensorrt_version: str
    gpu: GpuIdentity
    plugin_sha256: str | None
    plugin_namespace: str = PLUGIN_NAMESPACE
    plugin_versions: tuple[tuple[str, str], ...] = tuple(sorted(PLUGIN_VERSIONS.items()))


def current_environment(
    plugins: PluginLibrary | None, trt: ModuleType | None = None
) -> TrtEnvironment:
    """The environment of this process: TensorRT's version, the current GPU, and the hash of
    `plugins` (the plugin library, None where no custom ops are involved). `trt` defaults to
    `import_tensorrt()`.

    Raises:
        HarmonyError: TensorRT missing, or no GPU.
    """
    trt = import_tensorrt() if trt is None else trt
    return TrtEnvironment(
        tensorrt_version=str(trt.__version__),
        gpu=gpu_identity(),
        plugin_sha256=None if plugins is None else plugins.sha256,
    )


# One load per library and process: the plugin registry is process-wide, and registering the
# same creators twice makes TensorRT log errors.
_LOADED_LIBRARIES: dict[str, object] = {}


def load_plugin_library(registry, path: Path) -> None:
    """`registry.load_library(path)` once per process (IPluginRegistry.load_library).

    Raises:
        HarmonyError: TensorRT could not load the library.
    """
    key = str(Path(path).resolve())
    if key in _LOADED_LIBRARIES:
        return
    handle = registry.load_library(key)
    if handle is None:
        raise HarmonyError(
            f"TensorRT could not load the plugin library {key} (see the TensorRT log above); "
            "rebuild it with scripts/build_plugins.sh against this TensorRT version"
        )
    _LOADED_LIBRARIES[key] = handle
