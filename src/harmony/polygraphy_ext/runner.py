"""A Polygraphy runner over a harmony runner (`harmony.runtime`; `--harmony-torch` runs the
PyTorch pipeline with it): Polygraphy's feed dicts of numpy arrays in, `harmonized` out, with
the harmony runner's own input checks."""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
import torch
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata

from harmony.contract import GRAPH_INPUTS, GRAPH_OUTPUT


class HarmonyRunner(BaseRunner):
    """Runs `model` (a checkpoint or an exported graph) on harmony's `backend` (None: the one
    harmony-run picks for the file) and `device`."""

    def __init__(
        self, model: str, backend: str | None = None, device: str | None = None, name=None
    ):
        super().__init__(name=name, prefix=f"harmony-{backend or 'default'}-runner")
        self.model, self.backend, self.device = model, backend, device

    def activate_impl(self) -> None:
        from harmony.runtime.backends import runner_for

        self.harmony_runner = runner_for(self.model, self.backend, self.device).activate()

    def get_input_metadata_impl(self) -> TensorMetadata:
        (low_batch, _, _), high = self.harmony_runner.input_range()
        fixed = high is not None and high[0] == low_batch
        batch = low_batch if fixed else "batch"
        metadata = TensorMetadata()
        for name, channels in zip(GRAPH_INPUTS, (3, 1), strict=True):
            # float32 in [0,1] whatever the model's I/O type: the harmony runner casts.
            metadata.add(name, np.float32, (batch, channels, "height", "width"))
        return metadata

    def infer_impl(self, feed_dict) -> OrderedDict:
        image, mask = (torch.from_numpy(np.asarray(feed_dict[name])) for name in GRAPH_INPUTS)
        start = time.perf_counter()
        output = self.harmony_runner.infer(image, mask)
        self.harmony_runner.synchronize()
        self.inference_time = time.perf_counter() - start
        return OrderedDict([(GRAPH_OUTPUT, output.cpu().numpy())])

    def deactivate_impl(self) -> None:
        self.harmony_runner.deactivate()
        del self.harmony_runner
