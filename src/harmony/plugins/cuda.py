"""The two fused ops on a CUDA device: the TensorRT plugins' kernels, called from PyTorch.

libharmony_cuda_ops.so exposes the kernel launchers behind a C ABI (plugins/cuda/); this module
calls it through ctypes on the tensors' device pointers. Same signatures and semantics as
`harmony.ops` (the kernels compute in float32; the result has the dtype of `image` /
`features`). The kernels run on PyTorch's current stream and take their workspace from
PyTorch's allocator, and nothing here synchronises, so both ops can be captured in a CUDA
graph. Inputs are brought to one element type first: float16 when `image` / `features` is
float16, else float32, as the TensorRT plugins take them (so under FP16 a soft mask is rounded
to float16, where `harmony.ops` would keep it in float32: about 1e-3).
"""

from __future__ import annotations

import ctypes
import functools

import torch

from harmony.errors import HarmonyError
from harmony.ops import check_knn_inputs, check_lut_inputs
from harmony.plugins import call_checked, cuda_library_path

# HarmonyCudaDataType of plugins/cuda/harmonyCudaOps.h (tests/plugins check the header).
DATA_TYPE_CODES = {torch.float32: 0, torch.float16: 1}
# The launcher's workspace alignment; PyTorch's CUDA allocator returns 512-byte aligned blocks.
WORKSPACE_ALIGNMENT = 256

_I32 = ctypes.c_int32
_PTR = ctypes.c_void_p


@functools.cache
def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(cuda_library_path()))
    lib.harmonyCudaCascadedLut3D.argtypes = [_I32] + [_PTR] * 5 + [_I32] * 5 + [_PTR]
    lib.harmonyCudaKnnTopkFusionWorkspaceSize.argtypes = [_I32] * 3
    lib.harmonyCudaKnnTopkFusionWorkspaceSize.restype = ctypes.c_uint64
    lib.harmonyCudaKnnTopkFusion.argtypes = (
        [_I32] + [_PTR] * 4 + [ctypes.c_uint64] + [_I32] * 4 + [_PTR]
    )
    for fn in (lib.harmonyCudaCascadedLut3D, lib.harmonyCudaKnnTopkFusion):
        fn.restype = _I32
    lib.harmonyCudaProbe.argtypes = []
    lib.harmonyCudaProbe.restype = _I32
    lib.harmonyCudaLastError.argtypes = []
    lib.harmonyCudaLastError.restype = ctypes.c_char_p
    return lib


def unavailable_reason() -> str | None:
    """Why the CUDA kernels cannot run on the current CUDA device, or None when they can: the
    library is built and loads, and its kernels load for this GPU and driver."""
    if not torch.cuda.is_available():
        return f"no CUDA device visible to PyTorch {torch.__version__}"
    try:
        lib = _library()
    except HarmonyError as error:
        return str(error)
    except OSError as error:
        return f"libharmony_cuda_ops.so does not load: {error}"
    with torch.cuda.device(torch.cuda.current_device()):
        if lib.harmonyCudaProbe() != 0:
            return lib.harmonyCudaLastError().decode()
    return None


def cascaded_lut(
    image: torch.Tensor, mask: torch.Tensor, knots: torch.Tensor, curve: torch.Tensor
) -> torch.Tensor:
    """AICT's cascaded LUT with the CascadedLut3D kernel; see `harmony.ops.cascaded_lut`.

    Args:
        image: [B,3,H,W]; mask: [B,1,H,W]; knots: [B,3,9,h,w]; curve: [B,3,8,h,w], on one
            CUDA device.
    Returns:
        [B,3,H,W] in the dtype of `image`.
    """
    check_lut_inputs(image, mask, knots, curve)
    dtype = _kernel_dtype(image)
    x, m, kn, cu = _prepared(dtype, image, mask, knots, curve)
    b, _, height, width = x.shape
    out = torch.empty_like(x)
    if out.numel() == 0:
        return out.to(image.dtype)
    with torch.cuda.device(x.device):
        call_checked(
            _library(),
            "harmonyCudaCascadedLut3D",
            "harmonyCudaLastError",
            DATA_TYPE_CODES[dtype],
            *(t.data_ptr() for t in (x, m, kn, cu, out)),
            b,
            height,
            width,
            *knots.shape[-2:],
            _stream(x),
        )
    return out.to(image.dtype)


def knn_topk_fusion(features: torch.Tensor, mask: torch.Tensor, k: int = 1) -> torch.Tensor:
    """HDNet's fused reference features with the KnnTopkFusion kernels (O(B * N * k) workspace,
    never N x N); see `harmony.ops.knn_topk_fusion`.

    Args:
        features: [B,C,h,w]; mask: [B,1,h,w], on one CUDA device; k: 1 (default) to 32.
    Returns:
        [B,C,h,w] in the dtype of `features`.
    """
    k = check_knn_inputs(features, mask, k)
    dtype = _kernel_dtype(features)
    x, m = _prepared(dtype, features, mask)
    b, c, h, w = x.shape
    if x.numel() == 0:
        return torch.empty_like(features)
    lib = _library()
    workspace_bytes = lib.harmonyCudaKnnTopkFusionWorkspaceSize(b, h * w, k)
    workspace = torch.empty(workspace_bytes, dtype=torch.uint8, device=x.device)
    if workspace.data_ptr() % WORKSPACE_ALIGNMENT:
        raise RuntimeError(f"the KNN workspace is not {WORKSPACE_ALIGNMENT}-byte aligned")
    out = torch.empty_like(x)
    with torch.cuda.device(x.device):
        call_checked(
            lib,
            "harmonyCudaKnnTopkFusion",
            "harmonyCudaLastError",
            DATA_TYPE_CODES[dtype],
            x.data_ptr(),
            m.data_ptr(),
            out.data_ptr(),
            workspace.data_ptr(),
            workspace_bytes,
            b,
            c,
            h * w,
            k,
            _stream(x),
        )
    return out.to(features.dtype)


def _kernel_dtype(primary: torch.Tensor) -> torch.dtype:
    return torch.float16 if primary.dtype == torch.float16 else torch.float32


def _prepared(dtype: torch.dtype, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """The tensors as contiguous `dtype` on their common CUDA device (ValueError otherwise)."""
    device = tensors[0].device
    if device.type != "cuda" or any(t.device != device for t in tensors):
        devices = sorted({str(t.device) for t in tensors})
        raise ValueError(f"the CUDA kernels need the tensors on one CUDA device, got {devices}")
    return [t.detach().to(dtype).contiguous() for t in tensors]


def _stream(tensor: torch.Tensor) -> int:
    return torch.cuda.current_stream(tensor.device).cuda_stream


__all__ = ["DATA_TYPE_CODES", "cascaded_lut", "knn_topk_fusion", "unavailable_reason"]
