"""The two ways the ort-custom backend computes the custom nodes, side by side:
libharmony_ort_ops.so (ONNX Runtime custom ops, built with its headers) and
onnxruntime-extensions' Python ops calling
libharmony_cpu_ops.so (pip packages only), on the TensorRT-target FP32 graphs of the fitted
AICT and HDNet-lite checkpoints.

Each (arch, size, implementation) runs in its own process (its peak RSS its own) in the session
the ort-custom backend creates (`harmony.plugins.ort.inference_session`, low-memory options):
`--warmup` untimed runs, then `--iters` timed ones (`harmony.profiling.latency`); the output's
SHA-256 shows whether the two paths agree bit for bit. Needs both libraries in
$HARMONY_PLUGIN_DIR (`ONNXRUNTIME_ROOT=... scripts/build_plugins.sh --cpu-only`). Never asserts
timings.

    HARMONY_PLUGIN_DIR=<dir with both> python benchmarks/ort_custom_paths.py \\
        --json benchmarks/results/ort_custom_paths.json \\
        --markdown benchmarks/results/ort_custom_paths.md
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from harmony.plugins.ort import CUSTOM_OPS_IMPLEMENTATIONS, EXTENSIONS, ORT_OPS
from harmony.profiling.environment import environment
from results_files import command_line, machine_line, results_parser, write_results

ARCHS = ("aict", "hdnet-lite")
SIZES = (1024, 2048)


def child(graph: str, size: int, implementation: str, warmup: int, iterations: int) -> dict:
    """One configuration in this process; its figures."""
    from harmony.export.verify import demo_batch
    from harmony.plugins.ort import inference_session
    from harmony.profiling.latency import measure_latency
    from harmony.profiling.memory import peak_rss_mb

    session = inference_session(
        graph, custom_ops=True, implementation=implementation, low_memory=True
    )
    image, mask = demo_batch(size, size)
    feeds = {"image": image.numpy(), "mask": mask.numpy()}
    outputs = []

    def run():
        outputs[:] = session.run(None, feeds)

    stats = measure_latency(run, lambda: None, warmup, iterations)
    return {
        "latency_ms": stats.as_dict(),
        "peak_rss_mb": peak_rss_mb(),
        "output_sha256": hashlib.sha256(outputs[0].tobytes()).hexdigest(),
    }


def measure(args) -> list[dict]:
    from harmony.export.exporter import onnx_from_checkpoint
    from harmony.weights import fitted_checkpoint

    work = Path(tempfile.mkdtemp(prefix="harmony-ort-custom-paths-"))
    rows = []
    for arch in ARCHS:
        graph = work / f"{arch}.trt.fp32.onnx"
        onnx_from_checkpoint(fitted_checkpoint(arch), graph, verify=False)
        for size in SIZES:
            for implementation in CUSTOM_OPS_IMPLEMENTATIONS:
                command = [sys.executable, __file__, "--child", str(graph), str(size)]
                command += [implementation, str(args.warmup), str(args.iters)]
                done = subprocess.run(command, capture_output=True, text=True)
                row = {"arch": arch, "size": size, "implementation": implementation}
                if done.returncode == 0:
                    row.update(json.loads(done.stdout.strip().splitlines()[-1]))
                else:
                    row["failed"] = (done.stderr.strip().splitlines() or ["?"])[-1]
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def markdown(document: dict) -> str:
    lines = [
        "# ort-custom: the custom nodes by libharmony_ort_ops.so and by onnxruntime-extensions",
        "",
        machine_line(document["environment"]),
        f"Mean of {document['iters']} timed runs after {document['warmup']} warm-up, one process "
        "per row; TensorRT-target FP32 graphs of the fitted checkpoints, batch 1.",
        "",
        "| arch | size | implementation | mean ms | p90 ms | peak RSS MiB | vs native | "
        "output = native's |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    rows = document["results"]
    for row in rows:
        native = next(
            r
            for r in rows
            if (r["arch"], r["size"], r["implementation"]) == (row["arch"], row["size"], ORT_OPS)
        )
        cells = [row["arch"], f"{row['size']}x{row['size']}", row["implementation"]]
        if "failed" in row or "failed" in native:
            lines.append("| " + " | ".join([*cells, row.get("failed", ""), "", "", "", ""]) + " |")
            continue
        mean = row["latency_ms"]["mean"]
        ratio = mean / native["latency_ms"]["mean"]
        same = row["output_sha256"] == native["output_sha256"]
        cells += [
            f"{mean:.1f}",
            f"{row['latency_ms']['p90']:.1f}",
            f"{row['peak_rss_mb']:.0f}",
            "" if row is native else f"{ratio:.3f}x",
            "" if row is native else ("bit for bit" if same else "**differs**"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"{EXTENSIONS}: the graph's custom nodes moved to onnxruntime-extensions' domain in "
        "memory, the rest of the graph unchanged in one session (`harmony.plugins.ort_bridge`).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 7 and sys.argv[1] == "--child":
        graph, size, implementation, warmup, iterations = sys.argv[2:]
        print(json.dumps(child(graph, int(size), implementation, int(warmup), int(iterations))))
        return
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()
    document = {
        "environment": environment(command_line()),
        "warmup": args.warmup,
        "iters": args.iters,
        "results": measure(args),
    }
    write_results(args, document, markdown)


if __name__ == "__main__":
    main()
