"""Peak memory and time of the PyTorch pipeline at high resolution, on the CPU.

Each configuration runs in its own subprocess (so its peak RSS is its own) on a demo composite:
- `ours`: `harmony.harmonize` (LocalDynamics streamed, no N x N matrix);
- `official-algorithm`: the same network with LocalDynamics computed as the official code does
  it (the full N x N similarity matrix, then the row maximum, as `topk(k=1)`);
- `official-code`: the official HDNet module itself, when `HARMONY_OFFICIAL_HDNET` points at a
  checkout of the official repository (harmony.official imports it).
Writes `<out>.json` and `<out>.md`. Timings are single runs after one warm-up at 256x256.

    HARMONY_OFFICIAL_HDNET=<checkout> python benchmarks/pytorch_highres.py \
        --out benchmarks/results/pytorch_highres
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from harmony.profiling.bench import cpu_name
from harmony.profiling.memory import peak_rss_mb

DEFAULT_CONFIGS = [
    ("hdnet-lite", 1024, "ours"),
    ("hdnet-lite", 1024, "official-algorithm"),
    ("hdnet-lite", 1024, "official-code"),
    ("hdnet-lite", 2048, "ours"),
    ("hdnet", 1024, "ours"),
    ("hdnet", 1024, "official-algorithm"),
    ("hdnet", 1024, "official-code"),
    ("hdnet", 2048, "ours"),
]


def run_child(arch: str, res: int, variant: str) -> dict:
    import torch

    from harmony.data import demo_composite
    from harmony.models import build_model, harmonize, randomize_

    torch.manual_seed(0)
    model = randomize_(build_model(arch), seed=0).eval()
    replacements = {}
    if variant == "official-algorithm":
        from harmony.contract import KNN_TOPK_FUSION
        from harmony.ops import knn_topk_fusion_materialized

        replacements = {KNN_TOPK_FUSION: knn_topk_fusion_materialized}
    if variant == "official-code":
        from harmony.official import HDNET_ENV, official_checkout, official_hdnet

        root = official_checkout(HDNET_ENV)
        if root is None:
            return {"skipped": f"{HDNET_ENV} is not set"}
        official = official_hdnet(root, ngf=model.ngf).eval()
        official.load_state_dict(model.state_dict())

        def forward(image, mask):
            with torch.no_grad():
                comp = image * 2 - 1
                out = official(comp, mask)
                return ((out * mask + comp * (1 - mask)) + 1) / 2
    else:
        from harmony.ops.dispatch import replaced_ops

        def forward(image, mask):
            with replaced_ops(replacements):
                return harmonize(model, image, mask)

    warm_image, warm_mask, _ = demo_composite(256, 256)
    forward(warm_image, warm_mask)
    image, mask, _ = demo_composite(res, res)
    before = peak_rss_mb()
    start = time.perf_counter()
    forward(image, mask)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/pytorch_highres")
    parser.add_argument("--child", nargs=3, metavar=("ARCH", "RES", "VARIANT"))
    args = parser.parse_args()
    if args.child:
        arch, res, variant = args.child
        print(json.dumps(run_child(arch, int(res), variant)))
        return
    import torch

    records = []
    for arch, res, variant in DEFAULT_CONFIGS:
        cmd = [sys.executable, __file__, "--child", arch, str(res), variant]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if proc.returncode != 0:
            result = {"failed": proc.stderr.strip().splitlines()[-1] if proc.stderr else "?"}
        else:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        record = {"arch": arch, "resolution": res, "variant": variant, **result}
        print(json.dumps(record), flush=True)
        records.append(record)
    environment = {
        "device": f"CPU: {cpu_name()}, {os.cpu_count()} cores, no GPU",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average_at_start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": "PYTHONPATH=. HARMONY_OFFICIAL_HDNET=<checkout> "
        "python benchmarks/pytorch_highres.py --out " + args.out,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"environment": environment, "results": records}, indent=2)
    )
    out.with_suffix(".md").write_text(markdown(environment, records))


def markdown(environment: dict, records: list[dict]) -> str:
    lines = [
        "# PyTorch pipeline at high resolution (CPU)",
        "",
        *(f"- {key}: {value}" for key, value in environment.items()),
        "",
        "| arch | resolution | variant | time (s) | peak RSS (MiB) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for r in records:
        if "seconds" in r:
            cells = f"{r['seconds']:.2f} | {r['peak_rss_mb']:.0f}"
        else:
            cells = f"{r.get('skipped') or r.get('failed')} | -"
        lines.append(
            f"| {r['arch']} | {r['resolution']}x{r['resolution']} | {r['variant']} | {cells} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
