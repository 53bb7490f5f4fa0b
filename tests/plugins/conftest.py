"""Fixtures of the plugin tests: a fresh CPU build of plugins/ and the tool checks."""

from __future__ import annotations

import os
import shutil
import subprocess
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

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARMONY_PLUGIN_DIR", str(build_dir))
        cpu._library.cache_clear()
        yield build_dir
    cpu._library.cache_clear()


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
