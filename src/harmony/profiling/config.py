"""One harmony-bench measurement, as planned, prepared and run (`BenchConfig`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    """One measurement: what runs (source, backend, precision, device) and on what."""

    arch: str
    source: str  # the file given: a checkpoint or an ONNX graph
    backend: str
    precision: str
    device: str
    height: int
    width: int
    batch: int
    warmup: int
    iterations: int
    params: int | None = None
    kernels: str | None = None  # torch backend: "reference" (harmony.ops) or "fused" (CUDA)
    cuda_graphs: bool | None = None  # torch backend: replay on/off (None: where capturable)
    skip_reason: str | None = None  # known before running (backend unavailable, too large)
    model: str | None = None  # the artifact the backend runs (prepared: checkpoint/.onnx/.engine)
    macs: dict | None = None
    macs_paper_style: int | None = None
    # Held-out composites whose harmonization is scored after timing (0: none; planned only
    # for fitted weights, whose quality means something).
    quality_images: int = 0

    def label(self) -> str:
        backend = f"{self.backend}+fused" if self.kernels == "fused" else self.backend
        return (
            f"{self.arch} {backend} {self.precision} {self.device} "
            f"{self.height}x{self.width} b{self.batch}"
        )
