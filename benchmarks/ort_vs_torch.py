"""ORT-target graphs in ONNX Runtime (CPU) vs the PyTorch pipeline vs the official algorithm.

Backends, per (arch, size):
- `ort`: the `--target ort` FP32 graph (exported once per arch, before timing) run by the `ort`
  backend's runner (`harmony.runtime.backends.runner_for`: the package's ONNX Runtime session);
- `torch`: `harmony.harmonize` (streamed top-k KNN, row-chunked separable LUT);
- `torch-official`: the official algorithm in PyTorch: HDNet with the materialised N x N
  LocalDynamics (`harmony.ops.knn_topk_fusion_materialized`), AICT with the two 5-D
  grid_sample lookups of the official `mapping`.

Each configuration runs in its own subprocess (clean peak RSS: `harmony.profiling.memory`): one
timed first run, then `--repeats` timed runs (`harmony.profiling.latency`, median reported).
Configurations whose N x N similarity would exceed `--max-nxn-gib` are skipped with the estimate
(the machine is shared; an out-of-memory kill would take others' work with it). It never
asserts timings.

    python benchmarks/ort_vs_torch.py --json benchmarks/results/ort_vs_torch.json \\
        --markdown benchmarks/results/ort_vs_torch.md [--archs aict,hdnet-lite] [--sizes 1024,2048]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from harmony.profiling.environment import environment
from results_files import command_line, machine_line, results_parser, write_results

BACKENDS = ("ort", "torch", "torch-official")
NOTES = [
    "Random non-degenerate weights (harmony init); timings do not depend on the values except "
    "through the KNN's active (foreground) queries.",
    "Inputs: harmony.data.demo_composite (seed 0), float32, batch 1.",
    "torch-official for HDNet uses knn_topk_fusion_materialized (the N x N matrix, then the row "
    "max for k = 1, as the official topk(k=1)); for AICT the two 5-D grid_sample lookups "
    "(harmony.ops.cascaded_lut itself computes the official grid_sample form, so torch and "
    "torch-official coincide for AICT).",
    "ort runs the exported --target ort FP32 graph (separable LUT, materialised KNN) in the "
    "package's ONNX Runtime session (its default CPU threads).",
    "ORT-target HDNet memory: the N x N float32 similarity is 1 GiB at 1024x1024 and 16 GiB at "
    "2048x2048; ONNX Runtime's peak is about 2.5x the matrix, so 2048x2048 does not fit a 24 GiB "
    "machine; the trt target streams the top-k instead.",
]


def child(backend: str, size: int, model: str, repeats: int) -> dict:
    """Run one configuration in this process; its figures."""
    import numpy as np
    import torch

    from harmony.contract import KNN_TOPK_FUSION
    from harmony.dispatch import replaced_ops
    from harmony.export.verify import demo_batch
    from harmony.models import harmonize, load_checkpoint
    from harmony.ops import knn_topk_fusion_materialized
    from harmony.profiling.latency import measure_latency
    from harmony.profiling.memory import peak_rss_mb
    from harmony.runtime.backends import runner_for

    image, mask = demo_batch(size, size)
    if backend == "ort":
        runner = runner_for(model, "ort").activate()

        def run():
            return runner.infer(image, mask)
    else:
        network = load_checkpoint(model)
        # With torch-official, HDNet's LocalDynamics is the official materialised similarity.
        official = {KNN_TOPK_FUSION: knn_topk_fusion_materialized}
        replacements = official if backend == "torch-official" else {}

        def run():
            with replaced_ops(replacements):
                return harmonize(network, image, mask)

    first = measure_latency(run, lambda: None, warmup=0, iterations=1)
    timed = measure_latency(run, lambda: None, warmup=0, iterations=repeats)
    return {
        "first_s": first.mean / 1e3,
        "median_s": timed.p50 / 1e3,
        "peak_rss_mib": peak_rss_mb(),
        "output_mean": float(np.mean(run().numpy())),
        "torch_threads": torch.get_num_threads(),
    }


def nxn_gib(arch: str, backend: str, size: int) -> float:
    """GiB of the N x N similarity a configuration materialises (0 if it streams)."""
    if not arch.startswith("hdnet") or backend == "torch":
        return 0.0
    n = (size // 8) ** 2
    return n * n * 4 / 2**30


def measure(args) -> list[dict]:
    from harmony.export.exporter import onnx_from_checkpoint
    from harmony.models.init import make_random_checkpoint

    work = Path(tempfile.mkdtemp(prefix="ort_vs_torch_"))
    rows = []
    for arch in args.archs.split(","):
        checkpoint = make_random_checkpoint(arch, 0, work / f"{arch}.pth")
        graph = work / f"{arch}.ort.fp32.onnx"
        onnx_from_checkpoint(checkpoint, graph, target="ort", verify=False)
        for size in (int(side) for side in args.sizes.split(",")):
            for backend in args.backends.split(","):
                row = {"arch": arch, "size": f"{size}x{size}", "backend": backend}
                gib = nxn_gib(arch, backend, size)
                if gib > args.max_nxn_gib:
                    row["status"] = (
                        f"skipped: its N x N arrays alone are ~{gib:.0f} GiB "
                        f"(> --max-nxn-gib {args.max_nxn_gib:g})"
                    )
                else:
                    model = graph if backend == "ort" else checkpoint
                    row.update(run_child(backend, size, model, args))
                rows.append(row)
                print({key: value for key, value in row.items()}, flush=True)
    return rows


def run_child(backend: str, size: int, model: Path, args) -> dict:
    command = [sys.executable, __file__, "--child", backend, str(size), str(model)]
    command += ["--repeats", str(args.repeats)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {args.timeout:g} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        return {"status": f"failed (exit {done.returncode}): {tail[0][:200]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(document: dict) -> str:
    lines = [
        "# ORT-target graphs vs PyTorch (CPU)",
        "",
        machine_line(document["environment"]),
        f"Median of {document['repeats']} runs after a first run; peak RSS = VmHWM of the "
        "configuration's own process (includes the model/graph load).",
        "",
        "| arch | size | backend | median s | first s | peak RSS MiB | speed-up of ort |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    results = document["results"]
    for row in results:
        if "median_s" not in row:
            cells = [row["arch"], row["size"], row["backend"], "-", "-", "-", row["status"]]
            lines.append("| " + " | ".join(cells) + " |")
            continue
        ort = next(
            (
                r
                for r in results
                if (r["arch"], r["size"], r["backend"]) == (row["arch"], row["size"], "ort")
                and "median_s" in r
            ),
            None,
        )
        speedup = f"{row['median_s'] / ort['median_s']:.2f}x" if ort and row is not ort else ""
        lines.append(
            f"| {row['arch']} | {row['size']} | {row['backend']} | {row['median_s']:.3f} | "
            f"{row['first_s']:.3f} | {row['peak_rss_mib']:.0f} | {speedup} |"
        )
    lines += ["", "Notes:", *[f"- {note}" for note in document["notes"]], ""]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        backend, size, model = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        print(json.dumps(child(backend, size, model, int(sys.argv[6]))))
        return
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--archs", default="aict,hdnet-lite")
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-nxn-gib", type=float, default=8.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    document = {
        "environment": environment(command_line()),
        "repeats": args.repeats,
        "results": measure(args),
        "notes": NOTES,
    }
    write_results(args, document, markdown)


if __name__ == "__main__":
    main()
