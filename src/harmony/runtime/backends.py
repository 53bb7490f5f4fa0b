"""The backend registry: one entry per way of running a model (after mmdeploy's backend managers),
and the one answer to "can this backend run this model here, and if not, why and what to do".

An entry says which artifact the backend consumes (a checkpoint, an ONNX graph of an export
target, an engine), the devices it runs on, which runner runs it and with which options.
`Backend.refusal(source, device, precision)` is read by every command, harmony-bench's planner,
harmony eval and the runners themselves (on activation): the environment (device, installed
libraries, through the runner's `availability`) and the model (kind, precision, target, from
`harmony.runtime.sources`). Adding a backend is one `register(Backend(...))` here plus its
runner, and in `harmony.artifacts` the preparation of its artifact if that kind is new.

This module imports neither torch nor onnx: entries name their runner as "module:Class" and
import it on use, so commands list the backends instantly.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from harmony.contract import PRECISION_FLAGS
from harmony.errors import HarmonyError
from harmony.runtime.sources import KIND_SUFFIXES, ModelSource, describe, model_kind

# What a kind of model file is called in messages: one of them, and several.
_KIND_NAMES = {"checkpoint": "a checkpoint", "onnx": "a .onnx graph", "engine": "an engine"}
_KIND_PLURALS = {"checkpoint": "checkpoints", "onnx": ".onnx graphs", "engine": "engines"}


@dataclass(frozen=True)
class Availability:
    """Whether a runner can run here, and if not, why (`Runner.availability`)."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Backend:
    """One backend.

    Attributes:
        name: what users type (`--backend NAME`).
        artifact: "checkpoint", "onnx" or "engine": the kind of file the runner consumes.
        devices: the devices it runs on, the one harmony-bench uses first.
        runner: "module:Class" of its `Runner`.
        export_target: the ONNX target its artifact is made from, None for checkpoints.
        options: runner keyword arguments beyond (model, device, precision) it accepts.
    """

    name: str
    artifact: str
    devices: tuple[str, ...]
    runner: str
    export_target: str | None = None
    options: tuple[str, ...] = field(default=())

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The files this backend runs as they are."""
        return KIND_SUFFIXES[self.artifact]

    def runner_class(self) -> type:
        """Its `harmony.runtime.base.Runner` subclass (imported now)."""
        module, _, attribute = self.runner.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def refusal(
        self,
        source: ModelSource | None,
        device: str | None,
        precision: str | None = None,
        *,
        as_is: bool = False,
    ) -> str | None:
        """Why this backend cannot run `source` at `precision` on `device` here, with what to do
        instead; None when it can.

        Args:
            source: the model (`harmony.runtime.sources`); None checks the environment only.
            device: "cpu" or "cuda"; None checks the model only (preparing an artifact needs
                no device).
            precision: None: the model's own (a graph's or an engine's; fp32 for a checkpoint).
            as_is: whether `source` must run as it is (a runner, harmony-run), not an artifact
                prepared from it (harmony-bench and harmony eval export and build from a
                checkpoint).
        """
        if device is None:
            return None if source is None else self._model_refusal(source, precision, as_is)
        if device not in self.devices:
            return self._unavailable(f"it runs on {' or '.join(self.devices)}, not {device}")
        available = self.runner_class().availability(device, precision)
        if not available.ok:
            return self._unavailable(available.reason)
        return None if source is None else self._model_refusal(source, precision, as_is)

    def _unavailable(self, reason: str) -> str:
        return f"{self.name} backend unavailable: {reason}"

    def _model_refusal(self, source: ModelSource, precision: str | None, as_is: bool) -> str | None:
        name = source.path.name
        if source.kind == "checkpoint":
            if self.artifact == "checkpoint" or not as_is:
                return None
            return f"the {self.name} backend cannot run the checkpoint {name}; {self._made_from()}"
        if self.artifact == "checkpoint" or (self.artifact == "onnx" and source.kind == "engine"):
            return (
                f"the {self.name} backend runs {_KIND_PLURALS[self.artifact]}, not "
                f"{_KIND_NAMES[source.kind]}; pass the checkpoint instead: every backend can be "
                "prepared from it"
            )
        if precision is not None and precision != source.precision:
            return _precision_refusal(source, precision)
        if source.target != self.export_target:
            return (
                f"{name} is a {source.target}-target graph; the {self.name} backend runs "
                f"{self.export_target}-target graphs: "
                + (
                    f"run it with --backend {graph_backend(source.target).name}"
                    if self.artifact == "onnx"
                    else f"export one with --target {self.export_target}"
                )
            )
        if as_is and source.kind != self.artifact:
            return f"the {self.name} backend runs engines, not a .onnx graph; {self._made_from()}"
        return None

    def _made_from(self) -> str:
        """How this backend's artifact is made from the user's file."""
        if self.artifact == "onnx":
            return f"export it first: harmony-export MODEL --target {self.export_target}"
        return (
            f"export it first: harmony-export MODEL --target {self.export_target} --engine "
            "MODEL.engine, or build an engine from its graph: harmony build MODEL.onnx -o "
            "MODEL.engine"
        )


def _precision_refusal(source: ModelSource, precision: str) -> str:
    """A graph or an engine runs at the precision it was made with only."""
    if source.kind == "engine":
        return (
            f"{source.path.name} was built from a {source.precision} graph and runs at that "
            f"precision only; for {precision} build an engine from a {precision} export"
        )
    return (
        f"{source.path.name} is a {source.precision} graph and runs at that precision only; for "
        f"{precision} export it again (harmony-export CHECKPOINT --target {source.target}"
        f"{PRECISION_FLAGS[precision]})"
    )


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
        devices=("cuda", "cpu"),
        runner="harmony.runtime.torch_runner:TorchRunner",
        options=("kernels", "cuda_graphs"),
    )
)
register(
    Backend(
        name="ort",
        artifact="onnx",
        devices=("cpu", "cuda"),
        runner="harmony.runtime.ort_runner:OrtRunner",
        export_target="ort",
        options=("threads",),
    )
)
register(
    Backend(
        name="ort-custom",
        artifact="onnx",
        devices=("cpu", "cuda"),
        runner="harmony.runtime.ort_runner:OrtCustomOpRunner",
        export_target="trt",
        options=("threads",),
    )
)
register(
    Backend(
        name="trt",
        artifact="engine",
        devices=("cuda",),
        runner="harmony.runtime.trt_runner:TrtRunner",
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


def graph_backend(target: str) -> Backend:
    """The backend that runs ONNX graphs of export target `target` as they are."""
    return next(b for b in BACKENDS.values() if b.artifact == "onnx" and b.export_target == target)


def natural_backend(source: ModelSource) -> Backend:
    """The backend made for `source` as it is: the one consuming its kind of file, for a graph
    the one of its export target."""
    if source.kind == "onnx":
        return graph_backend(source.target)
    return next(b for b in BACKENDS.values() if b.artifact == source.kind)


def backend_for_file(model_path: str | os.PathLike, backend: str | None = None) -> Backend:
    """`backend` if given, else the backend made for `model_path` (`natural_backend`; for a
    graph this reads its metadata). Whether it can run the file is `Backend.refusal`'s answer.

    Raises:
        HarmonyError: an unknown suffix or backend name, an unreadable graph.
    """
    model_kind(model_path)  # an unknown suffix is an error with or without --backend
    if backend is not None:
        return get_backend(backend)
    return natural_backend(describe(model_path))


def runner_for(
    model_path: str | os.PathLike,
    backend: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    **options,
):
    """A (not yet active) `Runner` for `model_path`, refused up front where it cannot run.

    Args:
        backend: default: the one made for the file (`backend_for_file`).
        device: default: the backend's first device that is available here.
        precision: None runs the model at its own precision (a graph's or an engine's, fp32
            for a checkpoint); a value an ONNX graph or engine was not made with is refused.
        options: backend-specific runner options (e.g. `kernels` for torch); an option the
            backend does not take is refused with the reason.

    Raises:
        HarmonyError: `Backend.refusal`'s reason, or an option of another backend.
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
    reason = entry.refusal(describe(model_path), device, precision, as_is=True)
    if reason is not None:
        raise HarmonyError(reason)
    given = {key: value for key, value in options.items() if value is not None}
    return entry.runner_class()(model_path, device=device, precision=precision, **given)


def default_device(entry: Backend) -> str:
    """The first of `entry.devices` on which the backend is available (else its first)."""
    for device in entry.devices:
        if entry.runner_class().availability(device).ok:
            return device
    return entry.devices[0]
