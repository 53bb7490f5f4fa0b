"""What only a GPU shows, in one run (`harmony gpu-check`, which `scripts/gpu_check.sh` runs after
installing and building): parity of the CUDA kernels and of the fused PyTorch pipeline, a
kernel micro-benchmark, and harmony-bench on the device.

- parity: the plugin kernels (libharmony_cuda_ops.so) against `harmony.ops` in float64, FP32
  (max abs <= 1e-5) and FP16 (<= 2e-3), eager and replayed from a CUDA graph, at every size; the
  torch runner with the fused kernels and CUDA graphs against the CPU reference pipeline, for
  AICT, HDNet-lite and HDNet (random weights: parity does not need fitted ones), at the first
  size;
- kernels: time of each kernel and of its PyTorch reference on the device, with the LUT's
  achieved bandwidth and the KNN's FLOP rate (2 x foreground x background x C: the masked work
  only), beside the GPU's peaks where the device is known (`PEAKS`);
- bench: `harmony-bench`'s measurement (each configuration in its own process) of the torch
  backend per architecture, size and precision: reference ops eager (the stand-in for the
  official eager pipeline, which needs the official code and is not on the machine), fused
  kernels eager, fused kernels replayed from CUDA graphs.

A dry run (`dry_run=True`) runs every step on the CPU at 64x64 with one iteration, the plugin
math coming from its CPU build (libharmony_cpu_ops.so): the kernels against `harmony.ops`, and
the pipeline with the ops replaced by that build against the reference pipeline. The test suite
runs it, so the check is known to work before a GPU is lent.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import torch

from harmony import ops
from harmony.contract import ARCHS, CASCADED_LUT, KNN_TOPK_FUSION, LUT_CURVE_POINTS, LUT_KNOTS
from harmony.data.demo import demo_composite
from harmony.dispatch import replaced_ops
from harmony.metrics import psnr_db
from harmony.models import build_model, harmonize
from harmony.models.aict import LOW_RES
from harmony.models.init import make_random_checkpoint, randomize_
from harmony.plugins import cpu, cuda
from harmony.profiling.config import BenchConfig
from harmony.profiling.environment import environment
from harmony.profiling.latency import measure_latency
from harmony.profiling.measure import run_configs
from harmony.profiling.report import backend_label
from harmony.runtime.cuda_graphs import GraphedCall
from harmony.runtime.torch_runner import TorchRunner

SIZES = ((1024, 1024), (2048, 2048))
DRY_SIZES = ((64, 64),)
KERNEL_ATOL = {torch.float32: 1e-5, torch.float16: 2e-3}
PIPELINE_ATOL = 2e-4  # the pipeline on the plugin kernels vs the CPU reference, float32
KNN_CHANNELS = 256  # HDNet's LocalDynamics width (ngf 32 x 8)
KNN_STRIDE = 8  # its features are at 1/8 of the image side
# Published peaks (dense, no sparsity): HBM bandwidth GB/s and FP32 CUDA-core / FP16
# tensor-core TFLOP/s, by a substring of torch's device name.
PEAKS = {
    "H200": {"bandwidth_gbs": 4800, "fp32_tflops": 67, "fp16_tensor_tflops": 989},
    "H100 80GB HBM3": {"bandwidth_gbs": 3350, "fp32_tflops": 67, "fp16_tensor_tflops": 989},
    "H100 PCIe": {"bandwidth_gbs": 2000, "fp32_tflops": 51, "fp16_tensor_tflops": 756},
}


def gpu_check_document(dry_run: bool, command: str) -> dict:
    """The whole check on the CUDA device (or, `dry_run`, on the CPU): {"environment",
    "device", "dry_run", "parity", "kernels", "bench"}."""
    device = "cpu" if dry_run else "cuda"
    sizes = DRY_SIZES if dry_run else SIZES
    iterations = (0, 1) if dry_run else (3, 20)
    return {
        "environment": environment(command),
        "device": device_facts(device),
        "dry_run": dry_run,
        "parity": kernel_parity(device, sizes) + pipeline_parity(device, sizes[0]),
        "kernels": kernel_timings(device, sizes, iterations),
        "bench": bench_records(device, sizes, iterations),
    }


def failed_checks(document: dict) -> list[str]:
    """The parity checks of `document` that failed."""
    return [row["check"] for row in document["parity"] if not row["passed"]]


def device_facts(device: str) -> dict:
    if device == "cpu":
        return {"name": "cpu (dry run)", "peaks": None}
    props = torch.cuda.get_device_properties(0)
    name = props.name
    return {
        "name": name,
        "compute_capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "cuda": torch.version.cuda,
        "driver": _driver_version(),
        "peaks": next((peak for key, peak in PEAKS.items() if key in name), None),
    }


def _driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None


# --- inputs ------------------------------------------------------------------------------------


def lut_inputs(height: int, width: int, device: str, seed: int = 0):
    """The LUT stage's inputs as AICT makes them: image and mask at full size, knots (a
    zero-prefixed cumulative softmax) and curve at 256x256."""
    gen = torch.Generator().manual_seed(seed)
    image, mask, _ = demo_composite(height, width, seed=seed)
    shape = (1, 3, LUT_KNOTS - 1, LOW_RES, LOW_RES)
    intervals = torch.softmax(torch.randn(shape, generator=gen), dim=2)
    knots = torch.cat([torch.zeros(1, 3, 1, LOW_RES, LOW_RES), intervals.cumsum(dim=2)], dim=2)
    curve = torch.rand(1, 3, LUT_CURVE_POINTS, LOW_RES, LOW_RES, generator=gen)
    return [t.to(device) for t in (image, mask, knots, curve)]


def knn_inputs(height: int, width: int, device: str, seed: int = 0):
    """HDNet's LocalDynamics inputs for an image of this size: [1,256,H/8,W/8] features and the
    demo composite's blob mask at that resolution."""
    h, w = max(height // KNN_STRIDE, 1), max(width // KNN_STRIDE, 1)
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(1, KNN_CHANNELS, h, w, generator=gen)
    _, mask, _ = demo_composite(h, w, seed=seed)
    return features.to(device), mask.to(device)


def _kernels(device: str):
    """(cascaded_lut, knn_topk_fusion) of the plugin build for `device`."""
    build = cuda if device == "cuda" else cpu
    return build.cascaded_lut, build.knn_topk_fusion


# --- parity ------------------------------------------------------------------------------------


def kernel_parity(device: str, sizes) -> list[dict]:
    lut, knn = _kernels(device)
    dtypes = (torch.float32, torch.float16) if device == "cuda" else (torch.float32,)
    rows = []
    for height, width in sizes:
        for dtype in dtypes:
            image, mask, knots, curve = (t.to(dtype) for t in lut_inputs(height, width, device))
            expected = ops.cascaded_lut(*(t.double() for t in (image, mask, knots, curve)))
            rows += _compare(
                f"LUT {height}x{width}",
                dtype,
                lambda x, m, knots=knots, curve=curve: lut(x, m, knots, curve),
                (image, mask),
                expected,
                device,
            )
            features, mask = (t.to(dtype) for t in knn_inputs(height, width, device))
            expected = ops.knn_topk_fusion(features.double(), mask.double())
            rows += _compare(
                f"KNN {height}x{width}", dtype, knn, (features, mask), expected, device
            )
    return rows


def _compare(what: str, dtype, fn, inputs, expected, device: str) -> list[dict]:
    """`fn(*inputs)` eager and, on CUDA, replayed from a CUDA graph, against `expected`."""
    modes = {"eager": fn}
    if device == "cuda":
        modes["cuda graph"] = GraphedCall(fn)  # the first call captures, the second replays
    atol = KERNEL_ATOL[dtype]
    rows = []
    for mode, call in modes.items():
        with torch.inference_mode():
            call(*inputs)
            actual = call(*inputs)
        error = float((actual.double() - expected).abs().max())
        rows.append(
            {
                "check": f"{what} {str(dtype).removeprefix('torch.')} {mode}",
                "max_abs": error,
                "bound": atol,
                "passed": error <= atol,
            }
        )
    return rows


def pipeline_parity(device: str, size: tuple[int, int]) -> list[dict]:
    """Each architecture's pipeline on the plugin kernels against the CPU reference pipeline
    (`harmony.ops`): on CUDA the torch runner with the fused kernels and CUDA graphs, on the CPU
    the pipeline with both ops replaced by the plugins' CPU build."""
    image, mask, _ = demo_composite(*size)
    rows = []
    for arch in ARCHS:
        model = randomize_(build_model(arch), seed=3).eval()
        expected = harmonize(model, image, mask)
        if device == "cuda":
            with TorchRunner(model, device=device, kernels="fused", cuda_graphs=True) as runner:
                runner.infer(image, mask)  # capture
                actual = runner.infer(image, mask).cpu()
                what = f"{runner.kernels} kernels" + (", CUDA graphs" if runner.cuda_graphs else "")
        else:
            plugin_ops = {CASCADED_LUT: cpu.cascaded_lut, KNN_TOPK_FUSION: cpu.knn_topk_fusion}
            with replaced_ops(plugin_ops):
                actual = harmonize(model, image, mask)
            what = "libharmony_cpu_ops.so ops"
        error = float((actual - expected).abs().max())
        rows.append(
            {
                "check": f"{arch} pipeline {size[0]}x{size[1]} ({what}) vs CPU reference",
                "max_abs": error,
                "psnr_db": psnr_db(expected.numpy(), actual.numpy()),
                "bound": PIPELINE_ATOL,
                "passed": error <= PIPELINE_ATOL,
            }
        )
    return rows


# --- kernel micro-benchmark --------------------------------------------------------------------


def kernel_timings(device: str, sizes, iterations: tuple[int, int]) -> list[dict]:
    lut, knn = _kernels(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    dtypes = (torch.float32, torch.float16) if device == "cuda" else (torch.float32,)
    rows = []
    for height, width in sizes:
        for dtype in dtypes:
            inputs = [t.to(dtype) for t in lut_inputs(height, width, device)]
            # every input read once, the output (the image's size) written once
            moved = sum(t.numel() * t.element_size() for t in [*inputs, inputs[0]])
            for impl, fn in (("kernel", lut), ("torch", ops.cascaded_lut)):
                ms = _time(fn, inputs, sync, iterations)
                rows.append(_timing("LUT", height, width, dtype, impl, ms, bytes_moved=moved))
            features, mask = (t.to(dtype) for t in knn_inputs(height, width, device))
            foreground = int((mask > 0.5).sum())
            flops = 2 * foreground * (mask.numel() - foreground) * features.shape[1]
            for impl, fn in (("kernel", knn), ("torch", ops.knn_topk_fusion)):
                ms = _time(fn, (features, mask), sync, iterations)
                rows.append(_timing("KNN", height, width, dtype, impl, ms, flops=flops))
    return rows


def _time(fn, inputs, sync, iterations: tuple[int, int]) -> float:
    warmup, count = iterations
    with torch.inference_mode():
        return measure_latency(lambda: fn(*inputs), sync, warmup, count).mean


def _timing(op, height, width, dtype, impl, ms, bytes_moved=None, flops=None) -> dict:
    row = {
        "op": op,
        "size": f"{height}x{width}",
        "dtype": str(dtype).removeprefix("torch."),
        "impl": impl,
        "ms": round(ms, 3),
    }
    if bytes_moved is not None:
        row["bandwidth_gbs"] = round(bytes_moved / ms / 1e6, 1)
    if flops is not None:
        row["gflops"] = round(flops / ms / 1e6, 1)
        row["masked_gflop"] = round(flops / 1e9, 3)
    return row


# --- harmony-bench on the device ---------------------------------------------------------------


def bench_records(device: str, sizes, iterations: tuple[int, int]) -> list[dict]:
    """harmony-bench's records of the torch backend: reference eager, fused eager, fused with
    CUDA graphs (on the CPU: the reference alone), per architecture, size and precision."""
    work = Path(tempfile.mkdtemp(prefix="harmony-gpu-check-"))
    variants = (
        [("reference", False), ("fused", False), ("fused", True)]
        if device == "cuda"
        else [("reference", None)]
    )
    precisions = ("fp32", "fp16") if device == "cuda" else ("fp32",)
    configs = []
    for arch in ARCHS:
        checkpoint = make_random_checkpoint(arch, 0, work / f"{arch}.pth")
        for height, width in sizes:
            for precision in precisions:
                for kernels, graphs in variants:
                    configs.append(
                        BenchConfig(
                            arch=arch,
                            source=str(checkpoint),
                            backend="torch",
                            precision=precision,
                            device=device,
                            height=height,
                            width=width,
                            batch=1,
                            warmup=iterations[0],
                            iterations=max(iterations[1] // 2, 1),
                            kernels=kernels,
                            cuda_graphs=graphs,
                            model=str(checkpoint),
                        )
                    )
    return run_configs(configs)


# --- report ------------------------------------------------------------------------------------


def markdown(document: dict) -> str:
    env, gpu = document["environment"], document["device"]
    peaks = gpu.get("peaks")
    lines = [
        "# GPU check" + (" (dry run on the CPU)" if document["dry_run"] else ""),
        "",
        f"- device: {gpu['name']}"
        + (
            f" (compute capability {gpu['compute_capability']}, {gpu['memory_gib']} GiB, "
            f"{gpu['multiprocessors']} SMs), CUDA {gpu['cuda']}, driver {gpu['driver']}"
            if "cuda" in gpu
            else ""
        ),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"- command: `{env['command']}`",
        "",
        "## Parity",
        "",
        "| check | max abs | bound | result |",
        "|---|---:|---:|---|",
    ]
    for row in document["parity"]:
        result = "passed" if row["passed"] else "**FAILED**"
        lines.append(f"| {row['check']} | {row['max_abs']:.3g} | {row['bound']:g} | {result} |")
    lines += [
        "",
        "## Kernels against their PyTorch references",
        "",
        "LUT bandwidth: every input read once and the output written once; KNN rate: the masked "
        "similarity work (2 x foreground x background x C) per second."
        + (
            f" Peaks: {peaks['bandwidth_gbs']} GB/s, {peaks['fp32_tflops']} FP32 TFLOP/s, "
            f"{peaks['fp16_tensor_tflops']} FP16 tensor TFLOP/s."
            if peaks
            else " Peaks: unknown for this device."
        ),
        "",
        "| op | size | dtype | impl | ms | GB/s | GFLOP/s | share of peak |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for row in document["kernels"]:
        share = ""
        if peaks and "bandwidth_gbs" in row:
            share = f"{row['bandwidth_gbs'] / peaks['bandwidth_gbs']:.0%}"
        elif peaks and "gflops" in row:
            share = f"{row['gflops'] / 1e3 / peaks['fp32_tflops']:.0%} of FP32"
        lines.append(
            f"| {row['op']} | {row['size']} | {row['dtype']} | {row['impl']} | {row['ms']:.3f} | "
            f"{row.get('bandwidth_gbs', '')} | {row.get('gflops', '')} | {share} |"
        )
    lines += [
        "",
        "## harmony-bench, torch backend",
        "",
        "The reference-ops eager rows stand in for the official eager pipeline (the official "
        "code is not on the machine).",
        "",
        "| arch | backend | precision | size | mean ms | p90 ms | peak MiB |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for record in document["bench"]:
        size = f"{record['height']}x{record['width']}"
        if record.get("skipped"):
            lines.append(
                f"| {record['arch']} | {backend_label(record)} | {record['precision']} | {size} "
                f"| skipped: {record['skipped']} | | |"
            )
            continue
        latency = record["latency_ms"]
        lines.append(
            f"| {record['arch']} | {backend_label(record)} | {record['precision']} | {size} | "
            f"{latency['mean']:.2f} | {latency['p90']:.2f} | {record['peak_memory_mb']:.0f} |"
        )
    lines.append("")
    return "\n".join(lines)
