"""Triton model repositories: what `harmony serve` runs, and `harmony triton-repo` writes.

A model repository is a folder per model with its `config.pbtxt` (Triton's `ModelConfig`
protobuf in text form) and a version folder `1/`. Three kinds of model:

- Python backend (`python_model`): the project's own runners (`harmony.serving.triton_model`),
  for checkpoints, graphs and engines alike, on CPU servers or GPUs; `harmony serve` serves
  these, a raw and an encoded model per model file. The model file is referred to by its path,
  or copied beside the model (`triton-repo`: a self-contained repository);
- `tensorrt_plan` (`tensorrt_model`): an engine built by harmony, its manifest beside it; the
  plugin library is copied to `plugins/` and loaded as Triton documents for TensorRT plugins
  (`--backend-config=tensorrt,plugins=...`) unless the engine embeds it;
- `onnxruntime_onnx` (`onnxruntime_model`): an exported graph; a TensorRT-target graph names
  libharmony_ort_ops.so in `model_operations { op_library_filename }` (copied to `plugins/`),
  which Triton's ONNX Runtime backend loads (it cannot use onnxruntime-extensions).

The tensor contract is `harmony.serving`'s; engines and graphs keep their own I/O types.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from harmony.contract import GRAPH_INPUTS, GRAPH_OUTPUT
from harmony.errors import HarmonyError
from harmony.serving.batching import Batching
from harmony.serving.triton_model import (
    BACKEND_PARAMETER,
    DEVICE_PARAMETER,
    KIND_PARAMETER,
    MODEL_PARAMETER,
)

ENCODED_SUFFIX = "-encoded"
PLUGINS_DIR = "plugins"
# The model.py of every Python backend model: the implementation is in the installed package.
MODEL_PY = (
    '"""A harmony model: harmony.serving.triton_model runs it (harmony-deploy must be installed '
    'in the Python that runs Triton\'s Python backend)."""\n\n'
    "from harmony.serving.triton_model import TritonPythonModel  # noqa: F401\n"
)


def model_name(path: str | os.PathLike) -> str:
    """The Triton model name of a model file: its stem, with every character other than
    letters, digits, '_' and '-' replaced by '-' (e.g. `aict.fitted.pth` -> `aict-fitted`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", Path(path).stem)


def _tensors(datatype: str, dims: str) -> tuple[str, str]:
    """The input and output sections of the harmonization contract (`dims` of the image, mask
    and output as Triton writes them, batch excluded where the model batches)."""
    image, mask = GRAPH_INPUTS
    channels = {image: 3, mask: 1, GRAPH_OUTPUT: 3}
    if datatype == "TYPE_STRING":
        channels = dict.fromkeys(channels, None)

    def entry(name: str) -> str:
        shape = dims.format(c=channels[name]) if channels[name] else "[ 1 ]"
        return f'  {{ name: "{name}" data_type: {datatype} dims: {shape} }}'

    inputs = "input [\n" + ",\n".join(entry(name) for name in (image, mask)) + "\n]\n"
    return inputs, "output [\n" + entry(GRAPH_OUTPUT) + "\n]\n"


def _batching_text(batching: Batching, max_batch: int, kind: str) -> str:
    text = f"max_batch_size: {max_batch}\n"
    if max_batch > 1:
        delay = batching.max_queue_delay_us
        text += f"dynamic_batching {{ max_queue_delay_microseconds: {delay} }}\n"
    return text + f"instance_group [ {{ kind: {kind} count: {batching.instances} }} ]\n"


def python_model_config(
    name: str,
    model: str,
    encoded: bool,
    batching: Batching,
    backend: str | None = None,
    device: str | None = None,
) -> str:
    """The config.pbtxt of a Python backend harmony model running `model` (a path, absolute or
    relative to the model's version folder)."""
    inputs, outputs = _tensors("TYPE_STRING" if encoded else "TYPE_FP32", "[ {c}, -1, -1 ]")
    parameters = {
        MODEL_PARAMETER: model,
        KIND_PARAMETER: "encoded" if encoded else "raw",
        BACKEND_PARAMETER: backend or "",
        DEVICE_PARAMETER: device or "",
    }
    listed = ",\n".join(
        f'  {{ key: "{key}" value: {{ string_value: "{value}" }} }}'
        for key, value in parameters.items()
    )
    return (
        f'name: "{name}"\nbackend: "python"\n'
        + _batching_text(batching, batching.max_batch, "KIND_CPU")
        + inputs
        + outputs
        + f"parameters [\n{listed}\n]\n"
    )


def write_python_model(
    repository: Path,
    model: Path,
    encoded: bool,
    batching: Batching,
    backend: str | None = None,
    device: str | None = None,
    copy: bool = False,
) -> str:
    """Write the Python backend model of `model` (raw or `encoded`) into `repository`; with
    `copy`, the model file goes beside it (a self-contained repository). Returns its name."""
    name = model_name(model) + (ENCODED_SUFFIX if encoded else "")
    version = repository / name / "1"
    version.mkdir(parents=True)
    reference = str(model.resolve())
    if copy:
        shutil.copyfile(model, version / model.name)
        reference = model.name
    (version / "model.py").write_text(MODEL_PY)
    config = python_model_config(name, reference, encoded, batching, backend, device)
    (repository / name / "config.pbtxt").write_text(config)
    return name


def serving_repository(
    models: list[Path],
    repository: Path,
    batching: Batching,
    backend: str | None = None,
    device: str | None = None,
) -> list[str]:
    """The repository `harmony serve` runs: a raw and an encoded Python backend model per model
    file, referring to the files where they are. Returns the model names."""
    _check_names(models)
    names = []
    for model in models:
        for encoded in (False, True):
            names.append(write_python_model(repository, model, encoded, batching, backend, device))
    return names


def tensorrt_model(repository: Path, engine: Path, batching: Batching) -> str:
    """A `tensorrt_plan` model of the harmony engine `engine` (manifest beside it), its plugin
    library in `plugins/` unless embedded. Returns its name."""
    from harmony.engines.manifest import manifest_path, read_manifest

    manifest = read_manifest(engine)
    profile = manifest.profiles[0]
    name = model_name(engine)
    version = repository / name / "1"
    version.mkdir(parents=True)
    shutil.copyfile(engine, version / "model.plan")
    shutil.copyfile(manifest_path(engine), version / "model.plan.json")
    if manifest.plugins is not None and not manifest.plugins.embedded:
        _copy_plugin(repository, Path(manifest.plugins.library_path))
    fixed = profile.min[0] == profile.max[0]
    max_batch = 0 if fixed else profile.max[0]
    dims = f"[ {profile.max[0]}, {{c}}, -1, -1 ]" if fixed else "[ {c}, -1, -1 ]"
    # harmony-export writes float32 I/O unless --io-fp16, which the manifest does not record.
    inputs, outputs = _tensors("TYPE_FP32", dims)
    config = (
        f'name: "{name}"\nplatform: "tensorrt_plan"\n'
        + _batching_text(batching, max_batch, "KIND_GPU")
        + inputs
        + outputs
    )
    (repository / name / "config.pbtxt").write_text(config)
    return name


def onnxruntime_model(repository: Path, graph: Path, batching: Batching, mount: str) -> str:
    """An `onnxruntime_onnx` model of the exported graph `graph`; a TensorRT-target graph names
    libharmony_ort_ops.so (copied to `plugins/`) at `mount`/plugins/, where the repository is
    mounted in the Triton container. Returns its name.

    Raises:
        HarmonyError: a TensorRT-target graph where libharmony_ort_ops.so is not built.
    """
    from harmony.export.metadata import read_graph_metadata

    metadata = read_graph_metadata(graph)
    batch = metadata.get("batch", "dynamic")
    name = model_name(graph)
    operations = ""
    if metadata["target"] == "trt":
        from harmony.plugins import ort_ops_library_path

        try:
            library = ort_ops_library_path()
        except HarmonyError as exc:
            raise HarmonyError(
                f"{graph.name} is a TensorRT-target graph: Triton's ONNX Runtime backend runs "
                f"its custom nodes with libharmony_ort_ops.so only ({exc}); or export it with "
                "--target ort"
            ) from None
        _copy_plugin(repository, library)
        path = f"{mount.rstrip('/')}/{PLUGINS_DIR}/{library.name}"
        operations = f'model_operations {{ op_library_filename: "{path}" }}\n'
    version = repository / name / "1"
    version.mkdir(parents=True)
    shutil.copyfile(graph, version / "model.onnx")
    fixed = batch != "dynamic"
    max_batch = 0 if fixed else batching.max_batch
    dims = f"[ {batch}, {{c}}, -1, -1 ]" if fixed else "[ {c}, -1, -1 ]"
    io_type = "TYPE_FP16" if metadata.get("io_dtype") == "float16" else "TYPE_FP32"
    inputs, outputs = _tensors(io_type, dims)
    config = (
        f'name: "{name}"\nplatform: "onnxruntime_onnx"\n'
        + _batching_text(batching, max_batch, "KIND_AUTO")
        + inputs
        + outputs
        + operations
    )
    (repository / name / "config.pbtxt").write_text(config)
    return name


def _copy_plugin(repository: Path, library: Path) -> None:
    folder = repository / PLUGINS_DIR
    folder.mkdir(exist_ok=True)
    if not (folder / library.name).exists():
        shutil.copyfile(library, folder / library.name)


def fleet_repository(models: list[Path], repository: Path, batching: Batching, mount: str) -> list:
    """The repository `harmony triton-repo` writes: per model file, an engine as
    `tensorrt_plan`, a graph as `onnxruntime_onnx`, a checkpoint as a raw and an encoded Python
    backend model (the checkpoint copied beside them). Returns the model names."""
    from harmony.runtime.sources import model_kind

    _check_names(models)
    names = []
    for model in models:
        kind = model_kind(model)
        if kind == "engine":
            names.append(tensorrt_model(repository, model, batching))
        elif kind == "onnx":
            names.append(onnxruntime_model(repository, model, batching, mount))
        else:
            for encoded in (False, True):
                names.append(write_python_model(repository, model, encoded, batching, copy=True))
    return names


def _check_names(models: list[Path]) -> None:
    names = [model_name(model) for model in models]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise HarmonyError(
            f"two models would be served as {', '.join(twice)}: give model files of different names"
        )
    for model in models:
        if not Path(model).is_file():
            raise HarmonyError(f"model {model} does not exist")
