"""Single options several commands share, each parsed by one function (groups of options that
become one object are in `harmony.cli.groups`).

Only the contract, the profile parser and the backend registry are imported here (no torch,
no onnx), so that `--help` and argument errors are instant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click

from harmony.contract import DEFAULT_RESOLUTIONS, KERNELS, check_precision
from harmony.engines.profiles import format_resolutions, parse_resolutions
from harmony.errors import HarmonyError
from harmony.runtime.backends import backend_names


def harmony_errors_as_bad_parameter(parse: Callable) -> Callable:
    """A click callback running `parse(value)`: a HarmonyError becomes a usage error (exit 2)."""

    def callback(ctx, param, value):
        try:
            return parse(value)
        except HarmonyError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def comma_separated(
    choices: Sequence[str], check: Callable[[str], object] | None = None
) -> Callable:
    """A comma-separated list of `choices` (each also passed to `check`, if given)."""

    def parse(value: str | None) -> list[str] | None:
        if value is None:
            return None
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            if check is not None:
                check(item)
            if item not in choices:
                raise HarmonyError(f"'{item}' is not one of {', '.join(choices)}")
        return items

    return harmony_errors_as_bad_parameter(parse)


def _precision(value: str) -> str:
    return check_precision(value, f"--precision {value}")


FORCE_HELP = "Overwrite existing output files."


def force_option(command):
    """`--force`: replace existing output files."""
    return click.option("--force", is_flag=True, help=FORCE_HELP)(command)


def model_param() -> click.Option:
    """`--model`: the model file a runner runs (parsed as `model_path`)."""
    return click.Option(
        ["--model", "model_path"],
        type=click.Path(path_type=Path),
        required=True,
        help="Checkpoint, .onnx or .engine.",
    )


def no_size_check_param() -> click.Option:
    """`--no-size-check`: run where the estimated peak memory exceeds what is available."""
    return click.Option(
        ["--no-size-check"],
        is_flag=True,
        help="Run even where the estimated peak memory exceeds what is available.",
    )


def device_param() -> click.Option:
    """`--device cpu|cuda` of the commands that run one model; None: the backend's default."""
    return click.Option(
        ["--device"],
        type=click.Choice(["cpu", "cuda"]),
        default=None,
        help="Default: the backend's first available (torch: cuda, else cpu; trt: cuda).",
    )


def device_option(command):
    """`device_param` as a decorator."""
    return with_param(command, device_param())


def with_param(command, param: click.Parameter):
    """`command` with `param` added, as click's own option decorators add theirs."""
    command.__click_params__ = [*getattr(command, "__click_params__", []), param]
    return command


def resolutions_param(help_text: str) -> click.Option:
    """`--res`: resolutions N (NxN) or HxW, comma-separated and/or repeated; the callback gives
    (height, width) pairs, () when none is given (the caller's default applies)."""
    return click.Option(
        ["--res", "resolutions"],
        multiple=True,
        callback=harmony_errors_as_bad_parameter(parse_resolutions),
        help=f"{help_text} N (NxN) or HxW, comma-separated. Default "
        f"{format_resolutions(DEFAULT_RESOLUTIONS)}.",
    )


def resolutions_option(help_text: str) -> Callable:
    """`resolutions_param` as a decorator."""
    return lambda command: with_param(command, resolutions_param(help_text))


def precision_param() -> click.Option:
    """`--precision fp32|fp16|int8` for one run; default: the model's own (fp32 for a
    checkpoint, a graph's or engine's precision otherwise)."""
    return click.Option(
        ["--precision"],
        default=None,
        callback=harmony_errors_as_bad_parameter(lambda v: None if v is None else _precision(v)),
        help="fp32, fp16 or int8 (torch backend: fp16 needs CUDA; int8 is a graph precision). "
        "Default: the model's own precision; an .onnx graph or engine runs only at the "
        "precision it was made with.",
    )


def precisions_option(command):
    """`--precision fp32,fp16`: the precisions a benchmark compares."""
    from harmony.contract import PRECISIONS

    return click.option(
        "--precision",
        "precisions",
        default="fp32",
        show_default=True,
        callback=comma_separated(PRECISIONS, _precision),
        help="Comma-separated.",
    )(command)


def backends_option(command):
    """`--backend torch,ort,...`: registered backends, comma-separated (all by default)."""
    names = backend_names()
    return click.option(
        "--backend",
        "backends",
        default=",".join(names),
        show_default=True,
        callback=comma_separated(names),
        help="Comma-separated.",
    )(command)


def backend_param() -> click.Option:
    """`--backend NAME` for one run; default: from the model file's suffix."""
    return click.Option(
        ["--backend"],
        type=click.Choice(backend_names()),
        default=None,
        help="Default: from the model file (checkpoint: torch, .onnx: ort, .engine: trt).",
    )


def kernels_param(multiple: bool) -> click.Option:
    """`--kernels`: the torch backend's fused-op implementation(s): reference (harmony.ops) or
    fused (the plugin kernels, CUDA); auto (default) picks per device. Gives None for auto."""
    parse_list = comma_separated(KERNELS)

    def callback(ctx, param, value):
        if value == "auto":
            return None
        if multiple:
            return parse_list(ctx, param, value)
        if value not in KERNELS:
            raise click.BadParameter(f"'{value}' is not one of auto, {', '.join(KERNELS)}")
        return value

    auto = "both on CUDA, reference on the CPU" if multiple else "fused on CUDA where built"
    return click.Option(
        ["--kernels"],
        default="auto",
        show_default=True,
        callback=callback,
        help=f"torch backend only: {'comma-separated ' if multiple else ''}reference "
        f"(harmony.ops) or fused (plugin kernels, CUDA); auto: {auto}.",
    )


def kernels_option(multiple: bool) -> Callable:
    """`kernels_param` as a decorator."""
    return lambda command: with_param(command, kernels_param(multiple))
