"""The contract's custom nodes in ONNX graphs: emitting them at export, recognising them after.

Every string comes from `harmony.contract`: op types, the `harmony` domain, and the string
attributes `plugin_version` / `plugin_namespace` that onnx-tensorrt's plugin fallback importer
reads to find the plugin creator, plus the op's own attributes (`k` of KnnTopkFusion).
"""

from __future__ import annotations

import onnx
from onnxscript.values import Op, Opset

from harmony.contract import (
    CASCADED_LUT,
    KNN_TOPK_FUSION,
    ONNX_DOMAIN,
    ONNX_DOMAIN_VERSION,
    OPS,
    PLUGIN_NAMESPACE,
    PLUGIN_NAMESPACE_ATTR,
    PLUGIN_VERSION,
    PLUGIN_VERSION_ATTR,
    OpContract,
)

_DOMAIN = Opset(ONNX_DOMAIN, ONNX_DOMAIN_VERSION)
_FLOAT_TYPES = ["tensor(float)", "tensor(float16)"]


def op_schema(contract: OpContract) -> onnx.defs.OpSchema:
    """The ONNX schema of a custom op (float32/float16 tensors, string plugin attributes)."""
    parameter = onnx.defs.OpSchema.FormalParameter
    attribute = onnx.defs.OpSchema.Attribute
    attr_type = onnx.defs.OpSchema.AttrType
    attributes = [
        attribute(PLUGIN_VERSION_ATTR, attr_type.STRING, "TensorRT plugin version"),
        attribute(PLUGIN_NAMESPACE_ATTR, attr_type.STRING, "TensorRT plugin namespace"),
        *(
            attribute(attr.name, attr_type.INT, f"in [{attr.minimum}, {attr.maximum}]")
            for attr in contract.attributes
        ),
    ]
    return onnx.defs.OpSchema(
        contract.name,
        ONNX_DOMAIN,
        ONNX_DOMAIN_VERSION,
        inputs=[parameter(name, "T") for name in contract.inputs],
        outputs=[parameter(name, "T") for name in contract.outputs],
        type_constraints=[("T", _FLOAT_TYPES, "float32 or float16")],
        attributes=attributes,
    )


def _op(contract: OpContract) -> Op:
    return Op(_DOMAIN, contract.name, op_schema(contract))


def plugin_attributes() -> dict[str, str]:
    """The string attributes every custom node carries for TensorRT's plugin importer."""
    return {PLUGIN_VERSION_ATTR: PLUGIN_VERSION, PLUGIN_NAMESPACE_ATTR: PLUGIN_NAMESPACE}


def _emit(contract: OpContract, inputs: tuple, attributes: dict):
    values = {attr.name: attr.validate(attributes[attr.name]) for attr in contract.attributes}
    return _op(contract)(*inputs, **values, **plugin_attributes())


# The ONNX exporter reads a translation's signature: tensors positional, attributes annotated.
def _cascaded_lut_node(image, mask, knots, curve):
    return _emit(CASCADED_LUT, (image, mask, knots, curve), {})


def _knn_topk_fusion_node(features, mask, k: int = KNN_TOPK_FUSION.attribute("k").default):
    return _emit(KNN_TOPK_FUSION, (features, mask), {"k": k})


_EMITTERS = {CASCADED_LUT: _cascaded_lut_node, KNN_TOPK_FUSION: _knn_topk_fusion_node}


def emitter(contract: OpContract):
    """The onnxscript translation of `contract`'s PyTorch custom op into its custom node."""
    return _EMITTERS[contract]


def contract_of(node: onnx.NodeProto) -> OpContract | None:
    """The contract of a custom node of the `harmony` domain, None for any other node."""
    if node.domain != ONNX_DOMAIN:
        return None
    for contract in OPS:
        if contract.name == node.op_type:
            return contract
    raise ValueError(f"node {node.name!r}: unknown op {ONNX_DOMAIN}::{node.op_type}")


def node_attributes(node: onnx.NodeProto) -> dict:
    """A node's attributes as Python values (strings decoded)."""
    values = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        values[attr.name] = value.decode() if isinstance(value, bytes) else value
    return values


def op_attributes(node: onnx.NodeProto, contract: OpContract) -> dict[str, int]:
    """The op's own attributes of a custom node, validated against the contract (defaults filled).

    Raises:
        ValueError: a missing or wrong plugin version/namespace, an unknown attribute or one out
            of range.
    """
    values = node_attributes(node)
    for name, expected in plugin_attributes().items():
        if values.pop(name, None) != expected:
            raise ValueError(
                f"{contract.name} node {node.name!r}: attribute {name} must be "
                f"{expected!r}, got {node_attributes(node).get(name)!r}"
            )
    known = {attr.name: attr for attr in contract.attributes}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{contract.name} node {node.name!r}: unknown attributes {unknown}")
    return {name: attr.validate(values.get(name, attr.default)) for name, attr in known.items()}
