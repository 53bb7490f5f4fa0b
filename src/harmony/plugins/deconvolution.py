"""Stride-1 transposed convolutions as convolutions, for ONNX Runtime's CPU sessions.

HDNet's decoder has transposed convolutions of stride 1 (3x3, padding 1) at every resolution up
to the full one. ONNX Runtime's CPU ConvTranspose is a GEMM followed by a col2im scatter, well
below its Conv (blocked NCHWc kernels): on HDNet-lite at 1024^2 the transposed convolutions
took 29 % of the run. With stride 1 the two are the same operation: a transposed convolution
with kernel W [C_in, C_out, kh, kw] and padding p is the convolution with W's spatial taps
flipped and its channel axes swapped, padding k - 1 - p; every output is the same sum of the same
products (in another order: float rounding). `stride_one_convolutions` rewrites them; strided
ones, grouped or dilated ones and those whose weights are not constant are left as they are.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def stride_one_convolutions(model: onnx.ModelProto) -> int:
    """Rewrite, in place, every ConvTranspose of `model` with unit strides and dilations, one
    group, no output padding or output shape, explicit (or no) pads and a constant weight into
    the equal Conv. Returns the number rewritten (0: unchanged)."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    rewritten = 0
    for index, node in enumerate(graph.node):
        pads = _conv_pads(node, initializers)
        if pads is None:
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]])
        conv_weight = np.ascontiguousarray(np.flip(weight, axis=(2, 3)).transpose(1, 0, 2, 3))
        name = f"{node.input[1]}/as_conv"
        graph.initializer.append(numpy_helper.from_array(conv_weight, name))
        if readers[node.input[1]] == 1:
            graph.initializer.remove(initializers.pop(node.input[1]))
        conv = helper.make_node(
            "Conv",
            [node.input[0], name, *node.input[2:]],
            list(node.output),
            node.name,
            kernel_shape=list(weight.shape[2:]),
            pads=pads,
        )
        conv.metadata_props.extend(node.metadata_props)
        graph.node[index].CopyFrom(conv)
        rewritten += 1
    return rewritten


def _conv_pads(node, initializers) -> list[int] | None:
    """The pads of the Conv equal to `node`, or None where `node` is not a ConvTranspose this
    rewrite takes."""
    if node.op_type != "ConvTranspose" or node.domain not in ("", "ai.onnx"):
        return None
    if len(node.input) < 2 or node.input[1] not in initializers:
        return None
    kernel = list(initializers[node.input[1]].dims[2:])
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    ones, zeros = [1] * len(kernel), [0] * len(kernel)
    plain = (
        attributes.get("strides", ones) == ones
        and attributes.get("dilations", ones) == ones
        and attributes.get("group", 1) == 1
        and attributes.get("output_padding", zeros) == zeros
        and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
        and "output_shape" not in attributes
        and attributes.get("kernel_shape", kernel) == kernel
    )
    if not plain:
        return None
    pads = attributes.get("pads", zeros + zeros)
    taps = kernel + kernel
    conv_pads = [k - 1 - p for k, p in zip(taps, pads, strict=True)]
    return conv_pads if min(conv_pads) >= 0 else None
