"""`harmony build MODEL.onnx -o MODEL.engine`: a TensorRT engine and its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from harmony.cli.common import user_errors
from harmony.cli.groups import BuildArgs, ProfileArgs, option_groups
from harmony.cli.options import force_option
from harmony.engines.profiles import Profile

if TYPE_CHECKING:
    from harmony.engines.build import BuildOptions


@click.command("build")
@user_errors
@click.argument("onnx_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Engine file to write (manifest: ENGINE.json). Default: keep it in the engine cache.",
)
@option_groups(ProfileArgs(), BuildArgs())
@click.option("--no-cache", is_flag=True, help="Always build; bypass the engine cache.")
@force_option
def build_command(
    onnx_path: Path,
    output: Path | None,
    profile: Profile,
    build_options: BuildOptions,
    no_cache: bool,
    force: bool,
) -> None:
    """Build a TensorRT or TensorRT-RTX engine from MODEL.onnx (TensorRT needs the NVIDIA GPU
    the engine will run on; TensorRT-RTX builds on a CPU for --cc targets).

    Engines are cached under $HARMONY_CACHE_DIR/engines (default ~/.cache/harmony/engines) by a
    key over the graph, profile, runtime and version, GPU or targets and plugin library;
    building the same thing again reuses the cached engine.
    """
    from harmony.engines.build import engine_from_onnx  # onnx import only when building

    built = engine_from_onnx(
        onnx_path, profile, output, build_options, force=force, use_cache=not no_cache
    )
    click.echo(describe_build(built))


def describe_build(built) -> str:
    """What `harmony build` and `harmony-export --engine` print about an engine (`BuiltEngine`):
    runtime, GPUs, precision, profile, build time, size, layers and the FP32 islands."""
    from harmony.engines.trt_env import RUNTIMES

    manifest = built.manifest
    record = manifest.build
    if manifest.gpu is not None:
        gpus = f"{manifest.gpu.name} (sm {manifest.gpu.compute_capability})"
    else:
        gpus = f"compute capability {', '.join(manifest.compute_capabilities)}"
    plugins = manifest.plugins
    lines = [
        f"{'reused cached engine' if built.reused else 'built'} {built.path}",
        f"  runtime    {RUNTIMES[manifest.runtime].title} {manifest.runtime_version}, for {gpus}",
        f"  graph      {manifest.precision}, {manifest.profiles[0].describe()}",
        f"  build      {record.seconds:.1f} s, {record.engine_bytes / 2**20:.1f} MiB, "
        f"{record.network_layers} network layers",
    ]
    if plugins is not None:
        where = "embedded in the engine" if plugins.embedded else plugins.library_path
        lines.append(f"  plugins    {', '.join(sorted(plugins.versions))}: {where}")
    if manifest.precision != "fp32" and record.fp32_islands:
        kept = all(fp32 == total for total, fp32 in record.fp32_islands.values())
        islands = ", ".join(
            f"{kind.lower()} {fp32}/{total}" for kind, (total, fp32) in record.fp32_islands.items()
        )
        lines.append(f"  FP32 kept  {islands}{'' if kept else '  (NOT all FP32)'}")
    if manifest.precision == "int8":
        lines.append(f"  INT8       {record.int8_quantize_layers} quantize layers to INT8 (Q/DQ)")
    return "\n".join(lines)
