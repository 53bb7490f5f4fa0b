"""Validation of an exported graph: ONNX checker, shape inference, parity with PyTorch.

Parity runs the graph on demo composites (`harmony.data.demo_composite`) and compares it with
`harmony.harmonize` (the PyTorch pipeline) in float32: max abs error and PSNR over [0,1]. Graphs
run on the very bytes written, by a runner of `harmony.export.reference` (the exporter's:
`verification_runner`, custom nodes in the plugins' math).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import nn

from harmony.contract import GRAPH_INPUTS, QUALITY_CHECK_IMAGES
from harmony.data import demo_composite
from harmony.data.demo import held_out_composites
from harmony.errors import HarmonyError
from harmony.metrics import psnr_db
from harmony.models import harmonize
from harmony.quality import REFERENCE, QualityTarget, evaluate, gain_over_composite

MIN_PSNR_DB = {"fp32": 60.0, "fp16": 40.0}
# INT8 graphs are gated in harmonization terms, per architecture: PSNR against the FP32 output
# on the parity composites, and the share of the FP32 model's held-out PSNR gain over the
# composite they keep (fitted weights only: the gain of random weights means nothing).
INT8_MIN_PSNR_DB = {"aict": 35.0, "hdnet-lite": 30.0, "hdnet": 30.0}
INT8_MIN_GAIN_KEPT = 0.8
# One square and one non-square size that is not a multiple of 8 (exercises HDNet's padding).
DEFAULT_SIZES = ((512, 512), (375, 500))


class VerificationError(HarmonyError):
    """The written graph failed a check; the export is refused and no file is left."""


@dataclass(frozen=True)
class Parity:
    """Graph vs PyTorch on one input: shape, max abs error and PSNR (dB, inf when identical)."""

    batch: int
    height: int
    width: int
    max_abs: float
    psnr_db: float

    @property
    def size(self) -> str:
        return f"{self.batch}x{self.height}x{self.width}"


def check_graph(path: str | os.PathLike) -> onnx.ModelProto:
    """Run the full ONNX checker and strict shape inference on the file; return the model.

    Raises:
        VerificationError: the checker or shape inference rejects the graph.
    """
    try:
        onnx.checker.check_model(os.fspath(path), full_check=True)
        model = onnx.load(os.fspath(path))
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise VerificationError(f"the exported graph is invalid: {exc}") from exc
    return model


def demo_batch(height: int, width: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` demo composites (seeds 0..batch-1) of one size: image [B,3,H,W], mask [B,1,H,W]."""
    samples = [demo_composite(height, width, seed=seed)[:2] for seed in range(batch)]
    return torch.cat([s[0] for s in samples]), torch.cat([s[1] for s in samples])


def parity(
    model: nn.Module,
    runner,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batch: int = 1,
    io_fp16: bool = False,
) -> list[Parity]:
    """Compare the graph run by `runner` (anything with `run(feeds) -> [output]`, e.g. a
    `SplitOrtRunner`) with `harmony.harmonize(model, ...)` at each size."""
    results = []
    for height, width in sizes:
        image, mask = demo_batch(height, width, batch)
        if io_fp16:  # both sides see the same (float16-representable) input values
            image, mask = image.half().float(), mask.half().float()
        expected = harmonize(model, image, mask).numpy()
        dtype = np.float16 if io_fp16 else np.float32
        feeds = dict(
            zip(
                GRAPH_INPUTS, (image.numpy().astype(dtype), mask.numpy().astype(dtype)), strict=True
            )
        )
        (actual,) = runner.run(feeds)
        actual = actual.astype(np.float32)
        if actual.shape != expected.shape:
            raise VerificationError(
                f"the graph returned shape {list(actual.shape)} for a {batch}x3x{height}x{width} "
                f"input; expected {list(expected.shape)}"
            )
        results.append(
            Parity(
                batch,
                height,
                width,
                float(np.max(np.abs(actual - expected))),
                psnr_db(expected, actual),
            )
        )
    return results


class _GraphFeeds:
    """`infer(image, mask)` of one image by a graph runner (`run(feeds)`): fed in the graph's
    I/O dtype, repeated to its batch (a graph may take that batch only); the first output."""

    def __init__(self, runner, io_fp16: bool, batch: int):
        self.runner, self.batch = runner, batch
        self.dtype = np.float16 if io_fp16 else np.float32

    def infer(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feeds = {
            name: tensor.expand(self.batch, -1, -1, -1).numpy().astype(self.dtype)
            for name, tensor in zip(GRAPH_INPUTS, (image, mask), strict=True)
        }
        (output,) = self.runner.run(feeds)
        return torch.from_numpy(output[:1].astype(np.float32))


class _PyTorchPipeline:
    """`infer(image, mask)` of `harmony.harmonize(model, ...)`."""

    def __init__(self, model: nn.Module):
        self.model = model

    def infer(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return harmonize(self.model, image, mask)


def graph_held_out_quality(
    model: nn.Module,
    runner,
    label: str,
    io_fp16: bool = False,
    batch: int = 1,
    count: int = QUALITY_CHECK_IMAGES,
) -> dict:
    """Harmonization quality of the graph run by `runner` beside the PyTorch pipeline's, on the
    first `count` held-out composites (`harmony.data.demo.held_out_composites`), fed to the
    graph at `batch` (its fixed batch; 1 for a dynamic one): the "means"
    (composite, "torch fp32", `label`) and "drift" of `harmony.quality.evaluate`."""
    runners = {
        QualityTarget(*REFERENCE).label: _PyTorchPipeline(model),
        label: _GraphFeeds(runner, io_fp16, batch),
    }
    result = evaluate(held_out_composites(count), runners)
    return {"images": result["images"], "means": result["means"], "drift": result["drift"]}


def min_psnr_db(precision: str, arch: str) -> float:
    """The parity bound of a graph: by precision, and for int8 by architecture."""
    return INT8_MIN_PSNR_DB[arch] if precision == "int8" else MIN_PSNR_DB[precision]


def gain_kept(quality: dict, label: str) -> float:
    """The share of the PyTorch FP32 pipeline's held-out PSNR gain over the composite that the
    graph (`label` in `graph_held_out_quality`'s result) keeps; 1.0 where FP32 gains nothing."""
    reference_gain = gain_over_composite(quality["means"])["psnr_gain_db"]
    if reference_gain <= 0:
        return 1.0
    return gain_over_composite(quality["means"], label)["psnr_gain_db"] / reference_gain


def check_gain_kept(quality: dict, label: str) -> float:
    """`gain_kept`, or VerificationError (with the figures) below INT8_MIN_GAIN_KEPT."""
    kept = gain_kept(quality, label)
    if not kept >= INT8_MIN_GAIN_KEPT:
        means = quality["means"]
        figures = ", ".join(f"{name} {m['psnr']:.2f} dB" for name, m in means.items())
        raise VerificationError(
            f"held-out quality check failed (int8 must keep >= {INT8_MIN_GAIN_KEPT:.0%} of the "
            f"FP32 PSNR gain over the composite): kept {kept:.0%} ({figures})"
        )
    return kept


def check_parity(results: Sequence[Parity], precision: str, arch: str) -> None:
    """Raise VerificationError (with the figures) if any PSNR is below `min_psnr_db`."""
    bound = min_psnr_db(precision, arch)
    failed = [r for r in results if not r.psnr_db >= bound]
    if failed:
        figures = "; ".join(
            f"{r.size}: max abs {r.max_abs:.3g}, PSNR {r.psnr_db:.1f} dB" for r in failed
        )
        raise VerificationError(
            f"parity check failed ({precision} needs PSNR >= {bound:.0f} dB against the PyTorch "
            f"pipeline): {figures}"
        )
