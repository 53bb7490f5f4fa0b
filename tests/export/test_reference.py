"""The CPU executors of TensorRT-target graphs: split ORT runner and ReferenceEvaluator, with
the custom nodes computed by the plugins' CPU library or by harmony.ops, and the whole graph in
one ONNX Runtime session with the custom nodes computed by the plugins' math."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from harmony import harmonize, ops
from harmony.contract import (
    CASCADED_LUT,
    GRAPH_INPUTS,
    KNN_TOPK_FUSION,
    ONNX_DOMAIN,
    ONNX_DOMAIN_VERSION,
    PLUGIN_VERSION_ATTR,
)
from harmony.custom_nodes import plugin_attributes
from harmony.export.reference import (
    SessionRunner,
    SplitOrtRunner,
    reference_evaluator,
    verification_runner,
)
from harmony.plugins import cpu
from harmony.plugins.ort import ORT_OPS
from tests.helpers import blob_mask

pytestmark = pytest.mark.usefixtures("cpu_ops_dir")


def _single_node_model(contract, shapes: dict[str, list], **attributes) -> onnx.ModelProto:
    """Relu -> custom node -> Relu: the runner must split around the custom node."""
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    first = contract.inputs[0]
    nodes = [
        helper.make_node("Identity", [first], ["pre"]),
        helper.make_node(
            contract.name,
            ["pre", *contract.inputs[1:]],
            ["custom"],
            domain=ONNX_DOMAIN,
            **plugin_attributes(),
            **attributes,
        ),
        helper.make_node("Identity", ["custom"], ["out"]),
    ]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", "c", "h", "w"])
    graph = helper.make_graph(nodes, "single", inputs, [out])
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid(ONNX_DOMAIN, ONNX_DOMAIN_VERSION)]
    return helper.make_model(graph, opset_imports=opsets)


def _lut_inputs(rng):
    image = torch.rand(2, 3, 37, 53, generator=rng)
    mask = blob_mask(37, 53, batch=2, soft=True)
    logits = torch.randn(2, 3, 8, 7, 5, generator=rng) * 2
    knots = F.pad(torch.softmax(logits, dim=2).cumsum(2), (0, 0, 0, 0, 1, 0))
    curve = torch.rand(2, 3, 8, 7, 5, generator=rng) * 1.4 - 0.2
    return {"image": image, "mask": mask, "knots": knots, "curve": curve}


# Each implementation computes a custom node exactly as its own function does.
IMPLEMENTATIONS = {"plugin": lambda: cpu, "reference": lambda: ops}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_cascaded_lut_node_on_both_cpu_runners(rng, implementation):
    inputs = _lut_inputs(rng)
    model = _single_node_model(CASCADED_LUT, {k: list(v.shape) for k, v in inputs.items()})
    onnx.checker.check_model(model, full_check=True)
    expected = IMPLEMENTATIONS[implementation]().cascaded_lut(*inputs.values()).numpy()
    feeds = {k: v.numpy() for k, v in inputs.items()}
    (split,) = SplitOrtRunner(model, implementation).run(feeds)
    (evaluated,) = reference_evaluator(model, implementation).run(None, feeds)
    np.testing.assert_array_equal(split, expected)
    np.testing.assert_array_equal(evaluated, expected)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_knn_node_on_both_cpu_runners(rng, implementation):
    features = torch.randn(2, 16, 6, 9, generator=rng)
    mask = blob_mask(6, 9, batch=2)
    model = _single_node_model(
        KNN_TOPK_FUSION, {"features": [2, 16, 6, 9], "mask": [2, 1, 6, 9]}, k=3
    )
    expected = IMPLEMENTATIONS[implementation]().knn_topk_fusion(features, mask, k=3).numpy()
    feeds = {"features": features.numpy(), "mask": mask.numpy()}
    (split,) = SplitOrtRunner(model, implementation).run(feeds)
    (evaluated,) = reference_evaluator(model, implementation).run(None, feeds)
    np.testing.assert_array_equal(split, expected)
    np.testing.assert_array_equal(evaluated, expected)


def test_runner_refuses_a_wrong_plugin_version(rng):
    model = _single_node_model(KNN_TOPK_FUSION, {"features": [1, 4, 3, 3], "mask": [1, 1, 3, 3]})
    for attr in model.graph.node[1].attribute:
        if attr.name == PLUGIN_VERSION_ATTR:
            attr.s = b"2"
    with pytest.raises(ValueError, match="needs plugin version '2'"):
        SplitOrtRunner(model, "plugin")


def test_trt_graph_on_reference_evaluator_matches_pytorch(exported, models):
    """The whole HDNet-lite TensorRT graph through the pure-numpy ReferenceEvaluator (standard
    ops independent of ONNX Runtime, the custom node by the plugins' CPU library)."""
    _, model = exported("hdnet-lite", "trt", "fp32")
    image, mask = torch.rand(1, 3, 45, 61), blob_mask(45, 61)
    expected = harmonize(models("hdnet-lite"), image, mask).numpy()
    (actual,) = reference_evaluator(model, "plugin").run(
        None, dict(zip(GRAPH_INPUTS, (image.numpy(), mask.numpy()), strict=True))
    )
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", ["aict", "hdnet-lite"])
def test_trt_graph_in_one_session_with_the_custom_op_library(ort_ops_dir, exported, arch):
    """The exporter's runner where libharmony_ort_ops.so is built: the whole TensorRT-target
    graph in one ONNX Runtime session agrees with the split run (custom nodes by the CPU build)
    to float32 rounding (ORT may fuse differently across the cut), both with PyTorch."""
    path, model = exported(arch, "trt", "fp32")
    runner, verified_with = verification_runner(path, model)
    assert isinstance(runner, SessionRunner) and verified_with.startswith(ORT_OPS)
    assert [node.op_type for node in runner.custom_nodes] == [
        node.op_type for node in model.graph.node if node.domain == ONNX_DOMAIN
    ]
    image, mask = torch.rand(1, 3, 45, 61), blob_mask(45, 61)
    feeds = dict(zip(GRAPH_INPUTS, (image.numpy(), mask.numpy()), strict=True))
    (whole,) = runner.run(feeds)
    (split,) = SplitOrtRunner(model, "plugin").run(feeds)
    np.testing.assert_allclose(whole, split, atol=1e-5, rtol=0)
