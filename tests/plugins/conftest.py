"""Fixtures of the plugin tests: a fresh CUDA build of plugins/ and the tool runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import BUILD_SCRIPT, bound_plugin_dir, run


@pytest.fixture(scope="session")
def cuda_ops_dir(tmp_path_factory) -> Path:
    """A fresh `build_plugins.sh` build (sm_80 and sm_90, HARMONY_WERROR=1, no TensorRT) that
    harmony.plugins is pointed at."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found on PATH: the CUDA kernels cannot be compiled here")
    build_dir = tmp_path_factory.mktemp("harmony_cuda_ops")
    env = {
        "HARMONY_PLUGIN_DIR": str(build_dir),
        "HARMONY_CUDA_ARCHITECTURES": "80;90",
        "HARMONY_WERROR": "1",
        "TENSORRT_ROOT": "",
    }
    run([str(BUILD_SCRIPT)], env=env)
    from harmony.plugins import cpu, cuda

    with bound_plugin_dir(build_dir, cpu, cuda):
        yield build_dir


@pytest.fixture(scope="session")
def run_tool():
    """The `run` helper: run a command, return its output, fail with the output."""
    return run
