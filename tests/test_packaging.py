"""`pip install .` (a wheel, not an editable install) gives a working harmony whose native
libraries come with the package, and a clear error naming the build when they are missing."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run

CHECK = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import torch

    import harmony
    from harmony.plugins import cpu, cpu_library_path

    package = Path(harmony.__file__).parent
    assert package.is_relative_to(Path(sys.prefix)), package  # the wheel, not the checkout
    assert cpu_library_path() == package / "plugins" / "lib" / "libharmony_cpu_ops.so"
    features, mask = torch.randn(1, 4, 3, 5), torch.zeros(1, 1, 3, 5)
    mask[..., 2:] = 1
    assert cpu.knn_topk_fusion(features, mask).shape == features.shape
    from harmony.weights import fitted_archs, fitted_checkpoint
    assert {"aict", "hdnet-lite"} <= set(fitted_archs())
    assert fitted_checkpoint("aict").parent == package / "weights"
    from harmony.memory_model import MODELS_FILE, memory_model
    assert MODELS_FILE.parent == package and memory_model("ort", "aict") is not None
    print("ok")
    """
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel of this checkout (CPU library only) and, for its
    dependencies, the test environment's site-packages on its path (nothing is downloaded)."""
    root = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    wheel_options = ["--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir"]
    run(
        [*pip, "wheel", *wheel_options, str(root / "dist"), str(REPO_ROOT)],
        env={"HARMONY_CPU_ONLY": "1", "HARMONY_PLUGIN_DIR": ""},
        timeout=900,
    )
    (wheel,) = (root / "dist").glob("harmony_deploy-*.whl")
    venv = root / "venv"
    run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)])
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = str(venv / "bin" / "python")
    run([*pip, "--python", python, "install", "--quiet", "--no-deps", "--no-index", str(wheel)])
    return venv


def _python(venv: Path, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "HARMONY_PLUGIN_DIR"}
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, **env},
        timeout=300,
    )


def test_the_installed_wheel_finds_its_native_library(installed, tmp_path):
    result = _python(installed, CHECK, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
    help_text = subprocess.run(
        [str(installed / "bin" / "harmony-run"), "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "--model" in help_text.stdout


def test_a_missing_library_names_the_build_and_the_variable(installed, tmp_path):
    code = "from harmony.plugins import cpu_library_path; cpu_library_path()"
    result = _python(installed, code, tmp_path, HARMONY_PLUGIN_DIR=str(tmp_path))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "HarmonyError" in last and "libharmony_cpu_ops.so" in last
    assert "scripts/build_plugins.sh" in last and "HARMONY_PLUGIN_DIR" in last
