"""Attention computed in blocks of query rows, for ONNX Runtime's CPU sessions.

ONNX Runtime runs an exported attention (MatMul -> Softmax -> MatMul) as written: the whole
[N, N] score matrix per head is written to memory, read back by the softmax, written again and
read by the second product. For AICT's 4096 tokens that is 128 MB per layer for two heads, far
more than the caches, and the CPU's time goes to memory rather than to arithmetic (its own
`com.microsoft.MultiHeadAttention` and ONNX's opset-23 `Attention` take the same time on the
CPU). `tiled_attention` splits the queries into blocks of `ATTENTION_ROW_BLOCK` rows, each block
through the same three nodes, and concatenates the results: a block's scores stay in the
cache between the three steps. A softmax row and a product row depend only on their own query,
so each output row is the same sum of the same products; ONNX Runtime may pick another GEMM path
for the smaller products, so the outputs agree within float rounding (2e-6 on AICT at 1024^2;
tests/plugins/test_attention_tiling.py). benchmarks/cpu_roofline.py measures the gain.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper

# Query rows per block: a block's [rows, N] float32 scores for AICT's N = 4096 are 8 MB for its
# two heads (the whole matrix: 128 MB). On a 2-core Xeon, one attention layer alone took 158 ms
# untiled and 136 / 139 / 144 ms in blocks of 256 / 512 / 1024 rows (one thread, PyTorch's
# fused SDPA 133 ms).
ATTENTION_ROW_BLOCK = 256
# Row-wise nodes allowed between the two products: the softmax (over the last axis) and casts.
_ROW_WISE = {"Softmax", "Cast"}
# The reader of a tensor the graph outputs, among the node indices of `tiled_attention`.
GRAPH_OUTPUT = -1


def tiled_attention(model: onnx.ModelProto, rows: int = ATTENTION_ROW_BLOCK) -> int:
    """Rewrite every attention of `model` (MatMul -> [Cast] -> Softmax(last axis) -> [Cast] ->
    MatMul, each intermediate used once, more than `rows` static query rows) in blocks of
    `rows` query rows, in place. Returns the number of attentions rewritten (0: unchanged)."""
    graph = model.graph
    nodes = list(graph.node)
    if not any(node.op_type == "Softmax" for node in nodes):
        return 0  # no attention: spare the shape inference (0.2 s on HDNet's graph)
    shapes = _static_shapes(model)
    consumers = defaultdict(list)  # tensor name -> indices of the nodes reading it
    for index, node in enumerate(nodes):
        for name in node.input:
            consumers[name].append(index)
    for output in graph.output:
        consumers[output.name].append(GRAPH_OUTPUT)
    removed, replacements = set(), {}  # node indices
    for index in range(len(nodes)):
        taken = index in removed or index in replacements
        chain = None if taken else _attention_chain(index, nodes, consumers, shapes, rows)
        if chain is None:
            continue
        removed.update(chain[:-1])
        # The blocks run where the last product ran: every input is computed by then.
        prefix = f"harmony_tiled_attention{len(replacements)}"
        replacements[chain[-1]] = _tiled([nodes[i] for i in chain], shapes, rows, prefix)
    if not replacements:
        return 0
    dropped = {output for index in removed for output in nodes[index].output}
    kept_info = [info for info in graph.value_info if info.name not in dropped]
    del graph.node[:]
    for index, node in enumerate(nodes):
        if index in replacements:
            graph.node.extend(replacements[index])
        elif index not in removed:
            graph.node.append(node)
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    return len(replacements)


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Each tensor's shape from ONNX shape inference, unknown dimensions as None."""
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    return {
        info.name: [dim.dim_value if dim.HasField("dim_value") else None for dim in dims]
        for info in infos
        if info.type.tensor_type.HasField("shape")
        for dims in [info.type.tensor_type.shape.dim]
    }


def _attention_chain(start, nodes, consumers, shapes, rows) -> list[int] | None:
    """Indices [first MatMul, row-wise nodes..., last MatMul] where node `start` begins an
    attention worth tiling, else None."""
    if nodes[start].op_type != "MatMul":
        return None
    queries = shapes.get(nodes[start].input[0])
    if not queries or len(queries) < 2 or queries[-2] is None or queries[-2] <= rows:
        return None
    chain, softmaxes = [start], 0
    while True:
        users = consumers[nodes[chain[-1]].output[0]]
        if len(users) != 1 or users[0] == GRAPH_OUTPUT:
            return None
        node = nodes[users[0]]
        if node.op_type == "MatMul":
            if node.input[0] != nodes[chain[-1]].output[0] or softmaxes != 1:
                return None
            return [*chain, users[0]]
        if node.op_type not in _ROW_WISE:
            return None
        if node.op_type == "Softmax":
            rank = len(shapes.get(node.input[0]) or queries)
            axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
            if axis not in (-1, rank - 1):
                return None
            softmaxes += 1
        chain.append(users[0])


def _tiled(chain: list, shapes: dict, rows: int, prefix: str) -> list:
    """The nodes computing `chain` block by block: Split of the queries, the chain per block,
    Concat into the last product's output. Each new node is named after the node it stands for
    ("<name>/block3") and keeps its metadata (the name scopes reports attribute time by)."""
    query_rows = shapes[chain[0].input[0]][-2]
    for step, node in enumerate(chain):  # replaced below: named only for the new nodes' names
        node.name = node.name or f"{prefix}/{step}"
    blocks = -(-query_rows // rows)
    sizes = [rows] * (blocks - 1) + [query_rows - rows * (blocks - 1)]
    split_sizes = numpy_helper.from_array(np.array(sizes, dtype=np.int64), f"{prefix}/sizes")
    queries = [f"{prefix}/queries{block}" for block in range(blocks)]
    nodes = [
        _like(chain[0], "sizes", "Constant", [], [split_sizes.name], value=split_sizes),
        _like(chain[0], "split", "Split", [chain[0].input[0], split_sizes.name], queries, axis=-2),
    ]
    outputs = []
    for block, current in enumerate(queries):
        for step, original in enumerate(chain):
            copy = onnx.NodeProto()
            copy.CopyFrom(original)
            copy.name = f"{original.name}/block{block}"
            copy.input[0] = current
            copy.output[0] = current = f"{prefix}/block{block}/{step}"
            nodes.append(copy)
        outputs.append(current)
    nodes.append(_like(chain[-1], "concat", "Concat", outputs, [chain[-1].output[0]], axis=-2))
    return nodes


def _like(original, suffix: str, op_type: str, inputs: list, outputs: list, **attributes):
    """A new node named "<original's name>/<suffix>" with the original's metadata."""
    node = helper.make_node(op_type, inputs, outputs, f"{original.name}/{suffix}", **attributes)
    node.metadata_props.extend(original.metadata_props)
    return node
