"""CPU execution of TensorRT-target graphs (with the contract's custom nodes).

`verification_runner` is what the exporter checks a written graph with: the whole graph in one
ONNX Runtime session (`SessionRunner`, as a deployment on ONNX Runtime runs it), its custom nodes
computed by libharmony_ort_ops.so where built, else by onnxruntime-extensions with the plugins'
CPU build (`harmony.plugins.ort`).

The tests and benchmarks also run the exact bytes TensorRT receives with the custom nodes
computed outside ONNX Runtime, by one of two independent implementations
(`CUSTOM_NODE_IMPLEMENTATIONS`):

- "plugin": libharmony_cpu_ops.so (`harmony.plugins.cpu`), the TensorRT plugins' own math built
  for the CPU;
- "reference": `harmony.ops`, the ground truth.

- `SplitOrtRunner`: the graph is cut at its custom nodes into segments of standard nodes, each
  run by ONNX Runtime; the custom nodes run in between on the segments' outputs. Fast (ORT
  kernels for the convolutions and attention).
- `reference_evaluator(model)`: `onnx.reference.ReferenceEvaluator` with `OpRun`
  implementations of the custom nodes (`custom_op_runs()`). Pure numpy: slow for big
  convolutions, an executor of the standard ops independent of ONNX Runtime on small inputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from harmony.contract import CASCADED_LUT, KNN_TOPK_FUSION, ONNX_DOMAIN, OpContract
from harmony.custom_nodes import contract_of, op_attributes
from harmony.plugins.ort import custom_ops_implementation, inference_session


@dataclass(frozen=True)
class Implementation:
    """A CPU implementation of the custom nodes: the module whose functions
    `<OpContract.torch_name>` compute them, and how reports name it."""

    module: str
    description: str


CUSTOM_NODE_IMPLEMENTATIONS = {
    "plugin": Implementation(
        "harmony.plugins.cpu", "libharmony_cpu_ops.so (the plugins' math on the CPU)"
    ),
    "reference": Implementation("harmony.ops", "harmony.ops (the reference)"),
}


def run_custom_node(
    contract: OpContract, inputs: Sequence[np.ndarray], attributes: dict, implementation: str
) -> np.ndarray:
    """Compute one custom node on numpy arrays with `implementation` ("plugin" or "reference").

    Raises:
        HarmonyError: "plugin" where libharmony_cpu_ops.so is not built (the message says how).
    """
    module = importlib.import_module(CUSTOM_NODE_IMPLEMENTATIONS[implementation].module)
    tensors = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
    with torch.inference_mode():
        out = getattr(module, contract.torch_name)(*tensors, **attributes)
    return out.numpy()


def _op_run_class(contract: OpContract, implementation: str) -> type[OpRun]:
    def _run(self, *inputs, **attributes):
        values = op_attributes(self.onnx_node, contract)
        return (run_custom_node(contract, inputs, values, implementation),)

    # ReferenceEvaluator matches a class to a node by class name and `op_domain`.
    return type(contract.name, (OpRun,), {"op_domain": ONNX_DOMAIN, "_run": _run})


def custom_op_runs(implementation: str) -> list[type[OpRun]]:
    """`OpRun` classes of both custom nodes for `ReferenceEvaluator(new_ops=...)`."""
    return [_op_run_class(contract, implementation) for contract in (CASCADED_LUT, KNN_TOPK_FUSION)]


def reference_evaluator(model: onnx.ModelProto, implementation: str) -> ReferenceEvaluator:
    """A ReferenceEvaluator of `model` whose custom nodes run `implementation`."""
    return ReferenceEvaluator(model, new_ops=custom_op_runs(implementation))


@dataclass
class _Segment:
    session: ort.InferenceSession
    inputs: list[str]
    outputs: list[str]


@dataclass
class _CustomStep:
    node: onnx.NodeProto
    contract: OpContract
    attributes: dict


class SplitOrtRunner:
    """Run a graph with ONNX Runtime, its custom nodes computed by `implementation`.

    Args:
        model: the ONNX model (as written to disk: this runner does not modify its nodes).
        implementation: "plugin" (libharmony_cpu_ops.so) or "reference" (`harmony.ops`).
        device: where ONNX Runtime runs the standard nodes ("cpu" or "cuda").
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        implementation: str,
        device: str = "cpu",
    ):
        if implementation not in CUSTOM_NODE_IMPLEMENTATIONS:
            raise ValueError(
                f"implementation must be one of {tuple(CUSTOM_NODE_IMPLEMENTATIONS)}, "
                f"got {implementation!r}"
            )
        self.implementation = implementation
        self.input_names = [value.name for value in model.graph.input]
        self.output_names = [value.name for value in model.graph.output]
        self._steps = list(_partition(model, device))
        # After step i, the values no later step reads are released (bounds peak memory).
        last_read: dict[str, int] = {}
        for index, step in enumerate(self._steps):
            for name in _step_inputs(step):
                last_read[name] = index
        self._release = [set() for _ in self._steps]
        for name, index in last_read.items():
            if name not in self.output_names:
                self._release[index].add(name)

    @property
    def custom_nodes(self) -> list[onnx.NodeProto]:
        return [step.node for step in self._steps if isinstance(step, _CustomStep)]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs of the graph (in graph order) for `feeds` {input name: array}."""
        values = dict(feeds)
        for index, step in enumerate(self._steps):
            if isinstance(step, _CustomStep):
                inputs = [values[name] for name in step.node.input]
                values[step.node.output[0]] = run_custom_node(
                    step.contract, inputs, step.attributes, self.implementation
                )
            else:
                results = step.session.run(step.outputs, {n: values[n] for n in step.inputs})
                values.update(zip(step.outputs, results, strict=True))
            for name in self._release[index]:
                values.pop(name, None)
        return [values[name] for name in self.output_names]


class SessionRunner:
    """Run a graph in one ONNX Runtime session, its custom nodes (if any) computed by the
    plugins' math (`harmony.plugins.ort`: libharmony_ort_ops.so, or onnxruntime-extensions with
    libharmony_cpu_ops.so).

    Args:
        path: the graph file (as written: this runner does not modify it).
        model: the same graph, loaded (for its outputs and custom nodes).
        implementation: what computes the custom nodes; None: `custom_ops_implementation()`.
    """

    def __init__(self, path, model: onnx.ModelProto, implementation: str | None = None):
        self.custom_nodes = [node for node in model.graph.node if contract_of(node) is not None]
        if self.custom_nodes and implementation is None:
            implementation = custom_ops_implementation()
        self.implementation = implementation if self.custom_nodes else None
        self.session = inference_session(
            path,
            custom_ops=bool(self.custom_nodes),
            implementation=self.implementation,
            low_memory=True,
        )
        self.output_names = [value.name for value in model.graph.output]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs of the graph (in graph order) for `feeds` {input name: array}."""
        return self.session.run(self.output_names, feeds)


def verification_runner(path, model: onnx.ModelProto):
    """(runner, what computes its custom nodes, None without them) for checking the written
    graph `path`: the whole graph in one ONNX Runtime session (`SessionRunner`), the custom nodes
    in the plugins' math, not `harmony.ops`."""
    runner = SessionRunner(path, model)
    if runner.implementation is None:
        return runner, None
    return runner, f"{runner.implementation}, the whole graph in one ONNX Runtime session"


def _step_inputs(step) -> list[str]:
    return list(step.node.input) if isinstance(step, _CustomStep) else list(step.inputs)


def _partition(model: onnx.ModelProto, device: str):
    """Yield ORT segments and custom steps in execution order."""
    graph = model.graph
    if not any(node.domain == ONNX_DOMAIN for node in graph.node):
        yield _segment(model, list(graph.node), set(), device)
        return
    types = _value_types(model)
    graph_outputs = {value.name for value in graph.output}
    last_consumer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            last_consumer[name] = index
    pending: list[onnx.NodeProto] = []
    for index, node in enumerate(graph.node):
        contract = contract_of(node)
        if contract is None:
            pending.append(node)
            continue
        if pending:
            needed = {n for n, last in last_consumer.items() if last >= index} | graph_outputs
            yield _segment(model, pending, needed, device, types)
            pending = []
        yield _CustomStep(node, contract, op_attributes(node, contract))
    if pending:
        yield _segment(model, pending, graph_outputs, device, types)


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every named value, after shape inference.

    ONNX shape inference knows nothing of the custom nodes; their outputs take the type of
    their first input (the contract's single type parameter T) and inference is re-run so the
    types flow on past them.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for _ in range(1 + sum(node.domain == ONNX_DOMAIN for node in model.graph.node)):
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        types = _known_types(model.graph)
        added = False
        for node in model.graph.node:
            if node.domain != ONNX_DOMAIN or node.input[0] not in types:
                continue
            for name in node.output:
                if name not in types:
                    model.graph.value_info.append(
                        onnx.helper.make_tensor_value_info(name, types[node.input[0]], None)
                    )
                    added = True
        if not added:
            break
    return types


def _known_types(graph: onnx.GraphProto) -> dict[str, int]:
    types = {}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type:
            types[value.name] = value.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    return types


def _segment(model, nodes, needed, device, types=None) -> _Segment:
    graph = model.graph
    if types is None:  # the whole graph is one segment
        sub = model
        inputs = [value.name for value in graph.input]
        outputs = [value.name for value in graph.output]
    else:
        produced = {name for node in nodes for name in node.output if name}
        consumed = [name for node in nodes for name in node.input if name]
        initializers = {init.name: init for init in graph.initializer}
        inputs = list(
            dict.fromkeys(n for n in consumed if n not in produced and n not in initializers)
        )
        outputs = [
            name for node in nodes for name in node.output if name in produced and name in needed
        ]
        outputs = list(dict.fromkeys(outputs))
        sub_graph = onnx.helper.make_graph(
            nodes,
            f"{graph.name}_segment",
            [_untyped_shape(name, types) for name in inputs],
            [_untyped_shape(name, types) for name in outputs],
            initializer=[initializers[n] for n in dict.fromkeys(consumed) if n in initializers],
        )
        opsets = [imp for imp in model.opset_import if imp.domain != ONNX_DOMAIN]
        sub = onnx.helper.make_model(sub_graph, opset_imports=opsets, ir_version=model.ir_version)
        sub.functions.extend(model.functions)
    # Memory of a large run (the ORT KNN's N x N matrix) is given back.
    session = inference_session(sub.SerializeToString(), device, low_memory=True)
    return _Segment(session, inputs, outputs)


def _untyped_shape(name: str, types: dict[str, int]) -> onnx.ValueInfoProto:
    if name not in types:
        raise ValueError(f"cannot split the graph: no element type known for value {name!r}")
    return onnx.helper.make_tensor_value_info(name, types[name], None)
