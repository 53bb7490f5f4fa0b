"""The two fused ops as PyTorch custom operators: the one way the models call them.

It sits above the two implementations it dispatches to: the `harmony.ops` references and the
native libraries of `harmony.plugins` (which validate inputs with `harmony.ops`' checks).

`torch.ops.harmony.cascaded_lut` and `torch.ops.harmony.knn_topk_fusion` (torch.library, schema
from `harmony.contract`) are opaque to tracing and compilation, so every consumer gets them whole:

- eager PyTorch runs the implementation registered for the tensors' device: on the CPU the
  `harmony.ops` reference; on CUDA the plugin kernels of libharmony_cuda_ops.so
  (`harmony.plugins.cuda`) where they are built and load for the GPU, else the reference;
- fake kernels give the output's shape and dtype to torch.export, the ONNX exporter and
  torch.compile;
- the exporter lowers each op per target from one table (`harmony.export.lowering`).

Which implementation runs on CUDA can be chosen for a block with `use_kernels("reference")` or
`use_kernels("fused")`. The choice lives in a context variable, so it holds for the calling
thread (or asyncio task) only: two threads can run different implementations at once. Calling
`harmony.ops.cascaded_lut` / `harmony.ops.knn_topk_fusion` directly always runs the reference.
`replaced_ops({...})` goes further for a block on the calling thread: the ops' calls run other
functions (a torch function mode), which is how the exporter writes the ONNX Runtime target's
standard-op forms and how benchmarks run the official algorithm.

`cascaded_lut` and `knn_topk_fusion` below are what the models call: the ops on float32 copies of
their inputs (the fused ops compute in float32 in every backend; in exported graphs this is
the float32 island around the custom nodes), the result cast back to the caller's dtype.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import torch
from torch.overrides import TorchFunctionMode

import harmony.ops as reference_ops
from harmony.contract import CASCADED_LUT, KERNELS, KNN_TOPK_FUSION, TORCH_NAMESPACE, OpContract
from harmony.errors import HarmonyError
from harmony.plugins import cuda

# None: the default (fused on CUDA where available, else reference).
_KERNELS: ContextVar[str | None] = ContextVar("harmony_kernels", default=None)


def _schema(contract: OpContract) -> str:
    """The torch.library schema of an op from its contract: tensors, then int attributes."""
    arguments = [f"Tensor {name}" for name in contract.inputs]
    arguments += [f"int {attr.name}={attr.default}" for attr in contract.attributes]
    return f"({', '.join(arguments)}) -> Tensor"


def _define(contract: OpContract):
    """Register `contract`'s custom op: the reference (`harmony.ops.<torch_name>`) on every
    device, on CUDA the plugin kernels (`harmony.plugins.cuda.<torch_name>`) when chosen
    (`cuda_kernels`), and a fake kernel."""
    reference = getattr(reference_ops, contract.torch_name)
    op = torch.library.custom_op(
        contract.torch_op, reference, mutates_args=(), schema=_schema(contract)
    )

    @op.register_kernel("cuda")
    def _cuda(first, *args, **kwargs):
        if cuda_kernels(first.device) == "fused":
            return getattr(cuda, contract.torch_name)(first, *args, **kwargs)
        return reference(first, *args, **kwargs)

    @op.register_fake
    def _fake(first, *args, **kwargs):
        return torch.empty_like(first)

    return op


_cascaded_lut_op = _define(CASCADED_LUT)
_knn_topk_fusion_op = _define(KNN_TOPK_FUSION)


def torch_op(contract: OpContract) -> torch._ops.OpOverload:
    """The `torch.ops.harmony.<op>.default` overload of a contract op (what graphs hold)."""
    return getattr(getattr(torch.ops, TORCH_NAMESPACE), contract.torch_name).default


def cascaded_lut(
    image: torch.Tensor, mask: torch.Tensor, knots: torch.Tensor, curve: torch.Tensor
) -> torch.Tensor:
    """`torch.ops.harmony.cascaded_lut` in float32; shapes and result as `harmony.ops.cascaded_lut`
    (returned in the dtype of `image`)."""
    out = _cascaded_lut_op(image.float(), mask.float(), knots.float(), curve.float())
    return out.to(image.dtype)


def knn_topk_fusion(features: torch.Tensor, mask: torch.Tensor, k: int = 1) -> torch.Tensor:
    """`torch.ops.harmony.knn_topk_fusion` in float32; shapes and result as
    `harmony.ops.knn_topk_fusion` (returned in the dtype of `features`)."""
    return _knn_topk_fusion_op(features.float(), mask.float(), k).to(features.dtype)


class _Replacing(TorchFunctionMode):
    """Calls of the replaced custom ops run their replacements (see `replaced_ops`)."""

    def __init__(self, replacements: dict[OpContract, Callable]):
        super().__init__()
        self.functions = {}
        for contract, function in replacements.items():
            op = torch_op(contract)
            self.functions.update({op: function, op.overloadpacket: function})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.functions.get(func, func)(*args, **(kwargs or {}))


def replaced_ops(replacements: dict[OpContract, Callable]) -> contextlib.AbstractContextManager:
    """Within the block, on the calling thread, a call of the custom op of each contract in
    `replacements` runs the given function instead (same arguments as the op), eagerly and
    while a program is traced. An empty dict replaces nothing."""
    return _Replacing(replacements) if replacements else contextlib.nullcontext()


@contextlib.contextmanager
def use_kernels(kernels: str | None) -> Iterator[None]:
    """Within the block, the fused ops on CUDA run `kernels`: "reference" (`harmony.ops`),
    "fused" (the plugin kernels; an error where they cannot run) or None (the default: fused
    where available). Applies to the calling thread / task only; the previous choice is
    restored on exit."""
    if kernels is not None and kernels not in KERNELS:
        raise HarmonyError(f"kernels must be one of {', '.join(KERNELS)}, got '{kernels}'")
    token = _KERNELS.set(kernels)
    try:
        yield
    finally:
        _KERNELS.reset(token)


def cuda_kernels(device: torch.device, requested: str | None = None) -> str:
    """The implementation that runs on CUDA `device`: `requested` (default: the innermost
    `use_kernels` choice) resolved against what is available.

    Raises:
        HarmonyError: "fused" is requested where the kernels cannot run (the reason is named).
    """
    requested = _KERNELS.get() if requested is None else requested
    if requested == "reference":
        return "reference"
    reason = fused_kernels_unavailable(device.index)
    if reason is None:
        return "fused"
    if requested == "fused":
        raise HarmonyError(f"the fused CUDA kernels cannot run: {reason}")
    return "reference"


@functools.cache
def fused_kernels_unavailable(device_index: int | None = None) -> str | None:
    """Why the plugin kernels cannot run on CUDA device `device_index` (None: the current one),
    or None when they can. Probed once per device and process."""
    if device_index is None or not torch.cuda.is_available():
        return cuda.unavailable_reason()
    with torch.cuda.device(device_index):
        return cuda.unavailable_reason()


__all__ = [
    "cascaded_lut",
    "cuda_kernels",
    "fused_kernels_unavailable",
    "knn_topk_fusion",
    "replaced_ops",
    "torch_op",
    "use_kernels",
]
