"""Peak memory of one run, estimated from its input size, per backend and architecture.

Peak memory of a run grows linearly with the input's pixels (activations), plus, for the
ORT-target HDNet graphs (not the TensorRT-target ones ort-custom runs), the N x N similarity of
LocalDynamics (N = H*W/64) that ONNX Runtime holds about `knn_factor` times over. The
coefficients are package data (`memory_models.json`) written by `benchmarks/memory_model.py`
from peak RSS measured on a CPU (`benchmarks/results/memory_model.{json,md}`), each rounded up
(`MemoryModel.rounded_up`) so that the model stays at or above every measured point; a test
checks that the package data is what those measurements give. The size guard
(`harmony.runtime.limits`) and the exporter's warning for ORT-target HDNet graphs read them.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

MIB = 1 << 20
GIB = 1 << 30
MODELS_FILE = Path(__file__).with_name("memory_models.json")


@dataclass(frozen=True)
class MemoryModel:
    """Peak bytes = base_bytes + bytes_per_pixel x B x H x W + knn_factor x B x N^2 x 4."""

    base_bytes: int
    bytes_per_pixel: float
    knn_factor: float = 0.0

    def peak_bytes(self, height: int, width: int, batch: int = 1) -> int:
        n = -(-height // 8) * -(-width // 8)  # HDNet's bottleneck positions (padded to x8)
        linear = self.bytes_per_pixel * batch * height * width
        return int(self.base_bytes + linear + self.knn_factor * batch * n * n * 4)

    @classmethod
    def rounded_up(cls, fitted: dict) -> MemoryModel:
        """The model of a fit (`benchmarks/memory_model.py`'s `base_bytes`, `bytes_per_pixel`,
        `knn_factor`), each coefficient rounded up: base to a whole MiB, bytes per pixel to a
        whole byte, the KNN factor to a tenth."""
        return cls(
            base_bytes=math.ceil(fitted["base_bytes"] / MIB) * MIB,
            bytes_per_pixel=float(math.ceil(fitted["bytes_per_pixel"])),
            knn_factor=math.ceil(round(fitted["knn_factor"] * 10, 6)) / 10,
        )


def model_key(backend: str, arch: str) -> str:
    """How a (backend, arch) pair is named in the package data and the measurements."""
    return f"{backend}/{arch}"


@functools.cache
def memory_models() -> dict[str, MemoryModel]:
    """{`model_key(backend, arch)`: model} from the package data."""
    data = json.loads(MODELS_FILE.read_text())
    return {key: MemoryModel(**values) for key, values in data["models"].items()}


def models_document(fits: dict[str, dict], measured_by: str) -> dict:
    """The package data for `fits` ({key: fit} of `benchmarks/memory_model.py`), rounded up."""
    models = {key: asdict(MemoryModel.rounded_up(fit)) for key, fit in sorted(fits.items())}
    return {"measured_by": measured_by, "models": models}


def memory_model(backend: str, arch: str) -> MemoryModel | None:
    """The model of `arch` on the backend named `backend`; None where none is needed (engines:
    their optimization profile bounds the input size)."""
    return memory_models().get(model_key(backend, arch))


def estimated_peak_bytes(
    backend: str, arch: str, height: int, width: int, batch: int = 1
) -> int | None:
    """Estimated peak memory of one run of `arch` on the backend named `backend`; None where
    no estimate is needed (`memory_model`)."""
    model = memory_model(backend, arch)
    return None if model is None else model.peak_bytes(height, width, batch)
