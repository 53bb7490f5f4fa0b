"""TensorRT-RTX engine builds on this machine's CPU: build time, engine size and network layers
per architecture and floating-point precision, with the FP32 islands of the FP16 graphs (INT8
engines of the fitted checkpoints: benchmarks/int8.py).

Each architecture's random checkpoint (official format, fixed seed) is exported to its
TensorRT-target graph (FP32 and FP16, unverified: the build is what is measured) and built
with `harmony.engines.build.engine_from_onnx` with TensorRT-RTX, bypassing the engine
cache, for the profile min 256^2 / opt 1024^2 / max 2048^2 (batch 1) and TensorRT-RTX's default
compute capabilities. Needs libharmony_plugins.so (scripts/build_plugins.sh with TENSORRT_ROOT).

    python benchmarks/rtx_build.py --json benchmarks/results/rtx_build.json \\
        --markdown benchmarks/results/rtx_build.md
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

from harmony.contract import ARCHS, FLOAT_PRECISIONS
from harmony.engines.build import BuildOptions, engine_from_onnx
from harmony.engines.profiles import parse_resolutions, profile_from_resolutions
from harmony.export.exporter import onnx_from_checkpoint
from harmony.models.init import make_random_checkpoint
from harmony.profiling.environment import environment
from harmony.profiling.memory import peak_rss_mb
from results_files import command_line, results_parser, write_results

SEED = 0
RESOLUTIONS = "1024,256,2048"  # opt first, then min and max


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    command = command_line()
    if "HARMONY_PLUGIN_DIR" in os.environ:
        command = f"HARMONY_PLUGIN_DIR={shlex.quote(os.environ['HARMONY_PLUGIN_DIR'])} {command}"
    document = {"environment": environment(command), "results": measure()}
    write_results(args, document, markdown)


def measure() -> list[dict]:
    """One record per (arch, precision)."""
    work = Path(tempfile.mkdtemp(prefix="harmony-rtx-build-"))
    profile = profile_from_resolutions(parse_resolutions(RESOLUTIONS))
    rows = []
    for arch in ARCHS:
        checkpoint = make_random_checkpoint(arch, SEED, work / f"{arch}.pth")
        for precision in FLOAT_PRECISIONS:
            graph = work / f"{arch}.{precision}.onnx"
            onnx_from_checkpoint(checkpoint, graph, target="trt", precision=precision, verify=False)
            built = engine_from_onnx(
                graph,
                profile,
                work / f"{arch}.{precision}.engine",
                BuildOptions(runtime="tensorrt-rtx"),
                use_cache=False,
            )
            record = built.manifest.build
            rows.append(
                {
                    "arch": arch,
                    "precision": precision,
                    "profile": profile.describe(),
                    "compute_capabilities": list(built.manifest.compute_capabilities),
                    "build_seconds": record.seconds,
                    "engine_mib": round(record.engine_bytes / 2**20, 1),
                    "network_layers": record.network_layers,
                    "fp32_islands": {k: list(v) for k, v in record.fp32_islands.items()},
                    "process_peak_rss_mib": round(peak_rss_mb()),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(document: dict) -> str:
    env = document["environment"]
    lines = [
        "# TensorRT-RTX engine builds on a CPU",
        "",
        f"{env['cpu']} ({env['cpu_cores']} cores), no GPU; TensorRT-RTX "
        f"{env['versions']['tensorrt-rtx']}, torch {env['versions']['torch']}, harmony "
        f"{env['versions']['harmony']}. Command: `{env['command']}`.",
        "",
        "Build time is the builder's call alone (export excluded); network layers are the parsed",
        "network's, before the builder fuses them (the engine's own layer list needs a GPU to",
        "deserialize). Process peak RSS is cumulative over the run (exports included).",
        "",
        "| arch | precision | build s | engine MiB | network layers | FP32 islands (FP32/all) "
        "| peak RSS MiB |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for row in document["results"]:
        islands = ", ".join(f"{k.lower()} {v[1]}/{v[0]}" for k, v in row["fp32_islands"].items())
        lines.append(
            f"| {row['arch']} | {row['precision']} | {row['build_seconds']:.1f} | "
            f"{row['engine_mib']:.1f} | {row['network_layers']} | {islands} | "
            f"{row['process_peak_rss_mib']} |"
        )
    first = document["results"][0]
    lines += [
        "",
        f"Profile {first['profile']}; compute capabilities "
        f"{', '.join(first['compute_capabilities'])} (TensorRT-RTX's default).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
