"""Reading and writing checkpoints in the official formats.

AICT's training code saves `{"model": state_dict, "optimizer": ..., "epoch": ...}`; HDNet's saves
a bare state_dict. Both may carry a `module.` prefix when saved from a DataParallel wrapper.
`.safetensors` files are read too. Files are always loaded with `weights_only=True`.
Provenance written by this project (for example "random weights, seed 3") lives in the state
dict's `_metadata["harmony"]` entry (PyTorch's own per-module metadata, ignored by the official
loaders) or, for safetensors, under the `harmony` metadata key as JSON.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from harmony.contract import ARCHS
from harmony.errors import HarmonyError
from harmony.files import atomic_output
from harmony.models.aict import AICT
from harmony.models.hdnet import HDNet

HDNET_NGF = {"hdnet": 32, "hdnet-lite": 8}
FITTED_LABEL = "fitted on synthetic composites"
MODEL_CLASSES = {"aict": AICT, "hdnet": HDNet, "hdnet-lite": HDNet}
METADATA_KEY = "harmony"
_MAX_LISTED = 8


@dataclass
class CheckpointInfo:
    """What a checkpoint file holds: arch, format and provenance metadata."""

    path: Path
    arch: str
    source_format: str
    metadata: dict = field(default_factory=dict)
    hdnet_ngf: int | None = None
    hdnet_input_nc: int | None = None


def build_model(arch: str, ngf: int | None = None, input_nc: int = 3) -> nn.Module:
    """A freshly initialised model of `arch` ("aict", "hdnet", "hdnet-lite")."""
    if arch == "aict":
        return AICT()
    if arch in HDNET_NGF:
        return HDNet(ngf=HDNET_NGF[arch] if ngf is None else ngf, input_nc=input_nc)
    raise HarmonyError(f"unknown architecture '{arch}'; expected one of {', '.join(ARCHS)}")


def load_checkpoint(path: str | os.PathLike, arch: str | None = None) -> nn.Module:
    """Load an official AICT/HDNet checkpoint (or .safetensors) into an eval-mode model.

    Args:
        path: checkpoint file.
        arch: "aict", "hdnet" or "hdnet-lite"; None detects it from the keys and shapes.
    Returns:
        The model in eval mode with `.arch`, `.checkpoint` (a `CheckpointInfo`) set.
    Raises:
        HarmonyError: unreadable/corrupt file, not a checkpoint, wrong arch, missing,
            unexpected or mis-shaped keys (all named).
    """
    path = Path(path)
    state_dict, source_format, metadata = _read_state_dict(path)
    info = _detect(path, state_dict, source_format, metadata)
    if arch is not None and arch != info.arch:
        raise HarmonyError(
            f"{path}: --arch {arch} was requested but the checkpoint holds a {info.arch} "
            f"network; pass --arch {info.arch} or --arch auto"
        )
    model = build_model(info.arch, info.hdnet_ngf, info.hdnet_input_nc or 3)
    _check_keys(path, _closest_model(model, state_dict, arch is None), state_dict)
    _check_floating(path, model, state_dict)
    _check_finite(path, state_dict)
    model.load_state_dict(state_dict, strict=True)
    model.checkpoint = info
    return model.eval()


def weights_label(metadata: dict) -> str:
    """How a checkpoint's weights were made, from its provenance `metadata`, as every command
    prints it: fitted (`harmony fit`), random (`harmony init`) or not made by harmony."""
    if metadata.get("fitted"):
        return f"{FITTED_LABEL} (harmony fit, seed {metadata['settings']['seed']})"
    if metadata.get("random_init"):
        return f"RANDOM (harmony init, seed {metadata['seed']})"
    return "not made by harmony (official or own training)"


def inspect_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """Arch, source format and metadata of a checkpoint, after a full validating load."""
    return load_checkpoint(path).checkpoint


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    metadata: dict,
    force: bool = False,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write `model` in its official format (AICT: {"model": sd}; HDNet: bare sd), atomically.

    `metadata` (JSON-serialisable) is stored as provenance; `dtype` (e.g. torch.float16) is
    the type floating-point tensors are stored in, None (default) keeps theirs (loading casts
    them back to the model's float32); an existing file is only replaced with `force=True`.
    """
    state_dict = model.state_dict()
    if dtype is not None:
        for key, value in state_dict.items():
            if value.is_floating_point():
                state_dict[key] = value.to(dtype)
    state_dict._metadata[METADATA_KEY] = dict(metadata)
    payload = {"model": state_dict} if isinstance(model, AICT) else state_dict
    with atomic_output(path, force) as temp:
        torch.save(payload, temp)
    return Path(path)


def _read_state_dict(path: Path) -> tuple[dict, str, dict]:
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise HarmonyError(f"checkpoint {path} {what}; pass the path of a .pth/.pt/.safetensors")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    _check_torch_file(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 23": said below
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickler_reason(exc)
        if reason.startswith("Unsupported global"):
            raise HarmonyError(
                f"{path}: holds Python objects other than tensors and plain containers, which "
                f"harmony never unpickles ({reason}); save the weights alone: "
                "torch.save(model.state_dict(), PATH)"
            ) from None
        raise HarmonyError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {reason}"
        ) from None
    except Exception as exc:  # a failure to parse an untrusted file is the file's fault
        raise HarmonyError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {_first_line(exc)}"
        ) from None
    if isinstance(payload, dict) and isinstance(payload.get("model"), dict):
        state_dict, source_format = payload["model"], "aict-official"
    elif isinstance(payload, dict) and payload and all(_is_tensor(v) for v in payload.values()):
        state_dict, source_format = payload, "bare-state-dict"
    else:
        keys = list(payload)[:_MAX_LISTED] if isinstance(payload, dict) else type(payload).__name__
        raise HarmonyError(
            f"{path}: not a model checkpoint; expected a state_dict or a dict with the weights "
            f"under 'model', got {keys}"
        )
    metadata = dict(getattr(state_dict, "_metadata", {}).get(METADATA_KEY, {}))
    return _strip_module_prefix(state_dict), source_format, metadata


def _read_safetensors(path: Path) -> tuple[dict, str, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            state_dict = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            raw = (handle.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        raise HarmonyError(f"{path}: not a readable safetensors file: {exc}") from None
    return _strip_module_prefix(state_dict), "safetensors", json.loads(raw) if raw else {}


# What a torch.save file starts with: a zip archive (PyTorch >= 1.6), or the legacy format's
# pickle (protocol >= 2 opcode).
_TORCH_FILE_MAGIC = (b"PK\x03\x04", b"\x80")


def _check_torch_file(path: Path) -> None:
    """Raise HarmonyError naming what `path` is when it is no torch.save file at all."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(_TORCH_FILE_MAGIC):
        return
    if _is_onnx_graph(path):
        raise HarmonyError(
            f"{path} is an ONNX graph, not a checkpoint; run it with ONNX Runtime as a .onnx file "
            "(harmony-run --model GRAPH.onnx), or pass the checkpoint it was exported from"
        )
    raise HarmonyError(
        f"{path} is not a PyTorch checkpoint: a torch.save file is a zip archive (or a legacy "
        f"pickle), this one starts with bytes {head.hex(' ') or '(none: empty file)'}; pass the "
        ".pth/.pt file saved by the official training code, or a .safetensors file"
    )


def _is_onnx_graph(path: Path) -> bool:
    import onnx

    try:
        return bool(onnx.load(str(path), load_external_data=False).graph.node)
    except Exception:  # anything unreadable is not an ONNX graph
        return False


def _unpickler_reason(exc: Exception) -> str:
    """What PyTorch's weights-only unpickler refused, in its own words, without its advice to
    load the file unsafely."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker not in text:
        return _first_line(exc)
    reason = text.split(marker, 1)[1].strip()
    return reason.split(". ")[0].splitlines()[0].rstrip(".")


def _check_floating(path: Path, model: nn.Module, state_dict: dict) -> None:
    """Raise HarmonyError naming the tensors stored as integers (or booleans) where the network
    holds floating-point weights: loading would truncate them silently."""
    expected = model.state_dict()
    bad = [
        f"{key} ({str(value.dtype).removeprefix('torch.')})"
        for key, value in state_dict.items()
        if expected[key].is_floating_point() and not value.is_floating_point()
    ]
    if bad:
        listed = ", ".join(bad[:_MAX_LISTED]) + (" ..." if len(bad) > _MAX_LISTED else "")
        raise HarmonyError(
            f"{path} stores {len(bad)} weight tensor(s) as integers, which would lose their "
            f"values: {listed}; save the floating-point weights (float32, float16 or bfloat16)"
        )


def _check_finite(path: Path, state_dict: dict) -> None:
    """Raise HarmonyError naming the tensors that hold NaN or infinite values."""
    bad = [
        key
        for key, value in state_dict.items()
        if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if bad:
        listed = ", ".join(bad[:_MAX_LISTED]) + (" ..." if len(bad) > _MAX_LISTED else "")
        raise HarmonyError(
            f"{path} holds NaN or infinite weights in {len(bad)} tensor(s): {listed}; the "
            "checkpoint is corrupt or came from a diverged training run"
        )


def _is_tensor(value) -> bool:
    return isinstance(value, torch.Tensor)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _strip_module_prefix(state_dict: dict) -> dict:
    prefix = "module."
    if state_dict and all(key.startswith(prefix) for key in state_dict):
        return {key[len(prefix) :]: value for key, value in state_dict.items()}
    return dict(state_dict)


def _detect(path: Path, state_dict: dict, source_format: str, metadata: dict) -> CheckpointInfo:
    if "encoder.patch_to_embedding.1.weight" in state_dict:
        return CheckpointInfo(path, "aict", source_format, metadata)
    first = state_dict.get("model_layer0.weight")
    if first is not None and first.dim() == 4:
        ngf, input_nc = int(first.shape[0]), int(first.shape[1])
        arch = "hdnet-lite" if ngf == HDNET_NGF["hdnet-lite"] else "hdnet"
        return CheckpointInfo(path, arch, source_format, metadata, ngf, input_nc)
    raise HarmonyError(
        f"{path}: cannot tell the architecture: neither AICT's "
        "'encoder.patch_to_embedding.1.weight' nor HDNet's 'model_layer0.weight' [ngf,3,3,3] "
        "is present "
        f"(first keys: {list(state_dict)[:_MAX_LISTED]})"
    )


def _mismatches(model: nn.Module, state_dict: dict) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, wrong shapes) of `state_dict` against `model`'s."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    wrong = [
        f"{key}: expected {list(value.shape)}, got {list(state_dict[key].shape)}"
        for key, value in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(value.shape)
    ]
    return missing, unexpected, wrong


def _closest_model(model: nn.Module, state_dict: dict, detected: bool) -> nn.Module:
    """`model`, or where its architecture was detected from the first layer's width (HDNet,
    HDNet-lite) and another variant matches `state_dict` with fewer problems, that variant: a
    file whose first tensor alone has the wrong shape is named as the network it is."""
    if not detected or model.arch not in HDNET_NGF:
        return model
    candidates = [model] + [build_model(arch) for arch in HDNET_NGF if arch != model.arch]
    return min(candidates, key=lambda m: sum(map(len, _mismatches(m, state_dict))))


def _check_keys(path: Path, model: nn.Module, state_dict: dict) -> None:
    missing, unexpected, wrong = _mismatches(model, state_dict)
    problems = [
        f"{label} ({len(items)}): {', '.join(items[:_MAX_LISTED])}"
        + (" ..." if len(items) > _MAX_LISTED else "")
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", wrong),
        )
        if items
    ]
    if problems:
        arch = model.arch
        closest = f" (the closest of {', '.join(HDNET_NGF)})" if arch in HDNET_NGF else ""
        raise HarmonyError(
            f"{path} does not match the official {arch} state_dict{closest}:\n  "
            + "\n  ".join(problems)
        )
