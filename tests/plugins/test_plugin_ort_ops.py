"""The custom nodes in ONNX Runtime, by both implementations: libharmony_ort_ops.so (ONNX
Runtime custom ops, built with its headers) and onnxruntime-extensions' Python ops calling
libharmony_cpu_ops.so (pip packages only).

Each node equals the plugins' CPU build bit for bit (the same kernels), and whole graphs are
bit for bit the same by either; nodes of another plugin version or with a bad attribute fail
session creation with a message naming the node; where neither can run, sessions that need
them are refused with what each needs.
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
from harmony.custom_nodes import plugin_attributes
from harmony.errors import HarmonyError
from harmony.plugins.ort import EXTENSIONS, ORT_OPS, inference_session
from tests.plugins.op_inputs import knn_inputs, lut_inputs


@pytest.fixture(params=[ORT_OPS, EXTENSIONS])
def implementation(request) -> str:
    """Each implementation of the custom nodes, with the library it loads (libharmony_ort_ops.so
    needs the ONNX Runtime headers: skipped without them)."""
    request.getfixturevalue("ort_ops_dir" if request.param == ORT_OPS else "cpu_ops_dir")
    return request.param


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


def _session(implementation, contract, ranks, attributes=None):
    graph = _graph(contract, ranks, attributes or {})
    return inference_session(graph, custom_ops=True, implementation=implementation)


def _run(implementation, contract, tensors, ranks, attributes=None) -> np.ndarray:
    session = _session(implementation, contract, ranks, attributes)
    feeds = {name: t.numpy() for name, t in zip(contract.inputs, tensors, strict=True)}
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("shape", [(2, 37, 53, 7, 5), (1, 64, 48, 16, 16)], ids=str)
def test_cascaded_lut_node_equals_cpu_library(implementation, shape):
    from harmony.plugins import cpu

    inputs = lut_inputs(*shape, mask="soft")
    actual = _run(implementation, CASCADED_LUT, inputs, (4, 4, 5, 5))
    expected = cpu.cascaded_lut(*inputs).numpy()
    assert np.array_equal(actual.view(np.int32), expected.view(np.int32))


@pytest.mark.parametrize(("shape", "k"), [((2, 8, 7, 9), 1), ((1, 6, 37, 23), 3)], ids=str)
def test_knn_topk_fusion_node_equals_cpu_library(implementation, shape, k):
    from harmony.plugins import cpu

    features, mask = knn_inputs(*shape, mask="binary", seed=k)
    actual = _run(implementation, KNN_TOPK_FUSION, (features, mask), (4, 4), {"k": k})
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
def test_bad_nodes_fail_session_creation(implementation, attributes, message):
    with pytest.raises(HarmonyError, match=r"ONNX Runtime cannot load the graph: .*" + message):
        _session(implementation, KNN_TOPK_FUSION, (4, 4), attributes)


def test_mismatched_shapes_are_named_and_the_process_survives(implementation):
    """(A Python op that raises would abort the process: the bridge reports after the run.)"""
    features, mask = knn_inputs(1, 4, 6, 6, mask="binary")
    session = _session(implementation, KNN_TOPK_FUSION, (4, 4))
    feeds = {"features": features.numpy(), "mask": mask.numpy()}
    wrong = {**feeds, "mask": mask[:, :, :5].numpy()}
    with pytest.raises(
        Exception, match=r"node 'node0'.*mask'? must be \[1,1,6,6\], got \[1, ?1, ?5"
    ):
        session.run(None, wrong)
    assert session.run(None, feeds)[0].shape == features.shape  # the session goes on


@pytest.mark.parametrize(("arch", "precision"), [("aict", "fp32"), ("hdnet-lite", "fp16")])
def test_both_implementations_run_whole_graphs_bit_for_bit_alike(
    ort_ops_dir, exported, arch, precision
):
    from harmony.export.verify import demo_batch

    path, _ = exported(arch, "trt", precision)
    image, mask = demo_batch(96, 80)
    feeds = {"image": image.numpy(), "mask": mask.numpy()}
    outputs = [
        inference_session(path, custom_ops=True, implementation=implementation).run(None, feeds)[0]
        for implementation in (ORT_OPS, EXTENSIONS)
    ]
    assert np.array_equal(outputs[0].view(np.int32), outputs[1].view(np.int32))


def test_neither_implementation_says_what_each_needs(tmp_path, monkeypatch):
    from harmony.runtime.ort_runner import OrtCustomOpRunner

    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(tmp_path))
    missing = r"libharmony_ort_ops\.so does not exist.*libharmony_cpu_ops\.so does not exist"
    expected = missing + ".*ONNXRUNTIME_ROOT"
    with pytest.raises(HarmonyError, match=expected):
        inference_session(_graph(KNN_TOPK_FUSION, (4, 4), {}), custom_ops=True)
    available = OrtCustomOpRunner.availability("cpu")
    assert not available.ok and "build_plugins.sh" in available.reason
