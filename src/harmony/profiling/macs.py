"""True multiply-accumulate counts of an exported harmonization graph, split by stage.

Counted per node at a concrete batch B and input size H x W:
- Conv: output elements x C_in/groups x kernel taps (dynamic and grouped convolutions alike);
- ConvTranspose: input elements x C_out/groups x kernel taps (each input position scatters
  into a kernel-sized window: the real work, not the output-size count thop uses);
- MatMul / Gemm: output elements x the reduced dimension (attention QK^T and AV, projections,
  FFN, HDNet's dynamic 1x1 convolutions as batched MatMul, the materialised KNN similarity);
- KnnTopkFusion: the similarity, B x C x N^2 with N = h x w (the plugin skips all-zero query
  rows, but the count does not depend on the data);
- AICT's LUT: 2 trilinear lookups x 8 taps x 3 channels per output pixel = 48 x B x H x W,
  whether the graph holds a CascadedLut3D node or the same lookups as standard operators.
Elementwise operations, normalisation, softmax, resizes and top-k are not counted.

Shapes come from the graph's value_info, whose symbolic dimensions the exporter writes as
expressions of `batch`, `height` and `width`; they are evaluated by a small whitelisting
evaluator (never `eval`).
"""

from __future__ import annotations

import ast
import math
import operator
import os
from dataclasses import dataclass, field

import onnx

from harmony.contract import KNN_TOPK_FUSION, LUT_CHANNELS, network_module
from harmony.export.metadata import read_metadata
from harmony.models.checkpoint import MODEL_CLASSES

LUT_TAPS_PER_CHANNEL = 2 * 8  # two trilinear lookups, 8 taps each
UNATTRIBUTED = "unattributed"  # a node outside the network (the pipeline around it)


@dataclass
class MacCount:
    """Total MACs and their split by stage."""

    total: int = 0
    by_stage: dict[str, int] = field(default_factory=dict)

    def add(self, stage: str, macs: int) -> None:
        self.total += macs
        self.by_stage[stage] = self.by_stage.get(stage, 0) + macs

    def as_dict(self) -> dict:
        return {"total": self.total, "by_stage": dict(self.by_stage)}


def graph_macs(model: onnx.ModelProto | str | os.PathLike, batch: int, height: int, width: int):
    """MACs of one run of the exported graph `model` on a [batch,3,height,width] input."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    arch = read_metadata(model).get("arch", "")
    if arch not in MODEL_CLASSES:
        raise ValueError("MACs are counted on graphs written by harmony-export (no arch metadata)")
    network = MODEL_CLASSES[arch]
    # The exporter leaves a few intermediate shapes blank; ONNX shape inference fills them.
    model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    shapes = _ShapeTable(model, {"batch": batch, "height": height, "width": width})
    count = MacCount()
    for node in model.graph.node:
        macs = _node_macs(node, shapes)
        if macs:
            count.add(_stage(node, network), macs)
    if arch == "aict":  # the LUT is applied by AICT's own forward
        lut_macs = LUT_TAPS_PER_CHANNEL * LUT_CHANNELS * batch * height * width
        count.add(network.report_stage(""), lut_macs)
    return count


def _node_macs(node: onnx.NodeProto, shapes: _ShapeTable) -> int:
    op = node.op_type
    if op == "Conv":
        weight = shapes.dims(node.input[1])
        return math.prod(shapes.dims(node.output[0])) * math.prod(weight[1:])
    if op == "ConvTranspose":
        weight = shapes.dims(node.input[1])
        return math.prod(shapes.dims(node.input[0])) * math.prod(weight[1:])
    if op == "MatMul":
        return _matmul_macs(*(shapes.dims(name) for name in (*node.input[:2], node.output[0])))
    if op == "Gemm":
        a, out = shapes.dims(node.input[0]), shapes.dims(node.output[0])
        transposed = any(attr.name == "transA" and attr.i for attr in node.attribute)
        return math.prod(out) * (a[0] if transposed else a[1])
    if op == KNN_TOPK_FUSION.name:
        b, c, h, w = shapes.dims(node.input[0])
        return b * c * (h * w) ** 2
    return 0  # CascadedLut3D is counted by formula (see graph_macs); the rest are not MACs


def _matmul_macs(a: tuple, b: tuple, out: tuple) -> int:
    """Output elements x reduced size; dims the exporter left unknown (None) are taken from the
    operands: leading and row dims from `a`, the column dim from `b`."""
    reduced = a[-1] if a[-1] is not None else b[-2]
    resolved = [
        dim if dim is not None else (b[-1] if i == len(out) - 1 else a[i - len(out)])
        for i, dim in enumerate(out)
    ]
    if None in resolved or reduced is None:
        raise ValueError(f"cannot size MatMul {a} x {b} -> {out}")
    return math.prod(resolved) * reduced


def _stage(node: onnx.NodeProto, network: type) -> str:
    """Stage of a node from the module scope the exporter recorded, as the network names it."""
    module = network_module(node)
    child = None if module is None else module.split(".")[0]
    return UNATTRIBUTED if child is None else network.report_stage(child)


class _ShapeTable:
    """Concrete dims of every value of the graph for given symbol values."""

    def __init__(self, model: onnx.ModelProto, symbols: dict[str, int]):
        self.symbols = symbols
        self.types = {
            value.name: value.type.tensor_type.shape
            for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]
        }
        self.initializers = {init.name: tuple(init.dims) for init in model.graph.initializer}

    def dims(self, name: str) -> tuple[int | None, ...]:
        """Concrete dims of value `name`; None where the exporter recorded no dimension."""
        if name in self.initializers:
            return self.initializers[name]
        if name not in self.types:
            raise ValueError(f"the graph has no shape for '{name}' (export with shape info)")
        return tuple(_dim_value(dim, self.symbols) for dim in self.types[name].dim)


def _dim_value(dim, symbols: dict[str, int]) -> int | None:
    if dim.HasField("dim_value"):
        return dim.dim_value
    return _evaluate(dim.dim_param, symbols) if dim.dim_param else None


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCTIONS = {"Mod": operator.mod, "Max": max, "Min": min, "FloorDiv": operator.floordiv}


def _evaluate(expression: str, symbols: dict[str, int]) -> int:
    """Value of an exporter dimension expression, e.g. 'height + (Mod(8 - (Mod(height, 8)), 8))'."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in symbols:
            return symbols[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
        ):
            return _FUNCTIONS[node.func.id](*(value(arg) for arg in node.args))
        raise ValueError(f"unsupported dimension expression '{expression}'")

    return value(ast.parse(expression, mode="eval").body)
