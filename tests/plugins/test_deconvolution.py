"""Stride-1 transposed convolutions as convolutions (ONNX Runtime's CPU sessions): the rewrite
takes exactly the ones it may and keeps their outputs."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from harmony.plugins.deconvolution import stride_one_convolutions

C_IN, C_OUT, SIDE = 6, 4, 9


def _deconvolution(kernel=3, weight_constant=True, bias=True, **attributes) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((C_IN, C_OUT, kernel, kernel), dtype=np.float32)
    initializers = [numpy_helper.from_array(weight, "w")] if weight_constant else []
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C_IN, SIDE, SIDE])]
    if not weight_constant:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(weight.shape)))
    names = ["x", "w"]
    if bias:
        initializers.append(numpy_helper.from_array(rng.standard_normal(C_OUT, np.float32), "b"))
        names.append("b")
    node = helper.make_node("ConvTranspose", names, ["y"], "deconvolution", **attributes)
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", inputs, [output], initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _run(model: onnx.ModelProto) -> np.ndarray:
    x = np.random.default_rng(1).standard_normal((1, C_IN, SIDE, SIDE), dtype=np.float32)
    session = onnxruntime.InferenceSession(model.SerializeToString())
    return session.run(["y"], {"x": x})[0]


@pytest.mark.parametrize(
    "attributes",
    [
        {"pads": [1, 1, 1, 1]},
        {"pads": [0, 1, 2, 0], "strides": [1, 1], "dilations": [1, 1]},
        {},  # no pads: the output grows by kernel - 1
        {"kernel": 1, "bias": False},
    ],
)
def test_a_stride_one_deconvolution_becomes_the_equal_convolution(attributes):
    model = _deconvolution(**attributes)
    expected = _run(model)
    assert stride_one_convolutions(model) == 1
    assert [node.op_type for node in model.graph.node] == ["Conv"]
    assert [tensor.name for tensor in model.graph.initializer if tensor.name == "w"] == []
    actual = _run(model)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("model", "why"),
    [
        (_deconvolution(kernel=4, strides=[2, 2], pads=[1, 1, 1, 1]), "strided"),
        (_deconvolution(dilations=[2, 2]), "dilated"),
        (_deconvolution(output_padding=[0, 0], output_shape=[11, 11]), "output shape given"),
        (_deconvolution(weight_constant=False), "the weight is an input"),
        (_deconvolution(auto_pad="SAME_UPPER"), "automatic padding"),
        (_deconvolution(pads=[3, 3, 3, 3]), "pads beyond the kernel"),
    ],
)
def test_other_deconvolutions_are_left_alone(model, why):
    before = model.SerializeToString()
    assert stride_one_convolutions(model) == 0, why
    assert model.SerializeToString() == before


def test_every_stride_one_deconvolution_of_hdnet_lite_is_rewritten(exported):
    _, model = exported("hdnet-lite", "ort", "fp32")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    stride_one = [
        node
        for node in model.graph.node
        if node.op_type == "ConvTranspose"
        and all(a.ints == [1, 1] for a in node.attribute if a.name == "strides")
    ]
    assert stride_one and stride_one_convolutions(copy) == len(stride_one)
    left = [node.op_type for node in copy.graph.node].count("ConvTranspose")
    assert left == [node.op_type for node in model.graph.node].count("ConvTranspose") - len(
        stride_one
    )
