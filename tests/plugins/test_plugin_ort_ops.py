"""libharmony_ort_ops.so: the custom nodes as ONNX Runtime custom ops.

Each node equals the plugins' CPU build bit for bit (the same kernels, on ONNX Runtime's thread
pool); nodes of another plugin version or with a bad attribute fail session creation with a
message naming the node; without the library, sessions that need it are refused with the build
command.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from harmony.contract import (
    CASCADED_LUT,
    KNN_TOPK_FUSION,
    ONNX_DOMAIN,
    ONNX_DOMAIN_VERSION,
    PLUGIN_VERSION_ATTR,
)
from harmony.errors import HarmonyError
from harmony.export.custom_nodes import plugin_attributes
from harmony.plugins.ort import inference_session
from tests.plugins.op_inputs import knn_inputs, lut_inputs


def _graph(contract, ranks: tuple[int, ...], attributes: dict) -> bytes:
    node = helper.make_node(
        contract.name,
        list(contract.inputs),
        list(contract.outputs),
        domain=ONNX_DOMAIN,
        name="node0",
        **{**plugin_attributes(), **attributes},
    )
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * rank)
        for name, rank in zip(contract.inputs, ranks, strict=True)
    ]
    output = helper.make_tensor_value_info(contract.outputs[0], TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "node", inputs, [output])
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid(ONNX_DOMAIN, ONNX_DOMAIN_VERSION)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _run(contract, tensors, ranks, attributes=None) -> np.ndarray:
    session = inference_session(_graph(contract, ranks, attributes or {}), custom_ops=True)
    feeds = {name: t.numpy() for name, t in zip(contract.inputs, tensors, strict=True)}
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("shape", [(2, 37, 53, 7, 5), (1, 64, 48, 16, 16)], ids=str)
def test_cascaded_lut_node_equals_cpu_library(ort_ops_dir, shape):
    from harmony.plugins import cpu

    inputs = lut_inputs(*shape, mask="soft")
    actual = _run(CASCADED_LUT, inputs, (4, 4, 5, 5))
    expected = cpu.cascaded_lut(*inputs).numpy()
    assert np.array_equal(actual.view(np.int32), expected.view(np.int32))


@pytest.mark.parametrize(("shape", "k"), [((2, 8, 7, 9), 1), ((1, 6, 37, 23), 3)], ids=str)
def test_knn_topk_fusion_node_equals_cpu_library(ort_ops_dir, shape, k):
    from harmony.plugins import cpu

    features, mask = knn_inputs(*shape, mask="binary", seed=k)
    actual = _run(KNN_TOPK_FUSION, (features, mask), (4, 4), {"k": k})
    expected = cpu.knn_topk_fusion(features, mask, k=k).numpy()
    assert np.array_equal(actual.view(np.int32), expected.view(np.int32))


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        (
            {PLUGIN_VERSION_ATTR: "2"},
            r"node 'node0' needs plugin version '2'.*implements '1'",
        ),
        ({"k": 0}, r"node 'node0': attribute 'k' must be in \[1, 32\], got 0"),
        ({"k": 33}, r"attribute 'k' must be in \[1, 32\], got 33"),
    ],
)
def test_bad_nodes_fail_session_creation(ort_ops_dir, attributes, message):
    with pytest.raises(HarmonyError, match=r"ONNX Runtime cannot load the graph: .*" + message):
        inference_session(_graph(KNN_TOPK_FUSION, (4, 4), attributes), custom_ops=True)


def test_mismatched_shapes_are_named(ort_ops_dir):
    features, mask = knn_inputs(1, 4, 6, 6, mask="binary")
    session = inference_session(_graph(KNN_TOPK_FUSION, (4, 4), {}), custom_ops=True)
    with pytest.raises(Exception, match=r"input 'mask' must be \[1,1,6,6\], got \[1,1,5,6\]"):
        session.run(None, {"features": features.numpy(), "mask": mask[:, :, :5].numpy()})


def test_missing_library_says_how_to_build(tmp_path, monkeypatch):
    from harmony.runtime.ort_runner import OrtCustomOpRunner

    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(tmp_path))
    with pytest.raises(HarmonyError, match=r"libharmony_ort_ops\.so.*ONNXRUNTIME_ROOT"):
        inference_session(_graph(KNN_TOPK_FUSION, (4, 4), {}), custom_ops=True)
    available = OrtCustomOpRunner.availability("cpu")
    assert not available.ok and "build_plugins.sh" in available.reason
