"""Provenance written into every exported graph's `metadata_props`."""

from __future__ import annotations

import onnx

from harmony import __version__
from harmony.contract import ONNX_DOMAIN, OPS, PLUGIN_NAMESPACE

PREFIX = "harmony."
INPUT_CONVENTION = (
    "image: [B,3,H,W] RGB in [0,1]; mask: [B,1,H,W] in [0,1], 1 = foreground (the region to "
    "harmonize); harmonized: [B,3,H,W] RGB in [0,1]; B, H, W dynamic unless the batch is fixed; "
    "any H, W >= 2 (AICT resizes to 256x256 inside, HDNet pads to multiples of 8 and crops back)"
)


def op_contract_versions() -> str:
    """`domain::Op=version` of every custom op, with the plugin namespace."""
    ops = ",".join(f"{ONNX_DOMAIN}::{op.name}={op.version}" for op in OPS)
    return f"{ops};plugin_namespace={PLUGIN_NAMESPACE}"


def export_metadata(
    arch: str,
    checkpoint_sha256: str,
    target: str,
    precision: str,
    io_dtype: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The metadata of one export, keys prefixed with `harmony.`."""
    values = {
        "arch": arch,
        "source_checkpoint_sha256": checkpoint_sha256,
        "harmony_version": __version__,
        "target": target,
        "precision": precision,
        "io_dtype": io_dtype,
        "op_contract": op_contract_versions(),
        "input_convention": INPUT_CONVENTION,
        **(extra or {}),
    }
    return {PREFIX + key: str(value) for key, value in values.items()}


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Replace `model`'s metadata_props with `values` (in place)."""
    del model.metadata_props[:]
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)


def read_metadata(model: onnx.ModelProto) -> dict[str, str]:
    """The `harmony.` metadata of a model, prefix removed."""
    return {
        prop.key[len(PREFIX) :]: prop.value
        for prop in model.metadata_props
        if prop.key.startswith(PREFIX)
    }
