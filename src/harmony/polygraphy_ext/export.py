"""The `polygraphy.run.plugins` entry point: the argument groups harmony adds to `polygraphy
run` (imported on every `polygraphy run`, so it imports neither torch nor ONNX Runtime)."""

from __future__ import annotations


def argument_groups() -> list:
    """Polygraphy's extension hook: a list of argument group instances."""
    from harmony.polygraphy_ext.args import (
        HarmonyDataArgs,
        HarmonyOrtRunnerArgs,
        HarmonyTorchRunnerArgs,
        HarmonyTrtPluginsArgs,
    )

    return [
        HarmonyOrtRunnerArgs(),
        HarmonyTorchRunnerArgs(),
        HarmonyDataArgs(),
        HarmonyTrtPluginsArgs(),
    ]
