import re
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from harmony.cli.main import run_alias
from harmony.data import read_image, write_image
from harmony.models.init import make_random_checkpoint
from tests.helpers import blob_mask


@pytest.fixture(scope="module")
def files(tmp_path_factory, exported):
    root = tmp_path_factory.mktemp("run")
    checkpoint = make_random_checkpoint("hdnet-lite", 1, root / "lite.pth")
    shutil.copy(exported("hdnet-lite", "ort", "fp32")[0], root / "lite.onnx")
    image = torch.rand(1, 3, 37, 50, generator=torch.Generator().manual_seed(0))
    write_image(root / "c8.png", image)
    write_image(root / "c16.png", image, bit_depth=16)
    write_image(root / "m.png", blob_mask(37, 50).expand(1, 3, 37, 50))
    write_image(root / "m_small.png", blob_mask(36, 50).expand(1, 3, 36, 50))
    (root / "not_image.png").write_text("hello")
    return root, checkpoint


def run(args):
    return CliRunner().invoke(run_alias, [str(a) for a in args])


@pytest.mark.parametrize("depth", [8, 16])
def test_run_keeps_the_bit_depth(files, tmp_path, depth):
    root, checkpoint = files
    out = tmp_path / "out.png"
    result = run(
        [
            "--model",
            checkpoint,
            "--image",
            root / f"c{depth}.png",
            "--mask",
            root / "m.png",
            "-o",
            out,
        ]
    )
    assert result.exit_code == 0, result.output
    written, written_depth = read_image(out)
    assert written_depth == depth and written.shape == (1, 3, 37, 50)
    composite, _ = read_image(root / f"c{depth}.png")
    outside = blob_mask(37, 50) == 0
    levels = 2**depth - 1
    assert np.array_equal(
        (written * levels).round()[outside.expand_as(written)],
        (composite * levels).round()[outside.expand_as(written)],
    )


@pytest.mark.parametrize(
    ("model", "image", "mask", "options", "message"),
    [
        ("lite.pth", "missing.png", "m.png", [], "does not exist"),
        ("lite.pth", "c8.png", "m_small.png", [], "36x50 .* 37x50"),
        ("lite.pth", "not_image.png", "m.png", [], "not_image.png"),
        ("lite.pth", "c8.png", "m.png", ["--kernels", "fused"], "needs --device cuda for the"),
        (
            "lite.onnx",
            "c8.png",
            "m.png",
            ["--kernels", "reference"],
            "kernels applies to the torch",
        ),
    ],
)
def test_run_errors(files, tmp_path, model, image, mask, options, message):
    root, _ = files
    out = tmp_path / "out.png"
    args = ["--model", root / model, "--image", root / image, "--mask", root / mask, *options]
    result = run([*args, "-o", out])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert re.search(message, result.output), result.output
    assert not out.exists()


@pytest.fixture
def no_inference(monkeypatch):
    """Fails the test if a model runs: the checks must come first."""
    from harmony.runtime.torch_runner import TorchRunner

    def ran(self, image, mask):
        raise AssertionError("the inference ran before the arguments were checked")

    monkeypatch.setattr(TorchRunner, "infer_impl", ran)


@pytest.mark.parametrize(
    ("image", "output", "message"),
    [
        ("c8.png", "out.bmp", r"expected a \.png, \.jpg or \.jpeg file name"),
        ("c16.png", "out.jpg", "JPEG stores 8 bits per channel"),
        ("c8.png", "missing_dir_is_a_file/out.png", "is a file, not a folder"),
    ],
)
def test_outputs_are_checked_before_the_inference(
    files, tmp_path, no_inference, image, output, message
):
    root, checkpoint = files
    (tmp_path / "missing_dir_is_a_file").write_text("a file")
    args = ["--model", checkpoint, "--image", root / image, "--mask", root / "m.png"]
    result = run([*args, "-o", tmp_path / output])
    assert result.exit_code == 1, result.output
    assert re.search(message, result.output), result.output


def test_an_onnx_graph_runs_at_its_own_precision_only(files, exported, tmp_path):
    root, _ = files
    graph, _ = exported("hdnet-lite", "ort", "fp32")
    args = ["--model", graph, "--image", root / "c8.png", "--mask", root / "m.png"]
    refused = run([*args, "--precision", "fp16", "-o", tmp_path / "a.png"])
    assert refused.exit_code == 1 and "is a fp32 graph and runs at that precision only" in (
        refused.output
    )
    assert run([*args, "--precision", "fp32", "-o", tmp_path / "b.png"]).exit_code == 0
    int8 = run([*args, "--precision", "int8", "-o", tmp_path / "c.png"])
    assert int8.exit_code == 1 and "export it again" in int8.output and "--int8" in int8.output
    unknown = run([*args, "--precision", "int4", "-o", tmp_path / "d.png"])
    assert unknown.exit_code == 2 and "declares precision 'int4'" in unknown.output


@pytest.mark.usefixtures("cpu_ops_dir")  # no libharmony_ort_ops.so: onnxruntime-extensions
def test_a_tensorrt_target_graph_runs_on_ort_custom_from_pip_packages(files, exported, tmp_path):
    root, _ = files
    graph, _ = exported("hdnet-lite", "trt", "fp32")
    out = tmp_path / "out.png"
    result = run(
        ["--model", graph, "--image", root / "c8.png", "--mask", root / "m.png", "-o", out]
    )
    assert result.exit_code == 0, result.output
    assert "with ort-custom[" in result.output and read_image(out)[0].shape == (1, 3, 37, 50)


def test_a_corrupt_graph_is_named_as_such(files, tmp_path):
    root, _ = files
    graph = tmp_path / "broken.onnx"
    graph.write_bytes(b"\x08\x07garbage that is not protobuf" * 3)
    args = ["--model", graph, "--image", root / "c8.png", "--mask", root / "m.png"]
    result = run([*args, "-o", tmp_path / "out.png"])
    assert result.exit_code == 1
    assert "not a readable ONNX graph" in result.output or "no ONNX graph" in result.output
    assert "--target ort" not in result.output


def _read_result(path):
    return read_image(path)[0]


def test_masks_drawn_in_any_channel_alpha_or_as_labels_mean_the_same(files, tmp_path):
    root, checkpoint = files
    inside = (blob_mask(37, 50)[0, 0].numpy() > 0).astype(np.uint8)
    from PIL import Image

    variants = {
        "labels.png": (inside, "L"),  # 0/1 label map
        "green.png": (np.stack([0 * inside, 255 * inside, 0 * inside], axis=2), "RGB"),
        "alpha.png": (np.stack([0 * inside] * 3 + [255 * inside], axis=2), "RGBA"),
        "gray_alpha.png": (np.stack([255 + 0 * inside, 255 * inside], axis=2), "LA"),
    }
    base = ["--model", checkpoint, "--image", root / "c8.png"]
    expected = run([*base, "--mask", root / "m.png", "-o", tmp_path / "white.png"])
    assert expected.exit_code == 0, expected.output
    for name, (pixels, mode) in variants.items():
        Image.fromarray(pixels.astype(np.uint8), mode).save(tmp_path / name)
        result = run([*base, "--mask", tmp_path / name, "-o", tmp_path / f"out_{name}"])
        assert result.exit_code == 0, result.output
        assert torch.equal(
            _read_result(tmp_path / f"out_{name}"), _read_result(tmp_path / "white.png")
        ), name


def test_an_empty_mask_is_warned_about(files, tmp_path):
    root, checkpoint = files
    write_image(tmp_path / "empty.png", torch.zeros(1, 3, 37, 50))
    args = ["--model", checkpoint, "--image", root / "c8.png", "--mask", tmp_path / "empty.png"]
    result = run([*args, "-o", tmp_path / "out.png"])
    assert result.exit_code == 0, result.output
    assert "warning: the mask" in result.output and "is empty" in result.output


def test_runs_that_cannot_fit_in_memory_are_refused_before_running(
    files, tmp_path, monkeypatch, no_inference
):
    root, checkpoint = files
    monkeypatch.setenv("HARMONY_MEMORY_LIMIT_GB", "0.1")
    args = ["--model", checkpoint, "--image", root / "c8.png", "--mask", root / "m.png"]
    result = run([*args, "-o", tmp_path / "out.png"])
    assert result.exit_code == 1, result.output
    assert re.search(r"needs about [\d.]+ GiB, more than the 0\.1 GiB available", result.output)
    assert "HARMONY_MEMORY_LIMIT_GB" in result.output and not (tmp_path / "out.png").exists()
    monkeypatch.undo()
    passed = run([*args, "--no-size-check", "-o", tmp_path / "out.png"])
    assert passed.exit_code == 0, passed.output
