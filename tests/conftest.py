"""Fixtures shared by the whole suite: seeded generators, random checkpoints, exported graphs,
a fresh CPU build of the plugins' math.

`exported(arch, target, precision)` exports lazily and caches the file for the whole session,
so every (arch, target, precision) graph is traced once however many tests use it.
"""

import os
import shutil
from collections import Counter
from pathlib import Path

import onnx
import pytest
import torch

from harmony.models import load_checkpoint
from harmony.models.init import make_random_checkpoint
from tests.helpers import (
    BUILD_SCRIPT,
    bound_plugin_dir,
    onnxruntime_headers_root,
    run,
    tensorrt_plugin_build_env,
)

# What a skipped test waited for, by a word of its reason: the run's last lines count them, so
# a reader of any log (CI's included) sees what was not exercised.
# The first word found in the reason decides, so the more specific words come first.
SKIP_CAUSES = (
    ("ONNXRUNTIME_ROOT", "the ONNX Runtime headers (ONNXRUNTIME_ROOT)"),
    ("TENSORRT_ROOT", "the TensorRT headers (TENSORRT_ROOT)"),
    ("HARMONY_OFFICIAL", "the official checkouts (HARMONY_OFFICIAL_AICT / _HDNET)"),
    ("nvcc", "the CUDA toolkit (nvcc)"),
    ("CUDA toolkit", "the CUDA toolkit (nvcc)"),
    (" is present", "a machine without a GPU or TensorRT (tests of the fallback)"),
    (" is installed", "a machine without a GPU or TensorRT (tests of the fallback)"),
    ("extra", "an optional extra"),
    ("CUDA device", "a GPU"),
)


def skip_cause(reason: str) -> str:
    """What a skip with `reason` waited for (`SKIP_CAUSES`; else the reason itself)."""
    return next((cause for word, cause in SKIP_CAUSES if word in reason), reason)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """Count the skipped tests by what they waited for, after pytest's own summary."""
    yield
    reports = terminalreporter.stats.get("skipped", [])
    causes = Counter(skip_cause(str(report.longrepr[-1])) for report in reports)
    if causes:
        terminalreporter.section("not exercised here")
        for cause, count in causes.most_common():
            terminalreporter.write_line(f"{count:4d} skipped for want of {cause}")


@pytest.fixture
def rng():
    """A seeded torch generator (seed 0)."""
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="session")
def cpu_ops_dir(tmp_path_factory) -> Path:
    """Build libharmony_cpu_ops.so (the plugins' math for the CPU: what the exporter verifies
    TensorRT-target graphs with) from the current sources with `build_plugins.sh --cpu-only`
    into a temporary directory, and point harmony.plugins at it (HARMONY_PLUGIN_DIR)."""
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: cannot build libharmony_cpu_ops.so")
    build_dir = tmp_path_factory.mktemp("harmony_cpu_ops")
    # Without the ONNX Runtime custom ops: the exporter verifies with libharmony_cpu_ops.so here.
    env = {"HARMONY_PLUGIN_DIR": str(build_dir), "ONNXRUNTIME_ROOT": ""}
    run([str(BUILD_SCRIPT), "--cpu-only"], env=env)
    assert (build_dir / "libharmony_cpu_ops.so").is_file()
    from harmony.plugins import cpu

    with bound_plugin_dir(build_dir, cpu):
        yield build_dir


@pytest.fixture(scope="session")
def ort_ops_build(tmp_path_factory) -> Path:
    """libharmony_ort_ops.so (and libharmony_cpu_ops.so) built once from the current sources
    against the ONNX Runtime C API headers at ONNXRUNTIME_ROOT, warnings as errors; skips where
    the headers are missing (no package registry has them: bring them from a public ONNX Runtime
    source, plugins/README.md says how)."""
    root = onnxruntime_headers_root()
    build_dir = tmp_path_factory.mktemp("harmony_ort_ops")
    env = {"HARMONY_PLUGIN_DIR": str(build_dir), "ONNXRUNTIME_ROOT": root, "HARMONY_WERROR": "1"}
    run([str(BUILD_SCRIPT), "--cpu-only"], env=env)
    assert (build_dir / "libharmony_ort_ops.so").is_file()
    return build_dir


@pytest.fixture
def ort_ops_dir(ort_ops_build) -> Path:
    """harmony.plugins pointed at `ort_ops_build` for one test (the exporter then verifies
    TensorRT-target graphs in one ONNX Runtime session); `cpu_ops_dir` is restored after."""
    from harmony.plugins import cpu

    with bound_plugin_dir(ort_ops_build, cpu):
        yield ort_ops_build


@pytest.fixture(scope="session")
def tensorrt_plugins_dir(tmp_path_factory) -> Path:
    """A fresh build of the TensorRT plugin library libharmony_plugins.so (and the harness)
    against the TensorRT headers at TENSORRT_ROOT; skips where they or nvcc are missing (no
    package registry has the headers: bring them from the public NVIDIA/TensorRT repository)."""
    root = os.environ.get("TENSORRT_ROOT")
    if not root:
        pytest.skip("TENSORRT_ROOT is not set: point it at a directory with include/NvInfer.h")
    if not (Path(root) / "include" / "NvInferRuntime.h").is_file():
        pytest.skip(f"TENSORRT_ROOT={root} has no include/NvInferRuntime.h")
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found on PATH: libharmony_plugins.so needs the CUDA kernels")
    build_dir = tmp_path_factory.mktemp("harmony_plugins")
    run([str(BUILD_SCRIPT)], env=tensorrt_plugin_build_env(build_dir))
    return build_dir


ARCHS = ("aict", "hdnet", "hdnet-lite")
SEEDS = {"aict": 11, "hdnet": 12, "hdnet-lite": 13}


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="session")
def checkpoints(export_dir) -> dict[str, Path]:
    """{arch: path} of random non-degenerate checkpoints (official formats)."""
    return {
        arch: make_random_checkpoint(arch, SEEDS[arch], export_dir / f"{arch}.pth")
        for arch in ARCHS
    }


@pytest.fixture(scope="session")
def models(checkpoints):
    cache = {}

    def get(arch: str):
        if arch not in cache:
            cache[arch] = load_checkpoint(checkpoints[arch])
        return cache[arch]

    return get


@pytest.fixture(scope="session")
def exported(checkpoints, export_dir):
    """exported(arch, target, precision) -> (path, onnx.ModelProto), exported once, unverified
    (the tests check parity themselves, at more sizes than the exporter does); int8 graphs are
    calibrated on two small composites (trt target: the custom nodes by `harmony.plugins.ort`)."""
    from harmony.calibration import CalibrationSettings
    from harmony.export.exporter import onnx_from_checkpoint

    cache = {}

    def get(arch: str, target: str, precision: str):
        key = (arch, target, precision)
        if key not in cache:
            path = export_dir / f"{arch}.{target}.{precision}.onnx"
            onnx_from_checkpoint(
                checkpoints[arch],
                path,
                target=target,
                precision=precision,
                calibration=CalibrationSettings(count=2, size=(64, 64))
                if precision == "int8"
                else None,
                verify=False,
            )
            cache[key] = (path, onnx.load(path))
        return cache[key]

    return get
