"""Option groups: the options of one concern, parsed into one object a command receives (after
Polygraphy's argument groups, `tools/args/base.py`).

`@option_groups(GroupA(), GroupB(), ...)` adds each group's options to a command and calls it
with one keyword per group (its `dest`) instead of the options' values. Groups are parsed in the
order given, and each sees the objects of the groups before it, so a group can depend on
another (the INT8 calibration on the graph's precision, the engine on the graph's target and
batch). A `HarmonyError` raised while parsing is a user error like any other (`user_errors`,
which must wrap the command outside the groups: put it right below `@click.command`).

Only the contract, the engines' profile parser and build options, the backend registry and
`harmony.serving.batching` are imported here (no torch, no onnx), so that `--help` and argument
errors are instant.
"""

from __future__ import annotations

import abc
import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harmony.cli.options import (
    FORCE_HELP,
    backend_param,
    device_param,
    harmony_errors_as_bad_parameter,
    kernels_param,
    model_param,
    no_size_check_param,
    precision_param,
    resolutions_param,
)
from harmony.contract import (
    CALIBRATION_METHODS,
    CASCADED_LUT,
    DEFAULT_CALIBRATION_COUNT,
    DEFAULT_OPSET,
    DEFAULT_RESOLUTIONS,
    KNN_TOPK_FUSION,
    TARGETS,
)
from harmony.engines.profiles import Profile, parse_resolution, profile_from_options
from harmony.engines.trt_env import RUNTIMES, parse_compute_capabilities
from harmony.errors import HarmonyError
from harmony.serving.batching import Batching

if TYPE_CHECKING:
    from harmony.engines.build import BuildOptions
    from harmony.runtime.base import Runner


class OptionGroup(abc.ABC):
    """The options of one concern and how they become one object.

    Subclasses set `dest` (the command's keyword for the object) and implement `make_options`
    and `parse`.
    """

    dest: str = ""

    @functools.cached_property
    def options(self) -> list[click.Option]:
        """The group's options, made once."""
        return self.make_options()

    @abc.abstractmethod
    def make_options(self) -> list[click.Option]:
        """The click options of the group, in the order `--help` shows them."""

    @abc.abstractmethod
    def parse(self, values: dict, parsed: dict) -> object:
        """The group's object from its options' `values` (by parameter name), given the objects
        of the groups parsed before it (`parsed`, by `dest`).

        Raises:
            HarmonyError: contradictory or invalid values (a user error, exit 1).
        """


def option_groups(*groups: OptionGroup) -> Callable:
    """Decorate a click command callback with `groups` (see the module docstring)."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            parsed: dict[str, object] = {}
            for group in groups:
                values = {option.name: kwargs.pop(option.name) for option in group.options}
                parsed[group.dest] = group.parse(values, parsed)
            return command(*args, **kwargs, **parsed)

        # click shows the options of the decorators nearest the function last (it reverses its
        # list); the groups' options go before them, in the order given.
        given = [option for group in groups for option in group.options]
        wrapper.__click_params__ = [
            *getattr(command, "__click_params__", []),
            *reversed(given),
        ]
        return wrapper

    return decorate


def _option(*declarations: str, **attributes) -> click.Option:
    return click.Option(list(declarations), **attributes)


@dataclass(frozen=True)
class RunnerRequest:
    """The model a command runs and how (`harmony run`, `harmony batch`)."""

    model: Path
    backend: str | None  # None: from the model file
    device: str | None  # None: the backend's default
    precision: str | None  # None: the model's own
    kernels: str | None  # None: auto
    size_check: bool  # refuse a size the memory guard estimates too large

    def runner(self) -> Runner:
        """The runner (`harmony.runtime.backends.runner_for`), not yet activated.

        Raises:
            HarmonyError: the backend cannot run the model here (the reason is named).
        """
        from harmony.runtime.backends import runner_for

        return runner_for(
            self.model, self.backend, self.device, self.precision, kernels=self.kernels
        )


class RunnerArgs(OptionGroup):
    """`--model` with `--backend`, `--device`, `--precision`, `--kernels` and `--no-size-check`
    -> `RunnerRequest`."""

    dest = "request"

    def make_options(self) -> list[click.Option]:
        return [
            model_param(),
            backend_param(),
            device_param(),
            precision_param(),
            kernels_param(multiple=False),
            no_size_check_param(),
        ]

    def parse(self, values: dict, parsed: dict) -> RunnerRequest:
        return RunnerRequest(
            model=values["model_path"],
            backend=values["backend"],
            device=values["device"],
            precision=values["precision"],
            kernels=values["kernels"],
            size_check=not values["no_size_check"],
        )


class ProfileArgs(OptionGroup):
    """The optimization profile of an engine -> `Profile` (`harmony.engines.profiles`): `--res`
    (min = smallest, opt = first, max = largest) with `--batch` and `--dynamic-batch`, or
    trtexec-style `--min-shapes/--opt-shapes/--max-shapes`.

    `harmony-export` takes the batch from its graph's `--batch`: `EngineArgs` uses the options
    of `ProfileArgs(batch_option=False)` and completes the profile with it.
    """

    dest = "profile"

    def __init__(self, batch_option: bool = True):
        self.batch_option = batch_option

    def make_options(self) -> list[click.Option]:
        options = [resolutions_param("Engine profile: min = smallest, opt = first, max = largest.")]
        if self.batch_option:
            options.append(_option("--batch", type=int, default=None, help="Batch (default 1)."))
        return [
            *options,
            _option(
                "--dynamic-batch",
                is_flag=True,
                help="Accept batch 1..--batch (opt 1) instead"
                + (
                    "."
                    if self.batch_option
                    else "; the graph is then exported with a dynamic batch."
                ),
            ),
            _option("--min-shapes", help="trtexec-style: image:1x3x512x512,mask:1x1x512x512"),
            _option("--opt-shapes", help="trtexec-style, with --min-shapes and --max-shapes."),
            _option("--max-shapes", help="trtexec-style, with --min-shapes and --opt-shapes."),
        ]

    def parse(self, values: dict, parsed: dict) -> Profile:
        return profile_from_options(**values)


class BuildArgs(OptionGroup):
    """How an engine is built -> `BuildOptions` (`harmony.engines.build`): which runtime, for
    which GPUs, with the plugin library embedded or not, the timing cache and workspace."""

    dest = "build_options"

    def make_options(self) -> list[click.Option]:
        return [
            _option(
                "--runtime",
                type=click.Choice(list(RUNTIMES)),
                default=None,
                help="Default: the one installed (tensorrt where both are). tensorrt-rtx builds "
                "without a GPU for RTX GPUs (compute capability 7.5-12.x, not data-center 9.x).",
            ),
            _option(
                "--cc",
                "compute_capabilities",
                callback=harmony_errors_as_bad_parameter(parse_compute_capabilities),
                help="tensorrt-rtx: target compute capabilities, e.g. 86,89,120. Default: "
                + ",".join(RUNTIMES["tensorrt-rtx"].default_targets)
                + " (TensorRT-RTX's own default).",
            ),
            _option(
                "--embed-plugins",
                is_flag=True,
                help="Serialize the plugin library into the engine: it runs without the library.",
            ),
            _option(
                "--timing-cache",
                type=click.Path(path_type=Path),
                default=None,
                help="TensorRT timing-cache file: loaded if present, saved after the build.",
            ),
            _option(
                "--workspace",
                "workspace_mib",
                type=int,
                default=None,
                help="Workspace limit in MiB.",
            ),
        ]

    def parse(self, values: dict, parsed: dict) -> BuildOptions:
        from harmony.engines.build import BuildOptions  # its module imports the builder

        return BuildOptions(**values)


@dataclass(frozen=True)
class EngineRequest:
    """`harmony-export --engine`: where to write the engine, its profile and build options."""

    path: Path
    profile: Profile
    options: BuildOptions


class EngineArgs(OptionGroup):
    """`harmony-export --engine PATH` with the profile and build options of `harmony build` ->
    `EngineRequest`, or None without `--engine` (then none of the engine's options may be
    given). Needs `GraphArgs` before it: an engine is built from a trt-target graph, and the
    profile's batch is the graph's `--batch` (`--dynamic-batch`: 1..that batch, and the graph is
    exported with a dynamic batch)."""

    dest = "engine"

    def __init__(self):
        self.profile_args = ProfileArgs(batch_option=False)
        self.build_args = BuildArgs()

    def make_options(self) -> list[click.Option]:
        engine = _option(
            "--engine",
            type=click.Path(path_type=Path),
            default=None,
            help="Also build an engine here (--target trt; TensorRT needs a GPU, TensorRT-RTX "
            "none), with the profile and build options below (see harmony build).",
        )
        return [engine, *self.profile_args.options, *self.build_args.options]

    def parse(self, values: dict, parsed: dict) -> EngineRequest | None:
        path = values.pop("engine")
        split = {option.name for option in self.profile_args.options}
        profile_values = {name: values.pop(name) for name in split}
        if path is None:
            if any(profile_values.values()) or any(values.values()):
                raise HarmonyError(
                    "--res, --dynamic-batch, --min/opt/max-shapes, --runtime, --cc, "
                    "--embed-plugins, --timing-cache and --workspace describe the engine: add "
                    "--engine PATH"
                )
            return None
        graph = parsed["graph"]
        if graph.target != "trt":
            raise HarmonyError("--engine needs --target trt (TensorRT runs the custom-node graph)")
        if profile_values["dynamic_batch"] and graph.batch is None:
            raise HarmonyError("--dynamic-batch needs --batch N: the engine then takes batch 1..N")
        shapes = any(profile_values[f"{level}_shapes"] for level in ("min", "opt", "max"))
        batch = None if shapes else (graph.batch or 1)
        profile = profile_from_options(**profile_values, batch=batch)
        return EngineRequest(path, profile, self.build_args.parse(values, parsed))


class _BatchType(click.ParamType):
    """A positive integer or `dynamic` (-> None)."""

    name = "N|dynamic"

    def convert(self, value, param, ctx):
        if value is None or value == "dynamic":
            return None
        try:
            batch = int(value)
        except (TypeError, ValueError):
            batch = 0
        if batch < 1:
            self.fail(f"expected a positive integer or 'dynamic', got {value!r}", param, ctx)
        return batch


class GraphArgs(OptionGroup):
    """What `harmony-export` writes -> `harmony.export.graph.GraphOptions`: the target, the
    precision (`--fp16`, `--int8`), float16 I/O, the opset and the batch."""

    dest = "graph"

    def make_options(self) -> list[click.Option]:
        return [
            _option(
                "--target",
                type=click.Choice(TARGETS),
                default="trt",
                show_default=True,
                help=f"trt: TensorRT parser ops + {CASCADED_LUT.name}/{KNN_TOPK_FUSION.name} "
                "custom nodes; ort: standard ONNX ops only.",
            ),
            _option("--fp16", is_flag=True, help="FP16 weights/compute with FP32 islands."),
            _option(
                "--int8",
                is_flag=True,
                help="INT8 convolutions and weight matrix products (explicit Q/DQ, calibrated), "
                "FP16 elsewhere; gated on PSNR to FP32 and the held-out gain kept.",
            ),
            _option("--io-fp16", is_flag=True, help="FP16 graph inputs and output (default FP32)."),
            _option("--opset", type=int, default=DEFAULT_OPSET, show_default=True),
            _option(
                "--batch",
                type=_BatchType(),
                default="dynamic",
                show_default=True,
                help="N or dynamic.",
            ),
        ]

    def parse(self, values: dict, parsed: dict):
        from harmony.export.graph import GraphOptions

        precision = "int8" if values["int8"] else "fp16" if values["fp16"] else "fp32"
        if values["io_fp16"] and precision == "fp32":
            raise HarmonyError("--io-fp16 needs --fp16 (an FP32 graph has FP32 inputs and output)")
        options = GraphOptions(
            values["target"], precision, values["io_fp16"], values["opset"], values["batch"]
        )
        try:
            return options.validate()
        except ValueError as exc:
            raise HarmonyError(str(exc)) from None


class CalibrationArgs(OptionGroup):
    """INT8 calibration -> `harmony.calibration.CalibrationSettings`, or None for a graph of
    another precision (then none of these options may be given). Needs `GraphArgs` and
    `EngineArgs` before it: the default size is the engine profile's opt resolution."""

    dest = "calibration"

    def make_options(self) -> list[click.Option]:
        return [
            _option(
                "--calib",
                type=click.Path(path_type=Path),
                default=None,
                help="With --int8: an iHarmony4-layout folder to calibrate on [default: demo "
                "composites of the fit photographs].",
            ),
            _option(
                "--calib-count",
                type=click.IntRange(min=1),
                default=None,
                help=f"With --int8: composites [default: {DEFAULT_CALIBRATION_COUNT}].",
            ),
            _option(
                "--calib-res",
                default=None,
                callback=harmony_errors_as_bad_parameter(
                    lambda value: None if value is None else parse_resolution(value)
                ),
                help="With --int8: N (NxN) or HxW the composites are resized to [default: the "
                "engine profile's opt resolution; without --engine 1024x1024].",
            ),
            _option(
                "--calib-method",
                type=click.Choice(CALIBRATION_METHODS),
                default=None,
                help="With --int8: how activation ranges are picked [default: "
                f"{CALIBRATION_METHODS[0]}]; percentile and entropy keep every activation in "
                "memory.",
            ),
        ]

    def parse(self, values: dict, parsed: dict):
        from harmony.calibration import CalibrationSettings

        if parsed["graph"].precision != "int8":
            if any(value is not None for value in values.values()):
                raise HarmonyError(
                    "--calib, --calib-count, --calib-res and --calib-method need --int8"
                )
            return None
        engine = parsed["engine"]
        if values["calib_res"] is not None:
            size = values["calib_res"]
        else:
            size = DEFAULT_RESOLUTIONS[0] if engine is None else engine.profile.opt[1:]
        return CalibrationSettings(
            values["calib"],
            values["calib_count"] or DEFAULT_CALIBRATION_COUNT,
            size,
            values["calib_method"] or CALIBRATION_METHODS[0],
        )


@dataclass(frozen=True)
class ReportPaths:
    """Where a command writes its results (JSON, Markdown, a plot), each None when not asked,
    checked writable when parsed; `force` replaces existing files."""

    json: Path | None = None
    markdown: Path | None = None
    plot: Path | None = None
    force: bool = False


# What each report option writes, by its file name's suffix.
REPORT_SUFFIXES = {"--json": ".json", "--markdown": ".md", "--plot": ".png"}


class ReportArgs(OptionGroup):
    """`--json`, `--markdown` (and `--plot` where the command draws one) with `--force` ->
    `ReportPaths`, every destination checked before the work (`harmony.files.check_writable`)."""

    dest = "reports"

    def __init__(self, plot: bool = False):
        self.plot = plot

    def make_options(self) -> list[click.Option]:
        options = [
            _option(
                "--json",
                "json_path",
                type=click.Path(path_type=Path),
                help="Write the results JSON.",
            ),
            _option(
                "--markdown",
                "markdown_path",
                type=click.Path(path_type=Path),
                help="Write a Markdown report.",
            ),
        ]
        if self.plot:
            options.append(
                _option(
                    "--plot",
                    "plot_path",
                    type=click.Path(path_type=Path),
                    help="Write a latency bar chart (PNG).",
                )
            )
        options.append(_option("--force", is_flag=True, help=FORCE_HELP))
        return options

    def parse(self, values: dict, parsed: dict) -> ReportPaths:
        from harmony.files import check_writable

        paths = ReportPaths(
            values["json_path"], values["markdown_path"], values.get("plot_path"), values["force"]
        )
        for option, path in (("--json", paths.json), ("--markdown", paths.markdown)):
            if path is not None and path.suffix.lower() != REPORT_SUFFIXES[option]:
                raise click.BadParameter(
                    f"{path} is not a {REPORT_SUFFIXES[option]} file", param_hint=option
                )
        if paths.plot is not None:
            if paths.plot.suffix.lower() != REPORT_SUFFIXES["--plot"]:
                raise click.BadParameter(f"{paths.plot} is not a .png file", param_hint="--plot")
            if importlib.util.find_spec("matplotlib") is None:
                raise HarmonyError("--plot needs matplotlib: pip install matplotlib")
        for path in (paths.json, paths.markdown, paths.plot):
            if path is not None:
                check_writable(path, paths.force)
        return paths


class BatchingArgs(OptionGroup):
    """`--max-batch`, `--max-queue-delay-us`, `--instances` -> `Batching`."""

    dest = "batching"

    def make_options(self) -> list[click.Option]:
        return [
            _option(
                "--max-batch",
                type=click.IntRange(min=1),
                default=Batching.max_batch,
                show_default=True,
                help="Largest batch Triton gathers (same-size requests); 1 turns batching off.",
            ),
            _option(
                "--max-queue-delay-us",
                type=click.IntRange(min=0),
                default=Batching.max_queue_delay_us,
                show_default=True,
                help="How long the dynamic batcher waits for more requests of the same size.",
            ),
            _option(
                "--instances",
                type=click.IntRange(min=1),
                default=Batching.instances,
                show_default=True,
                help="Model instances (Python backend: processes; engines: copies on each GPU).",
            ),
        ]

    def parse(self, values: dict, parsed: dict) -> Batching:
        return Batching(values["max_batch"], values["max_queue_delay_us"], values["instances"])


__all__ = [
    "BatchingArgs",
    "BuildArgs",
    "CalibrationArgs",
    "EngineArgs",
    "EngineRequest",
    "GraphArgs",
    "OptionGroup",
    "ProfileArgs",
    "ReportArgs",
    "ReportPaths",
    "RunnerArgs",
    "RunnerRequest",
    "option_groups",
]
