"""What the held-out composites let a harmonizer recover, per recolouring family, in the papers'
metrics, beside the shipped checkpoints (PyTorch FP32): why AICT's stand-in gains little where
HDNet-lite's gains (issue 26). Same data as benchmarks/quality.py's per-family rows.

Harmonizers that see only the composite and its mask:
- background statistics: each channel of the foreground moved to the background's mean and
  standard deviation (colour transfer in RGB): what the photograph's global colour statistics
  tell. AICT's transformer has no positional encoding, so each thumbnail patch meets the others
  as an unordered set: apart from the patches that straddle the mask's edge, this kind of
  information is what it has.
- across the edge: one curve per channel fitted from the foreground's local mean colours to
  the background's where a window holds both (along the mask's edge), applied to the whole
  foreground: what the photograph's continuity across the edge tells. HDNet's convolutions see
  that at full resolution.

Oracles fitted on the real foreground (bounds, not harmonizers):
- one curve per channel (piecewise linear through 8 points, the form of AICT's LUT without its
  dependence on position): the most that one global per-channel curve can recover;
- a 3x4 affine colour map.

    python benchmarks/harmonization_bounds.py --json benchmarks/results/harmonization_bounds.json \\
        --markdown benchmarks/results/harmonization_bounds.md
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from harmony.contract import DEFAULT_RESOLUTIONS, LUT_CURVE_POINTS
from harmony.data.demo import held_out_composites
from harmony.data.recolouring import FAMILIES
from harmony.metrics import METRICS, scores
from harmony.profiling.environment import environment
from harmony.profiling.eval import prepare_runners
from harmony.quality import BASELINE, REFERENCE, QualityTarget
from harmony.runtime.sources import identify
from harmony.weights import fitted_archs, fitted_checkpoint
from quality import COLUMNS, DATA_LABEL, cells, gain_row
from results_files import command_line, machine_line, results_parser, write_results

# Side of the windows whose foreground and background means are paired along the edge, and the
# share of the window either side must hold.
EDGE_WINDOW = 9
EDGE_MIN_SHARE = 0.2
# Pull of a fitted curve towards the identity, per sample: the knots no sample reaches stay
# where the identity has them.
CURVE_RIDGE = {"edge": 1e-3, "oracle": 1e-6}
# Harmonizers by label, with what they see.
COMPOSITE_ONLY = ("background statistics", "across the edge")
ORACLES = ("oracle curve per channel", "oracle 3x4 colour map")


def _hats(values: np.ndarray) -> np.ndarray:
    """[N] values in [0,1] -> [N, points] weights of the piecewise-linear curve's points."""
    points = np.linspace(0.0, 1.0, LUT_CURVE_POINTS)
    spacing = points[1] - points[0]
    return np.clip(1.0 - np.abs(values[:, None] - points[None]) / spacing, 0.0, None)


def fitted_curve(source: np.ndarray, target: np.ndarray, ridge: float) -> np.ndarray:
    """The curve's point values minimising |curve(source) - target|^2 + ridge * N * |values -
    identity|^2, for [N] samples in [0,1]."""
    hats = _hats(source)
    identity = np.linspace(0.0, 1.0, LUT_CURVE_POINTS)
    pull = ridge * len(source)
    lhs = hats.T @ hats + pull * np.eye(LUT_CURVE_POINTS)
    return np.linalg.solve(lhs, hats.T @ target + pull * identity)


def _per_channel_curves(foreground, source, target, ridge) -> np.ndarray:
    """[3,N] foreground mapped through a curve per channel fitted from `source` to `target`."""
    return np.stack(
        [
            _hats(foreground[c]) @ fitted_curve(source[c], target[c], ridge)
            for c in range(foreground.shape[0])
        ]
    )


def background_statistics(composite, inside, real=None) -> np.ndarray:
    """The foreground with each channel's mean and standard deviation moved to the
    background's."""
    foreground, background = composite[:, inside], composite[:, ~inside]
    mean, std = foreground.mean(1, keepdims=True), foreground.std(1, keepdims=True)
    scale = background.std(1, keepdims=True) / np.maximum(std, 1e-6)
    return (foreground - mean) * scale + background.mean(1, keepdims=True)


def across_the_edge(composite, inside, real=None) -> np.ndarray:
    """The foreground through one curve per channel fitted from its local mean colours to the
    background's in the windows along the mask's edge (unchanged where there is no edge)."""
    image = torch.from_numpy(composite)[None]
    mask = torch.from_numpy(inside.astype(np.float32))[None, None]

    def local_mean(tensor):
        return F.avg_pool2d(
            tensor, EDGE_WINDOW, stride=1, padding=EDGE_WINDOW // 2, count_include_pad=False
        )[0].numpy()

    share = local_mean(mask)[0]
    edge = (share >= EDGE_MIN_SHARE) & (share <= 1.0 - EDGE_MIN_SHARE)
    if not edge.any():
        return composite[:, inside]
    inner = local_mean(image * mask)[:, edge] / share[edge]
    outer = local_mean(image * (1.0 - mask))[:, edge] / (1.0 - share[edge])
    return _per_channel_curves(composite[:, inside], inner, outer, CURVE_RIDGE["edge"])


def oracle_curve(composite, inside, real) -> np.ndarray:
    """The foreground through the curve per channel that fits the real foreground best."""
    foreground = composite[:, inside]
    return _per_channel_curves(foreground, foreground, real[:, inside], CURVE_RIDGE["oracle"])


def oracle_colour_map(composite, inside, real) -> np.ndarray:
    """The foreground through the 3x4 affine colour map that fits the real foreground best."""
    foreground = np.concatenate([composite[:, inside], np.ones((1, inside.sum()))])
    colour_map, *_ = np.linalg.lstsq(foreground.T, real[:, inside].T, rcond=None)
    return (foreground.T @ colour_map).T


# Each takes (composite [3,H,W], inside [H,W] bool, real [3,H,W]) and gives the new foreground
# [3,N]; those that see only the composite ignore `real`.
HARMONIZERS = dict(
    zip(
        COMPOSITE_ONLY + ORACLES,
        (background_statistics, across_the_edge, oracle_curve, oracle_colour_map),
        strict=True,
    )
)


def _replaced_foreground(composite, inside, foreground) -> np.ndarray:
    output = composite.copy()
    output[:, inside] = np.clip(foreground, 0.0, 1.0)
    return output


def family_means(family: str, count: int, runners: dict) -> dict:
    """{label: means of each metric} over `count` held-out composites of `family`: the
    composite, every harmonizer and every runner."""
    dataset = held_out_composites(count, families=(family,))
    sums: dict[str, dict[str, float]] = {}
    for index in range(count):
        sample = dataset[index]
        composite = sample["composite"][0].numpy().astype(np.float64)
        real, mask = sample["real"][0].numpy(), sample["mask"][0].numpy()
        inside = mask[0] > 0.5
        outputs = {BASELINE: composite}
        for label, harmonizer in HARMONIZERS.items():
            foreground = harmonizer(composite, inside, real.astype(np.float64))
            outputs[label] = _replaced_foreground(composite, inside, foreground)
        for label, runner in runners.items():
            outputs[label] = runner.infer(sample["composite"], sample["mask"])[0].float().numpy()
        for label, output in outputs.items():
            total = sums.setdefault(label, dict.fromkeys(METRICS, 0.0))
            for metric, value in scores(output, real, mask).as_dict().items():
                total[metric] += value / count
    return sums


def measure(args) -> dict:
    reference = QualityTarget(*REFERENCE)
    runners = {}
    for arch in fitted_archs():
        prepared, skipped = prepare_runners(
            identify(fitted_checkpoint(arch)), [], DEFAULT_RESOLUTIONS
        )
        if skipped:
            raise SystemExit(f"{arch}: not measured: {skipped}")
        runners[f"{arch} (shipped)"] = prepared[reference.label]
    with contextlib.ExitStack() as stack:
        for runner in runners.values():
            stack.enter_context(runner)
        families = {family: family_means(family, args.family_count, runners) for family in FAMILIES}
    labels = list(next(iter(families.values())))
    overall = {
        label: {
            metric: float(np.mean([means[label][metric] for means in families.values()]))
            for metric in METRICS
        }
        for label in labels
    }
    return {
        "environment": environment(command_line()),
        "data": f"{DATA_LABEL}, {args.family_count} of each family",
        "composite_only": list(COMPOSITE_ONLY),
        "oracles": list(ORACLES),
        "families": families,
        "overall": overall,
    }


def _table(means: dict) -> list[str]:
    lines = ["| harmonizer | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for label in means:
        if label != BASELINE:
            lines.append(f"| {label} | " + " | ".join(cells(gain_row(means, label))) + " |")
    return lines


def markdown(document: dict) -> str:
    lines = [
        "# What the held-out composites let a harmonizer recover, per recolouring family",
        "",
        machine_line(document["environment"]),
        "",
        f"Data: {document['data']}. Gain: PSNR minus the composite's; fMSE ratio: over the "
        "composite's. Composite only: "
        + ", ".join(document["composite_only"])
        + "; oracles, fitted on the real foreground: "
        + ", ".join(document["oracles"])
        + " (see the script's docstring).",
        "",
        "## Every family (the mean of the family means)",
        "",
        *_table(document["overall"]),
    ]
    for family, means in document["families"].items():
        lines += ["", f"## {family}", "", *_table(means)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = results_parser(__doc__.splitlines()[0])
    parser.add_argument("--family-count", type=int, default=6)
    args = parser.parse_args()
    write_results(args, measure(args), markdown)


if __name__ == "__main__":
    main()
