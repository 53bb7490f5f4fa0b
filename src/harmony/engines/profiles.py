"""Optimization profiles of a TensorRT engine: the input shapes it accepts, and how to spell them.

Every harmonization graph has two inputs, image [B,3,H,W] and mask [B,1,H,W], which always share
B, H and W. A `Profile` therefore holds three (batch, height, width) triples, min <= opt <= max,
and derives the shapes of both inputs from them.

Two ways to write one on the command line:

* `--res 1024,2048` (with `--batch N` and optionally `--dynamic-batch`): each entry is `N` (NxN)
  or `HxW`. min is the smallest height and the smallest width listed, max the largest of each,
  opt the FIRST entry (list the resolution you run most first). `--batch N` fixes the batch to N;
  `--dynamic-batch` accepts 1..N with opt 1.
* trtexec-style `--min-shapes/--opt-shapes/--max-shapes image:1x3x512x512,mask:1x1x512x512`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harmony.contract import DEFAULT_RESOLUTIONS, GRAPH_INPUTS, MIN_SIDE
from harmony.errors import HarmonyError

# Channels of each graph input; batch, height and width come from the profile.
INPUT_CHANNELS = {GRAPH_INPUTS[0]: 3, GRAPH_INPUTS[1]: 1}

Dims = tuple[int, int, int]  # (batch, height, width)
Shape = tuple[int, int, int, int]  # (batch, channels, height, width)

_RESOLUTION = re.compile(r"^(\d+)(?:x(\d+))?$")
_LEVELS = ("min", "opt", "max")


@dataclass(frozen=True)
class Profile:
    """One optimization profile: (batch, height, width) at min, opt and max.

    Raises HarmonyError unless every value is a positive integer, height and width are at least
    2, and min <= opt <= max holds for batch, height and width separately.
    """

    min: Dims
    opt: Dims
    max: Dims

    def __post_init__(self) -> None:
        for level in _LEVELS:
            dims = getattr(self, level)
            if (
                not isinstance(dims, tuple)
                or len(dims) != 3
                or any(isinstance(v, bool) or not isinstance(v, int) for v in dims)
            ):
                raise HarmonyError(
                    f"profile {level} must be (batch, height, width) integers, got {dims!r}"
                )
            batch, height, width = dims
            if batch < 1 or min(height, width) < MIN_SIDE:
                raise HarmonyError(
                    f"profile {level} {_dims_text(dims)} is too small: batch must be >= 1 and "
                    f"height and width >= {MIN_SIDE}"
                )
        for axis, name in enumerate(("batch", "height", "width")):
            low, opt, high = (getattr(self, level)[axis] for level in _LEVELS)
            if not low <= opt <= high:
                raise HarmonyError(
                    f"profile {name} must satisfy min <= opt <= max, got min {low}, opt {opt}, "
                    f"max {high}; fix the shapes so that each dimension grows from min to max"
                )

    def shape(self, name: str, level: str) -> Shape:
        """The 4-D shape of graph input `name` ("image" or "mask") at `level` (min/opt/max)."""
        if name not in INPUT_CHANNELS:
            raise KeyError(f"unknown graph input '{name}'; expected one of {GRAPH_INPUTS}")
        batch, height, width = getattr(self, level)
        return (batch, INPUT_CHANNELS[name], height, width)

    def shapes(self, name: str) -> tuple[Shape, Shape, Shape]:
        """(min, opt, max) shapes of graph input `name`, as IOptimizationProfile.set_shape takes."""
        return (self.shape(name, "min"), self.shape(name, "opt"), self.shape(name, "max"))

    def contains(self, batch: int, height: int, width: int) -> bool:
        """Whether an input of that batch and size lies inside [min, max]."""
        return all(
            low <= value <= high
            for low, value, high in zip(self.min, (batch, height, width), self.max, strict=True)
        )

    def shape_spec(self, level: str) -> str:
        """trtexec-style spec of both inputs at `level`: `image:1x3x512x512,mask:1x1x512x512`."""
        return ",".join(
            f"{name}:{'x'.join(str(v) for v in self.shape(name, level))}" for name in GRAPH_INPUTS
        )

    def cli_args(self) -> list[str]:
        """The `harmony build` options that reproduce this profile exactly."""
        args: list[str] = []
        for level in _LEVELS:
            args += [f"--{level}-shapes", self.shape_spec(level)]
        return args

    def describe(self) -> str:
        """Short human form: `batch 1, 1024x1024 (opt 1024x1024) .. 2048x2048`."""
        return (
            f"batch {_range(self.min[0], self.max[0])}, {self.min[1]}x{self.min[2]} "
            f"(opt {self.opt[1]}x{self.opt[2]}) .. {self.max[1]}x{self.max[2]}"
        )

    def to_dict(self) -> dict[str, dict[str, list[int]]]:
        """JSON form (as in the engine manifest): {level: {input: [B, C, H, W]}}."""
        return {
            level: {name: list(self.shape(name, level)) for name in GRAPH_INPUTS}
            for level in _LEVELS
        }

    @classmethod
    def from_dict(cls, data: object) -> Profile:
        """Inverse of `to_dict`; raises HarmonyError for anything else."""
        try:
            levels = {}
            for level in _LEVELS:
                shapes = {name: tuple(data[level][name]) for name in GRAPH_INPUTS}  # type: ignore[index]
                levels[level] = _dims_of(shapes, f"profile {level}")
            return cls(**levels)
        except (KeyError, TypeError) as exc:
            raise HarmonyError(f"malformed profile {data!r}: {exc}") from None


def parse_resolution(text: str) -> tuple[int, int]:
    """`"1024"` -> (1024, 1024); `"768x1024"` -> (768, 1024) (height x width)."""
    match = _RESOLUTION.match(text.strip().lower())
    if match is None:
        raise HarmonyError(
            f"bad resolution '{text}': expected N (an NxN image) or HxW, e.g. 1024 or 768x1024"
        )
    height = int(match.group(1))
    width = int(match.group(2) or match.group(1))
    if min(height, width) < MIN_SIDE:
        raise HarmonyError(f"bad resolution '{text}': height and width must be >= {MIN_SIDE}")
    return height, width


def parse_resolutions(values: str | Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Every `--res` entry: `N` or `HxW`, comma-separated and/or repeated, in the order given;
    () when there is none."""
    if isinstance(values, str):
        values = [values]
    return tuple(
        parse_resolution(part) for text in values for part in text.split(",") if part.strip()
    )


def format_resolutions(sizes: Sequence[tuple[int, int]]) -> str:
    """Inverse of `parse_resolutions`: `1024,768x1024` (N for square sizes)."""
    return ",".join(str(h) if h == w else f"{h}x{w}" for h, w in sizes)


def profile_from_resolutions(
    sizes: Sequence[tuple[int, int]], batch: int = 1, dynamic_batch: bool = False
) -> Profile:
    """The profile covering `sizes` ((height, width) pairs, see `parse_resolutions`).

    min = the smallest height and smallest width listed, opt = the first entry, max = the largest
    height and largest width. Batch is fixed at `batch` (default 1), or 1..`batch` with opt 1
    when `dynamic_batch`.
    """
    if not sizes:
        raise HarmonyError("no resolution given: pass e.g. --res 1024 or --res 1024,2048")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise HarmonyError(f"batch must be a positive integer, got {batch!r}")
    low_batch, opt_batch = (1, 1) if dynamic_batch else (batch, batch)
    heights = [h for h, _ in sizes]
    widths = [w for _, w in sizes]
    return Profile(
        min=(low_batch, min(heights), min(widths)),
        opt=(opt_batch, *sizes[0]),
        max=(batch, max(heights), max(widths)),
    )


def parse_shape_spec(text: str, option: str = "shapes") -> dict[str, Shape]:
    """`image:1x3x512x512,mask:1x1x512x512` -> {"image": (1, 3, 512, 512), "mask": (...)}.

    Both inputs must be named once, with 4 positive dimensions and the right channel count.
    `option` names the command-line option in error messages.
    """
    shapes: dict[str, Shape] = {}
    for item in text.split(","):
        name, sep, dims_text = item.strip().partition(":")
        if not sep or name not in INPUT_CHANNELS:
            raise HarmonyError(
                f"bad {option} entry '{item.strip()}': expected NAME:BxCxHxW with NAME one of "
                f"{', '.join(GRAPH_INPUTS)}, e.g. image:1x3x512x512,mask:1x1x512x512"
            )
        if name in shapes:
            raise HarmonyError(f"{option} names '{name}' twice in '{text}'")
        parts = dims_text.lower().split("x")
        if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise HarmonyError(
                f"bad {option} shape '{name}:{dims_text}': expected 4 positive integers BxCxHxW"
            )
        shapes[name] = tuple(int(p) for p in parts)  # type: ignore[assignment]
    missing = [name for name in GRAPH_INPUTS if name not in shapes]
    if missing:
        raise HarmonyError(
            f"{option} '{text}' lacks {', '.join(missing)}: give the shapes of both inputs, "
            "e.g. image:1x3x512x512,mask:1x1x512x512"
        )
    return shapes


def profile_from_shapes(min_shapes: str, opt_shapes: str, max_shapes: str) -> Profile:
    """The profile for trtexec-style `--min-shapes/--opt-shapes/--max-shapes`.

    Raises HarmonyError if a spec is malformed, image and mask disagree in batch/height/width,
    a channel count is wrong, or min <= opt <= max does not hold.
    """
    levels = {}
    for level, text in zip(_LEVELS, (min_shapes, opt_shapes, max_shapes), strict=True):
        option = f"--{level}-shapes"
        levels[level] = _dims_of(parse_shape_spec(text, option), option)
    return Profile(**levels)


def _dims_of(shapes: dict[str, tuple[int, ...]], where: str) -> Dims:
    """(batch, height, width) shared by image and mask; checks channels and agreement."""
    for name, shape in shapes.items():
        if len(shape) != 4 or shape[1] != INPUT_CHANNELS[name]:
            raise HarmonyError(
                f"{where}: {name} must be [B,{INPUT_CHANNELS[name]},H,W], got "
                f"{'x'.join(str(v) for v in shape)}"
            )
    image, mask = (shapes[name] for name in GRAPH_INPUTS)
    dims = (image[0], image[2], image[3])
    if (mask[0], mask[2], mask[3]) != dims:
        raise HarmonyError(
            f"{where}: image {'x'.join(map(str, image))} and mask {'x'.join(map(str, mask))} "
            "must share batch, height and width; make the mask BxHxW match the image"
        )
    return dims  # type: ignore[return-value]


def _dims_text(dims: Dims) -> str:
    return "x".join(str(v) for v in dims)


def _range(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}..{high}"


def profile_from_options(
    resolutions: Sequence[tuple[int, int]] = (),
    batch: int | None = None,
    dynamic_batch: bool = False,
    min_shapes: str | None = None,
    opt_shapes: str | None = None,
    max_shapes: str | None = None,
) -> Profile:
    """The profile of `harmony build`'s options: either `--res` sizes (default
    `harmony.contract.DEFAULT_RESOLUTIONS`) with `--batch` (default 1) and `--dynamic-batch`, or
    all three of `--min/opt/max-shapes`.

    Raises:
        HarmonyError: the two styles are mixed, a shapes option is missing, or a value is bad.
    """
    shape_specs = {
        "--min-shapes": min_shapes,
        "--opt-shapes": opt_shapes,
        "--max-shapes": max_shapes,
    }
    given = [option for option, value in shape_specs.items() if value is not None]
    if given:
        if resolutions or batch is not None or dynamic_batch:
            raise HarmonyError(
                "give either --res/--batch/--dynamic-batch or --min-shapes/--opt-shapes/"
                "--max-shapes, not both"
            )
        missing = [option for option in shape_specs if option not in given]
        if missing:
            raise HarmonyError(
                f"{', '.join(given)} also needs {', '.join(missing)}: give all three shapes "
                "options, e.g. --min-shapes image:1x3x512x512,mask:1x1x512x512"
            )
        return profile_from_shapes(min_shapes, opt_shapes, max_shapes)  # type: ignore[arg-type]
    return profile_from_resolutions(
        resolutions or DEFAULT_RESOLUTIONS, 1 if batch is None else batch, dynamic_batch
    )
