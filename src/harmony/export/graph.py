"""Trace the harmonization pipeline of a model into an ONNX graph for one target.

The traced module is `HarmonizationPipeline(model)` (AICT: resize to 256 inside, LUT at full
resolution; HDNet: pad to multiples of 8 inside, crop back). It is captured once with
`torch.export` (dynamic batch/height/width), where the fused ops stay single custom-op nodes
unless the target's lowering (`harmony.export.lowering`) decomposes them into standard operators
during the capture; `torch.onnx.export` then translates the program, the remaining custom ops
into the contract's custom nodes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import onnx
import torch
from torch import nn

from harmony.contract import (
    DEFAULT_OPSET,
    GRAPH_INPUTS,
    GRAPH_OUTPUT,
    MIN_SIDE,
    NAME_SCOPES_KEY,
    OPSET_RANGE,
    PRECISIONS,
    TARGETS,
)
from harmony.export.lowering import LUT_FORMULATIONS, lowering_for
from harmony.export.precision import fp16_copy
from harmony.models.pipeline import HarmonizationPipeline
from harmony.quiet import silenced

# The floating-point precision under each graph precision: an int8 graph is the fp16 graph with
# Q/DQ nodes on its weighted layers (`harmony.calibration`), INT8 + FP16 as TensorRT users run it.
FLOAT_PRECISION = {"fp32": "fp32", "fp16": "fp16", "int8": "fp16"}

# Size of the example inputs used for tracing (any size works: H and W are dynamic).
_EXAMPLE_HW = (256, 320)
_DYNAMIC_EXAMPLE_BATCH = 2
_MAX_SIDE = 16384
_MAX_BATCH = 1024


@dataclass(frozen=True)
class GraphOptions:
    """What to export: target ("trt"/"ort"), precision ("fp32"/"fp16"/"int8": the floating-point
    graph `FLOAT_PRECISION` names, which `harmony.calibration` quantizes), float16 I/O, opset,
    batch (an int for a fixed batch, None for a dynamic one) and, for the ORT target, the LUT
    formulation ("separable" or "gridsample")."""

    target: str = "trt"
    precision: str = "fp32"
    io_fp16: bool = False
    opset: int = DEFAULT_OPSET
    batch: int | None = None
    lut_formulation: str = "separable"

    def validate(self) -> GraphOptions:
        """Return self, or raise ValueError naming the bad option and the allowed values."""
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not OPSET_RANGE[0] <= self.opset <= OPSET_RANGE[1]:
            raise ValueError(
                f"opset must be in [{OPSET_RANGE[0]}, {OPSET_RANGE[1]}], got {self.opset}"
            )
        if self.batch is not None and self.batch < 1:
            raise ValueError(f"batch must be a positive integer or dynamic, got {self.batch}")
        if self.lut_formulation not in LUT_FORMULATIONS:
            raise ValueError(f"lut_formulation must be one of {tuple(LUT_FORMULATIONS)}")
        if self.lut_formulation == "gridsample" and self.opset < 20:
            raise ValueError("5-D GridSample needs opset >= 20")
        return self


class _IoCast(nn.Module):
    """Float16 graph inputs/outputs around a float32-interfaced pipeline (--io-fp16)."""

    def __init__(self, pipeline: nn.Module):
        super().__init__()
        self.pipeline = pipeline

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pipeline(image.float(), mask.float()).half()


def traced_module(model: nn.Module, options: GraphOptions) -> nn.Module:
    """The module that gets traced: the pipeline around `model` in the requested precision."""
    if FLOAT_PRECISION[options.precision] == "fp16":
        model = fp16_copy(model)
    pipeline = HarmonizationPipeline(model).eval()
    return _IoCast(pipeline) if options.io_fp16 else pipeline


def onnx_from_model(model: nn.Module, options: GraphOptions) -> onnx.ModelProto:
    """Export the harmonization pipeline of an AICT/HDNet `model` to an in-memory ONNX model.

    Inputs `image` [B,3,H,W] and `mask` [B,1,H,W], output `harmonized` [B,3,H,W], float32
    (float16 with `options.io_fp16`); H and W dynamic, B dynamic unless `options.batch` is set.
    No metadata is added here (see `harmony.export.metadata`).
    """
    options = options.validate()
    module = traced_module(model, options)
    batch = _DYNAMIC_EXAMPLE_BATCH if options.batch is None else options.batch
    io_dtype = torch.float16 if options.io_fp16 else torch.float32
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, *_EXAMPLE_HW, generator=generator).to(io_dtype)
    mask = (torch.rand(batch, 1, *_EXAMPLE_HW, generator=generator) > 0.5).to(io_dtype)
    height = torch.export.Dim("height", min=MIN_SIDE, max=_MAX_SIDE)
    width = torch.export.Dim("width", min=MIN_SIDE, max=_MAX_SIDE)
    dims = {2: height, 3: width}
    if options.batch is None:
        dims[0] = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    lowering = lowering_for(options.target, options.lut_formulation)
    dynamic_shapes = {name: dict(dims) for name in GRAPH_INPUTS}
    with silenced("torch.onnx"):  # the exporter's progress prints and warnings
        # Captured as torch.onnx.export captures a module itself (its non-strict strategy): size
        # checks against 0/1 become runtime asserts instead of guards that would pin H and W.
        with lowering.capture(), torch.fx.experimental._config.patch(backed_size_oblivious=True):
            program = torch.export.export(
                module,
                (image, mask),
                dynamic_shapes=dynamic_shapes,
                strict=False,
                prefer_deferred_runtime_asserts_over_guards=True,
            )
        onnx_program = torch.onnx.export(
            program,
            dynamo=True,
            input_names=list(GRAPH_INPUTS),
            output_names=[GRAPH_OUTPUT],
            opset_version=options.opset,
            dynamic_shapes=dynamic_shapes,  # names the graph's dynamic axes batch/height/width
            custom_translation_table=lowering.translations,
            optimize=True,
            verbose=False,
        )
    buffer = io.BytesIO()
    onnx_program.save(buffer)
    proto = onnx.load_from_string(buffer.getvalue())
    _strip_export_noise(proto)
    return proto


def _strip_export_noise(proto: onnx.ModelProto) -> None:
    """Drop the exporter's per-value provenance metadata (large, not part of the contract),
    keeping each node's module scopes, by which `harmony.profiling.macs` splits MACs by stage."""
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        del value.metadata_props[:]
    for node in proto.graph.node:
        scopes = [p for p in node.metadata_props if p.key == NAME_SCOPES_KEY]
        del node.metadata_props[:]
        node.metadata_props.extend(scopes)
