"""Preparing planned configurations for measurement: artifacts and MAC counts, before any timing.

Each distinct (backend, source, precision) artifact is prepared once (`harmony.artifacts`: the
checkpoint, a cached export, a cached engine whose profile spans every planned resolution); a
failure becomes the skip reason of its configurations. MACs are counted on the exported graph
(`harmony.profiling.macs`; AICT also gets the paper's thop-style count) once per source and
input size.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

from harmony.artifacts import ArtifactRequest, macs_graph, prepare
from harmony.errors import HarmonyError
from harmony.models import build_model
from harmony.profiling.config import BenchConfig
from harmony.profiling.macs import graph_macs
from harmony.profiling.paper_macs import paper_style_macs
from harmony.runtime.backends import get_backend
from harmony.runtime.sources import ModelSource


def prepare_configs(
    configs: list[BenchConfig],
    sources: list[ModelSource],
    progress: Callable[[str], None] | None = None,
) -> list[BenchConfig]:
    """`configs` with `model` (the artifact each runs) and MACs filled in; configurations whose
    artifact cannot be prepared get the reason as `skip_reason`. `sources` are the planned
    model sources; `progress` is told what is being prepared."""
    by_path = {str(source.path): source for source in sources}
    sizes = {}
    for config in configs:
        sizes.setdefault(_artifact_key(config), []).append((config.height, config.width))
    artifacts: dict[tuple, tuple[str | None, str | None]] = {}
    graphs: dict[str, Path | None] = {}  # the MACs graph of each source, looked up once
    prepared = []
    for config in configs:
        source = by_path[config.source]
        if config.source not in graphs:
            graphs[config.source] = _macs_graph(source)
        macs = _macs(graphs[config.source], source.arch, config.batch, config.height, config.width)
        if config.skip_reason is None:
            key = _artifact_key(config)
            if key not in artifacts:
                if progress is not None:
                    progress(f"preparing {config.backend} {config.precision} {source.path.name}")
                artifacts[key] = _prepare(config, source, tuple(dict.fromkeys(sizes[key])))
            model, reason = artifacts[key]
            config = dataclasses.replace(config, model=model, skip_reason=reason)
        prepared.append(dataclasses.replace(config, macs=macs[0], macs_paper_style=macs[1]))
    return prepared


def _artifact_key(config: BenchConfig) -> tuple:
    return (config.backend, config.source, config.precision, config.batch)


def _prepare(
    config: BenchConfig, source: ModelSource, resolutions: tuple[tuple[int, int], ...]
) -> tuple[str | None, str | None]:
    request = ArtifactRequest(source, config.precision, resolutions, config.batch)
    try:
        return str(prepare(get_backend(config.backend), request)), None
    except HarmonyError as error:
        return None, f"cannot prepare the {config.backend} artifact: {error}"


def _macs_graph(source: ModelSource) -> Path | None:
    """The graph MACs are counted on (`artifacts.macs_graph`), None where it cannot be made (the
    artifact's own preparation reports the problem)."""
    try:
        return macs_graph(source)
    except HarmonyError:
        return None


def _macs(
    graph: Path | None, arch: str, batch: int, height: int, width: int
) -> tuple[dict | None, int | None]:
    """(MACs of `graph` by stage, thop-style MACs for AICT) at one input size."""
    if graph is None:
        return None, None
    return _graph_macs(str(graph), batch, height, width), _paper_macs(arch, height, width)


@functools.cache
def _graph_macs(graph: str, batch: int, height: int, width: int) -> dict:
    return graph_macs(Path(graph), batch, height, width).as_dict()


@functools.cache
def _paper_macs(arch: str, height: int, width: int) -> int | None:
    if arch != "aict":  # the thop-style figure is the AICT paper's way of counting
        return None
    return paper_style_macs(build_model("aict"), height, width)
