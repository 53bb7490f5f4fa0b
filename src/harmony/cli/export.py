"""`harmony export` / `harmony-export`: checkpoint -> validated ONNX graph."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import click

from harmony.cli.common import format_table, user_errors
from harmony.cli.options import engine_target_options, force_option, resolutions_option
from harmony.contract import (
    ARCHS,
    CALIBRATION_METHODS,
    CASCADED_LUT,
    DEFAULT_CALIBRATION_COUNT,
    DEFAULT_OPSET,
    KNN_TOPK_FUSION,
    TARGETS,
)
from harmony.errors import HarmonyError

_NODE_TYPES_SHOWN = 12


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


@click.command("export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output .onnx [default: next to CHECKPOINT, <stem>.<target>.<precision>.onnx].",
)
@click.option(
    "--arch",
    type=click.Choice(("auto", *ARCHS)),
    default="auto",
    show_default=True,
    help="Architecture; auto detects it from the checkpoint.",
)
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default="trt",
    show_default=True,
    help=f"trt: TensorRT parser ops + {CASCADED_LUT.name}/{KNN_TOPK_FUSION.name} custom "
    "nodes; ort: standard ONNX ops only.",
)
@click.option("--fp16", is_flag=True, help="FP16 weights/compute with FP32 islands.")
@click.option(
    "--int8",
    is_flag=True,
    help="INT8 convolutions and weight matrix products (explicit Q/DQ, calibrated), FP16 "
    "elsewhere; gated on PSNR to FP32 and the held-out gain kept.",
)
@click.option(
    "--calib",
    type=click.Path(path_type=Path),
    default=None,
    help="With --int8: an iHarmony4-layout folder to calibrate on [default: demo composites "
    "of the fit photographs].",
)
@click.option(
    "--calib-count",
    type=click.IntRange(min=1),
    default=None,
    help=f"With --int8: composites [default: {DEFAULT_CALIBRATION_COUNT}].",
)
@click.option(
    "--calib-res",
    default=None,
    help="With --int8: N (NxN) or HxW the composites are resized to [default: the engine "
    "profile's opt resolution; without --engine 1024x1024].",
)
@click.option(
    "--calib-method",
    type=click.Choice(CALIBRATION_METHODS),
    default=None,
    help=f"With --int8: how activation ranges are picked [default: {CALIBRATION_METHODS[0]}]; "
    "percentile and entropy keep every activation in memory.",
)
@click.option("--io-fp16", is_flag=True, help="FP16 graph inputs and output (default FP32).")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True)
@click.option(
    "--batch", type=_BatchType(), default="dynamic", show_default=True, help="N or dynamic."
)
@force_option
@click.option("--no-verify", is_flag=True, help="Skip the checker/shape-inference/parity checks.")
@click.option(
    "--engine",
    type=click.Path(path_type=Path),
    default=None,
    help="Also build an engine here (--target trt; TensorRT needs a GPU, TensorRT-RTX none).",
)
@resolutions_option("With --engine: the engine profile's resolutions (see harmony build):")
@click.option("--timing-cache", type=click.Path(path_type=Path), help="With --engine.")
@engine_target_options
@user_errors
def export_command(
    checkpoint: Path,
    output: Path | None,
    arch: str,
    target: str,
    fp16: bool,
    int8: bool,
    calib: Path | None,
    calib_count: int | None,
    calib_res: str | None,
    calib_method: str | None,
    io_fp16: bool,
    opset: int,
    batch: int | None,
    force: bool,
    no_verify: bool,
    engine: Path | None,
    resolutions: tuple[tuple[int, int], ...],
    timing_cache: Path | None,
    runtime: str | None,
    compute_capabilities: tuple[str, ...],
    embed_plugins: bool,
) -> None:
    """Export CHECKPOINT (AICT, HDNet, HDNet-lite) to a validated ONNX graph.

    Inputs image [B,3,H,W] and mask [B,1,H,W] in [0,1], output harmonized [B,3,H,W]; B, H, W
    dynamic. The file is written only after it passed the checks (parity with the PyTorch
    pipeline: PSNR >= 60 dB in FP32, >= 40 dB in FP16; INT8: >= 35 dB for AICT, >= 30 dB for
    HDNet, and, for fitted weights, >= 80% of the FP32 held-out PSNR gain kept).
    """
    from harmony.calibration import CalibrationSettings
    from harmony.export import onnx_from_checkpoint

    if io_fp16 and not (fp16 or int8):
        raise HarmonyError("--io-fp16 needs --fp16 (an FP32 graph has FP32 inputs and output)")
    if not int8 and (calib, calib_count, calib_res, calib_method) != (None,) * 4:
        raise HarmonyError("--calib, --calib-count, --calib-res and --calib-method need --int8")
    profile = None
    if engine is not None:
        profile = _engine_profile(
            target, engine, force, resolutions, batch, runtime, compute_capabilities, timing_cache
        )
    elif resolutions or timing_cache or runtime or compute_capabilities or embed_plugins:
        raise HarmonyError(
            "--res, --timing-cache, --runtime, --cc and --embed-plugins describe the engine: "
            "add --engine PATH"
        )
    report = onnx_from_checkpoint(
        checkpoint,
        output,
        arch=None if arch == "auto" else arch,
        target=target,
        fp16=fp16,
        int8=int8,
        calibration=CalibrationSettings(
            calib,
            calib_count or DEFAULT_CALIBRATION_COUNT,
            _calibration_size(calib_res, profile),
            calib_method or CALIBRATION_METHODS[0],
        )
        if int8
        else None,
        io_fp16=io_fp16,
        opset=opset,
        batch=batch,
        force=force,
        verify=not no_verify,
    )
    click.echo(_summary(report))
    if engine is not None:
        from harmony.cli.build import describe_build
        from harmony.runtime.engine import engine_from_onnx

        built = engine_from_onnx(
            report.path,
            profile,
            engine,
            timing_cache=timing_cache,
            force=force,
            runtime=runtime,
            compute_capabilities=compute_capabilities,
            embed_plugins=embed_plugins,
        )
        click.echo(describe_build(built))


def _calibration_size(calib_res: str | None, profile) -> tuple[int, int]:
    """--calib-res, else the engine profile's opt resolution, else the first default one."""
    from harmony.contract import DEFAULT_RESOLUTIONS
    from harmony.runtime.profiles import parse_resolutions

    if calib_res is not None:
        sizes = parse_resolutions((calib_res,))
        if len(sizes) != 1:
            raise HarmonyError(f"--calib-res takes one resolution, got {calib_res}")
        return sizes[0]
    return DEFAULT_RESOLUTIONS[0] if profile is None else profile.opt[1:]


def _engine_profile(
    target: str,
    engine: Path,
    force: bool,
    resolutions,
    batch: int | None,
    runtime: str | None,
    compute_capabilities: tuple[str, ...],
    timing_cache: Path | None,
):
    """The engine's profile; fails before the (long) export when it cannot be built here (the
    destination, the runtime, its targets and timing cache are checked)."""
    from harmony.contract import DEFAULT_RESOLUTIONS
    from harmony.runtime.engine import check_engine_request
    from harmony.runtime.profiles import profile_from_resolutions
    from harmony.runtime.trt_env import import_runtime, plugin_library

    if target != "trt":
        raise HarmonyError("--engine needs --target trt (TensorRT runs the custom-node graph)")
    trt_runtime = check_engine_request(engine, force, runtime, compute_capabilities, timing_cache)
    profile = profile_from_resolutions(resolutions or DEFAULT_RESOLUTIONS, batch or 1)
    import_runtime(trt_runtime)
    plugin_library()  # the trt target's custom nodes need it
    return profile


def _summary(report) -> str:
    from harmony.export.verify import INT8_MIN_GAIN_KEPT

    rows = [
        ["arch", report.arch],
        ["weights", report.weights],
        ["target", report.target],
        ["precision", f"{report.precision} (I/O {report.io_dtype})"],
        ["opset", report.opset],
        ["batch", report.batch],
        ["file", f"{report.path} ({report.file_bytes / 2**20:.1f} MiB)"],
        ["nodes", f"{sum(report.node_counts.values())} total"],
    ]
    shown = list(report.node_counts.items())
    rest = sum(count for _, count in shown[_NODE_TYPES_SHOWN:])
    for op_type, count in shown[:_NODE_TYPES_SHOWN]:
        rows.append([f"  {op_type}", count])
    if rest:
        rows.append([f"  ({len(shown) - _NODE_TYPES_SHOWN} other types)", rest])
    if report.int8_layers is not None:
        types = Counter(layer["op_type"] for layer in report.int8_layers)
        listed = ", ".join(f"{op} {count}" for op, count in types.most_common())
        rows.append(["int8 layers", f"{len(report.int8_layers)} ({listed}); FP16 elsewhere"])
        calibration = report.calibration
        rows.append(["calibration", f"{calibration['source']}, {calibration['method']} ranges"])
    if report.parity:
        for result in report.parity:
            psnr = "inf" if math.isinf(result.psnr_db) else f"{result.psnr_db:.1f}"
            rows.append([f"parity {result.size}", f"max abs {result.max_abs:.2e}, PSNR {psnr} dB"])
        rows.append(["parity bound", f"PSNR >= {report.min_psnr_db:.0f} dB: passed"])
        if report.custom_nodes_verified_with:
            rows.append(["custom nodes run by", report.custom_nodes_verified_with])
        if report.quality:
            for label, means in report.quality["means"].items():
                drift = report.quality["drift"].get(label)
                rows.append(
                    [
                        f"held-out {label}",
                        f"PSNR {means['psnr']:.2f} dB, fMSE {means['fmse']:.1f}"
                        + (f" (drift {drift['psnr']:+.3f} dB)" if drift else ""),
                    ]
                )
        if report.gain_kept is not None:
            rows.append(
                [
                    "held-out gain kept",
                    f"{report.gain_kept:.0%} of FP32's (>= {INT8_MIN_GAIN_KEPT:.0%}): passed",
                ]
            )
    else:
        rows.append(["parity", "not verified (--no-verify)"])
    lines = [f"wrote {report.path}", "", format_table(["", ""], rows)]
    lines += [f"warning: {warning}" for warning in report.warnings]
    return "\n".join(lines)
