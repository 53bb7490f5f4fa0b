"""Harmonization quality of the shipped fitted checkpoints on the held-out set, in the papers'
metrics, for PyTorch FP32 and the ONNX Runtime FP32 and FP16 graphs: `harmony eval` per
checkpoint (`harmony.profiling.eval.quality_document`), one JSON and one Markdown file.

The held-out set is `harmony.data.demo.held_out_composites()`, made in memory; the same files
are written by `harmony demo-data DIR --held-out --count 8 --seed 1`.

    python benchmarks/quality.py --json benchmarks/results/quality.json \
        --markdown benchmarks/results/quality.md
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tqdm import tqdm

from harmony.data.demo import HELD_OUT_COUNT, HELD_OUT_SEED, held_out_composites
from harmony.profiling.eval import quality_document
from harmony.profiling.report import quality_markdown
from harmony.quality import QualityTarget, gain_over_composite
from harmony.weights import fitted_archs, fitted_checkpoint
from results_files import command_line, results_parser, write_results

TARGETS = [QualityTarget("ort", "fp32"), QualityTarget("ort", "fp16")]
DATA_LABEL = f"held-out demo composites (seed {HELD_OUT_SEED})"


def measure(count: int) -> dict:
    dataset = held_out_composites(count)
    documents = []
    for arch in fitted_archs():
        bar = tqdm(total=count, desc=arch, unit="image", file=sys.stderr, disable=None)
        document = quality_document(
            dataset,
            DATA_LABEL,
            Path(os.path.relpath(fitted_checkpoint(arch))),  # as the command line names it
            TARGETS,
            progress=lambda _, bar=bar: bar.update(1),
            command=command_line(),
        )
        bar.close()
        document["gain"] = {
            label: gain_over_composite(document["means"], label)
            for label in document["means"]
            if label != "composite"
        }
        documents.append(document)
    return {"command": command_line(), "models": documents}


def markdown(document: dict) -> str:
    lines = [
        "# Quality of the fitted checkpoints on held-out composites",
        "",
        f"- command: `{document['command']}`",
        "- gain: PSNR difference and relative fMSE reduction of each output over the composite "
        "(the bar: >= +2 dB and >= 30%)",
        "",
    ]
    for model in document["models"]:
        lines.append(quality_markdown(model).replace("# harmony eval", f"## {model['arch']}", 1))
        lines += [
            f"- gain {label}: {gain['psnr_gain_db']:+.2f} dB PSNR, fMSE "
            f"{-100 * gain['fmse_reduction']:+.1f}%"
            for label, gain in model["gain"].items()
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=HELD_OUT_COUNT)
    args = parser.parse_args()
    write_results(args, measure(args.count), markdown)


if __name__ == "__main__":
    main()
