"""Shared test inputs."""

import torch


def blob_mask(height: int, width: int, batch: int = 1, soft: bool = False) -> torch.Tensor:
    """A deterministic elliptical foreground mask [B,1,H,W] (binary, or with a soft edge)."""
    ys = torch.linspace(-1, 1, height)[:, None]
    xs = torch.linspace(-1, 1, width)[None, :]
    masks = []
    for b in range(batch):
        r = ((ys - 0.1 * b) / 0.6) ** 2 + ((xs + 0.15 * b) / 0.45) ** 2
        m = (1.2 - r).clamp(0, 0.2) / 0.2 if soft else (r < 1).float()
        masks.append(m)
    return torch.stack(masks)[:, None]
