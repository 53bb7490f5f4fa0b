"""`HarmonySession`: a Polygraphy loader of an ONNX Runtime session in which harmony's custom
nodes run (`harmony.plugins.ort.inference_session`: libharmony_ort_ops.so, else the
onnxruntime-extensions bridge). Polygraphy's own `OnnxrtRunner` runs it, so everything
Polygraphy does to the model first (`--onnx-outputs mark all`, `surgeon`) applies."""

from __future__ import annotations

from pathlib import Path

import onnx
from polygraphy import util
from polygraphy.backend.base import BaseLoader

from harmony.contract import ONNX_DOMAIN


class HarmonySession(BaseLoader):
    """Builds the session of `model`: a path, serialized bytes, or a loader returning either."""

    def __init__(self, model, device: str | None = None):
        self._model = model
        self.device = device or "cpu"

    def call_impl(self):
        from harmony.plugins.ort import inference_session

        model, _ = util.invoke_if_callable(self._model)
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        nodes = onnx.load_from_string(data).graph.node
        custom = any(node.domain == ONNX_DOMAIN for node in nodes)
        return inference_session(data, self.device, custom_ops=custom)
