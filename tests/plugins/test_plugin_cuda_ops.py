"""libharmony_cuda_ops.so: the kernels behind a C ABI for PyTorch (harmony.plugins.cuda).

Everywhere nvcc is: the CMake build of the kernels for sm_80 and sm_90 with warnings as errors,
the library's exported C ABI, its argument checks, and (without a GPU) that a launch reports
the CUDA error instead of crashing. On a CUDA device: the kernels against harmony.ops, eager
and inside a CUDA graph.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from harmony import ops
from harmony.contract import CASCADED_LUT
from tests.plugins.op_inputs import knn_inputs, lut_inputs

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER = REPO_ROOT / "plugins" / "cuda" / "harmonyCudaOps.h"
ENTRY_POINTS = {
    "harmonyCudaCascadedLut3D",
    "harmonyCudaKnnTopkFusion",
    "harmonyCudaKnnTopkFusionWorkspaceSize",
    "harmonyCudaLastError",
    "harmonyCudaProbe",
}

pytestmark = pytest.mark.nvcc


@pytest.fixture(scope="module")
def lib(cuda_ops_dir) -> ctypes.CDLL:
    from harmony.plugins import cuda

    return cuda._library()


def test_built_for_sm80_and_sm90_with_warnings_as_errors(cuda_ops_dir):
    flags = (cuda_ops_dir / "CMakeFiles" / "harmony_kernels.dir" / "flags.make").read_text()
    assert "-Werror=all-warnings" in flags and "--fmad=false" in flags
    assert {"sm_80", "sm_90"} <= set(re.findall(r"code=\[?[^\]\s]*?(sm_\d+)", flags))


def test_exports_only_the_c_abi_and_links_the_cuda_runtime_statically(cuda_ops_dir):
    library = cuda_ops_dir / "libharmony_cuda_ops.so"
    for tool in ("readelf", "nm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: cannot inspect {library.name}")
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True, check=True
    ).stdout
    exported = {line.split()[-1] for line in symbols.splitlines() if re.search(r" [TD] ", line)}
    assert exported == ENTRY_POINTS
    dynamic = subprocess.run(
        ["readelf", "-d", str(library)], capture_output=True, text=True, check=True
    ).stdout
    assert not [lib for lib in re.findall(r"\(NEEDED\).*\[(.*)\]", dynamic) if "cuda" in lib]


def test_data_type_codes_match_the_header():
    from harmony.plugins.cuda import DATA_TYPE_CODES

    codes = dict(re.findall(r"kHarmonyCuda(Float32|Float16) = (\d+)", HEADER.read_text()))
    assert {torch.float32: int(codes["Float32"]), torch.float16: int(codes["Float16"])} == (
        DATA_TYPE_CODES
    )


def _last_error(lib) -> str:
    return lib.harmonyCudaLastError().decode()


def test_invalid_arguments_are_refused_before_any_launch(lib):
    """Fake non-null pointers: every call below must fail its checks without touching them."""
    p = 256  # an aligned fake address
    assert lib.harmonyCudaCascadedLut3D(0, p, p, p, None, p, 1, 4, 4, 2, 2, None) == 1
    assert "null tensor pointer" in _last_error(lib)
    assert lib.harmonyCudaCascadedLut3D(7, p, p, p, p, p, 1, 4, 4, 2, 2, None) == 1
    assert "unknown data type code 7" in _last_error(lib)
    assert lib.harmonyCudaCascadedLut3D(0, p, p, p, p, p, 70000, 4, 4, 2, 2, None) == 1
    assert "CUDA grid limit" in _last_error(lib)
    size = lib.harmonyCudaKnnTopkFusionWorkspaceSize(2, 100, 4)
    assert size >= 2 * 100 * 4 * 8  # values and indices of every query's list, at least
    assert lib.harmonyCudaKnnTopkFusion(0, p, p, p, p, size, 2, 8, 100, 33, None) == 1
    assert "'k' must be in [1, 32]" in _last_error(lib)
    assert lib.harmonyCudaKnnTopkFusion(0, p, p, p, p, size, 2, 8, 3, 4, None) == 1
    assert "exceeds the number of positions" in _last_error(lib)
    assert lib.harmonyCudaKnnTopkFusion(0, p, p, p, p, size - 1, 2, 8, 100, 4, None) == 1
    assert f"must hold {size} bytes" in _last_error(lib)
    assert lib.harmonyCudaKnnTopkFusion(0, p, p, p, p + 4, size, 2, 8, 100, 4, None) == 1
    assert "aligned to 256" in _last_error(lib)


def test_without_a_gpu_a_launch_reports_the_cuda_error(lib):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present (the launch would run)")
    from harmony.plugins import cuda

    assert cuda.unavailable_reason().startswith("no CUDA device")
    p = 256
    assert lib.harmonyCudaCascadedLut3D(0, p, p, p, p, p, 1, 4, 4, 2, 2, None) == 2
    assert re.match(rf"{CASCADED_LUT.name}: kernel launch failed: cuda\w+ \(", _last_error(lib))
    assert lib.harmonyCudaProbe() == 2
    assert re.match(r"the harmony CUDA kernels cannot run on this device: cuda", _last_error(lib))


def test_python_binding_refuses_cpu_tensors(cuda_ops_dir):
    from harmony.plugins import cuda

    features, mask = knn_inputs(1, 4, 3, 3, mask="soft")
    with pytest.raises(ValueError, match="on one CUDA device"):
        cuda.knn_topk_fusion(features, mask, k=1)


# --- on a CUDA device ---------------------------------------------------------------------------

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@gpu
@pytest.mark.cuda
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-5), (torch.float16, 2e-3)])
def test_kernels_equal_reference_on_the_gpu(cuda_ops_dir, dtype, atol):
    from harmony.plugins import cuda

    # The kernels see every input in `dtype`; the reference gets the same values in float64.
    inputs = [t.cuda().to(dtype) for t in lut_inputs(2, 301, 517, 16, 16, mask="soft")]
    expected = ops.cascaded_lut(*(t.double() for t in inputs))
    actual = cuda.cascaded_lut(*inputs)
    assert actual.dtype == dtype
    torch.testing.assert_close(actual.double(), expected, rtol=0, atol=atol)
    for k in (1, 4):
        features, m = (t.cuda() for t in knn_inputs(2, 64, 33, 47, mask="binary", seed=k))
        expected = ops.knn_topk_fusion(features.to(dtype), m.to(dtype), k=k).double()
        actual = cuda.knn_topk_fusion(features.to(dtype), m.to(dtype), k=k)
        torch.testing.assert_close(actual.double(), expected, rtol=0, atol=atol)


@gpu
@pytest.mark.cuda
def test_kernels_replay_from_a_cuda_graph(cuda_ops_dir):
    from harmony.plugins import cuda
    from harmony.runtime.cuda_graphs import GraphedCall

    graphed = GraphedCall(lambda x, m: cuda.knn_topk_fusion(x, m, k=2))
    with torch.inference_mode():
        for seed in (0, 1):  # the second call replays the captured graph on new values
            features, mask = (t.cuda() for t in knn_inputs(1, 32, 24, 24, "binary", seed=seed))
            torch.testing.assert_close(
                graphed(features, mask),
                ops.knn_topk_fusion(features, mask, k=2),
                rtol=0,
                atol=1e-5,
            )
    assert len(graphed.graphs) == 1
