"""INT8 the TensorRT 11 way: calibration inputs and explicit Q/DQ graphs.

    from harmony.calibration import CalibrationSettings, calibration_set, quantized_graph
    graph, layers = quantized_graph(fp16_graph, calibration_set(CalibrationSettings()))

`data.py` makes the calibration inputs (demo composites of the fit photographs, or an
iHarmony4-layout folder) at one resolution; `quantize.py` calibrates the graph in ONNX Runtime on
the CPU and writes the Q/DQ nodes TensorRT builds INT8 layers from. `harmony.export` runs both
for `harmony-export --int8` and gates the result (`harmony.export.verify`).
"""

from harmony.calibration.data import CalibrationSet, CalibrationSettings, calibration_set
from harmony.calibration.quantize import QuantizedLayer, quantized_graph, weighted_layers

__all__ = [
    "CalibrationSet",
    "CalibrationSettings",
    "QuantizedLayer",
    "calibration_set",
    "quantized_graph",
    "weighted_layers",
]
