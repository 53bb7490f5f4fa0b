"""The run's closing count of skipped tests names what each skip waited for."""

from __future__ import annotations

import pytest

from tests.conftest import skip_cause


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        ("needs a CUDA device", "a GPU"),
        ("nvcc not found on PATH: the CUDA kernels cannot be compiled here", "nvcc"),
        ("no CUDA toolkit headers (cuda_fp16.h): set CUDA_HOME", "nvcc"),
        ("a CUDA device is present: the cuda torch runner is available", "without a GPU"),
        ("TensorRT is installed here", "without a GPU"),
        ("TENSORRT_ROOT is not set: point it at a directory with include/NvInfer.h", "TensorRT"),
        ("ONNXRUNTIME_ROOT is not set", "ONNX Runtime headers"),
        ("needs the tensorrt-rtx extra", "an optional extra"),
    ],
)
def test_a_skip_is_counted_under_what_it_waited_for(reason, cause):
    assert cause in skip_cause(reason)


def test_an_unknown_reason_is_counted_as_itself():
    reason = "libpng is not installed (Debian: libpng-dev)"
    assert skip_cause(reason) == reason
