"""Composites with their masks as Polygraphy's inputs: `load_data()` yields feed dicts
{"image": [B,3,H,W], "mask": [B,1,H,W]} (float32 in [0,1]; masks binary or soft, as real ones).

Usable as `--data-loader-script <this file>` or through `--harmony-data`, which sets it and
its settings. The settings are read from the environment, since Polygraphy calls the function
without arguments: HARMONY_POLYGRAPHY_DATA ("demo": demo composites, else an iHarmony4 folder),
HARMONY_POLYGRAPHY_RES (sizes N or HxW, comma-separated; a folder's images are resized to them
where given), HARMONY_POLYGRAPHY_BATCH and HARMONY_POLYGRAPHY_COUNT (feed dicts per size).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

SETTINGS = {
    "data": "HARMONY_POLYGRAPHY_DATA",
    "res": "HARMONY_POLYGRAPHY_RES",
    "batch": "HARMONY_POLYGRAPHY_BATCH",
    "count": "HARMONY_POLYGRAPHY_COUNT",
}
DEFAULTS = {"data": "demo", "res": "256", "batch": "1", "count": "1"}


def setting(name: str) -> str:
    return os.environ.get(SETTINGS[name]) or DEFAULTS[name]


def load_data() -> Iterator[dict]:
    from harmony.engines.profiles import parse_resolutions

    sizes = parse_resolutions([setting("res")])
    batch, count = int(setting("batch")), int(setting("count"))
    source = setting("data")
    for height, width in sizes:
        for index in range(count):
            seeds = range(index * batch, (index + 1) * batch)
            pairs = [_pair(source, seed, height, width) for seed in seeds]
            yield {
                "image": np.concatenate([image for image, _ in pairs]),
                "mask": np.concatenate([mask for _, mask in pairs]),
            }


def _pair(source: str, seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    import torch.nn.functional as functional

    from harmony.data import IHarmonyDataset, demo_composite

    if source == "demo":
        image, mask, _ = demo_composite(height, width, seed=seed)
    else:
        dataset = IHarmonyDataset(source)
        sample = dataset[seed % len(dataset)]
        image, mask = sample["composite"], sample["mask"]
        image = functional.interpolate(image, (height, width), mode="bilinear", antialias=True)
        mask = functional.interpolate(mask, (height, width), mode="bilinear", antialias=True)
        image, mask = image.clamp(0, 1), mask.clamp(0, 1)
    return image.numpy(), mask.numpy()
