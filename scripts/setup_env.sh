#!/usr/bin/env bash
# Create .venv and install harmony-deploy into it, with the test tools, TensorRT-RTX (whose
# builder builds engines without a GPU), the Triton server of `harmony serve` and Polygraphy
# (with harmony's `polygraphy run` extension). Idempotent;
# called by demo.sh and test.sh.
# Without an NVIDIA GPU the CPU build of PyTorch is installed first: an unpinned `torch`
# would pull several GB of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${HARMONY_TORCH_VERSION:-2.13.0}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
pip_install() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        pip_install "torch==${TORCH_VERSION}"
    else
        # The "+cpu" local version is the CPU-only build; plain X.Y.Z where only that exists.
        pip_install "torch==${TORCH_VERSION}+cpu" 2>/dev/null || pip_install "torch==${TORCH_VERSION}"
    fi
fi
if ! .venv/bin/python -c "import harmony, pytest, ruff" 2>/dev/null \
    || [ pyproject.toml -nt .venv/.harmony-installed ]; then
    pip_install -e ".[dev,tensorrt-rtx,serve,polygraphy]"
    touch .venv/.harmony-installed
fi
if [ -x scripts/build_plugins.sh ]; then
    scripts/build_plugins.sh >/dev/null
fi
