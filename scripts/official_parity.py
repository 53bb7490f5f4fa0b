"""Print the figures of the official-parity cases as a Markdown table (stdout).

Runs the same cases as `tests/models/test_official_parity.py` and reports every figure instead
of asserting thresholds. Needs the official checkouts:

    PYTHONPATH=. HARMONY_OFFICIAL_AICT=/path/to/AICT HARMONY_OFFICIAL_HDNET=/path/to/HDNet \\
        .venv/bin/python scripts/official_parity.py

(`PYTHONPATH=.`: the cases live in the test support, `tests/support/official.py`.)

Result recorded in benchmarks/results/official_parity.md.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import torch

from harmony.models import load_checkpoint
from tests.support.official import (
    AICT_ENV,
    AICT_FULL_RES,
    HDNET_ENV,
    aict_network_parity,
    aict_pipeline_parity,
    hdnet_parity,
    official_aict,
    official_checkout,
    official_hdnet,
    randomize_,
    save_official_checkpoint,
)

HDNET_SIZES = ((256, 256), (256, 320))


def _cases(tmp: Path):
    """Yield (case name, figures, seconds) for every parity case."""
    hdnet_root, aict_root = official_checkout(HDNET_ENV), official_checkout(AICT_ENV)
    if hdnet_root is None or aict_root is None:
        raise SystemExit(f"set {AICT_ENV} and {HDNET_ENV} to the official work trees")
    for ngf, arch in ((32, "hdnet"), (8, "hdnet-lite")):
        official = randomize_(official_hdnet(hdnet_root, ngf), seed=ngf)
        ours = load_checkpoint(save_official_checkpoint(official, tmp / f"{arch}.pth"))
        for height, width in HDNET_SIZES:
            start = time.perf_counter()
            figures = hdnet_parity(official, ours, height, width)
            yield f"{arch} (ngf {ngf}) B=2 {height}x{width}", figures, time.perf_counter() - start
    official = randomize_(official_aict(aict_root), seed=7)
    ours = load_checkpoint(save_official_checkpoint(official, tmp / "aict.pth"))
    height, width = AICT_FULL_RES
    start = time.perf_counter()
    figures = aict_network_parity(official, ours, height, width, with_float64=True)
    seconds = time.perf_counter() - start
    yield f"aict network, same 256 inputs, B=2 {height}x{width}", figures, seconds
    start = time.perf_counter()
    figures = aict_pipeline_parity(official, ours, height, width)
    seconds = time.perf_counter() - start
    yield f"aict harmonize() vs cv2-like resize, B=2 {height}x{width}", figures, seconds


def main() -> None:
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    print(f"torch {torch.__version__}, Python {platform.python_version()}, {platform.machine()}, ")
    print(f"{torch.get_num_threads()} threads, CUDA available: {torch.cuda.is_available()}\n")
    print("| case | figure | value |\n| --- | --- | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, figures, seconds in _cases(Path(tmp)):
            for figure, value in figures.items():
                text = f"{value:.2f}" if figure.endswith("dB") else f"{value:.3g}"
                print(f"| {name} | {figure} | {text} |")
            print(f"| {name} | seconds (all forwards) | {seconds:.1f} |")


if __name__ == "__main__":
    main()
