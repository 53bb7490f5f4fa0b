"""Provenance written into every exported graph's `metadata_props`, and reading it back."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from harmony.contract import (
    ONNX_DOMAIN,
    OPS,
    PLUGIN_NAMESPACE,
    PLUGIN_NAMESPACE_ATTR,
    check_precision,
)
from harmony.errors import HarmonyError
from harmony.version import __version__

PREFIX = "harmony."
INPUT_CONVENTION = (
    "image: [B,3,H,W] RGB in [0,1]; mask: [B,1,H,W] in [0,1], 1 = foreground (the region to "
    "harmonize); harmonized: [B,3,H,W] RGB in [0,1]; B, H, W dynamic unless the batch is fixed; "
    "any H, W >= 2 (AICT resizes to 256x256 inside, HDNet pads to multiples of 8 and crops back)"
)


def op_contract_versions() -> str:
    """`domain::Op=version` of every custom op, with the plugin namespace."""
    ops = ",".join(f"{ONNX_DOMAIN}::{op.name}={op.version}" for op in OPS)
    return f"{ops};{PLUGIN_NAMESPACE_ATTR}={PLUGIN_NAMESPACE}"


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


def load_graph(path: str | os.PathLike) -> onnx.ModelProto:
    """The ONNX graph at `path`, without external weights.

    Raises:
        HarmonyError: the file is missing, or is not a readable ONNX model (corrupt, truncated or
            another kind of file).
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise HarmonyError(f"ONNX graph {path} {what}; export one with harmony-export")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError, OSError, ...: the file's fault
        raise HarmonyError(
            f"{path} is not a readable ONNX graph (corrupt, truncated or another kind of file): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. Re-export it with "
            "harmony-export"
        ) from None
    if not model.graph.node:
        raise HarmonyError(
            f"{path} holds no ONNX graph (no nodes); re-export it with harmony-export"
        )
    return model


def graph_precision(metadata: dict[str, str], path: str | os.PathLike) -> str:
    """The precision a graph declares (`harmony.precision`; none declared: fp32, nothing was
    lowered).

    Raises:
        HarmonyError: a precision that is not supported yet (int8) or unknown.
    """
    return check_precision(metadata.get("precision", "fp32"), f"the graph {path}")


def read_graph_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The harmony metadata of the graph written by harmony-export at `path`, its "precision"
    checked (`graph_precision`).

    Raises:
        HarmonyError: unreadable graph, or one harmony-export did not write (no metadata).
    """
    metadata = read_metadata(load_graph(path))
    if "arch" not in metadata or "target" not in metadata:
        raise HarmonyError(f"{path} was not exported by harmony-export (no harmony metadata)")
    metadata["precision"] = graph_precision(metadata, path)
    return metadata
