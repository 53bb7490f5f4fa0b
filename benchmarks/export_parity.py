"""The exporter's parity check of TensorRT-target graphs, per architecture and precision: the
whole graph in one ONNX Runtime session with libharmony_ort_ops.so (what `harmony-export` runs
where that library is built) beside ONNX Runtime between the custom nodes with
libharmony_cpu_ops.so for them, both against `harmony.harmonize` (PyTorch, float32).

Each architecture's random checkpoint (official format, fixed seed) is exported with
verification at the exporter's sizes (512x512, 375x500); the written graph is then run again by
the split runner on the same inputs. Needs libharmony_ort_ops.so (scripts/build_plugins.sh with
ONNXRUNTIME_ROOT).

    python benchmarks/export_parity.py --json benchmarks/results/export_parity.json \\
        --markdown benchmarks/results/export_parity.md
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import onnx

from harmony.contract import ARCHS, FLOAT_PRECISIONS
from harmony.export.exporter import onnx_from_checkpoint
from harmony.export.reference import SplitOrtRunner
from harmony.export.verify import DEFAULT_SIZES, parity
from harmony.models import load_checkpoint
from harmony.models.init import make_random_checkpoint
from harmony.profiling.environment import environment
from results_files import command_line, results_parser, write_results

SEED = 0


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    command = command_line()
    document = {"environment": environment(command), "results": measure()}
    write_results(args, document, markdown)


def measure() -> list[dict]:
    """One record per (arch, precision, size)."""
    work = Path(tempfile.mkdtemp(prefix="harmony-export-parity-"))
    rows = []
    for arch in ARCHS:
        checkpoint = make_random_checkpoint(arch, SEED, work / f"{arch}.pth")
        model = load_checkpoint(checkpoint)
        for precision in FLOAT_PRECISIONS:
            graph = work / f"{arch}.{precision}.onnx"
            report = onnx_from_checkpoint(checkpoint, graph, target="trt", precision=precision)
            split = parity(model, SplitOrtRunner(onnx.load(graph), "plugin"), DEFAULT_SIZES)
            for whole, apart in zip(report.parity, split, strict=True):
                rows.append(
                    {
                        "arch": arch,
                        "precision": precision,
                        "size": whole.size,
                        "verified_with": report.custom_nodes_verified_with,
                        "one_session": {"max_abs": whole.max_abs, "psnr_db": whole.psnr_db},
                        "split": {"max_abs": apart.max_abs, "psnr_db": apart.psnr_db},
                        "bound_db": report.min_psnr_db,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _psnr(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def markdown(document: dict) -> str:
    env = document["environment"]
    lines = [
        "# Exporter parity of TensorRT-target graphs on ONNX Runtime",
        "",
        f"{env['cpu']} ({env['cpu_cores']} cores), no GPU; onnxruntime "
        f"{env['versions']['onnxruntime']}, torch {env['versions']['torch']}, harmony "
        f"{env['versions']['harmony']}. Command: `{env['command']}`.",
        "",
        "Against `harmony.harmonize` (PyTorch, float32) on demo composites; PSNR over [0,1].",
        "One session: the whole graph in ONNX Runtime with libharmony_ort_ops.so (the exporter's",
        "check). Split: ONNX Runtime between the custom nodes, libharmony_cpu_ops.so for them.",
        "",
        "| arch | precision | size | one session: max abs | PSNR dB | split: max abs | PSNR dB "
        "| bound dB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in document["results"]:
        whole, apart = row["one_session"], row["split"]
        lines.append(
            f"| {row['arch']} | {row['precision']} | {row['size']} | {whole['max_abs']:.2e} | "
            f"{_psnr(whole['psnr_db'])} | {apart['max_abs']:.2e} | {_psnr(apart['psnr_db'])} | "
            f"{row['bound_db']:.0f} |"
        )
    verified_with = document["results"][0]["verified_with"]
    lines += ["", f"Custom nodes in the exporter's check: {verified_with}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
