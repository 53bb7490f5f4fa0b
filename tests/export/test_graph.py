"""Structure of the exported graphs: IO, custom nodes, banned ops, precision, metadata."""

from __future__ import annotations

import hashlib

import onnx
import pytest

from harmony import __version__
from harmony.contract import (
    CASCADED_LUT,
    GRAPH_INPUTS,
    GRAPH_OUTPUT,
    KNN_TOPK_FUSION,
    ONNX_DOMAIN,
    PLUGIN_NAMESPACE,
    PLUGIN_NAMESPACE_ATTR,
    PLUGIN_VERSION,
    PLUGIN_VERSION_ATTR,
)
from harmony.custom_nodes import node_attributes
from harmony.export.metadata import read_metadata
from tests.helpers import EXPORTED_GRAPHS as GRAPHS

FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


def _graph_id(graph) -> str:
    return "-".join(graph)


def _inferred(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type for v in [*graph.input, *graph.output, *graph.value_info]}
    for init in graph.initializer:
        types[init.name] = onnx.helper.make_tensor_type_proto(init.data_type, init.dims).tensor_type
    return inferred, types


def _square_dynamic_matmuls(model: onnx.ModelProto) -> list[str]:
    """MatMuls whose last two output dims both depend on the input size (an N x N product)."""
    inferred, types = _inferred(model)
    found = []
    for node in inferred.graph.node:
        if node.op_type != "MatMul":
            continue
        dims = types[node.output[0]].shape.dim
        if len(dims) >= 2 and all(d.HasField("dim_param") for d in dims[-2:]):
            found.append(node.name)
    return found


@pytest.mark.parametrize("graph", GRAPHS, ids=_graph_id)
def test_io_names_types_and_dynamic_dims(graph, exported):
    _, model = exported(*graph)
    inputs = {v.name: v.type.tensor_type for v in model.graph.input}
    outputs = {v.name: v.type.tensor_type for v in model.graph.output}
    assert list(inputs) == list(GRAPH_INPUTS)
    assert list(outputs) == [GRAPH_OUTPUT]
    channels = {GRAPH_INPUTS[0]: 3, GRAPH_INPUTS[1]: 1, GRAPH_OUTPUT: 3}
    for name, tensor in {**inputs, **outputs}.items():
        assert tensor.elem_type == FLOAT
        dims = tensor.shape.dim
        assert [d.HasField("dim_param") for d in dims] == [True, False, True, True], name
        assert dims[1].dim_value == channels[name]


@pytest.mark.parametrize("graph", GRAPHS, ids=_graph_id)
def test_checker_and_strict_shape_inference(graph, exported):
    path, model = exported(*graph)
    onnx.checker.check_model(str(path), full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


@pytest.mark.parametrize("graph", [g for g in GRAPHS if g[1] == "trt"], ids=_graph_id)
def test_trt_graph_has_the_contract_custom_node_and_no_banned_ops(graph, exported):
    arch = graph[0]
    _, model = exported(*graph)
    custom = [node for node in model.graph.node if node.domain == ONNX_DOMAIN]
    expected = CASCADED_LUT if arch == "aict" else KNN_TOPK_FUSION
    assert [node.op_type for node in custom] == [expected.name]
    attributes = node_attributes(custom[0])
    assert attributes[PLUGIN_VERSION_ATTR] == PLUGIN_VERSION
    assert attributes[PLUGIN_NAMESPACE_ATTR] == PLUGIN_NAMESPACE
    string = onnx.AttributeProto.STRING
    kinds = {attr.name: attr.type for attr in custom[0].attribute}
    assert kinds[PLUGIN_VERSION_ATTR] == kinds[PLUGIN_NAMESPACE_ATTR] == string
    if expected is KNN_TOPK_FUSION:
        assert attributes["k"] == 1
        assert kinds["k"] == onnx.AttributeProto.INT
    assert set(attributes) == {PLUGIN_VERSION_ATTR, PLUGIN_NAMESPACE_ATTR} | {
        a.name for a in expected.attributes
    }
    assert list(custom[0].input) and len(custom[0].input) == len(expected.inputs)
    op_types = {node.op_type for node in model.graph.node}
    assert "TopK" not in op_types
    assert "GridSample" not in op_types  # TensorRT's IGridSampleLayer is 4-D only
    assert "ArgMax" not in op_types
    assert _square_dynamic_matmuls(model) == []
    assert {(o.domain, o.version) for o in model.opset_import} >= {(ONNX_DOMAIN, 1)}


@pytest.mark.parametrize("graph", [g for g in GRAPHS if g[1] == "ort"], ids=_graph_id)
def test_ort_graph_uses_standard_ops_only(graph, exported):
    arch = graph[0]
    _, model = exported(*graph)
    assert {node.domain for node in model.graph.node} == {""}
    assert ONNX_DOMAIN not in {o.domain for o in model.opset_import}
    op_types = {node.op_type for node in model.graph.node}
    assert "Corr" not in op_types
    if arch == "aict":
        assert "GridSample" not in op_types  # separable form: Resize + GatherElements
        assert "Resize" in op_types
    else:
        # The materialised similarity is there (and the detector above finds it).
        assert len(_square_dynamic_matmuls(model)) == 1


def test_custom_node_inputs_of_trt_graphs_are_float32(exported):
    for arch in ("aict", "hdnet-lite"):
        _, model = exported(arch, "trt", "fp16")
        _, types = _inferred(model)
        (node,) = [n for n in model.graph.node if n.domain == ONNX_DOMAIN]
        assert [types[name].elem_type for name in node.input] == [FLOAT] * len(node.input)


FLOAT32_OPS = {
    "aict": ["LayerNormalization", "Softmax", "CumSum"],
    "hdnet-lite": ["InstanceNormalization", "ReduceSum", "Sqrt", "ReduceMean"],
}


@pytest.mark.parametrize("target", ["trt", "ort"])
@pytest.mark.parametrize("arch", ["aict", "hdnet-lite"])
def test_fp16_graph_keeps_sensitive_ops_in_float32(arch, target, exported):
    _, model = exported(arch, target, "fp16")
    _, types = _inferred(model)
    initializers = {init.name: init for init in model.graph.initializer}
    weights = [
        initializers[node.input[1]]
        for node in model.graph.node
        if node.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm")
        and node.input[1] in initializers
    ]
    assert weights and {init.data_type for init in weights} == {FLOAT16}
    by_type: dict[str, set[int]] = {}
    for node in model.graph.node:
        by_type.setdefault(node.op_type, set()).add(types[node.input[0]].elem_type)
    assert by_type["Cast"]
    assert by_type["Conv"] == {FLOAT16}
    for op_type in FLOAT32_OPS[arch]:
        assert by_type[op_type] == {FLOAT}, op_type
    if arch == "aict":
        assert FLOAT16 in by_type["MatMul"]  # projections and attention matmuls in fp16
    if arch == "hdnet-lite" and target == "ort":
        # The materialised KNN: similarity, max/argmax and softmax in float32.
        assert by_type["Softmax"] == by_type["ArgMax"] == by_type["ReduceMax"] == {FLOAT}


def test_metadata(exported, checkpoints):
    _, model = exported("hdnet-lite", "trt", "fp16")
    metadata = read_metadata(model)
    digest = hashlib.sha256(checkpoints["hdnet-lite"].read_bytes()).hexdigest()
    assert metadata["arch"] == "hdnet-lite"
    assert metadata["source_checkpoint_sha256"] == digest
    assert metadata["harmony_version"] == __version__
    assert metadata["target"] == "trt"
    assert metadata["precision"] == "fp16"
    assert metadata["io_dtype"] == "float32"
    assert f"{ONNX_DOMAIN}::{KNN_TOPK_FUSION.name}={PLUGIN_VERSION}" in metadata["op_contract"]
    assert f"{ONNX_DOMAIN}::{CASCADED_LUT.name}={PLUGIN_VERSION}" in metadata["op_contract"]
    assert "[0,1]" in metadata["input_convention"]
