"""`harmony-export` / `harmony export`: success table, options and user errors."""

from __future__ import annotations

import json
import re

import onnx
import pytest
from click.testing import CliRunner

from harmony.calibration import CalibrationSettings
from harmony.calibration.quantize import module_of
from harmony.cli.main import cli, export_alias
from harmony.contract import GRAPH_INPUTS
from harmony.errors import HarmonyError
from harmony.export import verify as verify_module
from harmony.export.exporter import default_output_path, onnx_from_checkpoint
from harmony.export.graph import FLOAT_PRECISION
from harmony.export.metadata import read_metadata
from harmony.export.verify import INT8_MIN_GAIN_KEPT, INT8_MIN_PSNR_DB, demo_batch
from harmony.models.checkpoint import FITTED_LABEL
from harmony.models.hdnet import HDNet
from harmony.plugins.ort import EXTENSIONS
from harmony.runtime.backends import runner_for
from harmony.runtime.sources import identify
from harmony.weights import fitted_checkpoint


def _leftovers(directory, name):
    return [p for p in directory.iterdir() if p.name.startswith(f".{name}")]


@pytest.fixture
def cached_trace(exported, monkeypatch):
    """Skip re-tracing: onnx_from_checkpoint gets the session's HDNet-lite graphs (random
    weights) of the floating-point precision asked for."""
    import harmony.export.exporter as export_module

    graphs = {
        (target, precision): exported("hdnet-lite", target, precision)[1]
        for target, precision in (("trt", "fp32"), ("ort", "fp32"), ("ort", "fp16"))
    }

    def traced(model, options):
        proto = onnx.ModelProto()
        proto.CopyFrom(graphs[options.target, FLOAT_PRECISION[options.precision]])
        return proto

    monkeypatch.setattr(export_module, "onnx_from_model", traced)


def test_cli_exports_a_gated_int8_graph_with_fixed_batch_and_held_out_quality(tmp_path):
    """INT8 + FP16 (float16 I/O, fixed batch 2) of the fitted HDNet-lite: Q/DQ on the inputs of
    the weighted layers only, gated on PSNR to FP32 and the held-out gain kept."""
    output = tmp_path / "lite.onnx"
    args = [str(fitted_checkpoint("hdnet-lite")), "-o", str(output), "--target", "ort", "--int8"]
    args += ["--io-fp16", "--batch", "2", "--calib-count", "3", "--calib-res", "128"]
    result = CliRunner().invoke(export_alias, args)
    assert result.exit_code == 0, result.output
    for expected in ("hdnet-lite", "ort", "int8", "opset", "parity 2x512x512", "PSNR", "MiB"):
        assert expected in result.output
    assert "N x N similarity" in result.output  # the ORT KNN memory warning
    assert "calibration          demo composites of coffee" in result.output
    # Fitted weights: quality on held-out composites (one image fed as the fixed batch of 2).
    assert re.search(rf"weights\s+{FITTED_LABEL}", result.output)
    held_out = dict(
        re.findall(r"held-out (composite|torch fp32|onnx int8)\s+PSNR ([\d.]+) dB", result.output)
    )
    gain = float(held_out["torch fp32"]) - float(held_out["composite"])
    assert gain > 1.0
    kept = float(held_out["onnx int8"]) - float(held_out["composite"])
    assert kept >= INT8_MIN_GAIN_KEPT * gain
    assert re.search(r"held-out gain kept\s+\d+% of FP32's \(>= 80%\): passed", result.output)
    (parity,) = set(re.findall(r"PSNR >= (\d+) dB: passed", result.output))
    assert float(parity) == INT8_MIN_PSNR_DB["hdnet-lite"]

    source = identify(output)
    assert source.fitted and source.precision == "int8"  # the runtime takes int8 graphs
    with runner_for(output) as runner:
        assert runner.precision == "int8"
    model = onnx.load(output)
    for value in model.graph.input:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
        assert value.type.tensor_type.shape.dim[0].dim_value == 2
    assert [v.name for v in model.graph.input] == list(GRAPH_INPUTS)
    metadata = read_metadata(model)
    assert (metadata["io_dtype"], metadata["float_precision"]) == ("float16", "fp16")
    _assert_qdq_on_weighted_layers_only(model, json.loads(metadata["int8_layers"]))
    assert _leftovers(tmp_path, output.name) == []


@pytest.mark.usefixtures("cpu_ops_dir")  # and no libharmony_ort_ops.so: a plain install
@pytest.mark.parametrize("arch", ["aict", "hdnet-lite"])
def test_tensorrt_target_int8_needs_no_onnxruntime_headers(arch, tmp_path):
    """The TensorRT-target INT8 export of each fitted checkpoint where only pip packages and
    the CPU library exist: calibration and verification compute the custom nodes through
    onnxruntime-extensions, both gates pass, and the graph runs on the ort-custom backend."""
    output = tmp_path / f"{arch}.int8.onnx"
    args = [fitted_checkpoint(arch), "-o", output, "--int8", "--calib-count", "3"]
    result = CliRunner().invoke(export_alias, [*map(str, args), "--calib-res", "128"])
    assert result.exit_code == 0, result.output
    assert re.search(rf"custom nodes run by\s+{re.escape(EXTENSIONS)}", result.output)
    assert re.search(r"held-out gain kept\s+\d+% of FP32's \(>= 80%\): passed", result.output)
    image, mask = demo_batch(64, 80)
    with runner_for(output) as runner:
        assert (runner.backend, runner.custom_ops, runner.precision) == (
            "ort-custom",
            EXTENSIONS,
            "int8",
        )
        assert runner.infer(image, mask).shape == image.shape


def _assert_qdq_on_weighted_layers_only(model: onnx.ModelProto, int8_layers: list[dict]):
    producers = {out: node for node in model.graph.node for out in node.output}

    def dequantized(name: str) -> bool:
        return name in producers and producers[name].op_type == "DequantizeLinear"

    weighted = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    quantized = [n for n in weighted if dequantized(n.input[1])]
    assert [n.name for n in quantized] == [layer["node"] for layer in int8_layers]
    # Every convolution is INT8 (activation and weights) but the network's floating ones.
    floating = {n.name for n in weighted} - {n.name for n in quantized}
    assert {module_of(n).split(".")[0] for n in weighted if n.name in floating} == set(
        HDNet.int8_float_modules
    )
    assert all(dequantized(n.input[0]) for n in quantized)
    # The floating-point islands (InstanceNorm, the KNN similarity, the skip Concats...) read
    # no dequantized tensor: DQ outputs go to INT8 layers only.
    int8_names = {n.name for n in quantized}
    for node in model.graph.node:
        if node.name not in int8_names and node.op_type != "QuantizeLinear":
            assert not any(dequantized(name) for name in node.input), node.name


def test_default_output_name_and_no_overwrite(checkpoints, tmp_path, cached_trace):
    source = checkpoints["hdnet-lite"]
    checkpoint = tmp_path / source.name
    checkpoint.write_bytes(source.read_bytes())
    output = default_output_path(checkpoint, "trt", "fp32")
    assert output == tmp_path / "hdnet-lite.trt.fp32.onnx"
    output.write_bytes(b"precious")
    result = CliRunner().invoke(cli, ["export", str(checkpoint), "--no-verify"])
    assert result.exit_code == 1
    assert "already exists" in result.output and "--force" in result.output
    assert "Traceback" not in result.output
    assert output.read_bytes() == b"precious"
    result = CliRunner().invoke(cli, ["export", str(checkpoint), "--no-verify", "--force"])
    assert result.exit_code == 0, result.output
    assert "not verified" in result.output
    assert onnx.load(output).graph.node
    assert _leftovers(tmp_path, output.name) == []


def test_corrupt_checkpoint_is_a_user_error(tmp_path):
    checkpoint = tmp_path / "broken.pth"
    checkpoint.write_bytes(b"\x80\x02 not a checkpoint")
    output = tmp_path / "out.onnx"
    result = CliRunner().invoke(export_alias, [str(checkpoint), "-o", str(output)])
    assert result.exit_code == 1
    assert "error:" in result.output and "broken.pth" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == [checkpoint]


def test_wrong_arch_is_a_user_error(checkpoints, tmp_path):
    output = tmp_path / "out.onnx"
    args = [str(checkpoints["hdnet-lite"]), "-o", str(output), "--arch", "aict"]
    result = CliRunner().invoke(export_alias, args)
    assert result.exit_code == 1
    assert "--arch aict" in result.output and "hdnet-lite" in result.output
    assert not output.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "positive integer"),
        (["--opset", "12"], "opset"),
        (["--io-fp16"], "--io-fp16 needs --fp16"),
        (["--calib-count", "3"], "need --int8"),
        (["--int8", "--calib-res", "64,128"], "bad resolution '64,128'"),
        (["--target", "tensorrt"], "tensorrt"),
    ],
)
def test_bad_options(checkpoints, tmp_path, args, message):
    output = tmp_path / "out.onnx"
    result = CliRunner().invoke(
        export_alias, [str(checkpoints["hdnet-lite"]), "-o", str(output), *args]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not output.exists()


def test_failed_int8_gate_leaves_no_file(checkpoints, tmp_path, monkeypatch, cached_trace):
    monkeypatch.setitem(verify_module.INT8_MIN_PSNR_DB, "hdnet-lite", 1000.0)
    monkeypatch.setenv("HARMONY_CACHE_DIR", str(tmp_path / "cache"))
    output = tmp_path / "out" / "lite.onnx"
    output.parent.mkdir()
    with pytest.raises(HarmonyError, match=r"parity check failed \(int8 needs PSNR >= 1000"):
        onnx_from_checkpoint(
            checkpoints["hdnet-lite"],
            output,
            target="ort",
            precision="int8",
            calibration=CalibrationSettings(count=2, size=(40, 56)),
            verify_sizes=[(40, 56)],
        )
    assert list(output.parent.iterdir()) == []


@pytest.mark.usefixtures("cpu_ops_dir")
def test_trt_graphs_are_verified_with_the_plugin_math(
    checkpoints, tmp_path, monkeypatch, cached_trace
):
    """The exporter's parity check runs the custom nodes in libharmony_cpu_ops.so (here through
    onnxruntime-extensions), not in harmony.ops: broken plugin math fails the export, and no
    file is left."""
    report = onnx_from_checkpoint(
        checkpoints["hdnet-lite"], tmp_path / "good.onnx", verify_sizes=[(40, 56)]
    )
    assert report.custom_nodes_verified_with.startswith(EXTENSIONS)  # no libharmony_ort_ops.so
    from harmony.plugins import cpu

    monkeypatch.setattr(cpu, "knn_topk_fusion", lambda features, mask, k=1: features * 0)
    output = tmp_path / "broken.onnx"
    with pytest.raises(HarmonyError, match=r"parity check failed"):
        onnx_from_checkpoint(checkpoints["hdnet-lite"], output, verify_sizes=[(40, 56)])
    assert not output.exists() and _leftovers(tmp_path, output.name) == []


def test_an_unwritable_destination_is_refused_before_the_export(checkpoints, tmp_path, monkeypatch):
    import harmony.export.exporter as export_module

    def no_export(*args):
        raise AssertionError("the export ran although the output cannot be written")

    monkeypatch.setattr(export_module, "onnx_from_model", no_export)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder is expected")
    result = CliRunner().invoke(
        export_alias, [str(checkpoints["hdnet-lite"]), "-o", str(blocker / "out.onnx")]
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: Cannot write") and "is a file" in result.output
