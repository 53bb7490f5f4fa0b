"""`harmony eval`: the quality table over an iHarmony4 folder, and its errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harmony.cli.main import cli
from harmony.data.demo import make_demo_dataset
from harmony.metrics import METRICS
from harmony.models.init import make_random_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    make_demo_dataset(root / "demo", count=3, size=(48, 64))
    checkpoint = make_random_checkpoint("hdnet-lite", 2, root / "lite.pth")
    return root, checkpoint


def _eval(*args):
    return CliRunner().invoke(cli, ["eval", *map(str, args)])


def _eval_json(data, tmp_path, *options):
    """Run harmony eval on the demo folder with `options`; (result, the JSON it wrote)."""
    root, checkpoint = data
    out = tmp_path / "q.json"
    result = _eval(root / "demo", "--model", checkpoint, "--json", out, *options)
    assert result.exit_code == 0, result.output
    return result, json.loads(out.read_text())


def test_scores_every_target_beside_the_composite(data, tmp_path, cpu_ops_dir):
    markdown = tmp_path / "q.md"
    result, document = _eval_json(
        data, tmp_path, "--backend", "torch,ort", "--limit", 2, "--markdown", markdown
    )
    assert document["images"] == 2
    assert list(document["means"]) == ["composite", "torch fp32", "ort fp32"]
    assert len(document["rows"]) == 2 * 3
    assert set(document["rows"][0]) == {"image", "target", *METRICS}
    # The reference's drift from itself is zero; ORT's FP32 graph drifts by float rounding only.
    assert all(value == 0.0 for value in document["drift"]["torch fp32"].values())
    assert abs(document["drift"]["ort fp32"]["psnr"]) < 0.05
    composite_rows = [r for r in document["rows"] if r["target"] == "composite"]
    mean_psnr = sum(r["psnr"] for r in composite_rows) / 2
    assert document["means"]["composite"]["psnr"] == pytest.approx(mean_psnr)
    assert "composite" in result.output and "ort fp32" in result.output
    assert "| composite |" in markdown.read_text()


def test_resolution_and_skipped_targets_are_reported(data, tmp_path):
    _, document = _eval_json(
        data,
        tmp_path,
        "--backend",
        "torch",
        "--precision",
        "fp32,fp16",
        "--res",
        "32x40",
        "--limit",
        1,
    )
    assert document["resolution"] == [32, 40]
    assert "torch fp16" in document["skipped"] and "CUDA" in document["skipped"]["torch fp16"]


def test_a_folder_not_in_the_layout_is_named(data, tmp_path):
    _, checkpoint = data
    (tmp_path / "photos").mkdir()
    result = _eval(tmp_path / "photos", "--model", checkpoint)
    assert result.exit_code == 1
    assert "error:" in result.output and "composite_images" in result.output
