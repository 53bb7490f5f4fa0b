"""The CUDA kernels compile with nvcc for sm_80 and sm_90 (compile only; nothing runs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
KERNELS = sorted(PLUGINS_DIR.glob("*/*.cu"))
ARCHS = ("80", "90")

pytestmark = pytest.mark.nvcc


@pytest.fixture(scope="module")
def nvcc() -> str:
    path = shutil.which("nvcc")
    if path is None:
        pytest.skip("nvcc not found on PATH: the CUDA kernels cannot be compiled here")
    return path


def test_kernel_sources_found():
    assert {p.name for p in KERNELS} == {"cascadedLut3DKernel.cu", "knnTopkFusionKernel.cu"}


def test_kernels_compile_for_sm80_and_sm90(nvcc, tmp_path):
    """Both files at once (2 cores); warnings are errors; the flags match plugins/CMakeLists.txt."""
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHS]
    jobs = {
        source: subprocess.Popen(
            [
                nvcc,
                "-c",
                "-std=c++17",
                "--fmad=false",
                "-Werror=all-warnings",
                "-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter",
                f"-I{PLUGINS_DIR}",
                *gencode,
                str(source),
                "-o",
                str(tmp_path / f"{source.stem}.o"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for source in KERNELS
    }
    failures = {}
    for source, job in jobs.items():
        output, _ = job.communicate(timeout=300)
        if job.returncode != 0:
            failures[source.name] = output
    assert not failures, "\n".join(f"{name}:\n{out}" for name, out in failures.items())
    for source in KERNELS:
        assert (tmp_path / f"{source.stem}.o").stat().st_size > 0
