"""Deterministic demo composites made from the photographs bundled with scikit-image.

A sample is one photograph (the real image), a binary foreground mask covering 10-40% of the
frame (a shape of `harmony.data.masks`: blob, ellipse, rectangle or object-like outline), and
the photograph with only the foreground re-coloured (the composite) by one family of
`harmony.data.recolouring` (exposure, white balance, tone curves, saturation and hue, colour
transfer from another photograph, a smooth 3D LUT), each drawn within bounds that make the
mismatch visible but plausible. Everything follows from (seed, sample index) through numpy's
PCG64, so the same seed writes byte-identical files.

The photographs are split in two: `harmony fit` learns from FIT_PHOTOS, and fitted checkpoints
are scored on `held_out_composites()`, composites of HELD_OUT_PHOTOS (`DemoComposites` makes
them in memory, exactly as `make_demo_dataset` writes them). A set can be limited to some
families (`families=`): the leave-one-family-out benchmark fits without one and scores on it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data as skdata

from harmony.data import png
from harmony.data.iharmony import COMPOSITE_DIR, MASK_DIR, REAL_DIR, Sample
from harmony.data.images import tensor_from_pixels
from harmony.data.masks import SHAPES, foreground_mask
from harmony.data.recolouring import FAMILIES
from harmony.errors import HarmonyError
from harmony.files import write_bytes_atomic


def _grey_as_rgb(load):
    return lambda: np.repeat(load()[..., None], 3, axis=2)


# The images shipped inside the scikit-image wheel (no download): RGB photographs (one of them a
# microscopy slide, two mostly black: a deep-field sky and a retina) and grey photographs and
# textures as RGB, which the fit's augmentation re-colours.
PHOTOS = {
    "astronaut": skdata.astronaut,
    "chelsea": skdata.chelsea,
    "coffee": skdata.coffee,
    "rocket": skdata.rocket,
    "motorcycle": lambda: skdata.stereo_motorcycle()[0],
    "ihc": skdata.immunohistochemistry,
    "hubble": skdata.hubble_deep_field,
    "retina": skdata.retina,
    "camera": _grey_as_rgb(skdata.camera),
    "grass": _grey_as_rgb(skdata.grass),
    "brick": _grey_as_rgb(skdata.brick),
    "gravel": _grey_as_rgb(skdata.gravel),
}

# The split of `PHOTOS` by photograph (see the module docstring).
HELD_OUT_PHOTOS = ("astronaut", "chelsea")
FIT_PHOTOS = tuple(name for name in PHOTOS if name not in HELD_OUT_PHOTOS)
# The fixed held-out set fitted checkpoints are scored on (`held_out_composites`).
HELD_OUT_COUNT = 8
HELD_OUT_SEED = 1

# Pixels of a colour-transfer reference photograph: every REFERENCE_STRIDE-th in each direction.
REFERENCE_STRIDE = 4


@dataclass(frozen=True)
class DemoArrays:
    """One demo sample in memory: [H,W,3] uint8 images and a [H,W] uint8 mask (0 or 255), made
    with the recolouring `family` and the mask `shape`."""

    photo: str
    composite: np.ndarray
    mask: np.ndarray
    real: np.ndarray
    family: str
    shape: str


def make_demo_dataset(
    out_dir: str | os.PathLike,
    count: int = 4,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    force: bool = False,
    photos: tuple[str, ...] | None = None,
    families: tuple[str, ...] | None = None,
) -> list[Sample]:
    """Write `count` demo samples in the iHarmony4 layout under `out_dir`.

    Sample i of photo P is written losslessly as `real_images/P{i:04d}.png`,
    `masks/P{i:04d}_1.png` (8-bit gray, 0 or 255) and `composite_images/P{i:04d}_1_1.png`.
    Photos are taken in turn from `photos`, starting at index `seed % len(photos)`.

    Args:
        out_dir: destination folder (created if missing).
        count: number of samples, default 4.
        seed: non-negative integer, default 0; the same seed gives byte-identical files.
        size: (H, W) to resize every photo to (bilinear, antialiased); None (default) keeps
            each photo's own size.
        force: replace existing files; False (default) refuses to write if any exists.
        photos: names from `PHOTOS` to draw from (e.g. `HELD_OUT_PHOTOS`); None (default):
            all of them.
        families: recolouring families to draw from (`harmony.data.recolouring.FAMILIES`);
            None (default): all of them.
    Returns:
        The samples written, in order.
    Raises:
        HarmonyError: invalid count/seed/size/photos/families, or existing files without
            `force`.
    """
    composites = DemoComposites(count, seed, size, photos, families)  # validates the arguments
    out_dir = Path(out_dir)
    planned = []
    for index in range(count):
        name = composites.photo_id(index)
        planned.append(
            Sample(
                f"{name}_1_1",
                out_dir / COMPOSITE_DIR / f"{name}_1_1.png",
                out_dir / MASK_DIR / f"{name}_1.png",
                out_dir / REAL_DIR / f"{name}.png",
            )
        )
    existing = [
        str(path)
        for sample in planned
        for path in (sample.composite_path, sample.mask_path, sample.real_path)
        if path.exists()
    ]
    if existing and not force:
        raise HarmonyError(
            f"{len(existing)} demo file(s) already exist in {out_dir} (first: {existing[0]}); "
            "refusing to overwrite them. Pass --force (force=True) or choose another folder."
        )
    for index, sample in enumerate(planned):
        arrays = composites.arrays(index)
        write_bytes_atomic(sample.real_path, png.encode_png(arrays.real), force=True)
        write_bytes_atomic(sample.mask_path, png.encode_png(arrays.mask[..., None]), force=True)
        write_bytes_atomic(sample.composite_path, png.encode_png(arrays.composite), force=True)
    return planned


class DemoComposites:
    """The samples `make_demo_dataset(..., count, seed, size, photos=photos)` would write (with
    `families`, those recoloured by one of them), made in memory and read like an
    `IHarmonyDataset`: item i is {"name", "composite" [1,3,H,W], "mask" [1,1,H,W], "real"
    [1,3,H,W] (float32 in [0,1]), "bit_depth" (8)}."""

    def __init__(
        self,
        count: int,
        seed: int = 0,
        size: tuple[int, int] | None = None,
        photos: tuple[str, ...] | None = None,
        families: tuple[str, ...] | None = None,
    ):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise HarmonyError(f"Demo sample count must be a positive integer, received {count!r}.")
        _check_seed(seed)
        if size is not None:
            _check_size(size)
        self.count, self.seed, self.size = count, seed, size
        self.photos = _checked_photos(photos)
        self.families = checked_families(families)

    def __len__(self) -> int:
        return self.count

    def photo_id(self, index: int) -> str:
        """The iHarmony4 photo id of sample `index` (its composite is `<id>_1_1`)."""
        return f"{_photo_name(index, self.seed, self.photos)}{index:04d}"

    def arrays(self, index: int) -> DemoArrays:
        """Sample `index` as uint8 arrays."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        return demo_arrays(index, self.seed, self.size, self.photos, self.families)

    def __getitem__(self, index: int) -> dict:
        arrays = self.arrays(index)
        return {
            "name": f"{self.photo_id(index)}_1_1",
            "composite": tensor_from_pixels(arrays.composite, 8),
            "mask": tensor_from_pixels(arrays.mask[..., None], 8),
            "real": tensor_from_pixels(arrays.real, 8),
            "bit_depth": 8,
        }


def held_out_composites(
    count: int = HELD_OUT_COUNT, families: tuple[str, ...] | None = None
) -> DemoComposites:
    """The first `count` of the fixed held-out set: demo composites of `HELD_OUT_PHOTOS` (seed
    `HELD_OUT_SEED`) at the photographs' own sizes, of every family or of `families`."""
    return DemoComposites(count, HELD_OUT_SEED, photos=HELD_OUT_PHOTOS, families=families)


def demo_composite(
    height: int, width: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build one demo sample in memory at any size (e.g. 384x512 or 2048x2048).

    It is sample 0 of `make_demo_dataset(..., seed=seed, size=(height, width))`, exactly: the
    values are the 8-bit levels of those files divided by 255.

    Returns:
        (composite [1,3,H,W], mask [1,1,H,W] of 0.0/1.0, real [1,3,H,W]), float32 in [0,1].
    """
    _check_size((height, width))
    _check_seed(seed)
    arrays = demo_arrays(0, seed, (height, width))
    return (
        tensor_from_pixels(arrays.composite, 8),
        tensor_from_pixels(arrays.mask[..., None], 8),
        tensor_from_pixels(arrays.real, 8),
    )


def demo_arrays(
    index: int,
    seed: int,
    size: tuple[int, int] | None,
    photos: tuple[str, ...] | None = None,
    families: tuple[str, ...] | None = None,
) -> DemoArrays:
    """Sample `index` of the demo set for `seed` (see `make_demo_dataset`), as uint8 arrays."""
    rng = np.random.default_rng([seed, index])
    photos = _checked_photos(photos)
    photo = _photo_name(index, seed, photos)
    real = photograph(photo) if size is None else resized(photograph(photo), size)
    return composite_arrays(photo, real, rng, checked_families(families), photos)


def composite_arrays(
    photo: str,
    real: np.ndarray,
    rng: np.random.Generator,
    families: tuple[str, ...],
    references: tuple[str, ...],
) -> DemoArrays:
    """A demo sample of the [H,W,3] uint8 photograph `real` (named `photo`): a mask of a drawn
    shape and the foreground re-coloured by a family drawn from `families`; a colour transfer
    takes its target statistics from another photograph of `references` where there is one."""
    shape = tuple(SHAPES)[rng.integers(len(SHAPES))]
    mask = foreground_mask(shape, *real.shape[:2], rng)
    family = families[rng.integers(len(families))]
    reference = reference_pixels(photo, references, rng)
    pixels = real[mask].astype(np.float64) / 255
    recoloured = FAMILIES[family](pixels, rng, reference)
    composite = real.copy()
    composite[mask] = to_uint8(recoloured)
    return DemoArrays(photo, composite, mask.astype(np.uint8) * 255, real, family, shape)


def reference_pixels(
    photo: str, references: tuple[str, ...], rng: np.random.Generator
) -> np.ndarray:
    """[M,3] pixels in [0,1] of a photograph of `references` other than `photo` (drawn from
    `rng`; `photo` itself where there is no other), every `REFERENCE_STRIDE`-th in each
    direction: the target of a colour transfer."""
    others = [name for name in references if name != photo] or [photo]
    reference = photograph(others[rng.integers(len(others))])
    return reference[::REFERENCE_STRIDE, ::REFERENCE_STRIDE].reshape(-1, 3) / 255.0


def _photo_name(index: int, seed: int, photos: tuple[str, ...]) -> str:
    return photos[(seed + index) % len(photos)]


def checked_families(families: tuple[str, ...] | None) -> tuple[str, ...]:
    """`families` (names of `harmony.data.recolouring.FAMILIES`), all of them for None.

    Raises:
        HarmonyError: an unknown name, or none.
    """
    return _checked_names(families, tuple(FAMILIES), "Recolouring families")


def _checked_photos(photos: tuple[str, ...] | None) -> tuple[str, ...]:
    return _checked_names(photos, tuple(PHOTOS), "Demo photos")


def _checked_names(names, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    if names is None:
        return known
    if not names or any(name not in known for name in names):
        raise HarmonyError(f"{what} must be some of {', '.join(known)}, received {list(names)!r}.")
    return tuple(names)


@functools.lru_cache(maxsize=len(PHOTOS))
def photograph(name: str) -> np.ndarray:
    """The bundled photograph `name` (a key of `PHOTOS`) as a read-only [H,W,3] uint8 array."""
    pixels = np.ascontiguousarray(PHOTOS[name](), dtype=np.uint8)
    pixels.flags.writeable = False
    return pixels


def resized(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The [H,W,3] uint8 `photo` resized to `size` (H, W): bilinear, antialiased, 8-bit."""
    image = torch.from_numpy(photo.transpose(2, 0, 1).astype(np.float32))[None]
    image = F.interpolate(image, size=tuple(size), mode="bilinear", antialias=True)
    return to_uint8(image[0].numpy().transpose(1, 2, 0) / 255)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Values in [0,1] (clipped) as 8-bit levels, rounded to nearest."""
    return np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise HarmonyError(f"Demo seed must be a non-negative integer, received {seed!r}.")


def _check_size(size: tuple[int, int]) -> None:
    valid = len(size) == 2 and all(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1 for value in size
    )
    if not valid:
        raise HarmonyError(f"Demo size must be two positive integers (H, W), received {size!r}.")
