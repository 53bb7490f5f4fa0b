"""Image files, iHarmony4-style datasets and deterministic demo composites."""

from harmony.data.demo import demo_composite, make_demo_dataset
from harmony.data.iharmony import IHarmonyDataset, Sample, sample_from_composite
from harmony.data.images import (
    check_image_output,
    decode_image,
    decode_mask,
    encode_image,
    mask_problems,
    read_image,
    read_mask,
    write_image,
)

__all__ = [
    "IHarmonyDataset",
    "Sample",
    "check_image_output",
    "decode_image",
    "decode_mask",
    "demo_composite",
    "encode_image",
    "make_demo_dataset",
    "mask_problems",
    "read_image",
    "read_mask",
    "sample_from_composite",
    "write_image",
]
