"""nn.Modules of the supported networks, their checkpoints and the inference pipeline."""

from harmony.models.aict import AICT
from harmony.models.checkpoint import (
    CheckpointInfo,
    build_model,
    inspect_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from harmony.models.hdnet import HDNet
from harmony.models.init import randomize_
from harmony.models.pipeline import HarmonizationPipeline, harmonize

__all__ = [
    "AICT",
    "CheckpointInfo",
    "HDNet",
    "HarmonizationPipeline",
    "build_model",
    "harmonize",
    "inspect_checkpoint",
    "load_checkpoint",
    "randomize_",
    "save_checkpoint",
]
