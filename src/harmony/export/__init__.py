"""Checkpoint -> validated ONNX graph for TensorRT (custom nodes) or ONNX Runtime (standard ops).

The exporter is `harmony.export.exporter.onnx_from_checkpoint`; the modules around it each do one
part: `graph` traces and lowers a model (`lowering`, `custom_nodes`, `precision`), `metadata`
writes and reads a graph's provenance (it imports onnx only, so the runtime reads graphs without
torch), `reference` runs TensorRT-target graphs on the CPU and `verify` checks a written graph.
This package's `__init__` imports nothing, so reading a graph's metadata loads no exporter.
"""
