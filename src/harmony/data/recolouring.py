"""The photometric changes a pasted foreground suffers, as named families of random recolourings.

Each family maps [N,3] foreground pixels in [0,1] to recoloured pixels in [0,1], drawing its
parameters from a numpy generator, within bounds that make the mismatch visible but plausible:

- `exposure`: exposure, mean-free white balance, contrast and gamma (the first demo family);
- `white_balance`: per-channel gains in linear light (a colour cast, with its brightness change);
- `tone_curves`: an independent tone curve per channel (gamma and contrast of its own);
- `saturation_hue`: saturation scaled and hue rotated about the grey axis;
- `color_transfer`: the foreground's colour statistics moved to those of another photograph
  (mean and standard deviation per channel of Ruderman's decorrelated l-alpha-beta space, as
  Reinhard et al. transfer colour and iHarmony4's HCOCO subset was made);
- `lut3d`: a random smooth 3D colour lookup (the identity plus low-frequency waves in RGB).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DISPLAY_GAMMA = 2.2  # exposure and white balance act on approximately linear light

EXPOSURE_STOPS = (0.25, 0.7)  # magnitude; the sign is drawn separately
MEAN_FREE_BALANCE_STOPS = 0.3  # per-channel log2 gain in [-0.3, 0.3], then made mean-free
CONTRAST_STOPS = 0.35  # contrast factor 2**U(-0.35, 0.35), about 0.78..1.27
GAMMA_STOPS = 0.35  # gamma 2**U(-0.35, 0.35), about 0.78..1.27
WHITE_BALANCE_STOPS = 0.55  # per-channel log2 gain in [-0.55, 0.55]
CHANNEL_GAMMA_STOPS = 0.45  # per-channel gamma 2**U(-0.45, 0.45)
CHANNEL_CONTRAST_STOPS = 0.3  # per-channel contrast 2**U(-0.3, 0.3) about the channel's mean
SATURATION_STOPS = (-1.2, 0.7)  # chroma scaled by 2**U(-1.2, 0.7), about 0.44..1.62
HUE_DEGREES = 35.0  # hue rotated by U(-35, 35) degrees
TRANSFER_STRENGTH = (0.6, 1.0)  # how far the statistics move toward the reference's
LUT_WAVES = 3  # low-frequency waves per output channel
LUT_AMPLITUDE = 0.09  # amplitude of each wave
LUT_FREQUENCY = 1.2  # largest frequency (cycles over [0,1]) of a wave along each axis

# RGB -> LMS -> log -> l-alpha-beta (Reinhard et al. 2001).
_RGB_TO_LMS = np.array(
    [[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]]
)
_LOG_LMS_TO_LAB = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array(
    [[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, -1.0, 0.0]]
)
_LMS_FLOOR = 1e-4  # log of LMS values floored here (black pixels)

Recolouring = Callable[[np.ndarray, np.random.Generator, np.ndarray], np.ndarray]


def exposure(pixels: np.ndarray, rng: np.random.Generator, reference=None) -> np.ndarray:
    """Exposure and mean-free white balance in linear light, then contrast and gamma."""
    stops = rng.choice([-1.0, 1.0]) * rng.uniform(*EXPOSURE_STOPS)
    balance = rng.uniform(-MEAN_FREE_BALANCE_STOPS, MEAN_FREE_BALANCE_STOPS, 3)
    gains = 2.0 ** (stops + balance - balance.mean())
    contrast = 2.0 ** rng.uniform(-CONTRAST_STOPS, CONTRAST_STOPS)
    gamma = 2.0 ** rng.uniform(-GAMMA_STOPS, GAMMA_STOPS)
    out = _in_linear_light(pixels, gains)
    pivot = out.mean()  # contrast pivots on the foreground's own mean
    out = np.clip(pivot + (out - pivot) * contrast, 0.0, 1.0)
    return out**gamma


def white_balance(pixels: np.ndarray, rng: np.random.Generator, reference=None) -> np.ndarray:
    """Per-channel gains in linear light."""
    return _in_linear_light(
        pixels, 2.0 ** rng.uniform(-WHITE_BALANCE_STOPS, WHITE_BALANCE_STOPS, 3)
    )


def tone_curves(pixels: np.ndarray, rng: np.random.Generator, reference=None) -> np.ndarray:
    """A gamma and a contrast of its own for each channel."""
    gamma = 2.0 ** rng.uniform(-CHANNEL_GAMMA_STOPS, CHANNEL_GAMMA_STOPS, 3)
    contrast = 2.0 ** rng.uniform(-CHANNEL_CONTRAST_STOPS, CHANNEL_CONTRAST_STOPS, 3)
    out = pixels**gamma
    pivot = out.mean(axis=0)
    return np.clip(pivot + (out - pivot) * contrast, 0.0, 1.0)


def saturation_hue(pixels: np.ndarray, rng: np.random.Generator, reference=None) -> np.ndarray:
    """Chroma (the part off the grey axis) scaled and rotated about the grey axis."""
    saturation = 2.0 ** rng.uniform(*SATURATION_STOPS)
    angle = np.deg2rad(rng.uniform(-HUE_DEGREES, HUE_DEGREES))
    axis = np.full(3, 1 / np.sqrt(3))
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    grey = (pixels @ axis)[:, None] * axis
    return np.clip(grey + saturation * (pixels - grey) @ rotation.T, 0.0, 1.0)


def color_transfer(
    pixels: np.ndarray, rng: np.random.Generator, reference: np.ndarray
) -> np.ndarray:
    """Mean and standard deviation of each l-alpha-beta channel moved (a drawn part of the way)
    to those of the [M,3] `reference` pixels."""
    strength = rng.uniform(*TRANSFER_STRENGTH)
    source, target = _lab(pixels), _lab(reference)
    mean, std = source.mean(axis=0), source.std(axis=0) + 1e-6
    new_mean = mean + strength * (target.mean(axis=0) - mean)
    new_std = std * (target.std(axis=0) / std) ** strength
    return _rgb((source - mean) * (new_std / std) + new_mean)


def lut3d(pixels: np.ndarray, rng: np.random.Generator, reference=None) -> np.ndarray:
    """The identity plus `LUT_WAVES` smooth waves over the RGB cube per output channel."""
    out = pixels.copy()
    for channel in range(3):
        for _ in range(LUT_WAVES):
            frequency = rng.uniform(-LUT_FREQUENCY, LUT_FREQUENCY, 3) * 2 * np.pi
            phase = rng.uniform(0.0, 2 * np.pi)
            out[:, channel] += LUT_AMPLITUDE * np.sin(pixels @ frequency + phase)
    return np.clip(out, 0.0, 1.0)


FAMILIES: dict[str, Recolouring] = {
    "exposure": exposure,
    "white_balance": white_balance,
    "tone_curves": tone_curves,
    "saturation_hue": saturation_hue,
    "color_transfer": color_transfer,
    "lut3d": lut3d,
}


def _in_linear_light(pixels: np.ndarray, gains: np.ndarray) -> np.ndarray:
    linear = pixels**DISPLAY_GAMMA * gains
    return np.clip(linear, 0.0, 1.0) ** (1.0 / DISPLAY_GAMMA)


def _lab(pixels: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(pixels @ _RGB_TO_LMS.T, _LMS_FLOOR)) @ _LOG_LMS_TO_LAB.T


def _rgb(lab: np.ndarray) -> np.ndarray:
    lms = 10.0 ** (lab @ np.linalg.inv(_LOG_LMS_TO_LAB).T)
    return np.clip(lms @ np.linalg.inv(_RGB_TO_LMS).T, 0.0, 1.0)
