"""The contract's custom nodes in ONNX graphs: their attributes, and recognising them.

Every string comes from `harmony.contract`: op types, the `harmony` domain, and the string
attributes `plugin_version` / `plugin_namespace` that onnx-tensorrt's plugin fallback importer
reads to find the plugin creator, plus the op's own attributes (`k` of KnnTopkFusion). This
module imports onnx only: the engine builder, the CPU runners and the ONNX Runtime bridge read
custom nodes with it, in the words the native libraries use for the same problems;
`harmony.export.translations` writes them at export.
"""

from __future__ import annotations

import onnx

from harmony.contract import (
    ONNX_DOMAIN,
    OPS,
    PLUGIN_NAMESPACE,
    PLUGIN_NAMESPACE_ATTR,
    PLUGIN_VERSION,
    PLUGIN_VERSION_ATTR,
    OpContract,
)


def plugin_attributes() -> dict[str, str]:
    """The string attributes every custom node carries for TensorRT's plugin importer."""
    return {PLUGIN_VERSION_ATTR: PLUGIN_VERSION, PLUGIN_NAMESPACE_ATTR: PLUGIN_NAMESPACE}


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
    where = f"{ONNX_DOMAIN}::{contract.name} node '{node.name}'"
    values = node_attributes(node)
    version = values.pop(PLUGIN_VERSION_ATTR, None)
    if version != PLUGIN_VERSION:
        raise ValueError(
            f"{where} needs plugin version {version!r}, but this harmony implements "
            f"'{PLUGIN_VERSION}': use the harmony-deploy release that exported the graph, or "
            "re-export it"
        )
    namespace = values.pop(PLUGIN_NAMESPACE_ATTR, None)
    if namespace != PLUGIN_NAMESPACE:
        raise ValueError(
            f"{where} asks for plugin namespace {namespace!r}; harmony implements "
            f"'{PLUGIN_NAMESPACE}'"
        )
    known = {attr.name: attr for attr in contract.attributes}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown attributes {unknown}")
    try:
        return {name: attr.validate(values.get(name, attr.default)) for name, attr in known.items()}
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
