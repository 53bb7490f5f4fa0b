"""Many composites through one runner: `harmony batch` over folders and manifests (jobs, run),
and `harmonize_many` over images in memory, both with decoding and encoding overlapped with
the inference (overlap)."""

from harmony.batch.stream import harmonize_many

__all__ = ["harmonize_many"]
