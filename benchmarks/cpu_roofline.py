"""CPU roofline: this machine's measured GEMM rate and memory bandwidth, and beside them what each
pipeline achieves, per architecture x size x backend, with the time split by stage.

In one run:
- the machine: FP32 GEMM rate (torch.mm of two 4096 x 4096 matrices, best of 3) and copy
  bandwidth (a 1 GiB tensor copied, read + write bytes, best of 3), on the threads the
  pipelines use;
- per configuration, in its own subprocess: the first run and the best of --repeats runs of
  `official` (the official eager code, where HARMONY_OFFICIAL_AICT / _HDNET name checkouts;
  run with PYTHONPATH=.), `torch` (`harmony.harmonize`), `ort` (the portable graph) and
  `ort-custom` (the TensorRT-target graph with the custom nodes, `harmony.plugins.ort`), and
  `ort-as-exported` (the portable graph without the CPU sessions' rewrites); the
  graph's MACs (`harmony.profiling.macs`, the same count for every backend), the achieved MAC
  rate and its fraction of the GEMM rate;
- the time by stage (AICT: parameter network, LUT; HDNet: encoder, local dynamics, decoder;
  "pipeline": resizes and blends around the network): for torch from hooks on the network's
  children, for ONNX Runtime from its per-node profile of a second, warm run (nodes it fused
  under a new name, such as SkipLayerNormalization and BiasGelu of the ViT, are counted apart).

Random non-degenerate weights (`harmony init`, seed 0); inputs `demo_batch` (a demo composite).

    PYTHONPATH=. python benchmarks/cpu_roofline.py --json benchmarks/results/cpu_roofline.json \\
        --markdown benchmarks/results/cpu_roofline.md
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harmony.profiling.environment import environment
from results_files import command_line, machine_line, results_parser, write_results

BACKENDS = ("official", "torch", "ort", "ort-as-exported", "ort-custom")
# The ort backend without the CPU sessions' rewrites (`harmony.plugins.ort.cpu_rewrites`): what
# they gain.
AS_EXPORTED = "ort-as-exported"
GEMM_SIDE = 4096
COPY_BYTES = 2**30
PIPELINE = "pipeline"
FUSED = "fused by ONNX Runtime"  # nodes ONNX Runtime made without a traceable name
# The goals: speed-up of the best backend over the official code, and the fraction of
# the GEMM rate on the graphs' MACs.
SPEEDUP_GOALS = {("aict", 1024): 1.3, ("aict", 2048): 2.0, ("hdnet-lite", 1024): 2.5}
RATE_GOALS = {("hdnet-lite", 2048): 0.6, ("hdnet", 2048): 0.6}
RATE_FLOOR = 0.4


def machine_peaks(repeats: int = 3) -> dict:
    import torch

    a, b = torch.randn(GEMM_SIDE, GEMM_SIDE), torch.randn(GEMM_SIDE, GEMM_SIDE)
    source, target = torch.ones(COPY_BYTES // 4), torch.empty(COPY_BYTES // 4)
    torch.mm(a, b), target.copy_(source)  # warm-up
    gemm = min(_seconds(lambda: torch.mm(a, b)) for _ in range(repeats))
    copy = min(_seconds(lambda: target.copy_(source)) for _ in range(repeats))
    return {
        "threads": torch.get_num_threads(),
        "gemm_mac_per_s": GEMM_SIDE**3 / gemm,
        "copy_bytes_per_s": 2 * COPY_BYTES / copy,
    }


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def child(backend: str, arch: str, size: int, paths: dict, repeats: int) -> dict:
    """One configuration in this process: {"first_s", "best_s", "stages": {stage: s}}."""
    import torch

    from harmony.export.verify import demo_batch

    image, mask = demo_batch(size, size)
    with torch.inference_mode():
        run, stages = _runner(backend, arch, paths, image, mask)
        first = _seconds(run)
        best = min(_seconds(run) for _ in range(repeats))
        del run  # its model or session: the stages' run needs the memory (HDNet at 2048^2)
        return {"first_s": first, "best_s": best, "stages": stages()}


def _runner(backend: str, arch: str, paths: dict, image, mask):
    """(run, stages): a callable running the configuration, and one timing the stages."""
    if backend == "official":
        return _official(arch, paths["checkpoint"], image, mask)
    if backend == "torch":
        return _torch(paths["checkpoint"], image, mask)
    if backend == AS_EXPORTED:
        import harmony.plugins.ort

        harmony.plugins.ort.cpu_rewrites = lambda graph: 0  # this child process only
    graph = paths["trt" if backend == "ort-custom" else "ort"]
    return _onnxruntime(graph, backend == "ort-custom", image, mask)


def _official(arch: str, checkpoint: str, image, mask):
    from harmony.models import load_checkpoint
    from tests.support import official

    network = load_checkpoint(checkpoint)
    if arch == "aict":
        model = official.official_aict(official.official_checkout(official.AICT_ENV))
        model.load_state_dict(network.state_dict())
        model.eval()
        low = 256
        image_lr = official.resize_batch_cv2(image, low, low)
        mask_lr = official.resize_batch_cv2(mask, low, low)
        run = lambda: model(image_lr, image, mask_lr, mask)  # noqa: E731
    else:
        root = official.official_checkout(official.HDNET_ENV)
        model = official.official_hdnet(root, ngf=network.ngf).eval()
        model.load_state_dict(network.state_dict())
        run = lambda: model(image, mask)  # noqa: E731
    return run, dict


def _torch(checkpoint: str, image, mask):
    from harmony.models import harmonize, load_checkpoint

    network = load_checkpoint(checkpoint)

    def stages() -> dict:
        spent: dict[str, float] = {}
        starts: dict[str, float] = {}
        handles = []
        for name, module in [("", network), *network.named_children()]:
            stage = PIPELINE if module is network else network.report_stage(name)

            def before(_module, _inputs, name=name):
                starts[name] = time.perf_counter()

            def after(_module, _inputs, _output, name=name, stage=stage):
                spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - starts[name]

            handles += [
                module.register_forward_pre_hook(before),
                module.register_forward_hook(after),
            ]
        total = _seconds(lambda: harmonize(network, image, mask))
        for handle in handles:
            handle.remove()
        inside = spent.pop(PIPELINE, 0.0)
        children = sum(spent.values())
        own = network.report_stage("")  # the network's own forward (AICT: the LUT)
        spent[own] = spent.get(own, 0.0) + inside - children
        spent[PIPELINE] = total - inside
        return spent

    return (lambda: harmonize(network, image, mask)), stages


def _onnxruntime(graph: str, custom_ops: bool, image, mask):
    import onnx

    from harmony.contract import network_module
    from harmony.export.metadata import read_metadata
    from harmony.models.checkpoint import MODEL_CLASSES
    from harmony.plugins.ort import inference_session
    from harmony.runtime.ort_runner import OrtCustomOpRunner, OrtRunner

    # The sessions of the backend's runner: ort-custom's without ONNX Runtime's memory pattern.
    low_memory = (OrtCustomOpRunner if custom_ops else OrtRunner).low_memory
    session = inference_session(graph, custom_ops=custom_ops, low_memory=low_memory)
    feeds = {"image": image.numpy(), "mask": mask.numpy()}

    def stages() -> dict:
        model = onnx.load(graph, load_external_data=False)
        network = MODEL_CLASSES[read_metadata(model)["arch"]]
        stage_of = {}
        for node in model.graph.node:
            module = network_module(node)
            child = None if module is None else module.split(".")[0]
            stage_of[node.name] = PIPELINE if child is None else network.report_stage(child)
        with tempfile.TemporaryDirectory() as folder:
            profiled = inference_session(
                graph,
                custom_ops=custom_ops,
                low_memory=low_memory,
                profile_prefix=str(Path(folder) / "profile"),
            )
            profiled.run(None, feeds)  # warm: the arena grows and caches fill here
            profiled.run(None, feeds)
            events = json.loads(Path(profiled.end_profiling()).read_text())
        last_run = max(e["ts"] for e in events if e.get("name") == "model_run")
        spent: dict[str, float] = {}
        for event in events:
            name = event.get("name", "")
            if event["ts"] < last_run:
                continue
            if event.get("cat") == "Node" and name.endswith("_kernel_time"):
                # A node ONNX Runtime fused keeps its first node's name before "/", or none.
                stage = stage_of.get(name.removesuffix("_kernel_time").split("/")[0], FUSED)
                spent[stage] = spent.get(stage, 0.0) + event["dur"] / 1e6
        return spent

    return (lambda: session.run(None, feeds)), stages


def prepared(arch: str, work: Path) -> dict:
    """The checkpoint and both graphs of `arch` (random weights), and their MACs per size."""
    from harmony.export.exporter import onnx_from_checkpoint
    from harmony.models.init import make_random_checkpoint

    checkpoint = make_random_checkpoint(arch, 0, work / f"{arch}.pth")
    paths = {"checkpoint": str(checkpoint)}
    for target in ("trt", "ort"):
        graph = work / f"{arch}.{target}.fp32.onnx"
        onnx_from_checkpoint(checkpoint, graph, target=target, verify=False)
        paths[target] = str(graph)
    return paths


def official_available(arch: str) -> str | None:
    """None where the official code of `arch` can run here, else why not."""
    try:
        from tests.support import official
    except ImportError:
        return "run with PYTHONPATH=. (tests/support/official.py drives the official code)"
    variable = official.AICT_ENV if arch == "aict" else official.HDNET_ENV
    return None if official.official_checkout(variable) else f"{variable} is not set"


def measure(args) -> dict:
    from harmony.profiling.macs import graph_macs

    work = Path(tempfile.mkdtemp(prefix="cpu_roofline_"))
    rows = []
    for arch in args.archs.split(","):
        paths = prepared(arch, work)
        for size in (int(side) for side in args.sizes.split(",")):
            macs = graph_macs(paths["trt"], 1, size, size).as_dict()
            for backend in args.backends.split(","):
                row = {"arch": arch, "size": size, "backend": backend, "macs": macs}
                refusal = _refusal(arch, size, backend, args)
                if refusal:
                    row["status"] = f"skipped: {refusal}"
                else:
                    row.update(_run_child(backend, arch, size, paths, args))
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "macs"}), flush=True)
    return {"environment": environment(command_line()), "machine": machine_peaks(), "rows": rows}


def _refusal(arch: str, size: int, backend: str, args) -> str | None:
    if backend == "official":
        reason = official_available(arch)
        if reason:
            return reason
    materialises = backend in ("ort", AS_EXPORTED, "official") and arch.startswith("hdnet")
    gib = (size // 8) ** 4 * 4 / 2**30 if materialises else 0.0
    if gib > args.max_nxn_gib:
        return f"its N x N similarity alone is {gib:.0f} GiB (> --max-nxn-gib {args.max_nxn_gib:g})"
    return None


def _run_child(backend: str, arch: str, size: int, paths: dict, args) -> dict:
    command = [sys.executable, __file__, "--child", backend, arch, str(size), json.dumps(paths)]
    command.append(str(args.repeats))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {args.timeout:g} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        return {"status": f"failed (exit {done.returncode}): {tail[0][:200]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(document: dict) -> str:
    machine = document["machine"]
    gemm = machine["gemm_mac_per_s"]
    lines = [
        "# CPU roofline",
        "",
        machine_line(document["environment"]),
        f"Measured in the same run on {machine['threads']} threads: FP32 GEMM "
        f"{gemm / 1e9:.1f} GMAC/s (torch.mm {GEMM_SIDE}^2), copy bandwidth "
        f"{machine['copy_bytes_per_s'] / 1e9:.1f} GB/s (read + write of "
        f"{COPY_BYTES // 2**20} MiB).",
        "Latency: best of the timed runs after a first run. MACs: the graph's (the same for "
        "every backend). Rate: MACs / latency, and its fraction of the GEMM rate. Stages: torch "
        "from module hooks, ONNX Runtime from its node profile of a second, warm run (a profiled "
        "run can be slower than the timed ones: read the stages as shares). Backends: ort and "
        "ort-custom run the graph as harmony's CPU sessions rewrite it (attention in blocks of "
        f"query rows, stride-1 transposed convolutions as convolutions); {AS_EXPORTED} runs the "
        "portable graph as exported, for what the rewrites gain; the goals take the best of the "
        "backends a user can choose (torch, ort, ort-custom).",
        "",
        "| arch | size | backend | first s | best s | GMAC | GMAC/s | of GEMM | vs official "
        "| stages (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows = document["rows"]
    for row in rows:
        cells = [row["arch"], f"{row['size']}^2", row["backend"]]
        gmac = row["macs"]["total"] / 1e9
        if "best_s" not in row:
            lines.append(
                "| " + " | ".join([*cells, "", "", f"{gmac:.1f}", "", "", "", row["status"]]) + " |"
            )
            continue
        official = _row(rows, row["arch"], row["size"], "official")
        speedup = f"{official['best_s'] / row['best_s']:.2f}x" if official else ""
        stages = ", ".join(f"{name} {seconds:.2f}" for name, seconds in row["stages"].items())
        rate = row["macs"]["total"] / row["best_s"]
        lines.append(
            "| "
            + " | ".join(
                [
                    *cells,
                    f"{row['first_s']:.2f}",
                    f"{row['best_s']:.2f}",
                    f"{gmac:.1f}",
                    f"{rate / 1e9:.1f}",
                    f"{rate / gemm:.0%}",
                    speedup,
                    stages,
                ]
            )
            + " |"
        )
    lines += ["", "## Goals (best backend per row)", ""]
    for arch, size in dict.fromkeys((row["arch"], row["size"]) for row in rows):
        timed = [r for r in rows if (r["arch"], r["size"]) == (arch, size) and "best_s" in r]
        candidates = [r for r in timed if r["backend"] not in ("official", AS_EXPORTED)]
        if not candidates:
            continue
        best = min(candidates, key=lambda r: r["best_s"])
        rate = best["macs"]["total"] / best["best_s"] / gemm
        official = _row(rows, arch, size, "official")
        parts = [
            f"{arch} {size}^2: best {best['backend']} {best['best_s']:.2f} s, {rate:.0%} of GEMM"
        ]
        if official:
            parts.append(f"{official['best_s'] / best['best_s']:.2f}x official")
        goal = SPEEDUP_GOALS.get((arch, size))
        if goal and official:
            needed = best["macs"]["total"] / (official["best_s"] / goal) / gemm
            met = official["best_s"] / best["best_s"] >= goal
            parts.append(
                f"goal {goal}x official ({'met' if met else 'not met'}: it needs "
                f"{official['best_s'] / goal:.2f} s, i.e. {needed:.0%} of GEMM on these MACs)"
            )
        rate_goal = RATE_GOALS.get((arch, size), RATE_FLOOR)
        parts.append(f"goal {rate_goal:.0%} of GEMM ({'met' if rate >= rate_goal else 'not met'})")
        bound = best["macs"]["total"] / gemm
        parts.append(f"every MAC at the GEMM rate: {bound:.2f} s")
        lines.append("- " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def _row(rows, arch, size, backend):
    return next(
        (
            r
            for r in rows
            if (r["arch"], r["size"], r["backend"]) == (arch, size, backend) and "best_s" in r
        ),
        None,
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        backend, arch, size, paths, repeats = sys.argv[2:7]
        print(json.dumps(child(backend, arch, int(size), json.loads(paths), int(repeats))))
        return
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--archs", default="aict,hdnet-lite,hdnet")
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-nxn-gib", type=float, default=4.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    write_results(args, measure(args), markdown)


if __name__ == "__main__":
    main()
