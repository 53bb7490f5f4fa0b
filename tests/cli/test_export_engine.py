import sys

import pytest
from click.testing import CliRunner

from harmony.cli.main import export_alias
from harmony.models.init import make_random_checkpoint
from harmony.runtime.trt_env import RUNTIMES


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
