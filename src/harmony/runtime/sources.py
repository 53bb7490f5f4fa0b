"""What a model file the user gave is: a checkpoint, an ONNX graph written by harmony-export, or
an engine built by harmony (`ModelSource`), read from its suffix and metadata.

`describe(path)` reads what deciding whether a backend can run the file needs (its kind and, for
a graph or an engine, its precision, target and architecture) from metadata alone: a graph's
`metadata_props` (onnx only) or an engine's manifest; a checkpoint is not opened.
`identify(path)` takes a checkpoint or a graph (what harmony-bench and harmony eval plan work on)
and also loads and validates a checkpoint (architecture, parameters, how its weights were made).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from harmony.contract import ENGINE_SUFFIXES, check_precision
from harmony.errors import HarmonyError

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
GRAPH_SUFFIXES = (".onnx",)
# Model kind -> the suffixes of its files.
KIND_SUFFIXES = {
    "checkpoint": CHECKPOINT_SUFFIXES,
    "onnx": GRAPH_SUFFIXES,
    "engine": ENGINE_SUFFIXES,
}


@dataclass(frozen=True)
class ModelSource:
    """A model file given by the user.

    Attributes:
        path: the file.
        kind: "checkpoint", "onnx" or "engine".
        arch: "aict", "hdnet" or "hdnet-lite"; None where not read (a checkpoint `describe`d
            only, an engine).
        params: parameter count; None where not read or not recorded.
        precision: a graph's or an engine's own precision; None for a checkpoint (any).
        target: the export target a graph was written for or an engine built from ("trt" or
            "ort"); None for a checkpoint.
        weights: how the weights were made (`harmony.models.checkpoint.weights_label`; a graph
            carries its checkpoint's), "" where not read or not recorded.
    """

    path: Path
    kind: str
    arch: str | None = None
    params: int | None = None
    precision: str | None = None
    target: str | None = None
    weights: str = ""

    @property
    def fitted(self) -> bool:
        """Whether the weights were fitted by `harmony fit` (their quality means something)."""
        from harmony.models.checkpoint import FITTED_LABEL

        return self.weights.startswith(FITTED_LABEL)


def model_kind(path: str | os.PathLike) -> str:
    """ "checkpoint", "onnx" or "engine", from the suffix of `path`.

    Raises:
        HarmonyError: a suffix of none of them (a missing file is named as such).
    """
    suffix = Path(path).suffix.lower()
    for kind, suffixes in KIND_SUFFIXES.items():
        if suffix in suffixes:
            return kind
    if not Path(path).exists():
        raise HarmonyError(
            f"model {path} does not exist; pass a checkpoint, a .onnx graph or an engine"
        )
    kinds = "; ".join(f"{', '.join(suffixes)} ({kind})" for kind, suffixes in KIND_SUFFIXES.items())
    raise HarmonyError(f"cannot tell what {path} is from its suffix '{suffix}'; expected {kinds}")


def describe(path: str | os.PathLike) -> ModelSource:
    """What `path` is, from its suffix and metadata (see the module docstring).

    Raises:
        HarmonyError: an unknown suffix; a graph that is unreadable or not written by
            harmony-export; an engine without a readable manifest.
    """
    path = Path(path)
    kind = model_kind(path)
    if kind == "onnx":
        from harmony.export.metadata import read_graph_metadata

        metadata = read_graph_metadata(path)
        return ModelSource(
            path,
            kind,
            metadata["arch"],
            int(metadata["params"]) if "params" in metadata else None,
            metadata["precision"],
            metadata["target"],
            metadata.get("weights", ""),
        )
    if kind == "engine":
        from harmony.engines.manifest import read_manifest

        if not path.is_file():
            raise HarmonyError(
                f"engine {path} does not exist; build it with `harmony build MODEL.onnx -o {path}`"
            )
        precision = check_precision(read_manifest(path).precision, f"the engine {path}")
        return ModelSource(path, kind, precision=precision, target="trt")
    return ModelSource(path, kind)


def identify(path: str | os.PathLike) -> ModelSource:
    """`describe(path)` of a checkpoint or a graph, a checkpoint also loaded and validated
    (arch, parameters, weights).

    Raises:
        HarmonyError: another kind of file; as `describe`; a missing, unreadable or foreign
            checkpoint.
    """
    if Path(path).suffix.lower() not in (*CHECKPOINT_SUFFIXES, *GRAPH_SUFFIXES):
        raise HarmonyError(
            f"expected a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) or a .onnx graph, got {path}"
        )
    source = describe(path)
    if source.kind != "checkpoint":
        return source
    from harmony.models import load_checkpoint
    from harmony.models.checkpoint import weights_label

    model = load_checkpoint(source.path)
    return replace(
        source,
        arch=model.arch,
        params=sum(p.numel() for p in model.parameters()),
        weights=weights_label(model.checkpoint.metadata),
    )
