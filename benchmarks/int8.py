"""INT8 (explicit Q/DQ, INT8 + FP16) against FP32 and FP16, per architecture, on this machine.

For each architecture (the shipped fitted checkpoints; HDNet has none, so its random
checkpoint, whose quality means nothing, is gated on parity only) the TensorRT-target graph is
exported in FP32, FP16 and INT8 with `harmony-export`'s defaults (INT8: 8 demo composites of the
fit photographs at 1024x1024, min-max ranges) and verification, then:

- the INT8 export's gates: PSNR to the FP32 PyTorch output on the parity composites, the share
  of the FP32 held-out PSNR gain kept, or the figures of a gate it missed;
- `harmony eval`'s metrics of the three graphs (ort-custom) beside PyTorch FP32 on the held-out
  set;
- CPU latency of the three graphs in one `harmony-bench` run (ort-custom, 1024x1024);
- the TensorRT-RTX engine of the FP16 and INT8 graphs (needs libharmony_plugins.so): build
  time, size, INT8 quantize layers.

The choices behind the defaults are measured by benchmarks/int8_ablations.py.

    python benchmarks/int8.py --json benchmarks/results/int8.json \\
        --markdown benchmarks/results/int8.md
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harmony.contract import ARCHS, FLOAT_PRECISIONS, PRECISIONS
from harmony.data.demo import HELD_OUT_COUNT, held_out_composites
from harmony.engines.build import BuildOptions, engine_from_onnx
from harmony.engines.profiles import parse_resolutions, profile_from_resolutions
from harmony.errors import HarmonyError
from harmony.export.exporter import onnx_from_checkpoint
from harmony.export.verify import VerificationError
from harmony.models.init import make_random_checkpoint
from harmony.profiling.environment import environment
from harmony.quality import REFERENCE, QualityTarget, evaluate, gain_over_composite
from harmony.runtime.backends import runner_for
from harmony.weights import fitted_archs, fitted_checkpoint
from results_files import command_line, machine_line, results_parser, write_results

LATENCY_RES = "1024"
ENGINE_RESOLUTIONS = "1024,256,2048"  # opt first, then min and max
ENGINE_PRECISIONS = ("fp16", "int8")


def main() -> None:
    args = results_parser(__doc__.splitlines()[0]).parse_args()
    work = Path(tempfile.mkdtemp(prefix="harmony-int8-"))
    document = {
        "environment": environment(command_line()),
        "results": [measure(arch, work) for arch in ARCHS],
    }
    write_results(args, document, markdown)


def measure(arch: str, work: Path) -> dict:
    fitted = arch in fitted_archs()
    checkpoint = fitted_checkpoint(arch) if fitted else make_random_checkpoint(arch, 0, work / arch)
    row = {"arch": arch, "weights": "fitted" if fitted else "random", "exports": {}}
    graphs = {}
    for precision in PRECISIONS:
        graph = work / f"{arch}.trt.{precision}.onnx"
        start = time.perf_counter()
        try:
            report = onnx_from_checkpoint(checkpoint, graph, precision=precision)
        except VerificationError as exc:
            row["exports"][precision] = {"missed": str(exc)}
            continue
        graphs[precision] = graph
        row["exports"][precision] = {
            "seconds": round(time.perf_counter() - start, 1),
            "mib": round(report.file_bytes / 2**20, 2),
            "min_psnr_to_fp32_db": round(min(p.psnr_db for p in report.parity), 2),
            "bound_db": report.min_psnr_db,
            "gain_kept": None if report.gain_kept is None else round(report.gain_kept, 3),
            "int8_layers": None if report.int8_layers is None else len(report.int8_layers),
            "calibration": report.calibration,
        }
        print(json.dumps({arch: row["exports"][precision]}), flush=True)
    if fitted:
        row["quality"] = held_out_quality(checkpoint, graphs)
    row["latency_ms"] = cpu_latency(graphs, work / f"{arch}.bench.json")
    row["engines"] = rtx_engines(graphs, work)
    return row


def held_out_quality(checkpoint: Path, graphs: dict[str, Path]) -> dict:
    """Means over the held-out set and each graph's gain over the composite."""
    runners = {QualityTarget(*REFERENCE).label: runner_for(checkpoint, "torch", "cpu")}
    runners.update(
        (f"onnx {precision}", runner_for(graph, "ort-custom", "cpu"))
        for precision, graph in graphs.items()
    )
    with contextlib.ExitStack() as stack:
        for runner in runners.values():
            stack.enter_context(runner)
        result = evaluate(held_out_composites(HELD_OUT_COUNT), runners)
    return {
        "images": result["images"],
        "means": result["means"],
        "gain": {
            label: gain_over_composite(result["means"], label)
            for label in result["means"]
            if label != "composite"
        },
    }


def cpu_latency(graphs: dict[str, Path], output: Path) -> dict[str, float]:
    """Mean ms per graph, from one harmony-bench run over all of them (side by side)."""
    command = [
        str(Path(sys.executable).with_name("harmony-bench")),  # the venv's console script
        *map(str, graphs.values()),
        "--backend",
        "ort-custom",
        "--precision",
        ",".join(graphs),
        "--res",
        LATENCY_RES,
        "--quality-images",
        "0",
        "--json",
        str(output),
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    records = json.loads(output.read_text())["results"]
    return {r["precision"]: round(r["latency_ms"]["mean"], 1) for r in records if r["latency_ms"]}


def rtx_engines(graphs: dict[str, Path], work: Path) -> dict:
    profile = profile_from_resolutions(parse_resolutions(ENGINE_RESOLUTIONS))
    engines = {}
    for precision in ENGINE_PRECISIONS:
        if precision not in graphs:
            continue
        try:
            built = engine_from_onnx(
                graphs[precision],
                profile,
                work / f"{graphs[precision].stem}.engine",
                BuildOptions(runtime="tensorrt-rtx"),
                use_cache=False,
            )
        except HarmonyError as exc:
            engines[precision] = {"not built": str(exc)}
            continue
        record = built.manifest.build
        engines[precision] = {
            "build_seconds": record.seconds,
            "engine_mib": round(record.engine_bytes / 2**20, 1),
            "int8_quantize_layers": record.int8_quantize_layers,
            "profile": profile.describe(),
        }
    return engines


def markdown(document: dict) -> str:
    env = document["environment"]
    lines = [
        "# INT8 (explicit Q/DQ, INT8 + FP16) beside FP32 and FP16",
        "",
        machine_line(env),
        "",
        "TensorRT-target graphs exported with harmony-export's defaults (INT8: 8 demo composites "
        "of the fit photographs at 1024x1024, min-max ranges, per-channel symmetric weights). "
        "Gates: PSNR to the FP32 PyTorch output on the parity composites (512x512, 375x500) "
        ">= 35 dB for AICT and >= 30 dB for HDNet; the held-out PSNR gain over the composite "
        "kept >= 80% (fitted weights only).",
        "",
        "## Exports and gates",
        "",
        "| arch | weights | precision | INT8 layers | graph MiB | PSNR to FP32 dB (bound) | "
        "held-out gain kept | export s |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for row in document["results"]:
        for precision, export in row["exports"].items():
            if "missed" in export:
                lines.append(
                    f"| {row['arch']} | {row['weights']} | {precision} | | | MISSED: "
                    f"{export['missed']} | | |"
                )
                continue
            kept = "" if export["gain_kept"] is None else f"{export['gain_kept']:.0%}"
            lines.append(
                f"| {row['arch']} | {row['weights']} | {precision} | "
                f"{export['int8_layers'] or ''} | {export['mib']:.2f} | "
                f"{export['min_psnr_to_fp32_db']:.1f} ({export['bound_db']:.0f}) | {kept} | "
                f"{export['seconds']:.0f} |"
            )
    lines += [
        "",
        f"## Held-out quality ({HELD_OUT_COUNT} composites, ort-custom on the CPU)",
        "",
        "| arch | output | PSNR dB | fPSNR dB | MSE | fMSE | SSIM | gain over composite |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in document["results"]:
        if "quality" not in row:
            continue
        for label, means in row["quality"]["means"].items():
            gain = row["quality"]["gain"].get(label)
            gain_text = ""
            if gain:
                gain_text = f"{gain['psnr_gain_db']:+.2f} dB, fMSE {-gain['fmse_reduction']:+.1%}"
            lines.append(
                f"| {row['arch']} | {label} | {means['psnr']:.2f} | {means['fpsnr']:.2f} | "
                f"{means['mse']:.1f} | {means['fmse']:.1f} | {means['ssim']:.4f} | {gain_text} |"
            )
    lines += [
        "",
        f"## CPU latency (ort-custom, {LATENCY_RES}x{LATENCY_RES}, one harmony-bench run)",
        "",
        "No claim beyond this measurement: ONNX Runtime's CPU kernels, not TensorRT's.",
        "",
        "| arch | fp32 ms | fp16 ms | int8 ms | int8 / fp32 | int8 / fp16 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in document["results"]:
        ms = row["latency_ms"]
        cells = [f"{ms[p]:.0f}" if p in ms else "" for p in PRECISIONS]
        ratios = [
            f"{ms['int8'] / ms[p]:.2f}" if {"int8", p} <= set(ms) else "" for p in FLOAT_PRECISIONS
        ]
        lines.append(f"| {row['arch']} | " + " | ".join(cells + ratios) + " |")
    lines += [
        "",
        "## TensorRT-RTX engines (built on this CPU; default compute capabilities)",
        "",
        "| arch | precision | build s | engine MiB | INT8 quantize layers |",
        "|---|---|---:|---:|---:|",
    ]
    for row in document["results"]:
        for precision, engine in row["engines"].items():
            if "not built" in engine:
                lines.append(f"| {row['arch']} | {precision} | not built: {engine['not built']} |")
                continue
            lines.append(
                f"| {row['arch']} | {precision} | {engine['build_seconds']:.1f} | "
                f"{engine['engine_mib']:.1f} | {engine['int8_quantize_layers']} |"
            )
    lines += [
        "",
        "HDNet has no fitted checkpoint: its random weights are gated on parity only, and their "
        "activations are not those of a trained network (the random HDNet's output is far from "
        "any image: demo PSNR 14 dB), so a miss there says little about a trained HDNet.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
