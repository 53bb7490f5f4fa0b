import pytest
from click.testing import CliRunner

from harmony.cli.main import export_alias
from harmony.models.init import make_random_checkpoint

try:
    import tensorrt  # noqa: F401

    HAS_TENSORRT = True
except ImportError:
    HAS_TENSORRT = False


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


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: the engine would be built")
def test_missing_tensorrt_fails_before_exporting(lite, tmp_path):
    out = tmp_path / "lite.onnx"
    result = CliRunner().invoke(
        export_alias, [str(lite), "-o", str(out), "--engine", str(tmp_path / "m.engine")]
    )
    assert result.exit_code == 1 and "TensorRT is not installed" in result.output
    assert not out.exists()  # nothing exported, no minutes lost
