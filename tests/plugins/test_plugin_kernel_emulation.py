"""The CUDA kernels themselves, run on the CPU: the plugin's .cu sources are compiled by g++
against a host emulation of the few CUDA constructs they use (kernel_emulation/cudaEmulation.h:
one OS thread per CUDA thread, std::barrier for __syncthreads, blocks one after another) and
their launchers' outputs are compared with libharmony_cpu_ops, as the harness does on a GPU.

- under AddressSanitizer + UBSan: index math, tile edges (partial query/support/channel tiles),
  k = 1/4/32, all mask kinds, exact ties across support tiles, NaN/inf features, FP16 I/O,
  H or W == 1 and 1x1 maps; any read or write past a buffer (inputs, output, workspace) fails;
- under ThreadSanitizer (a few small cases): a missing __syncthreads shows up as a data race on
  the kernels' shared memory.

This is no substitute for running on a GPU (warp scheduling, timing, device math library), but
it executes every line of the kernels without one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DIR = REPO_ROOT / "plugins"
EMULATION_DIR = Path(__file__).resolve().parent / "kernel_emulation"
KERNELS = (
    "cascadedLut3DPlugin/cascadedLut3DKernel.cu",
    "knnTopkFusionPlugin/knnTopkFusionKernel.cu",
)
LAUNCH = re.compile(r"(\w+(?:<\w+>)?)<<<(.*?)>>>\(", re.DOTALL)

pytestmark = pytest.mark.slow


def _cuda_include_dir() -> Path | None:
    """A CUDA toolkit include directory (cuda_fp16.h, cuda_runtime_api.h): headers only."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc is not None:
        candidates.append(str(Path(nvcc).resolve().parents[1]))
    for root in filter(None, candidates):
        for include in (
            Path(root) / "include",
            Path(root) / "targets" / "x86_64-linux" / "include",
        ):
            if (include / "cuda_fp16.h").is_file() and (include / "cuda_runtime_api.h").is_file():
                return include
    return None


def _compiles(compiler: str, flags: list[str], source: str, tmp: Path) -> bool:
    probe = tmp / "probe.cpp"
    probe.write_text(source)
    result = subprocess.run(
        [compiler, *flags, str(probe), "-o", str(tmp / "probe")],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


@pytest.fixture(scope="module")
def emulation_sources(tmp_path_factory) -> tuple[str, Path, list[Path]]:
    """(compiler, CUDA include dir, the kernel sources rewritten for the emulation)."""
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler: cannot emulate the kernels")
    include = _cuda_include_dir()
    if include is None:
        pytest.skip("no CUDA toolkit headers (cuda_fp16.h): set CUDA_HOME")
    tmp = tmp_path_factory.mktemp("kernel_emulation")
    if not _compiles(
        compiler, ["-std=c++20", "-pthread"], "#include <barrier>\nint main(){}\n", tmp
    ):
        pytest.skip(f"{compiler} has no C++20 <barrier>")
    sources = []
    for kernel in KERNELS:
        text = (PLUGINS_DIR / kernel).read_text()
        rewritten, count = LAUNCH.subn(
            lambda m: f"harmony_emu::launch({m.group(1)}, {m.group(2)}, ", text
        )
        # Every launch of the file must go through the emulation.
        assert count > 0 and count == text.count("<<<"), f"{kernel}: {count} launches rewritten"
        source = tmp / (Path(kernel).stem + ".cpp")
        source.write_text('#include "cudaEmulation.h"\n' + rewritten)
        sources.append(source)
    return compiler, include, sources


def _build_and_run(
    emulation_sources, cpu_ops_dir: Path, label: str, sanitizer: list[str], args: list[str]
) -> str:
    compiler, include, sources = emulation_sources
    tmp = sources[0].parent
    if not _compiles(compiler, [*sanitizer, "-pthread"], "int main(){}\n", tmp):
        pytest.skip(f"{compiler} cannot build with {' '.join(sanitizer)}")
    binary = tmp / f"kernelEmulation_{label}"
    build = subprocess.run(
        [
            compiler,
            "-std=c++20",
            "-O1",
            "-ffp-contract=off",
            *sanitizer,
            f"-I{EMULATION_DIR}",
            f"-I{PLUGINS_DIR}",
            f"-I{include}",
            *map(str, sources),
            str(EMULATION_DIR / "kernelEmulation.cpp"),
            "-o",
            str(binary),
            f"-L{cpu_ops_dir}",
            "-lharmony_cpu_ops",
            f"-Wl,-rpath,{cpu_ops_dir}",
            "-pthread",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    env = {
        **os.environ,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "TSAN_OPTIONS": "halt_on_error=1",
    }
    result = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, check=False, timeout=600, env=env
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "OK: 0 failure(s)" in output, output[-6000:]
    assert "Sanitizer" not in output, output[-6000:]
    return output


def test_kernels_match_cpu_library_under_address_sanitizer(emulation_sources, cpu_ops_dir):
    output = _build_and_run(
        emulation_sources,
        cpu_ops_dir,
        "asan",
        ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"],
        [],
    )
    assert output.count("PASS ") >= 40


def test_kernels_have_no_shared_memory_races(emulation_sources, cpu_ops_dir):
    output = _build_and_run(
        emulation_sources, cpu_ops_dir, "tsan", ["-fsanitize=thread"], ["quick"]
    )
    assert output.count("PASS ") >= 6
