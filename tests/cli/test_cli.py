import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from harmony.cli.main import cli
from harmony.models.checkpoint import FITTED_LABEL


@pytest.fixture
def runner():
    return CliRunner()


def test_init_then_inspect(runner, tmp_path):
    path = tmp_path / "lite.pth"
    made = runner.invoke(cli, ["init", "--arch", "hdnet-lite", "--seed", "2", "-o", str(path)])
    assert made.exit_code == 0, made.output
    assert "652,893 parameters, RANDOM weights (seed 2)" in made.output
    shown = runner.invoke(cli, ["inspect", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "arch:        hdnet-lite" in shown.output
    assert "format:      bare-state-dict" in shown.output
    assert "RANDOM" in shown.output


def test_user_errors_exit_1_without_traceback(runner, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00garbage")
    result = runner.invoke(cli, ["inspect", str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "bad.pth" in result.output
    assert "Traceback" not in result.output
    existing = tmp_path / "taken.pth"
    existing.write_text("keep me")
    refused = runner.invoke(cli, ["init", "--arch", "aict", "-o", str(existing)])
    assert refused.exit_code == 1 and "--force" in refused.output
    assert existing.read_text() == "keep me"


def test_demo_runs_every_architecture_and_refuses_to_overwrite(runner, tmp_path, monkeypatch):
    monkeypatch.setattr("harmony.quickstart.BENCH_RESOLUTION", (128, 128))  # the job's own: 1024
    monkeypatch.setattr("harmony.quickstart.VERIFY_SIZES", ((96, 80),))  # the exporter's: 512
    out = tmp_path / "demo"
    result = runner.invoke(cli, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for arch in ("aict", "hdnet", "hdnet-lite"):
        assert (out / "harmonized" / f"{arch}.png").is_file()
        assert (out / "onnx" / f"{arch}.ort.fp32.onnx").is_file()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["hdnet.pth"]  # no fitted one
    assert result.output.count("128x128") == 3  # one benchmark row per architecture
    assert "skipped" not in result.output
    harmonized_table = result.output.split("exported (")[0]
    rows = {
        cells[0]: cells
        for cells in (re.split(r"\s{2,}", line) for line in harmonized_table.splitlines())
        if cells[0] in ("aict", "hdnet", "hdnet-lite")
    }
    assert rows["hdnet"][1].startswith("RANDOM")
    assert result.output.count("(composite ") == 4  # held-out PSNR: export and bench, fitted
    for arch in ("aict", "hdnet-lite"):  # fitted: harmonized closer to the real photo
        weights, psnr_composite, psnr_output = rows[arch][1], rows[arch][4], rows[arch][5]
        assert weights.startswith(FITTED_LABEL)
        assert float(psnr_output) > float(psnr_composite) + 1.0, rows[arch]
    again = runner.invoke(cli, ["demo", "--out", str(out)])
    assert again.exit_code == 1 and "--force" in again.output


def test_commands_start_without_torch_or_onnx():
    """`--help` and argument errors come before any heavy import (each costs seconds)."""
    code = (
        "import sys\n"
        "from harmony.cli.main import cli\n"
        "for command in ('run', 'export', 'bench', 'build', 'init', 'inspect', 'demo', 'eval',\n"
        "                'fit'):\n"
        "    cli.main([command, '--help'], standalone_mode=False)\n"
        "heavy = ('torch', 'onnx', 'onnxscript', 'onnxruntime', 'numpy', 'PIL')\n"
        "print('loaded:', sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "loaded: []"
