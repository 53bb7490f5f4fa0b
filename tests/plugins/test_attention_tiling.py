"""Attention in blocks of query rows (ONNX Runtime's CPU sessions): the rewrite finds every
attention it may tile and no other node chain, and the outputs stay those of the graph as
exported."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from harmony.data.demo import demo_composite
from harmony.models.aict import DEPTH
from harmony.plugins.attention_tiling import tiled_attention
from harmony.plugins.ort import inference_session

ROWS, KEYS, HEAD = 600, 300, 16
# Output difference allowed between the tiled and the exported AICT graph (images in [0, 1]).
ATOL = 1e-5


def _attention_graph(middle: list[str], scores_used_twice: bool = False) -> onnx.ModelProto:
    """Q [1,2,ROWS,HEAD] x K^T -> `middle` (Softmax / Cast, in order) -> x V; outputs "out" (and
    the scores, where they are used twice)."""
    nodes = [helper.make_node("MatMul", ["q", "kt"], ["scores"])]
    current = "scores"
    for index, op in enumerate(middle):
        attributes = {"axis": -1} if op == "Softmax" else {"to": TensorProto.FLOAT}
        nodes.append(helper.make_node(op, [current], [f"m{index}"], **attributes))
        current = f"m{index}"
    nodes.append(helper.make_node("MatMul", [current, "v"], ["out"]))
    inputs = [
        helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 2, ROWS, HEAD]),
        helper.make_tensor_value_info("kt", TensorProto.FLOAT, [1, 2, HEAD, KEYS]),
        helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 2, KEYS, HEAD]),
    ]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2, ROWS, HEAD])]
    if scores_used_twice:
        scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, ROWS, KEYS])
        outputs.append(scores)
    graph = helper.make_graph(nodes, "attention", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _run(model: onnx.ModelProto, feed: dict) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options)
    return session.run(["out"], feed)[0]


@pytest.mark.parametrize("middle", [["Softmax"], ["Cast", "Softmax", "Cast"]])
def test_the_blocks_give_the_attention_of_every_row(middle):
    rng = np.random.default_rng(0)
    feed = {
        "q": rng.standard_normal((1, 2, ROWS, HEAD), dtype=np.float32),
        "kt": rng.standard_normal((1, 2, HEAD, KEYS), dtype=np.float32),
        "v": rng.standard_normal((1, 2, KEYS, HEAD), dtype=np.float32),
    }
    model = _attention_graph(middle)
    expected = _run(model, feed)
    assert tiled_attention(model, rows=256) == 1
    onnx.checker.check_model(model, full_check=True)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Split") == 1 and ops.count("Concat") == 1
    assert ops.count("MatMul") == 2 * 3  # 256 + 256 + 88 rows
    np.testing.assert_allclose(_run(model, feed), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("graph", "why"),
    [
        (_attention_graph(["Softmax"], scores_used_twice=True), "the scores are read twice"),
        (_attention_graph(["Cast"]), "no softmax between the products"),
        (_attention_graph(["Softmax", "Softmax"]), "two softmaxes"),
    ],
)
def test_other_chains_are_left_alone(graph, why):
    before = graph.SerializeToString()
    assert tiled_attention(graph, rows=256) == 0, why
    assert graph.SerializeToString() == before


def test_a_softmax_over_another_axis_is_left_alone():
    model = _attention_graph(["Softmax"])
    model.graph.node[1].attribute[0].i = 2
    assert tiled_attention(model, rows=256) == 0


def test_no_more_rows_than_a_block_is_left_alone():
    assert tiled_attention(_attention_graph(["Softmax"]), rows=ROWS) == 0


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_every_attention_of_aict_is_tiled_and_its_output_kept(exported, precision, monkeypatch):
    """The CPU sessions of the package run AICT's exported graph tiled: all nine attentions,
    and the output that of the graph as exported to within float rounding."""
    import harmony.plugins.ort

    counts = []
    monkeypatch.setattr(
        harmony.plugins.ort,
        "tiled_attention",
        lambda graph: counts.append(tiled_attention(graph)) or counts[-1],
    )
    path, _ = exported("aict", "ort", precision)
    image, mask, _ = demo_composite(96, 80)
    feed = {"image": image.numpy(), "mask": mask.numpy()}  # float32 I/O at both precisions
    options = onnxruntime.SessionOptions()
    as_exported = onnxruntime.InferenceSession(str(path), options).run(None, feed)[0]
    in_blocks = inference_session(path).run(None, feed)[0]
    assert counts == [DEPTH]
    np.testing.assert_allclose(in_blocks, as_exported, rtol=0, atol=ATOL)
