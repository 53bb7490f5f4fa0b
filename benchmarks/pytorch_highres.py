"""Peak memory and time of the PyTorch pipeline at high resolution, on the CPU.

Each configuration runs in its own subprocess (so its peak RSS is its own) on a demo composite:
- `ours`: `harmony.harmonize` (LocalDynamics streamed, no N x N matrix);
- `official-algorithm`: the same network with LocalDynamics computed as the official code does
  it (the full N x N similarity matrix, then the row maximum, as `topk(k=1)`);
- `official-code`: the official HDNet module itself, when `HARMONY_OFFICIAL_HDNET` points at a
  checkout of the official repository (tests/support/official.py imports it; run from the
  checkout's root with PYTHONPATH=. so that the test support is importable).
Timings are single runs after one warm-up at 256x256.

    PYTHONPATH=. HARMONY_OFFICIAL_HDNET=<checkout> python benchmarks/pytorch_highres.py \
        --json benchmarks/results/pytorch_highres.json \
        --markdown benchmarks/results/pytorch_highres.md
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from harmony.profiling.environment import environment
from harmony.profiling.memory import peak_rss_mb
from results_files import command_line, machine_line, results_parser, write_results

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
        from tests.support.official import HDNET_ENV, official_checkout, official_hdnet

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
        from harmony.dispatch import replaced_ops

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
    if len(sys.argv) == 5 and sys.argv[1] == "--child":  # one configuration, in its own process
        arch, res, variant = sys.argv[2:]
        print(json.dumps(run_child(arch, int(res), variant)))
        return
    args = results_parser(__doc__.splitlines()[0]).parse_args()
    records = []
    for arch, res, variant in DEFAULT_CONFIGS:
        cmd = [sys.executable, __file__, "--child", arch, str(res), variant]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            result = {"failed": proc.stderr.strip().splitlines()[-1] if proc.stderr else "?"}
        else:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        record = {"arch": arch, "resolution": res, "variant": variant, **result}
        print(json.dumps(record), flush=True)
        records.append(record)
    document = {"environment": environment(command_line()), "results": records}
    write_results(args, document, markdown)


def markdown(document: dict) -> str:
    lines = [
        "# PyTorch pipeline at high resolution (CPU)",
        "",
        machine_line(document["environment"]),
        "",
        "| arch | resolution | variant | time (s) | peak RSS (MiB) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for r in document["results"]:
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
