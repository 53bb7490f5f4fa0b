"""The backend registry: one entry per way of running a model (after mmdeploy's backend managers).

An entry says which artifact the backend consumes (a checkpoint, an ONNX graph of an export
target, an engine) and which files it runs as they are, how that artifact is prepared from a
checkpoint (its loader, in `harmony.runtime.loaders`), which runner runs it and with which
options, and, through the runner, whether it is available here and why not. Command-line
choices, `harmony-bench` planning and `harmony-run` read this table; adding a backend is one
`register(Backend(...))` here plus its runner and loader.

This module imports neither torch nor onnx: entries name their runner and loader as
"module:attribute" and import them on use, so commands can list the backends instantly.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harmony.errors import HarmonyError

if TYPE_CHECKING:
    from harmony.runtime.base import Availability, Runner

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")


@dataclass(frozen=True)
class Backend:
    """One backend.

    Attributes:
        name: what users type (`--backend NAME`).
        artifact: "checkpoint", "onnx" or "engine": what the runner consumes.
        suffixes: files this backend runs as they are.
        devices: the devices it runs on, the one harmony-bench uses first.
        runner: "module:Class" of its `Runner`.
        loader: "module:function" preparing its artifact (`harmony.runtime.loaders`).
        export_target: the ONNX target its artifact is made from, None for checkpoints.
        options: runner keyword arguments beyond (model, device, precision) it accepts.
    """

    name: str
    artifact: str
    suffixes: tuple[str, ...]
    devices: tuple[str, ...]
    runner: str
    loader: str
    export_target: str | None = None
    options: tuple[str, ...] = field(default=())

    def runner_class(self) -> type[Runner]:
        """The Runner subclass (imported now)."""
        return _resolve(self.runner)

    def availability(self, device: str, precision: str | None = None) -> Availability:
        """Whether this backend runs on `device` (at `precision`, where it chooses it) here, and
        if not, why."""
        from harmony.runtime.base import Availability

        if device not in self.devices:
            return Availability(
                False, f"the {self.name} backend runs on {' or '.join(self.devices)}, not {device}"
            )
        return self.runner_class().availability(device, precision)

    def prepare(self, request) -> Path:
        """The artifact this backend runs for `request` (a `loaders.ArtifactRequest`),
        exported or built on first use and cached."""
        return _resolve(self.loader)(self, request)


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add `backend` to the registry (its name must be new)."""
    if backend.name in BACKENDS:
        raise ValueError(f"backend {backend.name!r} is registered twice")
    BACKENDS[backend.name] = backend
    return backend


register(
    Backend(
        name="torch",
        artifact="checkpoint",
        suffixes=CHECKPOINT_SUFFIXES,
        devices=("cuda", "cpu"),
        runner="harmony.runtime.torch_runner:TorchRunner",
        loader="harmony.runtime.loaders:checkpoint",
        options=("kernels", "cuda_graphs"),
    )
)
register(
    Backend(
        name="ort",
        artifact="onnx",
        suffixes=(".onnx",),
        devices=("cpu", "cuda"),
        runner="harmony.runtime.ort_runner:OrtRunner",
        loader="harmony.runtime.loaders:exported_graph",
        export_target="ort",
        options=("threads",),
    )
)
register(
    Backend(
        name="ort-custom",
        artifact="onnx",
        suffixes=(".onnx",),
        devices=("cpu", "cuda"),
        runner="harmony.runtime.ort_runner:OrtCustomOpRunner",
        loader="harmony.runtime.loaders:exported_graph",
        export_target="trt",
        options=("threads",),
    )
)
register(
    Backend(
        name="trt",
        artifact="engine",
        suffixes=(".engine", ".plan"),
        devices=("cuda",),
        runner="harmony.runtime.trt_runner:TrtRunner",
        loader="harmony.runtime.loaders:built_engine",
        export_target="trt",
    )
)


def backend_names() -> tuple[str, ...]:
    """Names of the registered backends, in registration order."""
    return tuple(BACKENDS)


def get_backend(name: str) -> Backend:
    """The entry named `name`; HarmonyError naming the known ones otherwise."""
    if name not in BACKENDS:
        raise HarmonyError(f"unknown backend '{name}'; expected one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def backend_for_file(model_path: str | os.PathLike, backend: str | None = None) -> Backend:
    """The backend that runs `model_path` as it is: `backend` if given and it runs that kind of
    file, else the one whose suffixes match (an ONNX graph: the one of its export target).

    Raises:
        HarmonyError: an unknown suffix, or a backend that cannot run this file (the message
            says how to convert it).
    """
    suffix = Path(model_path).suffix.lower()
    candidates = [b for b in BACKENDS.values() if suffix in b.suffixes]
    if not candidates:
        kinds = "; ".join(f"{', '.join(b.suffixes)} ({b.name})" for b in BACKENDS.values())
        raise HarmonyError(
            f"cannot tell what {model_path} is from its suffix '{suffix}'; expected {kinds}"
        )
    if backend is not None and get_backend(backend) in candidates:
        return get_backend(backend)
    natural = _natural_backend(model_path, candidates)
    if backend is None:
        return natural
    wanted = get_backend(backend)
    raise HarmonyError(
        f"--backend {wanted.name} cannot run {model_path} (a {suffix} file runs on "
        f"'{natural.name}'); {_conversion_hint(natural, wanted)}"
    )


def _natural_backend(model_path: str | os.PathLike, candidates: list[Backend]) -> Backend:
    """The one of `candidates` (backends taking the file's suffix) made for this file: where
    several take it (.onnx), the one whose export target the graph was written for."""
    if len(candidates) == 1:
        return candidates[0]
    from harmony.export.metadata import read_graph_metadata

    return graph_backend(read_graph_metadata(model_path)["target"])


def graph_backend(target: str) -> Backend:
    """The backend that runs ONNX graphs of export target `target` as they are."""
    return next(b for b in BACKENDS.values() if b.artifact == "onnx" and b.export_target == target)


def _conversion_hint(natural: Backend, wanted: Backend) -> str:
    if natural.artifact == "checkpoint" and wanted.export_target is not None:
        hint = f"export it first: harmony-export MODEL --target {wanted.export_target}"
        return hint + (" --engine MODEL.engine" if wanted.artifact == "engine" else "")
    if natural.artifact == "onnx" and wanted.artifact == "engine":
        return "build an engine first: harmony build MODEL.onnx -o MODEL.engine"
    return "pass the checkpoint instead: every backend can be prepared from it"


def runner_for(
    model_path: str | os.PathLike,
    backend: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    **options,
) -> Runner:
    """A (not yet active) runner for `model_path`.

    Args:
        backend: default: from the file's suffix (`backend_for_file`).
        device: default: the backend's first device that is available here.
        precision: None runs the model at its own precision (a graph's or an engine's, fp32
            for a checkpoint); a value an ONNX graph or engine was not built with is refused.
        options: backend-specific runner options (e.g. `kernels` for torch); an option the
            backend does not take is refused with the reason.
    """
    entry = backend_for_file(model_path, backend)
    for option, value in options.items():
        if value is not None and option not in entry.options:
            owners = ", ".join(b.name for b in BACKENDS.values() if option in b.options)
            raise HarmonyError(
                f"--{option.replace('_', '-')} applies to the {owners} backend only; "
                f"{Path(model_path).name} runs on the {entry.name} backend"
            )
    if device is None:
        device = default_device(entry)
    available = entry.availability(device, precision)
    if not available.ok:
        raise HarmonyError(f"{entry.name} backend unavailable: {available.reason}")
    given = {key: value for key, value in options.items() if value is not None}
    return entry.runner_class()(model_path, device=device, precision=precision, **given)


def default_device(entry: Backend) -> str:
    """The first of `entry.devices` on which the backend is available (else its first)."""
    for device in entry.devices:
        if entry.runner_class().availability(device).ok:
            return device
    return entry.devices[0]


def _resolve(reference: str) -> Callable:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)
