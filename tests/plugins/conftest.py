"""Fixtures of the plugin tests: fresh CPU and CUDA builds of plugins/ and the tool checks."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DIR = REPO_ROOT / "plugins"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_plugins.sh"


@pytest.fixture(scope="session")
def cpu_ops_dir(tmp_path_factory) -> Path:
    """Build the CPU library from the current sources with `build_plugins.sh --cpu-only` (g++
    only) into a temporary directory, and point harmony.plugins at it (HARMONY_PLUGIN_DIR)."""
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: cannot build libharmony_cpu_ops.so")
    build_dir = tmp_path_factory.mktemp("harmony_cpu_ops")
    run([str(BUILD_SCRIPT), "--cpu-only"], env={"HARMONY_PLUGIN_DIR": str(build_dir)})
    assert (build_dir / "libharmony_cpu_ops.so").is_file()
    from harmony.plugins import cpu

    with _bound_to(build_dir, cpu):
        yield build_dir


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
    from harmony.plugins import cuda

    with _bound_to(build_dir, cuda):
        yield build_dir


@contextlib.contextmanager
def _bound_to(build_dir: Path, binding: types.ModuleType) -> Iterator[None]:
    """Point harmony.plugins at `build_dir` (HARMONY_PLUGIN_DIR) and make `binding` (cpu or
    cuda) load its library from there; both are restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARMONY_PLUGIN_DIR", str(build_dir))
        binding._library.cache_clear()
        yield
    binding._library.cache_clear()


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run `command` (extra `env` on top of os.environ); return its output, fail with it."""
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout + result.stderr


@pytest.fixture(scope="session")
def run_tool():
    """The `run` helper: run a command, return its output, fail with the output."""
    return run
