"""Random foreground masks of several shapes, each covering a drawn fraction of the frame.

A shape is a smooth field over the image, thresholded at the value that leaves the drawn area
fraction above it (ties aside): `blob` (a union of 2-4 ellipses with a wavy rim), `ellipse`,
`rectangle` (rotated, corners slightly rounded) and `outline` (an object-like silhouette: a
star-shaped region whose radius varies smoothly with the angle, with a narrower part on top).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MASK_FRACTION = (0.12, 0.38)  # drawn inside the promised 10-40%, away from its ends

Field = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def foreground_mask(shape: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A [H,W] bool mask of `shape` (a key of `SHAPES`)."""
    scale = np.sqrt(height * width)
    y = (np.arange(height)[:, None] + 0.5) / scale
    x = (np.arange(width)[None, :] + 0.5) / scale
    centre = rng.uniform(0.3, 0.7, 2) * np.array([height, width]) / scale
    field = np.broadcast_to(SHAPES[shape](y - centre[0], x - centre[1], rng), (height, width))
    keep = max(1, round(rng.uniform(*MASK_FRACTION) * field.size))
    threshold = np.partition(field.ravel(), field.size - keep)[field.size - keep]
    return field >= threshold


def _rotated(y: np.ndarray, x: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    return y * np.cos(angle) + x * np.sin(angle), x * np.cos(angle) - y * np.sin(angle)


def _blob(y, x, rng) -> np.ndarray:
    field = np.full(np.broadcast_shapes(y.shape, x.shape), -np.inf)
    for k in range(rng.integers(2, 5)):
        dy, dx = rng.normal(0.0, 0.12, 2) if k else (0.0, 0.0)
        axis_y, axis_x = rng.uniform(0.08, 0.22, 2)
        u, v = _rotated(y - dy, x - dx, rng.uniform(0.0, np.pi))
        field = np.maximum(field, 1.0 - np.sqrt((u / axis_y) ** 2 + (v / axis_x) ** 2))
    for _ in range(3):
        frequency = rng.uniform(2.0, 6.0, 2) * 2 * np.pi
        field = field + 0.06 * np.sin(frequency[0] * y + frequency[1] * x + rng.uniform(0, 7))
    return field


def _ellipse(y, x, rng) -> np.ndarray:
    u, v = _rotated(y, x, rng.uniform(0.0, np.pi))
    ratio = rng.uniform(0.4, 1.0)
    return -np.sqrt((u * ratio) ** 2 + v**2)


def _rectangle(y, x, rng) -> np.ndarray:
    u, v = _rotated(y, x, rng.uniform(-0.4, 0.4))
    ratio = rng.uniform(0.35, 1.0)
    # An L8 norm: a rectangle with slightly rounded corners.
    return -(((u * ratio) ** 8 + v**8) ** (1 / 8))


def _outline(y, x, rng) -> np.ndarray:
    angle = np.arctan2(y, x)
    radius = np.sqrt(y**2 + x**2)
    reach = np.ones_like(angle)
    for order in range(1, 6):
        reach = reach + rng.normal(0.0, 0.25 / order) * np.cos(order * angle + rng.uniform(0, 7))
    # Narrower above the centre (a head on shoulders, a bottle's neck): image y grows downward.
    reach = reach * (1.0 - 0.3 * np.clip(-np.sin(angle), 0.0, 1.0) * rng.uniform(0.3, 1.0))
    return -radius / np.maximum(reach, 0.2)


SHAPES: dict[str, Field] = {
    "blob": _blob,
    "ellipse": _ellipse,
    "rectangle": _rectangle,
    "outline": _outline,
}
