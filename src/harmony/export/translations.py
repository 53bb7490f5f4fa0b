"""The onnxscript translations of the fused ops' PyTorch custom ops into their custom nodes.

The TensorRT target's lowering (`harmony.export.lowering`) hands these to the ONNX exporter as
its custom translation table: each call of `torch.ops.harmony.<op>` becomes one node of the
`harmony` domain with the contract's attributes (`harmony.custom_nodes`).
"""

from __future__ import annotations

import onnx
from onnxscript.values import Op, Opset

from harmony.contract import (
    CASCADED_LUT,
    KNN_TOPK_FUSION,
    ONNX_DOMAIN,
    ONNX_DOMAIN_VERSION,
    PLUGIN_NAMESPACE_ATTR,
    PLUGIN_VERSION_ATTR,
    OpContract,
)
from harmony.custom_nodes import plugin_attributes

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
