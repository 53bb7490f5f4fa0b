"""What harmony-bench measures: configurations, planned without side effects.

`plan_configs` crosses model sources x backends x precisions x (torch) kernel implementations x
resolutions and gives each configuration the device its backend runs on and, where it cannot
run here, the reason: the backend's `refusal` (the environment, and the source's kind,
precision and target), the fused kernels' availability and the memory guard
(`harmony.runtime.limits`). Nothing is exported, built or measured here:
`harmony.profiling.prepare` prepares the artifacts next, then `harmony.profiling.measure`
measures.
"""

from __future__ import annotations

from harmony.contract import KERNELS
from harmony.dispatch import fused_kernels_unavailable
from harmony.profiling.config import BenchConfig
from harmony.runtime.backends import Backend, default_device, get_backend
from harmony.runtime.limits import size_refusal
from harmony.runtime.sources import ModelSource


def default_kernels(device: str) -> list[str]:
    """The torch backend's fused-op implementations worth comparing on `device`: both on CUDA
    (with and without the plugin kernels), the reference alone on the CPU."""
    return list(KERNELS) if device == "cuda" else ["reference"]


def plan_configs(
    sources: list[ModelSource],
    backends: list[str],
    precisions: list[str],
    resolutions: list[tuple[int, int]],
    batch: int,
    warmup: int,
    iterations: int,
    kernels: list[str] | None = None,
    quality_images: int = 0,
) -> list[BenchConfig]:
    """Every (source, backend, precision, kernels, resolution) configuration, with a skip reason
    where it cannot run here; the torch backend once per entry of `kernels` ("reference",
    "fused"; default: `default_kernels(device)`). Configurations of fitted weights score
    their output on `quality_images` held-out composites (default 0: none)."""
    configs = []
    for source in sources:
        for name in backends:
            backend = get_backend(name)
            device = default_device(backend)
            for precision in precisions:
                reason = backend.refusal(source, device, precision)
                for kernel in _kernel_choices(backend, device, kernels):
                    for height, width in resolutions:
                        configs.append(
                            BenchConfig(
                                arch=source.arch,
                                source=str(source.path),
                                backend=name,
                                precision=precision,
                                device=device,
                                height=height,
                                width=width,
                                batch=batch,
                                warmup=warmup,
                                iterations=iterations,
                                params=source.params,
                                kernels=kernel,
                                skip_reason=reason
                                or _kernels_unavailable(kernel)
                                or _too_large(backend, device, source, height, width, batch),
                                quality_images=quality_images if source.fitted else 0,
                            )
                        )
    return configs


def _kernel_choices(backend: Backend, device: str, kernels: list[str] | None) -> list:
    if "kernels" not in backend.options:
        return [None]
    return kernels or default_kernels(device)


def _kernels_unavailable(kernels: str | None) -> str | None:
    """Why the torch backend cannot run with `kernels` here (None: it can)."""
    if kernels != "fused":
        return None
    reason = fused_kernels_unavailable()
    return None if reason is None else f"the fused CUDA kernels cannot run: {reason}"


def _too_large(
    backend: Backend, device: str, source: ModelSource, height: int, width: int, batch: int
) -> str | None:
    return size_refusal(backend, source.arch, device, height, width, batch)
