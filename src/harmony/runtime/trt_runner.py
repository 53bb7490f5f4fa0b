"""`TrtRunner`: run an engine built by `harmony build` (after Polygraphy's TrtRunner).

Activation refuses an engine whose manifest does not match this machine (runtime and version,
GPU, plugin library) before the runtime sees it, loads the plugin library into the runtime's
registry (unless the engine embeds it), deserializes the engine and creates one execution
context. `infer` binds torch CUDA tensors directly (no host copies) and enqueues on torch's
current stream.

The runtime is the one the engine was built with (its manifest says which): TensorRT, or
TensorRT-RTX, whose kernels are compiled for the GPU when the engine first runs; the runner
keeps them in a runtime cache (IRuntimeCache) under `harmony.files.cache_dir("rtx-runtime")`,
loaded on activation and saved on deactivation, so later runs start fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from harmony.contract import GRAPH_INPUTS, GRAPH_OUTPUT
from harmony.engines.manifest import EngineManifest, verified_manifest
from harmony.engines.profiles import Profile
from harmony.engines.trt_env import RUNTIMES, get_runtime, import_runtime, load_plugin_library
from harmony.errors import HarmonyError
from harmony.files import cache_dir, write_bytes_atomic
from harmony.plugins import library_path
from harmony.runtime.backends import Availability
from harmony.runtime.base import Runner
from harmony.runtime.sources import ModelSource, describe

# TensorRT I/O data types the runner binds, by trt.DataType member name.
_TORCH_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16}


class TrtRunner(Runner):
    """Runs a TensorRT or TensorRT-RTX engine file on a CUDA device.

    Args:
        engine_path: an engine written by `harmony build` (its manifest next to it).
        name: runner name; default "trt:<engine file name>".
        device: "cuda" or "cuda:N" (default "cuda").
        precision: the precision the caller expects; None (default) takes the engine's own. An
            engine built at another precision is refused on activation (build one from the
            right graph).

    The manifest is read on activation (`harmony.runtime.sources.describe`); the optimization
    profile (`input_range`) is known from then on.
    """

    backend = "trt"

    def __init__(
        self,
        engine_path: str | os.PathLike,
        name: str | None = None,
        device: str = "cuda",
        precision: str | None = None,
    ):
        self.engine_path = Path(engine_path)
        super().__init__(name or f"trt:{self.engine_path.name}", device, precision)
        self.profile: Profile | None = None
        self.manifest: EngineManifest | None = None
        self._runtime = None
        self._engine = None
        self._context = None
        self._engine_size = 0
        self._io_bytes = 0
        self._dtypes: dict[str, torch.dtype] = {}
        self._device = torch.device(device)
        self._stream = None
        self._runtime_cache = None
        self._runtime_cache_path: Path | None = None

    @classmethod
    def availability(cls, device: str, precision: str | None = None) -> Availability:
        """ok only for a CUDA device with TensorRT or TensorRT-RTX installed and torch seeing a
        GPU."""
        if not device.startswith("cuda"):
            return Availability(False, f"TensorRT runs on CUDA devices only, not on '{device}'")
        if not any(runtime.is_installed() for runtime in RUNTIMES.values()):
            hints = "; or ".join(
                f"{runtime.title}: {runtime.install_hint()}" for runtime in RUNTIMES.values()
            )
            return Availability(False, f"neither TensorRT nor TensorRT-RTX is installed ({hints})")
        if not torch.cuda.is_available():
            return Availability(
                False, "no CUDA device: torch.cuda.is_available() is False (TensorRT needs one)"
            )
        return Availability(True)

    def source_impl(self) -> ModelSource:
        return describe(self.engine_path)

    def activate_impl(self) -> None:
        engine_bytes = self.engine_path.read_bytes()
        with torch.cuda.device(self._device):
            manifest = verified_manifest(self.engine_path, engine_bytes)
            trt_runtime = get_runtime(manifest.runtime)
            trt = import_runtime(trt_runtime)
            rebuild = manifest.rebuild_command(self.engine_path)
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            if manifest.plugins is not None and manifest.plugins.embedded:
                runtime.engine_host_code_allowed = True  # load the library the engine carries
            elif manifest.plugins is not None:
                # Otherwise load the library (already checked against the manifest's SHA-256)
                # before deserializing.
                load_plugin_library(runtime.get_plugin_registry(), library_path())
            engine = runtime.deserialize_cuda_engine(engine_bytes)
            if engine is None:
                raise HarmonyError(
                    f"TensorRT could not deserialize {self.engine_path} (see the TensorRT log "
                    f"above); rebuild it with:\n  {rebuild}"
                )
            modes = {}
            for index in range(engine.num_io_tensors):
                tensor = engine.get_tensor_name(index)
                modes[tensor] = engine.get_tensor_mode(tensor)
            expected = {name: trt.TensorIOMode.INPUT for name in GRAPH_INPUTS}
            expected[GRAPH_OUTPUT] = trt.TensorIOMode.OUTPUT
            if modes != expected:
                raise HarmonyError(
                    f"{self.engine_path} has I/O tensors {sorted(modes)}; expected inputs "
                    f"{list(GRAPH_INPUTS)} and output '{GRAPH_OUTPUT}'. Rebuild it from a graph "
                    f"written by harmony export:\n  {rebuild}"
                )
            dtypes = {}
            for tensor in modes:
                trt_dtype = engine.get_tensor_dtype(tensor)
                matches = [
                    dtype
                    for key, dtype in _TORCH_DTYPES.items()
                    if getattr(trt.DataType, key, None) == trt_dtype
                ]
                if not matches:
                    raise HarmonyError(
                        f"{self.engine_path}: tensor {tensor} has type {trt_dtype}; the runner "
                        f"binds only {', '.join(_TORCH_DTYPES)} inputs and outputs"
                    )
                dtypes[tensor] = matches[0]
            if trt_runtime.builds_without_gpu:
                context = self._rtx_context(engine, manifest)
            else:
                context = engine.create_execution_context()
            if context is None:
                raise HarmonyError(
                    f"TensorRT could not create an execution context for {self.engine_path} "
                    "(out of GPU memory?); free GPU memory or use a smaller --res profile"
                )
        self.manifest, self.profile = manifest, manifest.profiles[0]
        self._runtime, self._engine, self._context = runtime, engine, context
        # Our own stream: enqueueV3 on the legacy default stream costs extra synchronization.
        self._stream = torch.cuda.Stream(self._device)
        self._engine_size = len(engine_bytes)
        self._dtypes = dtypes

    def _rtx_context(self, engine, manifest: EngineManifest):
        """A TensorRT-RTX execution context whose JIT-compiled kernels go to and come from the
        runtime cache of this engine and GPU."""
        major, minor = torch.cuda.get_device_capability(self._device)
        self._runtime_cache_path = (
            cache_dir("rtx-runtime") / f"{manifest.engine_sha256[:16]}.sm{major}{minor}.cache"
        )
        config = engine.create_runtime_config()
        cache = config.create_runtime_cache()
        if self._runtime_cache_path.is_file():
            cache.deserialize(self._runtime_cache_path.read_bytes())
        config.set_runtime_cache(cache)
        self._runtime_cache = cache
        return engine.create_execution_context(config)

    def input_range(self) -> tuple[tuple[int, int, int], tuple[int, int, int] | None]:
        """The engine's optimization profile: min and max (batch, height, width); known once
        active."""
        assert self.profile is not None, "input_range() of an inactive TrtRunner"
        return self.profile.min, self.profile.max

    def range_hint(self) -> str:
        return (
            f" (the optimization profile of {self.engine_path}); build an engine whose profile "
            "covers the input: harmony build MODEL.onnx -o ENGINE --res HxW [--batch N]"
        )

    def infer_impl(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert self.manifest is not None and self._context is not None
        profile = self.profile
        context = self._context
        bound = []  # keep the converted inputs alive until the work is enqueued
        with torch.cuda.device(self._device):
            for name, tensor in zip(GRAPH_INPUTS, (image, mask), strict=True):
                tensor = tensor.to(device=self._device, dtype=self._dtypes[name]).contiguous()
                if not context.set_input_shape(name, tuple(tensor.shape)):
                    raise HarmonyError(
                        f"TensorRT rejected the {name} shape {list(tensor.shape)} for "
                        f"{self.engine_path} ({profile.describe()})"
                    )
                _bind(context, name, tensor)
                bound.append(tensor)
            shape = tuple(context.get_tensor_shape(GRAPH_OUTPUT))
            output = torch.empty(shape, dtype=self._dtypes[GRAPH_OUTPUT], device=self._device)
            _bind(context, GRAPH_OUTPUT, output)
            io_bytes = sum(t.numel() * t.element_size() for t in (*bound, output))
            self._io_bytes = max(self._io_bytes, io_bytes)
            # Inputs were written and the output allocated on the caller's stream: run after
            # them, and make the caller's stream wait for the result. Blocks freed afterwards
            # are only reused by work ordered after ours.
            current = torch.cuda.current_stream(self._device)
            self._stream.wait_stream(current)
            if not context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(
                    f"TensorRT execute_async_v3 failed for {self.engine_path}; see the TensorRT log"
                )
            current.wait_stream(self._stream)
        return output if output.dtype == torch.float32 else output.float()

    def synchronize(self) -> None:
        """Wait for the work queued on the runner's device."""
        if self.is_active:
            torch.cuda.synchronize(self._device)

    def memory_bytes(self) -> int | None:
        """Activation memory of the context (device_memory_size_v2, TensorRT >= 10.1), the
        engine's size as a stand-in for its weights, and the largest I/O bound so far; None while
        inactive."""
        if self._engine is None:
            return None
        size = getattr(self._engine, "device_memory_size_v2", None)
        if size is None:  # TensorRT 10.0
            size = self._engine.device_memory_size
        return int(size) + self._engine_size + self._io_bytes

    def deactivate_impl(self) -> None:
        if self._runtime_cache is not None and self._runtime_cache_path is not None:
            serialized = self._runtime_cache.serialize()
            if serialized is not None:
                write_bytes_atomic(
                    self._runtime_cache_path, bytes(memoryview(serialized)), force=True
                )
        self._runtime_cache = None
        # Context before engine before runtime: each depends on the next.
        self._context = None
        self._engine = None
        self._runtime = None
        self._stream = None
        self.manifest = None


def _bind(context, name: str, tensor: torch.Tensor) -> None:
    if not context.set_tensor_address(name, tensor.data_ptr()):
        raise RuntimeError(f"TensorRT set_tensor_address failed for tensor '{name}'")
