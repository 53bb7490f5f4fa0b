"""The Python backend model every harmony model repository serves checkpoints, graphs or engines
with: Triton's stub process runs `TritonPythonModel` (the `model.py` of the repository imports
it), which runs the model with the project's own runners (`harmony.serving.handler`).

The model's `config.pbtxt` parameters say what to run (`PARAMETERS`): the model file (absolute,
or relative to the model's version folder), the kind of tensors ("raw" or "encoded"), and
optionally the backend and device. `initialize` activates
the runner and warms it up with one small inference, so a model is ready only once warm (Triton
opens its endpoints after every model loaded). Only the stub can import
`triton_python_backend_utils`: it is imported on use.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harmony.contract import GRAPH_INPUTS, GRAPH_OUTPUT
from harmony.serving.handler import Harmonizer, RequestError

# The config.pbtxt parameters of a harmony Python backend model.
MODEL_PARAMETER = "harmony_model"
KIND_PARAMETER = "harmony_kind"
BACKEND_PARAMETER = "harmony_backend"
DEVICE_PARAMETER = "harmony_device"
PARAMETERS = (MODEL_PARAMETER, KIND_PARAMETER, BACKEND_PARAMETER, DEVICE_PARAMETER)
KINDS = ("raw", "encoded")
WARM_UP_SIDE = 64


class TritonPythonModel:
    """Triton's Python backend interface: initialize, execute, finalize."""

    def initialize(self, args: dict) -> None:
        import triton_python_backend_utils as pb_utils

        from harmony.runtime.backends import runner_for

        config = json.loads(args["model_config"])
        parameters = {
            key: value["string_value"] for key, value in config.get("parameters", {}).items()
        }
        self.kind = parameters[KIND_PARAMETER]
        # A relative model path is the version folder's (a self-contained repository).
        model = Path(args["model_repository"]) / args["model_version"] / parameters[MODEL_PARAMETER]
        self.runner = runner_for(
            model,
            parameters.get(BACKEND_PARAMETER) or None,
            parameters.get(DEVICE_PARAMETER) or None,
        ).activate()
        self.harmonizer = Harmonizer(self.runner, pb_utils.Logger.log_warn)
        self._warm_up()

    def _warm_up(self) -> None:
        (low_batch, low_h, low_w), _ = self.runner.input_range()
        height, width = max(low_h, WARM_UP_SIDE), max(low_w, WARM_UP_SIDE)
        image = np.full((low_batch, 3, height, width), 0.5, np.float32)
        mask = np.zeros((low_batch, 1, height, width), np.float32)
        mask[..., height // 4 : height // 2, width // 4 : width // 2] = 1
        (result,) = self.harmonizer.raw([(image, mask)])
        if isinstance(result, RequestError):
            raise RuntimeError(f"warm-up failed: {result.message}")

    def execute(self, requests: list) -> list:
        import triton_python_backend_utils as pb_utils

        inputs = [
            [pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in GRAPH_INPUTS]
            for request in requests
        ]
        if self.kind == "encoded":
            outputs = self._encoded(inputs)
        else:
            outputs = self.harmonizer.raw([(image, mask) for image, mask in inputs])
        return [
            pb_utils.InferenceResponse(
                error=pb_utils.TritonError(output.message, pb_utils.TritonError.INVALID_ARG)
            )
            if isinstance(output, RequestError)
            else pb_utils.InferenceResponse([pb_utils.Tensor(GRAPH_OUTPUT, output)])
            for output in outputs
        ]

    def _encoded(self, inputs: list) -> list:
        """Each request's [B,1] image and mask files, harmonized one file at a time: [B,1]
        PNG bytes, or the request's first error."""
        files = [
            list(zip(image.reshape(-1), mask.reshape(-1), strict=True)) for image, mask in inputs
        ]
        results = iter(self.harmonizer.encoded([pair for pairs in files for pair in pairs]))
        outputs = []
        for pairs in files:
            done = [next(results) for _ in pairs]
            errors = [result for result in done if isinstance(result, RequestError)]
            outputs.append(errors[0] if errors else np.array(done, dtype=object).reshape(-1, 1))
        return outputs

    def finalize(self) -> None:
        self.runner.deactivate()
