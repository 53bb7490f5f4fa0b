"""The provenance file of a fitted checkpoint: how it was made and what it reaches held out.

`<checkpoint stem>.provenance.json` beside the checkpoint holds the checkpoint's own metadata
(command, settings, photographs, loss curve), its SHA-256, and the mean held-out scores of the
composites and of the fitted model with the gain between them
(`harmony.quality.gain_over_composite`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harmony.files import sha256_file, write_bytes_atomic
from harmony.quality import gain_over_composite

PROVENANCE_SUFFIX = ".provenance.json"


def provenance_path(checkpoint: str | os.PathLike) -> Path:
    """Where the provenance of `checkpoint` lives: `<stem>.provenance.json` beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + PROVENANCE_SUFFIX)


def write_provenance(checkpoint: str | os.PathLike, quality: dict, force: bool = False) -> Path:
    """Write the provenance of `checkpoint` scored as `quality` (`fit.held_out_quality`)."""
    from harmony.models.checkpoint import inspect_checkpoint

    checkpoint = Path(checkpoint)
    document = {
        "checkpoint": checkpoint.name,
        "sha256": sha256_file(checkpoint),
        "bytes": checkpoint.stat().st_size,
        **inspect_checkpoint(checkpoint).metadata,
        "held_out": {
            "images": quality["images"],
            "means": quality["means"],
            **gain_over_composite(quality["means"]),
        },
    }
    path = provenance_path(checkpoint)
    write_bytes_atomic(path, (json.dumps(document, indent=1) + "\n").encode(), force=force)
    return path
