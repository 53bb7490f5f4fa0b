"""The custom nodes in ONNX Runtime from pip packages alone: onnxruntime-extensions' Python custom
ops calling the plugins' CPU build (libharmony_cpu_ops.so, through `harmony.plugins.cpu`).

libharmony_ort_ops.so is compiled against ONNX Runtime's C API headers, which no package
registry ships; this bridge needs only onnxruntime-extensions (a dependency of harmony-deploy)
and the CPU library that `scripts/build_plugins.sh` (CMake and a C++ compiler) or the wheel
builds. `harmony.plugins.ort.inference_session` uses it where libharmony_ort_ops.so is not built.

- onnxruntime-extensions runs Python ops of its own domain only: `bridged_graph` validates each
  custom node against the contract (in the native library's words) and rewrites the graph in
  memory, the nodes moved to that domain with their own attributes plus their name and the
  session's token; the file is not touched. Every standard node stays as it is, in one session.
- The extension's default way back from Python turns each output into a Python list (about 1 s
  for a 2048x2048 image); `_invoke` hands the array back, which the extension copies as a
  buffer. It answers for our ops only and leaves any other Python op to the extension's handler.
- An exception raised inside a Python op aborts the process (the extension does not catch it),
  so the ops never raise: a failure is recorded under the session's token, the op returns zeros,
  and `BridgeSession.run` raises it once the run is over.
- The kernels are the ones libharmony_ort_ops.so runs (same source, same arithmetic), on the CPU
  library's own threads instead of ONNX Runtime's pool.
"""

from __future__ import annotations

import functools
import itertools
import threading

import numpy as np
import onnx
import torch

from harmony.contract import ONNX_DOMAIN, OPS, OpContract
from harmony.custom_nodes import contract_of, op_attributes
from harmony.plugins import cpu

EXTENSIONS_DOMAIN = "ai.onnx.contrib"  # onnxruntime_extensions.default_opset_domain()
# The attributes a bridged node carries beside the op's own: its name (for messages) and the
# token of the session it belongs to (for its failures).
NODE_ATTR = "harmony_node"
SESSION_ATTR = "harmony_session"
_tokens = itertools.count()
_failures: dict[str, list[str]] = {}
_failures_lock = threading.Lock()


def extensions_available() -> str | None:
    """Why the bridge cannot run here (onnxruntime-extensions missing), or None when it can
    (the CPU library is located when a session is made)."""
    try:
        import onnxruntime_extensions  # noqa: F401
    except ImportError as exc:
        return (
            f"onnxruntime-extensions is not installed ({exc}): pip install onnxruntime-extensions"
        )
    return None


def bridged_graph(model: onnx.ModelProto, token: str) -> bytes:
    """`model` with every custom node moved to the extension's domain, serialized; the nodes'
    attributes validated against the contract and filled with defaults.

    Raises:
        ValueError: a custom node of another plugin version or namespace, an unknown attribute,
            one out of range, or an unknown op of the harmony domain (the native library's
            words).
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for node in model.graph.node:
        contract = contract_of(node)
        if contract is None:
            continue
        attributes = op_attributes(node, contract)
        del node.attribute[:]
        node.domain = EXTENSIONS_DOMAIN
        node.attribute.extend(
            [
                *(onnx.helper.make_attribute(name, value) for name, value in attributes.items()),
                onnx.helper.make_attribute(NODE_ATTR, node.name),
                onnx.helper.make_attribute(SESSION_ATTR, token),
            ]
        )
    imports = [entry for entry in model.opset_import if entry.domain != ONNX_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend([*imports, onnx.helper.make_opsetid(EXTENSIONS_DOMAIN, 1)])
    return model.SerializeToString()


def new_token() -> str:
    """A token naming one session's failures."""
    return f"harmony-bridge-{next(_tokens)}"


class BridgeSession:
    """An `onnxruntime.InferenceSession` of a bridged graph whose `run` raises the failures its
    custom nodes recorded (RuntimeError, naming the node); everything else is the session's."""

    def __init__(self, session, token: str):
        self._session, self._token = session, token

    def __getattr__(self, name):
        return getattr(self._session, name)

    def run(self, *args, **kwargs):
        try:
            return self._session.run(*args, **kwargs)
        finally:
            with _failures_lock:
                failures = _failures.pop(self._token, [])
            if failures:
                raise RuntimeError("; ".join(failures))


@functools.cache
def library_path() -> str:
    """The extension's custom-op library, with harmony's two ops registered in it (once per
    process) and `_invoke` installed as the way back from Python."""
    from onnxruntime_extensions import PyCustomOpDef, _ocos, get_library_path, onnx_op

    ours = {}
    for contract in OPS:
        attributes = {attr.name: PyCustomOpDef.dt_int64 for attr in contract.attributes}
        attributes.update(
            {NODE_ATTR: PyCustomOpDef.dt_string, SESSION_ATTR: PyCustomOpDef.dt_string}
        )
        opdef = onnx_op(
            op_type=contract.name,
            inputs=[PyCustomOpDef.dt_float] * len(contract.inputs),
            outputs=[PyCustomOpDef.dt_float] * len(contract.outputs),
            attrs=attributes,
        )(functools.partial(_compute, contract))
        ours[id(opdef)] = opdef
    extension_handler = _ocos._on_pyop_invocation

    def _invoke(op_id, feeds, attributes):
        opdef = ours.get(op_id)
        if opdef is None:
            return extension_handler(op_id, feeds, attributes)
        output = opdef(*feeds, **opdef.cast_attributes(attributes))
        return (op_id, output.shape, output.reshape(-1))

    PyCustomOpDef.install_hooker(_invoke)
    return get_library_path()


def _compute(contract: OpContract, *inputs: np.ndarray, **attributes) -> np.ndarray:
    """One custom node on the CPU library; never raises (see the module docstring)."""
    node, token = attributes.pop(NODE_ATTR), attributes.pop(SESSION_ATTR)
    try:
        tensors = [torch.from_numpy(array) for array in inputs]
        function = getattr(cpu, contract.torch_name)  # the CPU library's `harmony.ops` twin
        return function(*tensors, **attributes).numpy()
    except Exception as exc:
        message = f"{ONNX_DOMAIN}::{contract.name} node '{node}': {exc}"
        with _failures_lock:
            _failures.setdefault(token, []).append(message)
        return np.zeros(inputs[0].shape, dtype=np.float32)
