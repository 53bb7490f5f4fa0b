#!/usr/bin/env bash
# The GPU check in one command, on any CUDA machine with PyTorch (no network needed):
#
#   scripts/gpu_check.sh [--dry-run] [OUT]     (OUT default: benchmarks/results/gpu)
#
# 1. installs harmony-deploy without dependencies into the current Python ($PYTHON, default
#    python3): pip install --no-deps --no-build-isolation -e .
# 2. builds the CUDA kernels (libharmony_cuda_ops.so) for this machine's GPU only
#    (HARMONY_CUDA_ARCHITECTURES=native) into OUT/plugins;
# 3. runs `harmony gpu-check`: kernel and pipeline parity at 1024^2 and 2048^2, the kernel
#    micro-benchmark and harmony-bench on CUDA, into OUT/gpu_check.{json,md};
# 4. runs the suite's GPU tests (pytest -m cuda), JUnit XML into OUT/gpu_tests.xml.
# It exits non-zero when a parity check or a test fails. --dry-run skips steps 1, 2 and 4 (it
# uses the environment as it is: .venv/bin/python when present) and runs step 3 on the CPU at
# 64x64 with one iteration; the test suite runs it.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dry_run=0
out=""
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry_run=1 ;;
        -h | --help)
            sed -n '2,16p' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        -*)
            echo "gpu_check.sh: unknown option '$arg' (expected --dry-run)" >&2
            exit 1
            ;;
        *) out=$arg ;;
    esac
done
out=${out:-$repo_root/benchmarks/results/gpu}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo_root"

if [[ $dry_run -eq 1 ]]; then
    python=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
    echo "gpu_check: dry run on the CPU (no install, no CUDA build, no GPU tests)"
    exec "$python" -m harmony gpu-check --out "$out" --dry-run --force
fi

python=${PYTHON:-python3}
start=$SECONDS
"$python" -m pip install --quiet --no-deps --no-build-isolation -e .
export HARMONY_PLUGIN_DIR="$out/plugins"
HARMONY_CUDA_ARCHITECTURES=${HARMONY_CUDA_ARCHITECTURES:-native} scripts/build_plugins.sh
echo "gpu_check: installed and built in $((SECONDS - start)) s"
status=0
"$python" -m harmony gpu-check --out "$out" --force || status=$?
"$python" -m pytest -q -m cuda -p no:cacheprovider --junitxml "$out/gpu_tests.xml" \
    tests/plugins/test_plugin_cuda_ops.py tests/runtime/test_runners.py || status=$?
echo "gpu_check: done in $((SECONDS - start)) s; results in $out"
exit "$status"
