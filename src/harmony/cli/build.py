"""`harmony build MODEL.onnx -o MODEL.engine`: a TensorRT engine and its manifest."""

from __future__ import annotations

from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.cli.options import force_option, profile_options
from harmony.runtime.profiles import profile_from_options


@click.command("build")
@click.argument("onnx_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Engine file to write (manifest: ENGINE.json). Default: keep it in the engine cache.",
)
@profile_options
@click.option(
    "--timing-cache",
    type=click.Path(path_type=Path),
    default=None,
    help="TensorRT timing-cache file: loaded if present, saved after the build.",
)
@click.option(
    "--workspace", "workspace_mib", type=int, default=None, help="Workspace limit in MiB."
)
@click.option("--no-cache", is_flag=True, help="Always build; bypass the engine cache.")
@force_option
@user_errors
def build_command(
    onnx_path: Path,
    output: Path | None,
    resolutions: tuple[tuple[int, int], ...],
    batch: int | None,
    dynamic_batch: bool,
    min_shapes: str | None,
    opt_shapes: str | None,
    max_shapes: str | None,
    timing_cache: Path | None,
    workspace_mib: int | None,
    no_cache: bool,
    force: bool,
) -> None:
    """Build a TensorRT engine from MODEL.onnx (needs TensorRT and an NVIDIA GPU).

    Engines are cached under $HARMONY_CACHE_DIR/engines (default ~/.cache/harmony/engines) by a
    key over the graph, profile, TensorRT version, GPU and plugin library; building the same
    thing again reuses the cached engine.
    """
    profile = profile_from_options(
        resolutions, batch, dynamic_batch, min_shapes, opt_shapes, max_shapes
    )
    from harmony.runtime.engine import engine_from_onnx  # onnx import only when building

    built = engine_from_onnx(
        onnx_path,
        profile,
        output,
        timing_cache=timing_cache,
        workspace_mib=workspace_mib,
        force=force,
        use_cache=not no_cache,
    )
    manifest = built.manifest
    how = "reused cached engine" if built.reused else "built"
    click.echo(
        f"{how} {built.path}: TensorRT {manifest.tensorrt_version}, {manifest.gpu.name} "
        f"(sm {manifest.gpu.compute_capability}), {manifest.precision}, "
        f"{profile.describe()}"
    )
