"""`harmony export` / `harmony-export`: checkpoint -> validated ONNX graph."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harmony.cli.common import format_table, user_errors
from harmony.cli.groups import CalibrationArgs, EngineArgs, EngineRequest, GraphArgs, option_groups
from harmony.cli.options import force_option
from harmony.contract import ARCHS

if TYPE_CHECKING:
    from harmony.calibration import CalibrationSettings
    from harmony.export.graph import GraphOptions

_NODE_TYPES_SHOWN = 12


@click.command("export")
@user_errors
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
@option_groups(GraphArgs(), EngineArgs(), CalibrationArgs())
@force_option
@click.option("--no-verify", is_flag=True, help="Skip the checker/shape-inference/parity checks.")
def export_command(
    checkpoint: Path,
    output: Path | None,
    arch: str,
    graph: GraphOptions,
    engine: EngineRequest | None,
    calibration: CalibrationSettings | None,
    force: bool,
    no_verify: bool,
) -> None:
    """Export CHECKPOINT (AICT, HDNet, HDNet-lite) to a validated ONNX graph.

    Inputs image [B,3,H,W] and mask [B,1,H,W] in [0,1], output harmonized [B,3,H,W]; B, H, W
    dynamic. The file is written only after it passed the checks (parity with the PyTorch
    pipeline: PSNR >= 60 dB in FP32, >= 40 dB in FP16; INT8: >= 35 dB for AICT, >= 30 dB for
    HDNet, and, for fitted weights, >= 80% of the FP32 held-out PSNR gain kept).
    """
    export_options = {
        "output": output,
        "arch": None if arch == "auto" else arch,
        "target": graph.target,
        "precision": graph.precision,
        "calibration": calibration,
        "io_fp16": graph.io_fp16,
        "opset": graph.opset,
        "batch": graph.batch,
        "verify": not no_verify,
    }
    if engine is None:
        from harmony.export.exporter import onnx_from_checkpoint

        click.echo(_summary(onnx_from_checkpoint(checkpoint, force=force, **export_options)))
        return
    from harmony.artifacts import exported_engine
    from harmony.cli.build import describe_build

    _check_engine_prerequisites(engine, graph.precision, force)
    if engine.profile.min[0] != engine.profile.max[0]:
        export_options["batch"] = None  # an engine of several batches: a dynamic graph
    built = exported_engine(
        checkpoint,
        engine.path,
        engine.profile,
        engine.options,
        lambda report: click.echo(_summary(report)),
        force=force,
        **export_options,
    )
    click.echo(describe_build(built))


def _check_engine_prerequisites(engine: EngineRequest, precision: str, force: bool) -> None:
    """Fail before the (long) export when the engine cannot be built here: its destination,
    the runtime, its targets (at the graph's precision) and timing cache, and the plugin
    library the trt target's custom nodes need."""
    from harmony.engines.trt_env import import_runtime, plugin_library

    import_runtime(engine.options.check(engine.path, force, precision))
    plugin_library()


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
