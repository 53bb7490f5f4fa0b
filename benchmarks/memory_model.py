"""Peak memory of one harmonization per backend and architecture, and the linear model the size
guard (`harmony.runtime.limits`) estimates it with (`harmony.memory_model`).

Each measurement is one `harmony-bench` configuration run once, as harmony-run does (its own
process, no warm-up; peak RSS of that process, the input made in it included). Repeated runs in
one process peak higher with ONNX Runtime (its arena grows: about 1.5x at 2048x2048), which
harmony-bench survives anyway: a configuration that runs out of memory is reported as such.
Per (backend, arch) the script fits

    peak = base + bytes_per_pixel x H x W  (+ knn_factor x N^2 x 4 for ORT-target HDNet graphs)

by non-negative least squares and raises `base` by the largest shortfall, so that the model is
at or above every measured point. `knn_factor` is at least 1: those graphs hold the N x N matrix
itself, a floor that the sizes measurable here (up to 1448x1448, N^2 still small beside the
activations) would not pin down. Writes JSON and Markdown, and the package data the guard
reads (`src/harmony/memory_models.json`: the coefficients rounded up; a test checks that it is
what the committed measurements give). `--refit RESULTS.json` fits the measurements of an
earlier run again; with `--backend NAME` (repeatable) it measures those backends anew and keeps
the other rows.

    python benchmarks/memory_model.py --json benchmarks/results/memory_model.json \\
        --markdown benchmarks/results/memory_model.md
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from harmony.artifacts import cached_export
from harmony.files import write_bytes_atomic
from harmony.memory_model import MODELS_FILE, model_key, models_document
from harmony.models.init import make_random_checkpoint
from harmony.profiling.config import BenchConfig
from harmony.profiling.environment import cpu_name, environment
from harmony.profiling.measure import run_configs
from harmony.runtime.backends import get_backend
from results_files import command_line, results_parser, write_results

MIB = 1 << 20
# (backend, arch) -> square sides measured. ORT HDNet stays within what fits in 24 GiB.
SIDES = {
    ("torch", "aict"): (512, 1024, 2048, 3072, 4096),
    ("ort", "aict"): (512, 1024, 2048, 3072, 4096),
    ("torch", "hdnet-lite"): (512, 1024, 2048, 3072),
    ("ort", "hdnet-lite"): (512, 768, 1024, 1280, 1448),
    ("torch", "hdnet"): (512, 1024, 1536, 2048),
    ("ort", "hdnet"): (512, 768, 1024, 1280, 1448),
    ("ort-custom", "aict"): (512, 1024, 2048, 3072),
    ("ort-custom", "hdnet-lite"): (512, 1024, 2048, 3072),
    ("ort-custom", "hdnet"): (512, 1024, 1536, 2048),
}
SEED = 0
# harmony fit: (arch, batch, size) measured (a few optimizer steps in a process of its own; the
# guard of `harmony fit` estimates from batch x size^2).
FIT_POINTS = {
    "aict": ((2, 128), (4, 256), (2, 512)),
    "hdnet-lite": ((2, 128), (4, 256), (2, 512)),
    "hdnet": ((2, 128), (2, 256), (4, 256)),
}
FIT_STEPS = 2


def knn_matrix_bytes(side: int) -> int:
    """Bytes of the float32 N x N similarity at side x side (N = bottleneck positions)."""
    n = (-(-side // 8)) ** 2
    return n * n * 4


def fit(backend: str, arch: str, points: list[tuple[int, int, float]]) -> dict:
    """Non-negative least-squares coefficients (knn_factor >= 1) from (side, batch, peak MiB)
    points, `base` raised to cover every point."""
    with_knn = backend == "ort" and arch.startswith("hdnet")
    sides = np.array([side for side, _, _ in points], dtype=np.float64)
    batches = np.array([batch for _, batch, _ in points], dtype=np.float64)
    peaks = np.array([mib * MIB for _, _, mib in points])
    columns = [np.ones_like(sides), batches * sides**2]
    matrices = np.array([knn_matrix_bytes(int(s)) for s in sides], dtype=np.float64)
    if with_knn:
        columns.append(matrices)
        peaks = peaks - matrices  # the floor: one N x N matrix; the fit adds what is beyond
    matrix = np.stack(columns, axis=1)
    scale = matrix.max(axis=0)  # nnls on columns of comparable size
    solution = nnls(matrix / scale, peaks)[0] / scale
    shortfall = float(np.max(peaks - matrix @ solution))
    return {
        "base_bytes": int(solution[0] + max(shortfall, 0.0)),
        "bytes_per_pixel": float(solution[1]),
        "knn_factor": 1.0 + float(solution[2]) if with_knn else 0.0,
        "max_shortfall_mib": shortfall / MIB,
    }


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--fit-child":
        print(fit_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--refit", type=Path, help="Fit the results of an earlier run again.")
    parser.add_argument(
        "--backend", action="append", help="With --refit: measure this backend anew (repeatable)."
    )
    args = parser.parse_args()
    command = command_line()
    if args.refit is not None:
        earlier = json.loads(args.refit.read_text())
        rows, env = earlier["results"], {**earlier["environment"], "refit_command": command}
        if args.backend:
            rows = [r for r in rows if r["backend"] not in args.backend] + measure(args.backend)
    else:
        rows, env = measure(), environment(command)
    models = {}
    for backend, arch in [*SIDES, *(("fit", arch) for arch in FIT_POINTS)]:
        points = [
            (r["height"], r["batch"], r["peak_memory_mb"])
            for r in rows
            if (r["backend"], r["arch"]) == (backend, arch) and not r["skipped"]
        ]
        models[model_key(backend, arch)] = fit(backend, arch, points)
    document = {"environment": env, "models": models, "results": rows}
    write_results(args, document, markdown)
    package_data = models_document(models, f"benchmarks/memory_model.py from {args.json}")
    write_bytes_atomic(MODELS_FILE, (json.dumps(package_data, indent=2) + "\n").encode(), True)


def measure(backends: list[str] | None = None) -> list[dict]:
    """One record per (backend, arch, side) of SIDES and per (arch, batch, size) of FIT_POINTS
    (backend "fit"), of `backends` only where given."""
    work = Path(tempfile.mkdtemp(prefix="harmony-memory-"))
    checkpoints = {
        arch: make_random_checkpoint(arch, SEED, work / f"{arch}.pth")
        for arch in ("aict", "hdnet-lite", "hdnet")
    }
    rows = []
    for (backend, arch), sides in SIDES.items():
        if backends and backend not in backends:
            continue
        checkpoint = checkpoints[arch]
        target = get_backend(backend).export_target
        model = str(checkpoint if target is None else cached_export(checkpoint, target, "fp32"))
        configs = [
            BenchConfig(arch, str(checkpoint), backend, "fp32", "cpu", s, s, 1, 0, 1, model=model)
            for s in sides
        ]
        for config, record in zip(configs, run_configs(configs), strict=True):
            rows.append(record)
            print(f"{backend} {arch} {config.height}: {record['peak_memory_mb']} MiB", flush=True)
    if not backends or "fit" in backends:
        for arch, points in FIT_POINTS.items():
            rows += [fit_record(arch, batch, size) for batch, size in points]
    return rows


def fit_record(arch: str, batch: int, size: int) -> dict:
    """Peak RSS of `FIT_STEPS` steps of `harmony fit` at batch x size^2, in a process of its
    own (`--fit-child`)."""
    command = [sys.executable, __file__, "--fit-child", arch, str(batch), str(size)]
    done = subprocess.run(command, capture_output=True, text=True)
    record = {"backend": "fit", "arch": arch, "height": size, "width": size, "batch": batch}
    record["cpu"] = cpu_name()  # a refit may measure these on another machine than the rest
    if done.returncode != 0:
        return {**record, "peak_memory_mb": None, "skipped": done.stderr.strip()[-300:]}
    peak = float(done.stdout.strip().splitlines()[-1])
    print(f"fit {arch} batch {batch} {size}: {peak:.0f} MiB", flush=True)
    return {**record, "peak_memory_mb": peak, "skipped": None}


def fit_child(arch: str, batch: int, size: int) -> float:
    """Run `FIT_STEPS` steps of the fit; this process's peak RSS in MiB."""
    from dataclasses import replace

    from harmony.fitting.fit import DEFAULT_SETTINGS, fit_model
    from harmony.profiling.memory import peak_rss_mb

    fit_model(replace(DEFAULT_SETTINGS[arch], steps=FIT_STEPS, batch=batch, size=size))
    return peak_rss_mb()


def markdown(document: dict) -> str:
    env = document["environment"]
    lines = [
        "# Peak memory of one run, and the size guard's model",
        "",
        f"- command: `{env['command']}`"
        + (f"; fitted again with `{env['refit_command']}`" if "refit_command" in env else ""),
        f"- machine: {env['cpu']} ({env['cpu_cores']} cores), no GPU; versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "- peak: the process's peak RSS (VmHWM) of one fp32 run at batch 1, input made in it; "
        f"fit: of {FIT_STEPS} optimizer steps of harmony fit at the batch and size given",
        *sorted(
            {
                f"- fit rows measured on {r['cpu']}"
                for r in document["results"]
                if r.get("cpu") and r["cpu"] != env["cpu"]
            }
        ),
        "",
        "| backend | arch | batch x size | peak MiB | model MiB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in document["results"]:
        model = document["models"][model_key(record["backend"], record["arch"])]
        side, batch = record["height"], record["batch"]
        estimate = model["base_bytes"] + model["bytes_per_pixel"] * batch * side * side
        estimate += model["knn_factor"] * knn_matrix_bytes(side)
        measured = record["peak_memory_mb"]
        peak = f"skipped: {record['skipped']}" if record["skipped"] else f"{measured:.0f}"
        lines.append(
            f"| {record['backend']} | {record['arch']} | {batch} x {side}x{side} | {peak} | "
            f"{estimate / MIB:.0f} |"
        )
    lines += ["", "| backend/arch | base MiB | bytes per pixel | knn factor |"]
    lines.append("| --- | --- | --- | --- |")
    for key, model in document["models"].items():
        lines.append(
            f"| {key} | {model['base_bytes'] / MIB:.0f} | {model['bytes_per_pixel']:.0f} | "
            f"{model['knn_factor']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
