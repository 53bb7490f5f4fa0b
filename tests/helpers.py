"""Shared test inputs and tools."""

from __future__ import annotations

import contextlib
import os
import subprocess
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
# The (arch, target, precision) exports whose structure and parity tests/export checks. Full
# HDNet's portable FP16 graph is left out: HDNet-lite's is the same graph (ngf 8), full HDNet's
# FP16 is covered by its TensorRT-target graph, and the export alone takes 40 s.
EXPORTED_GRAPHS = [
    (arch, target, precision)
    for arch in ("aict", "hdnet", "hdnet-lite")
    for target in ("trt", "ort")
    for precision in ("fp32", "fp16")
    if (arch, target, precision) != ("hdnet", "ort", "fp16")
]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_plugins.sh"


def blob_mask(height: int, width: int, batch: int = 1, soft: bool = False) -> torch.Tensor:
    """A deterministic elliptical foreground mask [B,1,H,W] (binary, or with a soft edge)."""
    ys = torch.linspace(-1, 1, height)[:, None]
    xs = torch.linspace(-1, 1, width)[None, :]
    masks = []
    for b in range(batch):
        r = ((ys - 0.1 * b) / 0.6) ** 2 + ((xs + 0.15 * b) / 0.45) ** 2
        m = (1.2 - r).clamp(0, 0.2) / 0.2 if soft else (r < 1).float()
        masks.append(m)
    return torch.stack(masks)[:, None]


def tensorrt_plugin_build_env(build_dir: Path) -> dict[str, str]:
    """How the tests build libharmony_plugins.so: into `build_dir`, warnings as errors, for
    one RTX architecture (sm_86) to keep the build short (test_plugin_cuda_ops covers sm_80/90)."""
    return {
        "HARMONY_PLUGIN_DIR": str(build_dir),
        "HARMONY_CUDA_ARCHITECTURES": "86",
        "HARMONY_WERROR": "1",
    }


def onnxruntime_headers_root() -> str:
    """$ONNXRUNTIME_ROOT where it holds include/onnxruntime_c_api.h; skips the test otherwise."""
    root = os.environ.get("ONNXRUNTIME_ROOT")
    if not root:
        pytest.skip(
            "ONNXRUNTIME_ROOT is not set: point it at a directory with include/onnxruntime_c_api.h"
        )
    if not (Path(root) / "include" / "onnxruntime_c_api.h").is_file():
        pytest.skip(f"ONNXRUNTIME_ROOT={root} has no include/onnxruntime_c_api.h")
    return root


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run `command` (extra `env` on top of os.environ); return its output, fail with it."""
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout + result.stderr


@contextlib.contextmanager
def bound_plugin_dir(build_dir: Path, *bindings: types.ModuleType) -> Iterator[None]:
    """Point harmony.plugins at `build_dir` (HARMONY_PLUGIN_DIR) and make `bindings` (modules of
    harmony.plugins) and the op dispatch load their libraries from there; restored afterwards."""
    from harmony.dispatch import fused_kernels_unavailable

    def forget() -> None:
        for binding in bindings:
            binding._library.cache_clear()
        fused_kernels_unavailable.cache_clear()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARMONY_PLUGIN_DIR", str(build_dir))
        forget()
        yield
    forget()
