"""Explicit Q/DQ quantization of an exported graph with ONNX Runtime's static QDQ quantizer.

`quantized_graph(proto, calibration)` turns a floating-point export (the FP16 graph with its
FP32 islands: INT8 + FP16, the way TensorRT users run INT8) into the graph TensorRT 11 and
TensorRT-RTX build INT8 layers from:

- **what is quantized**: `weighted_layers`, the convolutions, transposed convolutions, Gemms and
  the matrix products whose second input is a weight (the ViT's linear layers), except the
  modules a network lists in `int8_float_modules` (HDNet's image-facing first and last layers).
  Products of two activations (attention scores and attention x values, HDNet's dynamic-kernel
  bmm) keep floating point, and so does everything else: the interval softmax and cumsum, LayerNorm,
  attention softmax, InstanceNorm/RAIN statistics, the custom nodes and the blend;
- **how**, by TensorRT's explicit-quantization rules: symmetric INT8 (zero points 0, which the
  parser requires), per-channel weight scales on the output-channel axis (Conv 0,
  ConvTranspose 1, MatMul 1), per-tensor activation scales, Q/DQ on the inputs of a quantized
  layer only (its output stays floating point), the bias kept floating point (TensorRT-RTX's
  parser refuses an INT32 bias DQ), one Q/DQ pair per consumer;
- **then** every consumer of a DQ output that is not a quantized layer (a skip connection's
  Concat) is given the floating-point tensor back, so no floating-point island reads
  quantized values.

Why ONNX Runtime's quantizer and not Model Optimizer's ONNX PTQ: Model Optimizer calibrates
graphs with custom nodes only through the TensorRT execution provider (TensorRT, a GPU and
onnxruntime-gpu), and its ONNX extra pins onnx and onnxruntime-gpu versions this project does
not run; it applies ONNX Runtime's `quantize_static` with the TensorRT settings above anyway.
Here calibration runs the graph in ONNX Runtime on the CPU with the custom nodes computed by
`harmony.plugins.ort` (libharmony_ort_ops.so, or onnxruntime-extensions with
libharmony_cpu_ops.so: `_Calibration`), and the ranges are cached by content hash
(`cache_dir("calibration")`: float graph, calibration inputs, method and layers).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from harmony.calibration.data import CalibrationSet
from harmony.contract import ONNX_DOMAIN, network_module
from harmony.errors import HarmonyError
from harmony.files import cache_dir, write_bytes_atomic
from harmony.plugins.ort import custom_ops_implementation, inference_session
from harmony.quiet import silenced

QUANTIZED_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
QUANTIZER_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "DedicatedQDQPair": True,
    "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OP_TYPES),
    "QDQOpTypePerChannelSupportToAxis": {"Conv": 0, "ConvTranspose": 1, "MatMul": 1},
}


@dataclass(frozen=True)
class QuantizedLayer:
    """One INT8 layer: its node name, op type and module (the PyTorch scope it came from)."""

    node: str
    op_type: str
    module: str

    def as_dict(self) -> dict[str, str]:
        return {"node": self.node, "op_type": self.op_type, "module": self.module}


def weighted_layers(
    model: onnx.ModelProto, float_modules: tuple[str, ...] = ()
) -> list[onnx.NodeProto]:
    """The nodes to quantize: Conv, ConvTranspose and Gemm, and MatMuls whose second input is a
    weight (an initializer, or a Cast of one), except those of `float_modules` (child modules
    of the network, e.g. "model_out", and everything inside them)."""
    constants = {tensor.name for tensor in model.graph.initializer}
    casts = {node.output[0]: node.input[0] for node in model.graph.node if node.op_type == "Cast"}

    def is_weight(name: str) -> bool:
        return name in constants or casts.get(name) in constants

    return [
        node
        for node in model.graph.node
        if node.domain == ""
        and node.op_type in QUANTIZED_OP_TYPES
        and (node.op_type != "MatMul" or is_weight(node.input[1]))
        and not any(
            module_of(node) == name or module_of(node).startswith(name + ".")
            for name in float_modules
        )
    ]


def module_of(node: onnx.NodeProto) -> str:
    """The network module a node came from (`contract.network_module`; "" where none)."""
    return network_module(node) or ""


def quantized_graph(
    model: onnx.ModelProto,
    calibration: CalibrationSet,
    method: str = "minmax",
    float_modules: tuple[str, ...] = (),
) -> tuple[onnx.ModelProto, list[QuantizedLayer]]:
    """The Q/DQ graph of `model` (see the module docstring) and its INT8 layers; the layers of
    `float_modules` (the network's `int8_float_modules`) stay floating point.

    Raises:
        HarmonyError: the graph has custom nodes and nothing computes them here
            (`check_custom_ops`), or
            calibration fails in ONNX Runtime.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    layers = weighted_layers(model, float_modules)
    custom_ops = any(node.domain == ONNX_DOMAIN for node in model.graph.node)
    if custom_ops:
        check_custom_ops()
    cache = _range_cache(model, calibration, method, layers)
    with tempfile.TemporaryDirectory(prefix="harmony-int8-") as work:
        source, target, ranges = (Path(work) / name for name in ("float.onnx", "q.onnx", "r"))
        onnx.save_model(model, source)
        if cache.is_file():
            ranges.write_bytes(cache.read_bytes())
        with _Calibration(custom_ops), silenced(""):  # the quantizer logs to the root logger
            try:
                quantize_static(
                    source,
                    target,
                    _Reader(_graph_feeds(model, calibration.feeds)),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, _METHODS[method]),
                    op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                    nodes_to_quantize=[node.name for node in layers],
                    extra_options=dict(QUANTIZER_OPTIONS),
                    calibration_cache_path=ranges,
                )
            except HarmonyError:
                raise
            except Exception as exc:  # ONNX Runtime's and numpy's own types
                raise HarmonyError(f"INT8 calibration failed: {exc}") from exc
        if not cache.is_file():
            write_bytes_atomic(cache, ranges.read_bytes(), force=True)
        quantized = onnx.load(target)
    _scales_in_tensor_types(quantized)
    _float_inputs_for_float_nodes(quantized, {node.name for node in layers})
    return quantized, [QuantizedLayer(n.name, n.op_type, module_of(n)) for n in layers]


def check_custom_ops() -> str:
    """What computes the custom nodes while a TensorRT-target graph is calibrated
    (`harmony.plugins.ort.custom_ops_implementation`).

    Raises:
        HarmonyError: nothing can compute them here (what each way needs is named).
    """
    try:
        return custom_ops_implementation()
    except HarmonyError as exc:
        raise HarmonyError(
            f"INT8 calibration runs the graph's custom nodes in ONNX Runtime: {exc}"
        ) from None


def _range_cache(model, calibration: CalibrationSet, method: str, layers) -> Path:
    """Where the calibrated ranges of this graph, input set, method and layer list live."""
    digest = hashlib.sha256(model.SerializeToString(deterministic=True))
    for part in (calibration.sha256, method, ",".join(node.name for node in layers)):
        digest.update(part.encode())
    return cache_dir("calibration") / f"{digest.hexdigest()[:32]}.json"


def _scales_in_tensor_types(model: onnx.ModelProto) -> None:
    """Give every activation scale the type of the tensor it quantizes (in place): the quantizer
    types scales like the calibrated ranges, float32 here, while the graph's tensors are float16
    outside its FP32 islands, and QuantizeLinear needs both alike."""
    types = {
        value.name: value.type.tensor_type.elem_type
        for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]
    }
    types.update((tensor.name, tensor.data_type) for tensor in model.graph.initializer)
    scales = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[1] not in scales:
            continue
        scale, wanted = scales[node.input[1]], types.get(node.input[0])
        if wanted is not None and scale.data_type != wanted:
            values = numpy_helper.to_array(scale).astype(helper.tensor_dtype_to_np_dtype(wanted))
            scale.CopyFrom(numpy_helper.from_array(values, scale.name))


def _float_inputs_for_float_nodes(model: onnx.ModelProto, quantized: set[str]) -> None:
    """Rewire every consumer of a DequantizeLinear output that is neither a quantized layer nor
    a Q/DQ node to the tensor that was quantized (in place)."""
    producers = {output: node for node in model.graph.node for output in node.output}
    for node in model.graph.node:
        if node.name in quantized or node.op_type in _QDQ_OPS:
            continue
        for index, name in enumerate(node.input):
            dequantize = producers.get(name)
            if dequantize is None or dequantize.op_type != "DequantizeLinear":
                continue
            quantize = producers.get(dequantize.input[0])
            if quantize is not None and quantize.op_type == "QuantizeLinear":
                node.input[index] = quantize.input[0]


def _graph_feeds(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]):
    """`feeds` in the graph's input dtypes (float16 I/O), repeated to a fixed batch."""
    for feed in feeds:
        graph_feed = {}
        for value in model.graph.input:
            tensor_type = value.type.tensor_type
            array = feed[value.name].astype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
            batch = tensor_type.shape.dim[0].dim_value  # 0: dynamic
            graph_feed[value.name] = np.repeat(array, batch, axis=0) if batch > 1 else array
        yield graph_feed


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds):
        self._feeds = feeds

    def get_next(self):
        return next(self._feeds, None)


class _Float32Outputs:
    """A calibration session whose outputs are float32 (the histogram calibrators cannot bin
    float16 activations of narrow range)."""

    def __init__(self, session):
        self._session = session

    def __getattr__(self, name):
        return getattr(self._session, name)

    def run(self, *args, **kwargs):
        return [
            output.astype(np.float32) if output.dtype == np.float16 else output
            for output in self._session.run(*args, **kwargs)
        ]


class _Calibration(contextlib.AbstractContextManager):
    """While active, ONNX Runtime's calibrators open their session with `harmony.plugins.ort`
    (the custom nodes computed where the graph has them) and get float32 outputs: the
    quantizer has no hook for either, so its session factory is replaced for the duration."""

    def __init__(self, custom_ops: bool):
        self.custom_ops = custom_ops

    def __enter__(self):
        from onnxruntime.quantization import calibrate

        custom_ops = self.custom_ops

        def create_inference_session(calibrator):
            session = inference_session(
                os.fspath(calibrator.augmented_model_path), custom_ops=custom_ops, low_memory=True
            )
            calibrator.infer_session = _Float32Outputs(session)

        self._original = calibrate.CalibraterBase.create_inference_session
        calibrate.CalibraterBase.create_inference_session = create_inference_session
        return self

    def __exit__(self, *exc):
        from onnxruntime.quantization import calibrate

        calibrate.CalibraterBase.create_inference_session = self._original
        return False
