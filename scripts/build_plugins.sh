#!/usr/bin/env bash
# Build the native part of harmony (plugins/) with CMake. Idempotent: re-running reconfigures
# and rebuilds only what changed.
#
#   scripts/build_plugins.sh [--cpu-only] [--clean]
#
# Always builds libharmony_cpu_ops.so (g++ only). With nvcc on PATH it also builds the CUDA
# kernels and libharmony_cuda_ops.so (the kernels for PyTorch), and with TENSORRT_ROOT=<dir with include/NvInfer.h> the TensorRT plugin library
# libharmony_plugins.so and the pluginHarness executable. With ONNXRUNTIME_ROOT=<dir with
# include/onnxruntime_c_api.h> it builds libharmony_ort_ops.so, the ONNX Runtime custom ops
# (ONNX Runtime's C API of that version or older than the runtime that loads it).
# Output: $HARMONY_PLUGIN_DIR, default <repo>/build/plugins (what harmony.plugins looks up).
# HARMONY_CUDA_ARCHITECTURES (CMake list, default "80;90") picks the GPU architectures;
# HARMONY_WERROR=1 makes compiler warnings errors (the tests build so).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${HARMONY_PLUGIN_DIR:-"$repo_root/build/plugins"}
cpu_only=0
clean=0
for arg in "$@"; do
    case "$arg" in
        --cpu-only) cpu_only=1 ;;
        --clean) clean=1 ;;
        -h | --help)
            sed -n '2,16p' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *)
            echo "build_plugins.sh: unknown argument '$arg' (expected --cpu-only, --clean)" >&2
            exit 1
            ;;
    esac
done

if ! command -v cmake > /dev/null; then
    echo "build_plugins.sh: cmake (>= 3.18) is required; install it (e.g. pip install cmake)" >&2
    exit 1
fi
if [[ $clean -eq 1 ]]; then
    rm -rf "$build_dir"
fi

configure_args=(-S "$repo_root/plugins" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release)
if [[ $cpu_only -eq 1 ]] || ! command -v nvcc > /dev/null; then
    [[ $cpu_only -eq 1 ]] || echo "build_plugins.sh: nvcc not found; building the CPU library only"
    configure_args+=(-DHARMONY_WITH_CUDA=OFF)
else
    configure_args+=(-DHARMONY_WITH_CUDA=ON)
    if [[ -n ${HARMONY_CUDA_ARCHITECTURES:-} ]]; then
        configure_args+=(-DCMAKE_CUDA_ARCHITECTURES="$HARMONY_CUDA_ARCHITECTURES")
    fi
fi
if [[ ${HARMONY_WERROR:-0} == 1 ]]; then
    configure_args+=(-DHARMONY_WERROR=ON)
fi
if [[ -n ${TENSORRT_ROOT:-} ]]; then
    configure_args+=(-DTENSORRT_ROOT="$TENSORRT_ROOT")
fi
if [[ -n ${ONNXRUNTIME_ROOT:-} ]]; then
    configure_args+=(-DONNXRUNTIME_ROOT="$ONNXRUNTIME_ROOT")
fi

mkdir -p "$build_dir"
cmake "${configure_args[@]}" > "$build_dir/configure.log" 2>&1 || {
    cat "$build_dir/configure.log" >&2
    echo "build_plugins.sh: cmake configure failed (log above)" >&2
    exit 1
}
grep '^-- harmony:' "$build_dir/configure.log" || true
cmake --build "$build_dir" --parallel "$(nproc 2> /dev/null || echo 2)"
echo "build_plugins.sh: built into $build_dir:"
ls -1 "$build_dir" | grep -E '^(lib.*\.so|pluginHarness)$' | sed 's/^/  /'
