import sys

import pytest
from click.testing import CliRunner

from harmony.cli.main import export_alias
from harmony.engines.trt_env import RUNTIMES
from harmony.models.init import make_random_checkpoint


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    return make_random_checkpoint("hdnet-lite", 0, tmp_path_factory.mktemp("e") / "lite.pth")


def test_engine_needs_the_trt_target(lite, tmp_path):
    result = CliRunner().invoke(
        export_alias, [str(lite), "--target", "ort", "--engine", str(tmp_path / "m.engine")]
    )
    assert result.exit_code == 1 and "--engine needs --target trt" in result.output


def test_engine_options_without_engine_are_refused(lite):
    result = CliRunner().invoke(export_alias, [str(lite), "--res", "1024"])
    assert result.exit_code == 1 and "add --engine PATH" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runtime", "tensorrt"], "TensorRT is not installed"),
        (["--runtime", "tensorrt-rtx", "--cc", "90"], "need --runtime tensorrt"),
        (["--runtime", "tensorrt", "--cc", "8.6"], "--cc applies to tensorrt-rtx only"),
        (["--runtime", "tensorrt-rtx", "--timing-cache", "t.cache"], "has no timing cache"),
        (["--runtime", "tensorrt-rtx"], "build_plugins.sh"),  # no plugin library
    ],
)
def test_engine_problems_fail_before_exporting(lite, tmp_path, monkeypatch, args, message):
    monkeypatch.setitem(sys.modules, RUNTIMES["tensorrt"].module, None)
    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(tmp_path))  # no library there
    out = tmp_path / "lite.onnx"
    result = CliRunner().invoke(
        export_alias, [str(lite), "-o", str(out), "--engine", str(tmp_path / "m.engine"), *args]
    )
    assert result.exit_code == 1 and message in result.output, result.output
    assert not out.exists()  # nothing exported, no minutes lost


@pytest.fixture
def recorded(monkeypatch):
    """What the export command hands on: the engine request it checks and the graph batch it
    exports (the export itself stops there with an error)."""
    import harmony.artifacts as artifacts
    import harmony.cli.export as export_command
    from harmony.errors import HarmonyError

    seen = {}

    def check(engine, precision, force):
        seen["engine"] = engine

    def export(checkpoint, **options):
        seen["batch"] = options["batch"]
        raise HarmonyError("stopped before exporting")

    monkeypatch.setattr(export_command, "_check_engine_prerequisites", check)
    monkeypatch.setattr(artifacts, "onnx_from_checkpoint", export)
    return seen


@pytest.mark.parametrize(
    ("args", "batch", "dims"),
    [
        ([], None, ((1, 1024, 1024), (1, 1024, 1024), (1, 2048, 2048))),
        (["--batch", "4", "--res", "512"], 4, ((4, 512, 512), (4, 512, 512), (4, 512, 512))),
        (
            ["--batch", "4", "--dynamic-batch", "--res", "512,256"],
            None,  # an engine of batch 1..4 needs a dynamic-batch graph
            ((1, 256, 256), (1, 512, 512), (4, 512, 512)),
        ),
        (
            [
                *("--min-shapes", "image:1x3x64x64,mask:1x1x64x64"),
                *("--opt-shapes", "image:2x3x96x96,mask:2x1x96x96"),
                *("--max-shapes", "image:2x3x128x160,mask:2x1x128x160"),
            ],
            None,
            ((1, 64, 64), (2, 96, 96), (2, 128, 160)),
        ),
    ],
)
def test_the_engine_profile_is_harmony_builds(lite, tmp_path, recorded, args, batch, dims):
    """harmony-export --engine takes harmony build's profile options, with the graph's batch."""
    engine = tmp_path / "m.engine"
    result = CliRunner().invoke(export_alias, [str(lite), "--engine", str(engine), *args])
    assert result.exit_code == 1 and "stopped before exporting" in result.output, result.output
    profile = recorded["engine"].profile
    assert (profile.min, profile.opt, profile.max) == dims
    assert recorded["batch"] == batch and recorded["engine"].path == engine


def test_a_dynamic_batch_engine_needs_the_largest_batch(lite, tmp_path, recorded):
    result = CliRunner().invoke(
        export_alias, [str(lite), "--engine", str(tmp_path / "m.engine"), "--dynamic-batch"]
    )
    assert result.exit_code == 1 and "--dynamic-batch needs --batch N" in result.output
    assert recorded == {}
