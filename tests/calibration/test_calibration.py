"""INT8 calibration inputs and the Q/DQ graph rewrite, on small inputs and a hand-made graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harmony.calibration import CalibrationSettings, calibration_set, quantized_graph
from harmony.calibration.quantize import weighted_layers
from harmony.contract import NAME_SCOPES_KEY
from harmony.data import make_demo_dataset
from harmony.errors import HarmonyError
from harmony.export.verify import VerificationError, check_gain_kept, gain_kept


def test_calibration_inputs_are_deterministic_for_a_seed(tmp_path):
    settings = CalibrationSettings(count=2, size=(48, 64))
    first, again = calibration_set(settings), calibration_set(settings)
    assert first.sha256 == again.sha256 and len(first.feeds) == 2
    assert first.feeds[0]["image"].shape == (1, 3, 48, 64)
    assert first.feeds[0]["mask"].shape == (1, 1, 48, 64)
    assert "coffee" in first.source and "astronaut" not in first.source  # fit photos only
    other = calibration_set(CalibrationSettings(count=2, size=(48, 64), seed=1))
    assert other.sha256 != first.sha256

    make_demo_dataset(tmp_path, count=5, size=(40, 56))
    folder = CalibrationSettings(folder=tmp_path, count=3, size=(32, 32), seed=4)
    picked = calibration_set(folder)
    assert picked.sha256 == calibration_set(folder).sha256
    assert picked.feeds[2]["image"].shape == (1, 3, 32, 32)
    assert calibration_set(CalibrationSettings(tmp_path, 3, (32, 32), seed=5)).sha256 != (
        picked.sha256
    )
    with pytest.raises(HarmonyError, match=r"holds 5 composites; calibration needs 6"):
        calibration_set(CalibrationSettings(folder=tmp_path, count=6, size=(32, 32)))
    with pytest.raises(HarmonyError, match=r"method must be one of minmax, percentile"):
        calibration_set(CalibrationSettings(method="mse"))


def _scoped(node, module):
    node.metadata_props.add(key=NAME_SCOPES_KEY, value=repr(["", "model", f"model.{module}"]))
    return node


def _toy_graph() -> onnx.ModelProto:
    """x -> conv_a (model.first) -> relu -> [conv_b (model.body), Concat with relu] -> out,
    plus a MatMul of two activations: conv_a is left floating by `float_modules`."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "wa"),
        numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), "wb"),
    ]
    nodes = [
        _scoped(helper.make_node("Conv", ["x", "wa"], ["a"], "conv_a", pads=[1] * 4), "first"),
        helper.make_node("Relu", ["a"], ["r"], "relu"),
        _scoped(helper.make_node("Conv", ["r", "wb"], ["b"], "conv_b", pads=[1] * 4), "body.1"),
        helper.make_node("Concat", ["r", "b"], ["c"], "concat", axis=1),
        helper.make_node("Transpose", ["c"], ["t"], "transpose", perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["c", "t"], ["out"], "scores"),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 6, 6])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    return onnx.shape_inference.infer_shapes(model)


class _Inputs:
    def __init__(self, count):
        rng = np.random.default_rng(1)
        self.feeds = [{"x": rng.standard_normal((1, 2, 6, 6)).astype(np.float32)}] * count
        self.sha256 = f"toy-{count}"


def test_qdq_on_the_inputs_of_weighted_layers_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path))
    model = _toy_graph()
    assert [n.name for n in weighted_layers(model)] == ["conv_a", "conv_b"]  # not "scores"
    assert [n.name for n in weighted_layers(model, ("first",))] == ["conv_b"]
    assert [n.name for n in weighted_layers(model, ("body",))] == ["conv_a"]  # body.1 inside

    quantized, layers = quantized_graph(model, _Inputs(2), float_modules=("first",))
    assert [(layer.node, layer.module) for layer in layers] == [("conv_b", "body.1")]
    producers = {out: node for node in quantized.graph.node for out in node.output}
    nodes = {node.name: node for node in quantized.graph.node}
    initializers = {t.name: numpy_helper.to_array(t) for t in quantized.graph.initializer}
    # conv_b reads a dequantized activation and dequantized INT8 weights, per output channel.
    activation, weight = (producers[name] for name in nodes["conv_b"].input[:2])
    assert activation.op_type == weight.op_type == "DequantizeLinear"
    assert initializers[weight.input[0]].dtype == np.int8
    assert initializers[weight.input[1]].shape == (4,)
    # Every zero point is 0 (symmetric: TensorRT refuses others).
    for node in quantized.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            assert not np.any(initializers[node.input[2]])
    # The floating-point layers and the Concat of the skip read the float tensor.
    for name in ("conv_a", "concat", "scores"):
        assert all(
            producers.get(i) is None or producers[i].op_type != "DequantizeLinear"
            for i in nodes[name].input
        ), name
    assert nodes["concat"].input[0] == "r"
    # Cached ranges: a second quantization of the same inputs gives the same graph.
    assert quantized_graph(model, _Inputs(2), float_modules=("first",))[0] == quantized


def test_the_gain_kept_gate():
    quality = {
        "means": {
            "composite": {"psnr": 30.0, "fmse": 500.0},
            "torch fp32": {"psnr": 34.0, "fmse": 200.0},
            "onnx int8": {"psnr": 33.0, "fmse": 250.0},
        }
    }
    assert gain_kept(quality, "onnx int8") == pytest.approx(0.75)
    with pytest.raises(VerificationError, match=r"keep >= 80% .* kept 75%"):
        check_gain_kept(quality, "onnx int8")
    quality["means"]["onnx int8"]["psnr"] = 33.5
    assert check_gain_kept(quality, "onnx int8") == pytest.approx(0.875)
