"""`onnx_from_checkpoint`: a checkpoint -> a validated ONNX graph, written only once it passed.

    from harmony.export.exporter import onnx_from_checkpoint
    report = onnx_from_checkpoint("hdnet.pth", target="trt", precision="fp16")
    report = onnx_from_checkpoint("aict.pth", precision="int8")  # INT8 + FP16, calibrated, gated

The graph is written to a temporary file next to the output, checked (ONNX checker, shape
inference, parity with the PyTorch pipeline on demo composites; the custom nodes of
TensorRT-target graphs computed by the plugins' math: libharmony_ort_ops.so in one ONNX Runtime
session, or the plugins' CPU build between ORT segments) and only then renamed into place; a
failed check leaves no file. INT8 graphs (`harmony.calibration`) are also gated in
harmonization terms (`verify.INT8_MIN_PSNR_DB`, `verify.INT8_MIN_GAIN_KEPT`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from harmony.calibration import CalibrationSettings
from harmony.calibration.quantize import check_custom_ops
from harmony.contract import DEFAULT_OPSET, QUALITY_CHECK_IMAGES, check_precision
from harmony.data.demo import HELD_OUT_COUNT
from harmony.errors import HarmonyError
from harmony.export.graph import FLOAT_PRECISION, GraphOptions, onnx_from_model
from harmony.export.metadata import export_metadata, set_metadata
from harmony.export.reference import verification_runner
from harmony.export.verify import (
    DEFAULT_SIZES,
    Parity,
    check_gain_kept,
    check_graph,
    check_parity,
    graph_held_out_quality,
    min_psnr_db,
    parity,
)
from harmony.files import (
    atomic_output,
    check_free_space,
    check_not_an_input,
    check_writable,
    sha256_file,
)
from harmony.memory_model import GIB, estimated_peak_bytes
from harmony.models import load_checkpoint
from harmony.models.checkpoint import weights_label
from harmony.plugins.ort import custom_ops_implementation

# Held-out composites a fitted export is scored on: a few for fp32/fp16 (a check beside parity),
# the whole held-out set for int8, whose gate is the share of the FP32 gain it keeps.
QUALITY_IMAGES = {
    "fp32": QUALITY_CHECK_IMAGES,
    "fp16": QUALITY_CHECK_IMAGES,
    "int8": HELD_OUT_COUNT,
}


@dataclass
class ExportReport:
    """What `onnx_from_checkpoint` wrote and how it checked out."""

    path: Path
    arch: str
    target: str
    precision: str
    io_dtype: str
    opset: int
    batch: str
    node_counts: dict[str, int]
    file_bytes: int
    parity: list[Parity] = field(default_factory=list)
    min_psnr_db: float | None = None
    # What computed the custom nodes in the parity run (None: no custom nodes): the plugins'
    # math (`export.reference.verification_runner`), independent of the `harmony.ops` reference
    # that the PyTorch side of the comparison runs.
    custom_nodes_verified_with: str | None = None
    weights: str = ""  # how the checkpoint's weights were made (`weights_label`)
    # Held-out harmonization quality of graph and PyTorch (`verify.graph_held_out_quality`); only
    # for fitted checkpoints: the quality of random weights means nothing.
    quality: dict | None = None
    # int8: the INT8 layers ({"node", "op_type", "module"}), the calibration (source, method,
    # count, size, sha256) and the share of the FP32 held-out PSNR gain kept (fitted weights).
    int8_layers: list[dict] | None = None
    calibration: dict | None = None
    gain_kept: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.parity)


# Bytes per parameter of a written graph: float32, float16, and INT8 weights with float16 in
# places (measured: AICT 19.9/10.0/5.2 MiB for 5.2 M parameters, HDNet-lite 2.6/1.4/0.8 MiB,
# benchmarks/results/int8.md), with room for what is not a weight.
GRAPH_BYTES_PER_PARAM = {"fp32": 4.5, "fp16": 2.5, "int8": 2.5}
GRAPH_OVERHEAD_BYTES = 4 << 20


def expected_graph_bytes(params: int, precision: str) -> int:
    """An upper bound of the size of the graph of a network with `params` parameters."""
    return int(params * GRAPH_BYTES_PER_PARAM[precision]) + GRAPH_OVERHEAD_BYTES


def default_output_path(checkpoint: str | os.PathLike, target: str, precision: str) -> Path:
    """`<checkpoint dir>/<checkpoint stem>.<target>.<precision>.onnx`."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.{target}.{precision}.onnx")


def ort_knn_warning(arch: str, target: str) -> str | None:
    """The memory warning of ORT-target HDNet graphs (None for other exports)."""
    if target != "ort" or not arch.startswith("hdnet"):
        return None
    sizes = ", ".join(
        f"{estimated_peak_bytes('ort', arch, side, side) / GIB:.0f} GiB at {side}x{side}"
        for side in (1024, 1448, 2048)
    )
    return (
        "the ORT-target HDNet graph materialises LocalDynamics' N x N similarity (N = H*W/64, "
        f"float32): ONNX Runtime needs about {sizes} per image (benchmarks/results/"
        "memory_model.md); harmony-run and harmony-bench refuse sizes that do not fit the memory "
        "available. For high resolutions use --target trt (streamed top-k plugin) or the torch "
        "backend"
    )


def onnx_from_checkpoint(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    arch: str | None = None,
    target: str = "trt",
    precision: str = "fp32",
    calibration: CalibrationSettings | None = None,
    io_fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    batch: int | None = None,
    force: bool = False,
    verify: bool = True,
    verify_sizes=DEFAULT_SIZES,
    lut_formulation: str = "separable",
) -> ExportReport:
    """Export a checkpoint's harmonization pipeline to a checked ONNX file.

    Args:
        checkpoint: AICT/HDNet checkpoint (.pth/.pt/.safetensors).
        output: destination; None (default) writes `default_output_path(...)`.
        arch: "aict", "hdnet", "hdnet-lite"; None (default) detects it from the checkpoint.
        target: "trt" (default; custom nodes CascadedLut3D/KnnTopkFusion) or "ort" (standard ops).
        precision: "fp32" (default); "fp16": float16 weights and compute with float32 islands;
            "int8": INT8 convolutions and weight matrix products (explicit Q/DQ), FP16
            elsewhere, calibrated with `calibration` (default `CalibrationSettings()`: 8 demo
            composites of the fit photographs at 1024x1024, min-max ranges).
        io_fp16: float16 graph inputs/outputs (default False: float32).
        opset: ONNX opset, default 20.
        batch: fixed batch size; None (default) makes the batch dynamic.
        force: replace an existing output (default False: refuse).
        verify: run the checker, shape inference and parity (default True).
        verify_sizes: (H, W) of the parity inputs, default 512x512 and 375x500.
        lut_formulation: ORT target's LUT lookup, "separable" (default) or "gridsample".
    Returns:
        An `ExportReport`.
    Raises:
        HarmonyError: bad options, unreadable checkpoint, wrong arch, existing output without
            `force`, or a failed verification (`VerificationError`); no file is left behind.
    """
    checkpoint = Path(checkpoint)
    precision = check_precision(precision, "the export")
    int8 = precision == "int8"
    if calibration is not None and not int8:
        raise HarmonyError("calibration settings need an int8 export")
    options = GraphOptions(target, precision, io_fp16, opset, batch, lut_formulation)
    try:
        options.validate()
    except ValueError as exc:
        raise HarmonyError(str(exc)) from None
    output = default_output_path(checkpoint, target, precision) if output is None else Path(output)
    if output.suffix != ".onnx":
        raise HarmonyError(f"the output must be a .onnx file, got {output}")
    check_not_an_input(output, {"checkpoint": checkpoint})
    check_writable(output, force)  # before the export, not after it
    if target == "trt":
        _check_custom_ops(int8, verify)
    model = load_checkpoint(checkpoint, arch)
    params = sum(p.numel() for p in model.parameters())
    check_free_space(output, expected_graph_bytes(params, precision))
    weights = weights_label(model.checkpoint.metadata)
    io_dtype = "float16" if io_fp16 else "float32"
    extra = {
        "opset": opset,
        "batch": "dynamic" if batch is None else batch,
        "params": params,
        "weights": weights,
    }
    if int8:
        from harmony.calibration import calibration_set

        settings = (calibration or CalibrationSettings()).validate()
        inputs = calibration_set(settings)  # reads a folder before the long trace
    proto = onnx_from_model(model, options)
    if int8:
        from harmony.calibration import quantized_graph

        proto, layers = quantized_graph(proto, inputs, settings.method, model.int8_float_modules)
        int8_layers = [layer.as_dict() for layer in layers]
        calibrated = {
            "source": inputs.source,
            "method": settings.method,
            "count": settings.count,
            "size": f"{settings.size[0]}x{settings.size[1]}",
            "sha256": inputs.sha256,
        }
        extra.update(
            float_precision=FLOAT_PRECISION[precision],
            int8_layers=json.dumps(int8_layers),
            calibration=json.dumps(calibrated),
        )
    set_metadata(
        proto,
        export_metadata(
            model.arch,
            sha256_file(checkpoint),
            target,
            precision,
            io_dtype,
            extra=extra,
        ),
    )
    report = ExportReport(
        path=output,
        arch=model.arch,
        target=target,
        precision=precision,
        io_dtype=io_dtype,
        opset=opset,
        batch="dynamic" if batch is None else str(batch),
        node_counts=_node_counts(proto),
        file_bytes=0,
        weights=weights,
    )
    if int8:
        report.int8_layers, report.calibration = int8_layers, calibrated
    warning = ort_knn_warning(model.arch, target)
    if warning:
        report.warnings.append(warning)
    if model.checkpoint.metadata.get("random_init"):
        report.warnings.append("the checkpoint holds RANDOM weights (made by `harmony init`)")
    with atomic_output(output, force) as tmp:
        onnx.save_model(proto, tmp)
        del proto
        report.file_bytes = os.path.getsize(tmp)
        if verify:
            runner, report.custom_nodes_verified_with = verification_runner(tmp, check_graph(tmp))
            report.parity = parity(model, runner, verify_sizes, batch or 1, io_fp16)
            report.min_psnr_db = min_psnr_db(precision, model.arch)
            check_parity(report.parity, precision, model.arch)
            if model.checkpoint.metadata.get("fitted"):
                label = f"onnx {precision}"
                report.quality = graph_held_out_quality(
                    model, runner, label, io_fp16, batch or 1, QUALITY_IMAGES[precision]
                )
                if int8:
                    report.gain_kept = check_gain_kept(report.quality, label)
    return report


def _check_custom_ops(int8: bool, verify: bool) -> None:
    """Before any work: the custom nodes of a TensorRT-target graph can be computed here where
    the calibration or the verification runs them (`harmony.plugins.ort`)."""
    if int8:
        check_custom_ops()
    elif verify:
        try:
            custom_ops_implementation()
        except HarmonyError as exc:
            raise HarmonyError(
                "verifying a TensorRT-target graph runs its custom nodes in ONNX Runtime: "
                f"{exc}; or export without verification (--no-verify)"
            ) from None


def _node_counts(proto: onnx.ModelProto) -> dict[str, int]:
    counts = Counter(
        f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        for node in proto.graph.node
    )
    return dict(counts.most_common())


__all__ = ["ExportReport", "default_output_path", "onnx_from_checkpoint", "ort_knn_warning"]
