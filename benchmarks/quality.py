"""Harmonization quality of the fitted checkpoints in the papers' metrics (MSE, fMSE, PSNR,
fPSNR, SSIM with the official definitions, `harmony eval`), one JSON and one Markdown file:

1. overall: the shipped checkpoints on the held-out set (`held_out_composites()`: photographs
   never fitted, every recolouring family) in PyTorch FP32 and the ONNX Runtime FP32 / FP16
   graphs;
2. per family: the shipped checkpoints (PyTorch FP32) on held-out composites of one family;
3. leave-one-family-out: for each family F, the architecture fitted on every family but F
   (`fit_model` with the architecture's settings, at its --lofo-steps budget and --lofo-size)
   and scored on held-out composites of F: what the stand-ins do on a change they never saw,
   on photographs never fitted; beside it the control, fitted on every family at the same
   budget (at the shipped fit's own settings, the shipped checkpoint is the control).
   HDNet-lite is left out at its shipped budget (2000 steps); AICT at 250 steps, because its
   seven fits would take hours here at its shipped 1000 steps and its gain does not grow with
   the steps (src/harmony/weights/README.md).
   The fitted checkpoints are kept in --work and reused by a later run with the same settings
   and fit photographs (read from each checkpoint's metadata); others are fitted again.

    python benchmarks/quality.py --work /tmp/lofo --json benchmarks/results/quality.json \
        --markdown benchmarks/results/quality.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from harmony.data.demo import (
    FIT_PHOTOS,
    HELD_OUT_COUNT,
    HELD_OUT_SEED,
    checked_families,
    held_out_composites,
)
from harmony.data.recolouring import FAMILIES
from harmony.fitting.fit import DEFAULT_SETTINGS, fit_model, write_fitted_checkpoint
from harmony.models.checkpoint import load_checkpoint
from harmony.profiling.eval import quality_document
from harmony.profiling.report import quality_markdown
from harmony.quality import BASELINE, QualityTarget, gain_over_composite
from harmony.weights import fitted_archs, fitted_checkpoint
from results_files import command_line, results_parser, write_results

TARGETS = [QualityTarget("ort", "fp32"), QualityTarget("ort", "fp16")]
REFERENCE = QualityTarget("torch", "fp32").label
DATA_LABEL = f"held-out demo composites (seed {HELD_OUT_SEED})"
METRICS = ("mse", "fmse", "psnr", "fpsnr", "ssim")
# The headings of `cells`.
COLUMNS = [
    "PSNR gain",
    "fMSE ratio",
    *(name.upper() if name != "fpsnr" else "fPSNR" for name in METRICS),
]
FIT_KEYS = ("settings", "fit_photos", "fit_seconds")
# The goals: a family left out of the fit, and the shipped checkpoints overall.
LEFT_OUT_GOAL = {"psnr_gain_db": 1.0, "fmse_ratio": 0.8}
OVERALL_GOAL = {"psnr_gain_db": 2.0, "fmse_ratio": 0.6}
# Steps of the left-out fits (see the docstring).
LOFO_STEPS = {"aict": 250, "hdnet-lite": DEFAULT_SETTINGS["hdnet-lite"].steps}


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


def gain_row(means: dict, label: str) -> dict:
    """The composite's and output `label`'s means (`evaluate`'s "means"), and the gain (fMSE
    as a ratio): a row of the tables."""
    gain = gain_over_composite(means, label)
    return {
        "composite": means[BASELINE],
        "output": means[label],
        "psnr_gain_db": gain["psnr_gain_db"],
        "fmse_ratio": 1.0 - gain["fmse_reduction"],
    }


def summary(document: dict) -> dict:
    """The composite's and the PyTorch output's means, and the gain (fMSE as a ratio)."""
    return {"images": document["images"], **gain_row(document["means"], REFERENCE)}


def budget_checkpoint(arch: str, left_out: str | None, steps: int, size: int, work: Path) -> dict:
    """The checkpoint of `arch` fitted at the left-out budget on every family but `left_out`
    (every family for None: the control, which is the shipped checkpoint where the budget is
    its own), fitted now unless `work` has it."""
    families = tuple(name for name in FAMILIES if name != left_out)
    settings = dataclasses.replace(
        DEFAULT_SETTINGS[arch], steps=steps, size=size, families=families
    )
    name = f"without-{left_out}" if left_out else "every-family"
    path = work / f"{arch}.{name}.pth"
    fit = _as_json({"settings": dataclasses.asdict(settings), "fit_photos": FIT_PHOTOS})
    candidates = [path] if left_out else [fitted_checkpoint(arch), path]
    for candidate in filter(Path.exists, candidates):
        metadata = load_checkpoint(candidate).checkpoint.metadata
        stored = _as_json({key: metadata.get(key) for key in fit})
        stored["settings"]["families"] = list(checked_families(stored["settings"]["families"]))
        if stored == fit:
            return {"path": candidate, **fit, "fit_seconds": metadata["seconds"]}
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
        budget = (args.lofo_steps[arch], args.lofo_size, args.work)
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
        models.append(
            {
                "arch": arch,
                "lofo_budget": {"steps": args.lofo_steps[arch], "size": args.lofo_size},
                "overall": overall,
                "families": families,
            }
        )
    return {
        "command": command_line(),
        "goals": {"left_out": LEFT_OUT_GOAL, "overall": OVERALL_GOAL},
        "models": models,
    }


def _meets(row: dict, goal: dict) -> str:
    met = row["psnr_gain_db"] >= goal["psnr_gain_db"] and row["fmse_ratio"] <= goal["fmse_ratio"]
    return "yes" if met else "**no**"


def cells(row: dict) -> list[str]:
    """A row's gain, fMSE ratio and metrics, formatted."""
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
    lines = [
        "# Quality of the fitted checkpoints: overall, per recolouring family, and on families "
        "left out of the fit",
        "",
        f"- command: `{document['command']}`",
        "- data: composites of the held-out photographs (never fitted); gain: PSNR of the "
        "PyTorch FP32 output minus the composite's; fMSE: the output's over the composite's",
        "- left out: fitted on every other family at the budget each section names; goal "
        f"{LEFT_OUT_GOAL['psnr_gain_db']:+.1f} dB and fMSE <= x{LEFT_OUT_GOAL['fmse_ratio']}; "
        "the control, fitted on every family at that budget, shows what the budget alone gives "
        "(at the shipped fit's budget, it is the shipped checkpoint)",
        f"- overall goal: {OVERALL_GOAL['psnr_gain_db']:+.1f} dB and fMSE <= "
        f"x{OVERALL_GOAL['fmse_ratio']}; no family made worse than the composite",
        "",
    ]
    for model in document["models"]:
        overall = summary(model["overall"])
        budget = model["lofo_budget"]
        shipped_steps = DEFAULT_SETTINGS[model["arch"]].steps
        lines += [
            f"## {model['arch']}",
            "",
            f"Left out at {budget['steps']} steps at {budget['size']}x{budget['size']} (the "
            f"shipped fit: {shipped_steps} steps).",
            "",
            f"Overall ({overall['images']} held-out composites): {overall['psnr_gain_db']:+.2f} "
            f"dB, fMSE x{overall['fmse_ratio']:.2f} (goal met: {_meets(overall, OVERALL_GOAL)})",
            "",
            "| family | checkpoint | " + " | ".join(COLUMNS) + " | left-out goal met |",
            "|---|---|" + "---|" * (len(COLUMNS) + 1),
        ]
        for family, rows in model["families"].items():
            shipped, left_out = rows["shipped"], rows["left_out"]
            worse = "" if shipped["psnr_gain_db"] > 0 else " (worse than the composite)"
            lines.append(f"| {family} | shipped{worse} | " + " | ".join(cells(shipped)) + " | |")
            lines.append(
                f"| {family} | every family, same budget | "
                + " | ".join(cells(rows["every_family"]))
                + " | |"
            )
            lines.append(
                f"| {family} | fitted without it | "
                + " | ".join(cells(left_out))
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


def _arch_steps(text: str) -> tuple[str, int]:
    arch, _, steps = text.partition("=")
    if arch not in LOFO_STEPS or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected ARCH=STEPS with ARCH in {list(LOFO_STEPS)}")
    return arch, int(steps)


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="Folder of the left-out fits.")
    parser.add_argument("--count", type=int, default=HELD_OUT_COUNT)
    parser.add_argument("--family-count", type=int, default=6)
    parser.add_argument(
        "--lofo-steps",
        type=_arch_steps,
        action="append",
        default=[],
        metavar="ARCH=STEPS",
        help=f"Steps of the left-out fits of ARCH (repeatable; default {LOFO_STEPS}).",
    )
    parser.add_argument("--lofo-size", type=int, default=128)
    args = parser.parse_args()
    args.lofo_steps = {**LOFO_STEPS, **dict(args.lofo_steps)}
    write_results(args, measure(args), markdown)


if __name__ == "__main__":
    main()
