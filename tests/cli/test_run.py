import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from harmony.cli.main import run_alias
from harmony.data import read_image, write_image
from harmony.models.init import make_random_checkpoint
from tests.helpers import blob_mask


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    checkpoint = make_random_checkpoint("hdnet-lite", 1, root / "lite.pth")
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
        ("lite.onnx", "c8.png", "m.png", ["--kernels", "reference"], "kernels apply to the torch"),
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
