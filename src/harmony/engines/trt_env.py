"""What an engine depends on at this machine: the TensorRT runtime, the GPU, the plugin library.

Two runtimes of the TensorRT family build and run our engines (`RUNTIMES`):

- `tensorrt`: TensorRT 10/11 for every NVIDIA GPU including data-center ones (H100/H200); it
  builds on the GPU the engine will run on, so building needs that GPU.
- `tensorrt-rtx`: TensorRT for RTX (GeForce RTX / RTX PRO, compute capability 7.5-12.x, not
  9.x/10.x). Its builder runs on a CPU (ahead-of-time build) for a list of target compute
  capabilities; a GPU is needed only to deserialize and run the engine.

`build_environment()` collects what an engine built here depends on (runtime and version, the
GPU or the target compute capabilities, the plugin library) into a `TrtEnvironment`, and
`host_environment()` what it meets where it runs; the engine manifest records the first, and
loading compares it with the second. The runtimes' modules are imported on use, so that the
package imports (and its tests run) without them.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from harmony.contract import OPS, PLUGIN_NAMESPACE
from harmony.errors import HarmonyError
from harmony.files import sha256_file
from harmony.plugins import library_path

# Plugin name -> version, as the plugin library registers them (harmony.contract).
PLUGIN_VERSIONS = {op.name: op.version for op in OPS}


@dataclass(frozen=True)
class TrtRuntime:
    """One runtime of the TensorRT family.

    Attributes:
        name: what users type (`--runtime NAME`) and the manifest records.
        title: the product's name in messages.
        module: the Python bindings' module.
        extra: the harmony-deploy extra that installs it.
        builds_without_gpu: whether its builder runs without a GPU (ahead-of-time build).
        timing_cache: whether its builder uses a timing cache (TensorRT-RTX's does not: its
            kernels are compiled on the GPU at first run, into a runtime cache).
        compute_capabilities: the targets `--cc` accepts; empty where the builder targets the
            GPU it runs on.
        default_targets: the compute capabilities an engine runs on when no `--cc` is given
            (empty: the building GPU's).
        no_fp32_gemm: targets its builder cannot compile FP32 matrix products for.
    """

    name: str
    title: str
    module: str
    extra: str
    builds_without_gpu: bool
    timing_cache: bool = True
    compute_capabilities: tuple[str, ...] = ()
    default_targets: tuple[str, ...] = ()
    no_fp32_gemm: tuple[str, ...] = ()

    def install_hint(self) -> str:
        gpu = (
            "runs engines on RTX GPUs; builds without one"
            if self.builds_without_gpu
            else ("needs an NVIDIA GPU and driver")
        )
        return f"install it with `pip install 'harmony-deploy[{self.extra}]'` ({gpu})"

    def is_installed(self) -> bool:
        """Whether its bindings are installed (found, not imported)."""
        return importlib.util.find_spec(self.module) is not None

    def check_timing_cache(self, timing_cache: object | None) -> None:
        """Raise HarmonyError when a timing cache is asked of a runtime that has none."""
        if timing_cache is not None and not self.timing_cache:
            raise HarmonyError(
                f"{self.title} has no timing cache (it compiles kernels on the GPU at first run "
                "and keeps them in a runtime cache): drop --timing-cache"
            )

    def check_targets(self, targets: tuple[str, ...]) -> tuple[str, ...]:
        """`targets` ("8.6", ...) validated and sorted; the defaults for an empty tuple.

        Raises:
            HarmonyError: targets given to a runtime that builds for its own GPU, or one this
                runtime cannot build for.
        """
        if not targets:
            return self.default_targets
        if not self.compute_capabilities:
            raise HarmonyError(
                f"--cc applies to tensorrt-rtx only: {self.title} builds for the GPU it runs on"
            )
        unknown = [cc for cc in targets if cc not in self.compute_capabilities]
        if unknown:
            raise HarmonyError(
                f"{self.title} cannot build for compute capability {', '.join(unknown)}; it "
                f"targets {', '.join(self.compute_capabilities)} (data-center GPUs such as "
                "H100/H200, 9.0, need --runtime tensorrt)"
            )
        return tuple(sorted(set(targets), key=_cc_key))

    def check_precision(self, precision: str, targets: tuple[str, ...]) -> None:
        """Raise HarmonyError when graphs of `precision` cannot be built for `targets`."""
        refused = [cc for cc in targets if cc in self.no_fp32_gemm]
        if precision == "fp32" and refused:
            raise HarmonyError(
                f"{self.title} cannot build FP32 graphs for compute capability "
                f'{", ".join(refused)} (its builder: "FP32 GEMM is not supported" on Turing); '
                "build an --fp16 or --int8 export for it, or leave it out of --cc"
            )


RUNTIMES: dict[str, TrtRuntime] = {
    runtime.name: runtime
    for runtime in (
        TrtRuntime("tensorrt", "TensorRT", "tensorrt", "tensorrt", builds_without_gpu=False),
        TrtRuntime(
            "tensorrt-rtx",
            "TensorRT-RTX",
            "tensorrt_rtx_bindings",
            "tensorrt-rtx",
            builds_without_gpu=True,
            timing_cache=False,
            compute_capabilities=("7.5", "8.0", "8.6", "8.9", "12.0", "12.1"),
            # What TensorRT-RTX builds for without setComputeCapability (its documentation:
            # Ampere and later RTX GPUs; Turing 7.5 only when asked for).
            default_targets=("8.0", "8.6", "8.9", "12.0", "12.1"),
            # Seen with TensorRT-RTX 1.7: "Cannot compile operation ... for Turing (SM75): FP32
            # GEMM is not supported" for a MatMul (a convolution builds).
            no_fp32_gemm=("7.5",),
        ),
    )
}


def parse_compute_capabilities(value: str | None) -> tuple[str, ...]:
    """`--cc 86,89,120` or `8.6,8.9,12.0` -> ("8.6", "8.9", "12.0"); () for None. Which ones a
    runtime builds for is its `TrtRuntime.check_targets`.

    Raises:
        HarmonyError: an entry that is no compute capability (major 1 to 19, one-digit minor).
    """
    targets = []
    for text in (value or "").split(","):
        item = text.strip().lower().removeprefix("sm").removeprefix("_")
        if not item:
            continue
        major, _, minor = item.partition(".") if "." in item else (item[:-1], "", item[-1:])
        if not (major.isdigit() and minor.isdigit() and len(minor) == 1 and 1 <= int(major) < 20):
            raise HarmonyError(
                f"'{text.strip()}' is not a compute capability such as 86 or 8.6 (major 1 to 19, "
                "one minor digit)"
            )
        targets.append(f"{int(major)}.{int(minor)}")
    return tuple(targets)


def _cc_key(cc: str) -> tuple[int, ...]:
    return tuple(int(part) for part in cc.split("."))


def get_runtime(name: str | None = None) -> TrtRuntime:
    """The runtime named `name`; None: the installed one (TensorRT where both are, TensorRT
    where neither is, so that the error names it).

    Raises:
        HarmonyError: an unknown name.
    """
    if name is None:
        installed = [runtime for runtime in RUNTIMES.values() if runtime.is_installed()]
        return installed[0] if installed else RUNTIMES["tensorrt"]
    if name not in RUNTIMES:
        raise HarmonyError(f"unknown runtime '{name}'; expected one of {', '.join(RUNTIMES)}")
    return RUNTIMES[name]


def import_runtime(runtime: TrtRuntime) -> ModuleType:
    """The bindings module of `runtime`; HarmonyError saying how to install it when missing."""
    try:
        if runtime.name == "tensorrt-rtx":
            _link_unversioned_rtx_library()
        return importlib.import_module(runtime.module)
    except (ImportError, OSError) as exc:  # OSError: the wheel is there, its library is not
        raise HarmonyError(
            f"{runtime.title} is not installed (import {runtime.module} failed: {exc}); "
            f"{runtime.install_hint()}"
        ) from None


def _link_unversioned_rtx_library() -> None:
    # The TensorRT-RTX ONNX parser dlopen()s "libtensorrt_rtx.so" when it creates a plugin, but
    # the wheel ships only libtensorrt_rtx.so.1, and the process aborts; the parser's RPATH is
    # $ORIGIN, so the unversioned name next to it (a symlink we add once) is what it finds.
    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    if spec is None or spec.origin is None:
        return  # a system install (not the wheels) has its own unversioned name
    directory = Path(spec.origin).parent
    link = directory / "libtensorrt_rtx.so"
    if link.exists() or not (directory / "libtensorrt_rtx.so.1").exists():
        return
    try:
        link.symlink_to("libtensorrt_rtx.so.1")
    except FileExistsError:
        pass  # another process made it
    except OSError as exc:
        raise HarmonyError(
            f"cannot add {link} ({exc}), which the TensorRT-RTX ONNX parser loads; create it "
            f"once with: ln -s libtensorrt_rtx.so.1 {link}"
        ) from None


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
            "running an engine, and building one with TensorRT, needs an NVIDIA GPU, but "
            "torch.cuda.is_available() is False; run on a machine with a CUDA device and driver "
            "(and a CUDA build of torch), or build with --runtime tensorrt-rtx, which needs none"
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
    path = Path(library_path()).resolve()
    return PluginLibrary(path=path, sha256=sha256_file(path))


@dataclass(frozen=True)
class TrtEnvironment:
    """Runtime, GPU and plugin library of a build (what the engine depends on) or of the running
    process (what it meets).

    Attributes:
        runtime: a `RUNTIMES` name.
        runtime_version: its `__version__`.
        gpu: the GPU; None for a TensorRT-RTX build (the engine does not depend on the building
            machine's GPU, if it has one).
        targets: compute capabilities the engine is built for; empty for a running process.
        plugin_sha256: None when no plugin library is involved (a graph without custom ops).
    """

    runtime: str
    runtime_version: str
    gpu: GpuIdentity | None
    targets: tuple[str, ...]
    plugin_sha256: str | None
    plugin_namespace: str = PLUGIN_NAMESPACE
    plugin_versions: tuple[tuple[str, str], ...] = tuple(sorted(PLUGIN_VERSIONS.items()))


def build_environment(
    runtime: TrtRuntime,
    plugins: PluginLibrary | None,
    targets: tuple[str, ...] = (),
    trt: ModuleType | None = None,
) -> TrtEnvironment:
    """What an engine built here by `runtime` depends on: its version, the GPU it is built for
    (TensorRT: the current one, which it needs; TensorRT-RTX: the `targets`, validated, or its
    defaults, no GPU needed), and the hash of `plugins` (None where no custom ops are involved).
    `trt` is the runtime's module, imported when None.

    Raises:
        HarmonyError: the runtime missing, no GPU for TensorRT, or targets it cannot build for.
    """
    targets = runtime.check_targets(tuple(targets))
    trt = import_runtime(runtime) if trt is None else trt
    gpu = None if runtime.builds_without_gpu else gpu_identity()
    return TrtEnvironment(
        runtime=runtime.name,
        runtime_version=str(trt.__version__),
        gpu=gpu,
        targets=targets if gpu is None else (gpu.compute_capability,),
        plugin_sha256=None if plugins is None else plugins.sha256,
    )


def host_environment(
    runtime: TrtRuntime, plugins: PluginLibrary | None, trt: ModuleType | None = None
) -> TrtEnvironment:
    """What an engine meets when it runs here: `runtime`'s version, the current GPU and the
    hash of `plugins`.

    Raises:
        HarmonyError: the runtime missing, or no GPU.
    """
    trt = import_runtime(runtime) if trt is None else trt
    return TrtEnvironment(
        runtime=runtime.name,
        runtime_version=str(trt.__version__),
        gpu=gpu_identity(),
        targets=(),
        plugin_sha256=None if plugins is None else plugins.sha256,
    )


# Handles of the loaded plugin libraries, kept so that they stay loaded.
_LIBRARY_HANDLES: list[object] = []


def load_plugin_library(registry, path: Path) -> None:
    """`registry.load_library(path)` unless the registry has our creators already
    (IPluginRegistry.load_library): TensorRT's registry is process-wide, and registering the
    same creators twice makes it log errors; TensorRT-RTX gives each builder and runtime a
    registry of its own, which starts without them.

    Raises:
        HarmonyError: TensorRT could not load the library.
    """
    registered = {
        (creator.name, creator.plugin_version, creator.plugin_namespace)
        for creator in registry.all_creators
    }
    if all((op.name, op.version, PLUGIN_NAMESPACE) in registered for op in OPS):
        return
    register_library(registry, path)


def register_library(registry, path: Path) -> None:
    """`registry.load_library(path)`, the library kept loaded.

    Raises:
        HarmonyError: TensorRT could not load the library.
    """
    key = str(Path(path).resolve())
    handle = registry.load_library(key)
    if handle is None:
        raise HarmonyError(
            f"TensorRT could not load the plugin library {key} (see the TensorRT log above); "
            "rebuild it with scripts/build_plugins.sh against this TensorRT version"
        )
    _LIBRARY_HANDLES.append(handle)
