"""Harmonization quality of the fitted checkpoints in the papers' metrics (MSE, fMSE, PSNR,
fPSNR, SSIM with the official definitions, `harmony eval`), one JSON and one Markdown file:

1. overall: the shipped checkpoints on the held-out set (`held_out_composites()`: photographs
   never fitted, every recolouring family) in PyTorch FP32 and the ONNX Runtime FP32 / FP16
   graphs;
2. per family: the shipped checkpoints (PyTorch FP32) on held-out composites of one family;
3. leave-one-family-out: for each family F, the architecture fitted on every family but F
   (`fit_model`, the --lofo-steps / --lofo-size budget) and scored on held-out composites of F:
   what the stand-ins do on a change they never saw, on photographs never fitted; beside it the
   control, fitted on every family at the same budget (what the smaller budget alone gives).
   The fitted checkpoints are kept in --work and reused by a later run with the same settings
   and fit photographs (read from each checkpoint's metadata); others are fitted again.

    python benchmarks/quality.py --work /tmp/lofo --json benchmarks/results/quality.json \
        --markdown benchmarks/results/quality.md
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from harmony.data.demo import FIT_PHOTOS, HELD_OUT_COUNT, HELD_OUT_SEED, held_out_composites
from harmony.data.recolouring import FAMILIES
from harmony.fitting.fit import DEFAULT_SETTINGS, fit_model, write_fitted_checkpoint
from harmony.models.checkpoint import load_checkpoint
from harmony.profiling.eval import quality_document
from harmony.profiling.report import quality_markdown
from harmony.quality import QualityTarget, gain_over_composite
from harmony.weights import fitted_archs, fitted_checkpoint
from results_files import command_line, results_parser, write_results

TARGETS = [QualityTarget("ort", "fp32"), QualityTarget("ort", "fp16")]
REFERENCE = QualityTarget("torch", "fp32").label
DATA_LABEL = f"held-out demo composites (seed {HELD_OUT_SEED})"
METRICS = ("mse", "fmse", "psnr", "fpsnr", "ssim")
FIT_KEYS = ("settings", "fit_photos", "fit_seconds")
# The goals: a family left out of the fit, and the shipped checkpoints overall.
LEFT_OUT_GOAL = {"psnr_gain_db": 1.0, "fmse_ratio": 0.8}
OVERALL_GOAL = {"psnr_gain_db": 2.0, "fmse_ratio": 0.6}


def scored(dataset, label: str, checkpoint: Path, targets=(), desc: str = "") -> dict:
    """`harmony eval`'s document of `checkpoint` on `dataset`, with the gain of each output."""
    bar = tqdm(total=len(dataset), desc=desc, unit="image", file=sys.stderr, disable=None)
    document = quality_document(
        dataset,
        label,
        Path(os.path.relpath(checkpoint)),  # as the command line names it
        list(targets),
        progress=lambda _: bar.update(1),
        command=command_line(),
    )
    bar.close()
    if document["skipped"]:
        raise SystemExit(f"{checkpoint}: not measured: {document['skipped']}")
    document["gain"] = {
        output: gain_over_composite(document["means"], output)
        for output in document["means"]
        if output != "composite"
    }
    return document


def summary(document: dict) -> dict:
    """The composite's and the PyTorch output's means, and the gain (fMSE as a ratio)."""
    gain = document["gain"][REFERENCE]
    return {
        "images": document["images"],
        "composite": document["means"]["composite"],
        "output": document["means"][REFERENCE],
        "psnr_gain_db": gain["psnr_gain_db"],
        "fmse_ratio": 1.0 - gain["fmse_reduction"],
    }


def budget_checkpoint(arch: str, left_out: str | None, steps: int, size: int, work: Path) -> dict:
    """The checkpoint of `arch` fitted at the left-out budget on every family but `left_out`
    (every family for None: the control), fitted now unless `work` has it."""
    families = tuple(name for name in FAMILIES if name != left_out)
    settings = dataclasses.replace(
        DEFAULT_SETTINGS[arch], steps=steps, size=size, families=families
    )
    name = f"without-{left_out}" if left_out else "every-family"
    path = work / f"{arch}.{name}.pth"
    fit = _as_json({"settings": dataclasses.asdict(settings), "fit_photos": FIT_PHOTOS})
    if path.exists():
        metadata = load_checkpoint(path).checkpoint.metadata
        if _as_json({key: metadata.get(key) for key in fit}) == fit:
            return {"path": path, **fit, "fit_seconds": metadata["seconds"]}
    result = fit_model(settings)
    write_fitted_checkpoint(result, path, command_line(), force=True)
    return {"path": path, **fit, "fit_seconds": result.seconds}


def _as_json(value):
    return json.loads(json.dumps(value))


def measure(args) -> dict:
    args.work.mkdir(parents=True, exist_ok=True)
    models = []
    for arch in fitted_archs():
        shipped = fitted_checkpoint(arch)
        overall = scored(held_out_composites(args.count), DATA_LABEL, shipped, TARGETS, arch)
        budget = (args.lofo_steps, args.lofo_size, args.work)
        control = budget_checkpoint(arch, None, *budget)
        families = {}
        for family in FAMILIES:
            dataset = held_out_composites(args.family_count, families=(family,))
            label = f"{DATA_LABEL}, {family} only"
            fitted = budget_checkpoint(arch, family, *budget)
            families[family] = {
                "shipped": summary(scored(dataset, label, shipped, desc=f"{arch} {family}")),
                "every_family": {
                    **summary(scored(dataset, label, control["path"], desc=f"{arch} all")),
                    "fit": {key: control[key] for key in FIT_KEYS},
                },
                "left_out": {
                    **summary(scored(dataset, label, fitted["path"], desc=f"{arch} -{family}")),
                    "fit": {key: fitted[key] for key in FIT_KEYS},
                },
            }
        models.append({"arch": arch, "overall": overall, "families": families})
    return {
        "command": command_line(),
        "lofo_budget": {"steps": args.lofo_steps, "size": args.lofo_size},
        "goals": {"left_out": LEFT_OUT_GOAL, "overall": OVERALL_GOAL},
        "models": models,
    }


def _meets(row: dict, goal: dict) -> str:
    met = row["psnr_gain_db"] >= goal["psnr_gain_db"] and row["fmse_ratio"] <= goal["fmse_ratio"]
    return "yes" if met else "**no**"


def _cells(row: dict) -> list[str]:
    output = row["output"]
    return [
        f"{row['psnr_gain_db']:+.2f} dB",
        f"x{row['fmse_ratio']:.2f}",
        *(
            f"{output[metric]:.4f}" if metric == "ssim" else f"{output[metric]:.1f}"
            for metric in METRICS
        ),
    ]


def markdown(document: dict) -> str:
    budget = document["lofo_budget"]
    lines = [
        "# Quality of the fitted checkpoints: overall, per recolouring family, and on families "
        "left out of the fit",
        "",
        f"- command: `{document['command']}`",
        "- data: composites of the held-out photographs (never fitted); gain: PSNR of the "
        "PyTorch FP32 output minus the composite's; fMSE: the output's over the composite's",
        f"- left out: fitted on every other family, {budget['steps']} steps at "
        f"{budget['size']}x{budget['size']} (a smaller budget than the shipped fits); goal "
        f"{LEFT_OUT_GOAL['psnr_gain_db']:+.1f} dB and fMSE <= x{LEFT_OUT_GOAL['fmse_ratio']}; "
        "the control, fitted on every family at that budget, shows what the budget alone gives",
        f"- overall goal: {OVERALL_GOAL['psnr_gain_db']:+.1f} dB and fMSE <= "
        f"x{OVERALL_GOAL['fmse_ratio']}; no family made worse than the composite",
        "",
    ]
    header = [
        "PSNR gain",
        "fMSE ratio",
        *(name.upper() if name != "fpsnr" else "fPSNR" for name in METRICS),
    ]
    for model in document["models"]:
        overall = summary(model["overall"])
        lines += [
            f"## {model['arch']}",
            "",
            f"Overall ({overall['images']} held-out composites): {overall['psnr_gain_db']:+.2f} "
            f"dB, fMSE x{overall['fmse_ratio']:.2f} (goal met: {_meets(overall, OVERALL_GOAL)})",
            "",
            "| family | checkpoint | " + " | ".join(header) + " | left-out goal met |",
            "|---|---|" + "---|" * (len(header) + 1),
        ]
        for family, rows in model["families"].items():
            shipped, left_out = rows["shipped"], rows["left_out"]
            worse = "" if shipped["psnr_gain_db"] > 0 else " (worse than the composite)"
            lines.append(f"| {family} | shipped{worse} | " + " | ".join(_cells(shipped)) + " | |")
            lines.append(
                f"| {family} | every family, same budget | "
                + " | ".join(_cells(rows["every_family"]))
                + " | |"
            )
            lines.append(
                f"| {family} | fitted without it | "
                + " | ".join(_cells(left_out))
                + f" | {_meets(left_out, LEFT_OUT_GOAL)} |"
            )
        lines += [
            "",
            quality_markdown(model["overall"]).replace(
                "# harmony eval", "### Overall, every backend", 1
            ),
        ]
        lines += [
            f"- gain {label}: {gain['psnr_gain_db']:+.2f} dB PSNR, fMSE "
            f"{-100 * gain['fmse_reduction']:+.1f}%"
            for label, gain in model["overall"]["gain"].items()
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="Folder of the left-out fits.")
    parser.add_argument("--count", type=int, default=HELD_OUT_COUNT)
    parser.add_argument("--family-count", type=int, default=6)
    parser.add_argument("--lofo-steps", type=int, default=250)
    parser.add_argument("--lofo-size", type=int, default=128)
    args = parser.parse_args()
    write_results(args, measure(args), markdown)


if __name__ == "__main__":
    main()
