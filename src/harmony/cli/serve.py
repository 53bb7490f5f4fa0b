"""`harmony serve` (models on Triton Inference Server) and `harmony triton-repo` (a Triton model
repository for a GPU fleet)."""

from __future__ import annotations

from pathlib import Path

import click

from harmony.cli.common import user_errors
from harmony.cli.groups import BatchingArgs, option_groups
from harmony.cli.options import device_option, force_option
from harmony.serving.batching import Batching


@click.command("serve")
@user_errors
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=8002, show_default=True)
@click.option("--backend", default=None, help="Default: each model file's own (see harmony-run).")
@device_option
@click.option(
    "--exit-timeout",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Seconds to finish the requests in flight after SIGTERM or Ctrl-C.",
)
@option_groups(BatchingArgs())
def serve_command(
    models,
    host,
    http_port,
    grpc_port,
    metrics_port,
    backend,
    device,
    exit_timeout,
    batching: Batching,
):
    """Serve MODELs (checkpoints, .onnx graphs, engines) on Triton Inference Server: for each,
    a model of image/mask tensors (FP32 [B,3,H,W] and [B,1,H,W] in [0,1] -> harmonized) and a
    model of PNG/JPEG files (<name>-encoded: the files' bytes in, PNG bytes out), run by the
    project's runners. Ready once every model is loaded and warm; SIGTERM or Ctrl-C finishes
    the requests in flight and stops the server."""
    from harmony.runtime.backends import backend_for_file
    from harmony.serving.server import Endpoints, serve

    for model in models:
        backend_for_file(model, backend)  # an unknown file or backend, before the server starts
    endpoints = Endpoints(host, http_port, grpc_port, metrics_port)

    def ready(names):
        click.echo(
            f"ready: {', '.join(names)} on {endpoints.http_url} (gRPC {host}:{grpc_port}, "
            f"metrics http://{host}:{metrics_port}/metrics)",
            err=True,
        )

    status = serve(
        list(models),
        endpoints,
        batching,
        backend,
        device,
        exit_timeout,
        on_ready=ready,
    )
    raise SystemExit(status)


@click.command("triton-repo")
@user_errors
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option(
    "--mount",
    default="/models",
    show_default=True,
    help="Where the repository is mounted in the Triton container (for library paths).",
)
@option_groups(BatchingArgs())
@force_option
def triton_repo_command(models, output, mount, batching: Batching, force):
    """Write a Triton model repository for MODELs: an engine as tensorrt_plan (its plugin
    library in plugins/), a .onnx graph as onnxruntime_onnx (TensorRT-target graphs name
    libharmony_ort_ops.so), a checkpoint as Python backend models run by harmony."""
    import shutil
    import tempfile

    from harmony.errors import HarmonyError
    from harmony.serving.repository import fleet_repository

    if output.exists() and not force:
        raise HarmonyError(f"{output} already exists; pass --force to replace it")
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.absolute().parent))
    try:
        names = fleet_repository(list(models), staging, batching, mount)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    click.echo(f"wrote {output}: {', '.join(names)}")
    click.echo(f"serve it: {triton_command(output, mount)}")


def triton_command(repository: Path, mount: str) -> str:
    """The command that serves `repository` in NVIDIA's Triton container."""
    plugins = repository / "plugins" / "libharmony_plugins.so"
    load = (
        f" --backend-config=tensorrt,plugins={mount}/plugins/libharmony_plugins.so"
        if plugins.exists()
        else ""
    )
    return (
        f"docker run --gpus all --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 -v "
        f"{repository.absolute()}:{mount} nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver "
        f"--model-repository={mount}{load}"
    )
