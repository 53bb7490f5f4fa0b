"""Serving harmonization with NVIDIA Triton Inference Server.

- `harmony serve MODEL...` (`server`): the tritonserver binary that PyTriton bundles (Python
  backend only) on 127.0.0.1, each model served by the project's own runners through a Python
  backend model (`triton_model`), written into a temporary model repository (`repository`);
- `harmony triton-repo MODEL... -o REPO` (`repository`): a model repository for a GPU fleet:
  `tensorrt_plan` for engines, `onnxruntime_onnx` for graphs, the same Python backend model for
  checkpoints and CPU servers;
- `handler`: what a served model does with the requests Triton hands it (validation, the memory
  guard, batching of same-size requests, PNG/JPEG decoding), testable without Triton.

The tensor contract: `image` FP32 [B,3,H,W] in [0,1] and `mask` FP32 [B,1,H,W] ->
`harmonized` FP32 [B,3,H,W]; the encoded model of each (`<name>-encoded`) takes the bytes of a
PNG or JPEG image and mask and returns PNG bytes at the image's bit depth.
"""
