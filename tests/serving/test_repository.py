"""Triton model repositories: every config.pbtxt parses as Triton's ModelConfig protobuf (the
schema tritonclient ships) and says what the model is; the repository is self-contained."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harmony.cli.main import cli
from harmony.engines.profiles import profile_from_resolutions
from tests.engines.fakes import write_engine

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="needs the serve extra (tritonclient)"
)
text_format = pytest.importorskip("google.protobuf.text_format")


def parsed(repository, name):
    """The ModelConfig of model `name` (parsing fails on anything Triton would refuse)."""
    config = model_config_pb2.ModelConfig()
    text_format.Parse((repository / name / "config.pbtxt").read_text(), config)
    assert config.name == name
    return config


def dims(config):
    return {tensor.name: list(tensor.dims) for tensor in [*config.input, *config.output]}


def test_a_checkpoint_and_a_portable_graph(tmp_path, exported, checkpoints):
    graph, _ = exported("hdnet-lite", "ort", "fp32")
    repository = tmp_path / "repo"
    models = [str(checkpoints["aict"]), str(graph)]
    options = ["--max-batch", "8", "--instances", "2"]
    result = CliRunner().invoke(cli, ["triton-repo", *models, "-o", str(repository), *options])
    assert result.exit_code == 0, result.output
    raw, encoded = parsed(repository, "aict"), parsed(repository, "aict-encoded")
    assert raw.backend == "python" and raw.max_batch_size == 8
    assert dims(raw) == {"image": [3, -1, -1], "mask": [1, -1, -1], "harmonized": [3, -1, -1]}
    assert raw.input[0].data_type == model_config_pb2.TYPE_FP32
    assert encoded.input[0].data_type == model_config_pb2.TYPE_STRING and dims(encoded)[
        "image"
    ] == [1]
    assert raw.instance_group[0].count == 2 and raw.dynamic_batching.max_queue_delay_microseconds
    parameters = {key: value.string_value for key, value in raw.parameters.items()}
    assert parameters["harmony_model"] == "aict.pth" and parameters["harmony_kind"] == "raw"
    assert (repository / "aict" / "1" / "aict.pth").read_bytes() == checkpoints["aict"].read_bytes()
    assert "import TritonPythonModel" in (repository / "aict" / "1" / "model.py").read_text()
    onnx_model = parsed(repository, "hdnet-lite-ort-fp32")
    assert (
        onnx_model.platform == "onnxruntime_onnx"
        and not onnx_model.model_operations.op_library_filename
    )
    assert (repository / "hdnet-lite-ort-fp32" / "1" / "model.onnx").is_file()
    assert (
        "docker run" in result.output and "tritonserver --model-repository=/models" in result.output
    )


def test_an_engine_with_its_manifest_and_plugin_library(tmp_path):
    library = tmp_path / "libharmony_plugins.so"
    library.write_bytes(b"plugins")
    engine = write_engine(
        tmp_path / "lite.engine",
        profiles=(profile_from_resolutions([(512, 512), (1024, 1024)], 4, dynamic_batch=True),),
    )
    from harmony.engines.manifest import read_manifest

    manifest = read_manifest(engine)
    if manifest.plugins is not None:  # point the record at a library of this test
        import dataclasses

        plugins = dataclasses.replace(manifest.plugins, library_path=str(library), embedded=False)
        dataclasses.replace(manifest, plugins=plugins).write(engine, force=True)
    repository = tmp_path / "repo"
    result = CliRunner().invoke(cli, ["triton-repo", str(engine), "-o", str(repository)])
    assert result.exit_code == 0, result.output
    config = parsed(repository, "lite")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 4
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert (repository / "lite" / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert (repository / "lite" / "1" / "model.plan.json").is_file()
    if manifest.plugins is not None:
        assert (repository / "plugins" / library.name).read_bytes() == b"plugins"
        assert "--backend-config=tensorrt,plugins=/models/plugins/" in result.output


def test_a_tensorrt_target_graph_names_the_custom_op_library(tmp_path, exported, ort_ops_dir):
    graph, _ = exported("aict", "trt", "fp32")
    repository = tmp_path / "repo"
    result = CliRunner().invoke(cli, ["triton-repo", str(graph), "-o", str(repository)])
    assert result.exit_code == 0, result.output
    config = parsed(repository, "aict-trt-fp32")
    assert list(config.model_operations.op_library_filename) == [
        "/models/plugins/libharmony_ort_ops.so"
    ]
    assert (repository / "plugins" / "libharmony_ort_ops.so").is_file()


def test_without_the_custom_op_library_a_tensorrt_target_graph_is_refused(tmp_path, exported):
    graph, _ = exported("aict", "trt", "fp32")
    result = CliRunner().invoke(
        cli,
        ["triton-repo", str(graph), "-o", str(tmp_path / "repo")],
        env={"HARMONY_PLUGIN_DIR": str(tmp_path)},
    )
    assert result.exit_code == 1 and "libharmony_ort_ops.so only" in result.output
    assert not (tmp_path / "repo").exists() and list(tmp_path.iterdir()) == []
