"""`harmony fit`: a fitted checkpoint with its provenance, labelled as fitted everywhere."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from harmony.cli.main import cli
from harmony.data.demo import FIT_PHOTOS, HELD_OUT_COUNT, HELD_OUT_PHOTOS
from harmony.fitting.provenance import provenance_path
from harmony.models.checkpoint import FITTED_LABEL, load_checkpoint


def _invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def test_fit_writes_a_labelled_checkpoint_and_its_provenance(tmp_path):
    output = tmp_path / "lite.pth"
    options = (
        "--steps", 2, "--batch", 1, "--size", 32, "--seed", 3, "--families", "lut3d,exposure"
    )  # fmt: skip

    result = _invoke("fit", "hdnet-lite", "-o", output, *options)

    assert result.exit_code == 0, result.output
    model = load_checkpoint(output)
    metadata = model.checkpoint.metadata
    assert metadata["fitted"] and metadata["label"] == FITTED_LABEL
    assert metadata["settings"]["seed"] == 3 and metadata["settings"]["steps"] == 2
    assert metadata["fit_photos"] == list(FIT_PHOTOS)
    assert metadata["families"] == ["lut3d", "exposure"]
    assert len(metadata["loss_curve"]) == 2
    stored = torch.load(output, weights_only=True)  # HDNet's official format: a bare state_dict
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    provenance = json.loads(provenance_path(output).read_text())
    assert provenance["held_out_photos"] == list(HELD_OUT_PHOTOS)
    assert provenance["held_out"]["images"] == HELD_OUT_COUNT
    assert set(provenance["held_out"]["means"]) == {"composite", "torch fp32"}
    assert "held-out" in result.output and FITTED_LABEL in result.output

    inspected = _invoke("inspect", output)
    assert f"weights:     {FITTED_LABEL} (harmony fit, seed 3)" in inspected.output
    assert "official" not in inspected.output.split("weights:")[1].splitlines()[0]


def test_fit_refuses_to_overwrite_without_force(tmp_path):
    output = tmp_path / "lite.pth"
    output.write_bytes(b"user data")

    result = _invoke("fit", "hdnet-lite", "-o", output, "--steps", 1, "--size", 32)

    assert result.exit_code == 1 and "--force" in result.output
    assert output.read_bytes() == b"user data"
    assert not provenance_path(output).exists()


def test_fit_refuses_an_output_the_loader_would_misread(tmp_path):
    result = _invoke("fit", "hdnet-lite", "-o", tmp_path / "lite.safetensors", "--steps", 1)

    assert result.exit_code == 2 and ".pth or .pt" in result.output
    assert not any(tmp_path.iterdir())
