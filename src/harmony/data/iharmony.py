"""Reader for the iHarmony4 folder layout (and for `make_demo_dataset`, which writes it).

One subset folder (HCOCO, HAdobe5k, HFlickr, Hday2night, or a demo folder) holds::

    composite_images/X_Y_Z.jpg    composite Z of object Y of photo X
    masks/X_Y.png                 foreground mask of object Y
    real_images/X.jpg             the untouched photo

The partner files are looked up as .jpg or .png. A split file (`HCOCO_train.txt`, ...) lists one
composite per line: a bare file name is taken from `<root>/composite_images/`, a path with
folders (as in the top-level `IHD_train.txt`: `HCOCO/composite_images/...`) is relative to root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harmony.data.images import image_size, read_image, read_mask
from harmony.errors import HarmonyError, listing

COMPOSITE_DIR = "composite_images"
MASK_DIR = "masks"
REAL_DIR = "real_images"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PARTNER_SUFFIXES = (".jpg", ".png")


@dataclass(frozen=True)
class Sample:
    """The three files of one harmonization sample."""

    name: str
    composite_path: Path
    mask_path: Path
    real_path: Path


def sample_from_composite(composite_path: str | os.PathLike) -> Sample:
    """Find the mask and real image of an iHarmony4 composite `.../composite_images/X_Y_Z.ext`.

    Returns:
        The sample, named after the composite's stem (`X_Y_Z`).
    Raises:
        HarmonyError: the name is not `X_Y_Z`, or the mask `masks/X_Y` or the real image
            `real_images/X` (.jpg or .png) is missing or present in both formats.
    """
    composite_path = Path(composite_path)
    photo, _, _ = _name_parts(composite_path)
    mask_path = mask_of(composite_path)
    real_path = _partner(
        composite_path.parent.parent / REAL_DIR, photo, "real image", composite_path
    )
    return Sample(composite_path.stem, composite_path, mask_path, real_path)


def mask_of(composite_path: str | os.PathLike) -> Path:
    """The mask `masks/X_Y` (.jpg or .png) of the composite `.../composite_images/X_Y_Z.ext`.

    Raises:
        HarmonyError: the name is not `X_Y_Z`, or the mask is missing or in both formats.
    """
    composite_path = Path(composite_path)
    photo, obj, _ = _name_parts(composite_path)
    return _partner(
        composite_path.parent.parent / MASK_DIR, f"{photo}_{obj}", "mask", composite_path
    )


def composites_in(root: str | os.PathLike) -> list[Path]:
    """The .jpg/.jpeg/.png files of `<root>/composite_images/`, sorted by name.

    Raises:
        HarmonyError: no such folder, or no composite in it.
    """
    folder = Path(root) / COMPOSITE_DIR
    if not folder.is_dir():
        raise HarmonyError(
            f"{root} has no {COMPOSITE_DIR}/ folder; expected an iHarmony4 subset "
            f"folder (e.g. HCOCO/), or pass the split file that lists the composites."
        )
    composites = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )
    if not composites:
        raise HarmonyError(f"{folder} holds no .jpg or .png composites; expected at least one.")
    return composites


def _name_parts(composite_path: Path) -> list[str]:
    parts = composite_path.stem.rsplit("_", 2)
    if len(parts) != 3 or not all(parts):
        raise HarmonyError(
            f"Composite {composite_path} is not named X_Y_Z (photo X, object Y, composite Z) as "
            "in iHarmony4; rename it, e.g. photo7_1_1.png with masks/photo7_1.png and "
            "real_images/photo7.png."
        )
    return parts


class IHarmonyDataset:
    """Composite / mask / real triplets of an iHarmony4-style folder.

    Args:
        root: a subset folder (with `composite_images/`, `masks/`, `real_images/`), or, with a
            split file whose lines carry folders, the iHarmony4 top folder.
        split_file: an iHarmony4 `*_train.txt` / `*_test.txt`; None (default) takes every
            .jpg/.jpeg/.png in `<root>/composite_images/`, sorted by name.
    Raises:
        HarmonyError: a missing folder or split file, no composites, or composites whose mask or
            real image is missing (all pairs are checked up front; the message lists them).
    """

    def __init__(self, root: str | os.PathLike, split_file: str | os.PathLike | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise HarmonyError(
                f"Dataset folder {self.root} does not exist or is not a folder; expected an "
                f"iHarmony4 subset folder with {COMPOSITE_DIR}/, {MASK_DIR}/ and {REAL_DIR}/."
            )
        if split_file is None:
            composites = composites_in(self.root)
        else:
            composites = self._composites_in_split(Path(split_file))
        self.samples = self._pair(composites)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        """Read sample `index`.

        Returns:
            {"name", "composite" [1,3,H,W], "mask" [1,1,H,W], "real" [1,3,H,W] (float32 in
            [0,1]), "bit_depth" (of the composite), "composite_path", "mask_path", "real_path"}.
        Raises:
            HarmonyError: a file cannot be read, or the mask or real image differs in size.
        """
        sample = self.samples[index]
        composite, bit_depth = read_image(sample.composite_path)
        size = tuple(composite.shape[-2:])
        mask = read_mask(sample.mask_path, size=size, image_path=sample.composite_path)
        real, _ = read_image(sample.real_path)
        if tuple(real.shape[-2:]) != size:
            raise HarmonyError(
                f"Real image {sample.real_path} is {real.shape[-2]}x{real.shape[-1]} (HxW) but "
                f"the composite {sample.composite_path} is {size[0]}x{size[1]}; expected the "
                "same size. Replace one of them."
            )
        return {
            "name": sample.name,
            "composite": composite,
            "mask": mask,
            "real": real,
            "bit_depth": bit_depth,
            "composite_path": sample.composite_path,
            "mask_path": sample.mask_path,
            "real_path": sample.real_path,
        }

    def check_files(self, limit: int | None = None) -> None:
        """Check the first `limit` samples' files (all by default) from their headers, without
        decoding them (`harmony.data.images.image_size`): every file readable, every mask and
        real image of its composite's size. Run it before the work that reads them.

        Raises:
            HarmonyError: listing every problem found.
        """
        problems = []
        for sample in self.samples[:limit]:
            try:
                size = image_size(sample.composite_path)
                for path, what in ((sample.mask_path, "Mask"), (sample.real_path, "Real image")):
                    other = image_size(path)
                    if other != size:
                        problems.append(
                            f"{what} {path} is {other[0]}x{other[1]} (HxW) but its composite is "
                            f"{size[0]}x{size[1]}"
                        )
            except HarmonyError as exc:
                problems.append(str(exc))
        if problems:
            listed = listing(problems, separator="\n  ")
            raise HarmonyError(
                f"{len(problems)} problem(s) in {self.root}, found before any work:\n  {listed}"
            )

    def _composites_in_split(self, split_file: Path) -> list[Path]:
        if not split_file.is_file():
            raise HarmonyError(
                f"Split file {split_file} does not exist; expected an iHarmony4 list such as "
                "HCOCO_test.txt. Check the path."
            )
        lines = [line.strip() for line in split_file.read_text(encoding="utf-8").splitlines()]
        composites = []
        for line in filter(None, lines):
            relative = Path(line)
            if len(relative.parts) == 1:
                composites.append(self.root / COMPOSITE_DIR / relative)
            else:
                composites.append(self.root / relative)
        if not composites:
            raise HarmonyError(f"Split file {split_file} lists no composites.")
        missing = [str(path) for path in composites if not path.is_file()]
        if missing:
            raise HarmonyError(
                f"Split file {split_file} lists {len(missing)} composite(s) that do not exist "
                f"under {self.root}: {listing(missing)}. Check that root is the folder the "
                "list is relative to."
            )
        return composites

    def _pair(self, composites: list[Path]) -> list[Sample]:
        samples, problems = [], []
        for composite in composites:
            try:
                samples.append(sample_from_composite(composite))
            except HarmonyError as exc:
                problems.append(str(exc))
        if problems:
            listed = listing(problems, separator="\n  ")
            raise HarmonyError(
                f"{len(problems)} of {len(composites)} composites under {self.root} cannot be "
                f"paired:\n  {listed}"
            )
        return samples


def _partner(folder: Path, stem: str, what: str, composite: Path) -> Path:
    found = [folder / f"{stem}{suffix}" for suffix in PARTNER_SUFFIXES]
    found = [path for path in found if path.is_file()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise HarmonyError(
            f"Composite {composite} has no {what}: expected {folder / stem}.jpg or .png. Add the "
            f"file or remove the composite from the dataset."
        )
    raise HarmonyError(
        f"Composite {composite} has two {what}s, {found[0]} and {found[1]}; expected one. "
        "Remove one of them."
    )
