"""The contract shared by the models, the exporter, the plugin library and the runtime.

Every string that crosses the Python / ONNX / TensorRT boundary is spelled here once: op types
(= TensorRT plugin names), the ONNX domain, plugin version/namespace, the PyTorch custom-op
names, input/output names and attribute names with their defaults and allowed ranges. The plugin
library's contract header (`plugins/common/harmonyContract.h`) mirrors it and
`tests/plugins/test_plugin_contract.py` fails where any other source spells one of these names.

It also holds the project's vocabulary that commands and libraries share: architectures,
precisions, export targets, fused-op implementations, the smallest image side and the default
resolutions. This module imports nothing heavy, so command-line parsing can use it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from harmony.errors import HarmonyError

ONNX_DOMAIN = "harmony"
ONNX_DOMAIN_VERSION = 1
PLUGIN_NAMESPACE = "harmony"
PLUGIN_VERSION = "1"

# Attribute names TensorRT's ONNX parser reads from a custom node to find the plugin creator.
PLUGIN_VERSION_ATTR = "plugin_version"
PLUGIN_NAMESPACE_ATTR = "plugin_namespace"

# PyTorch custom operators (torch.library) of the fused ops: `harmony::<OpContract.torch_name>`.
TORCH_NAMESPACE = "harmony"

# Names of the graph inputs/outputs of every exported harmonization graph.
GRAPH_INPUTS = ("image", "mask")
GRAPH_OUTPUT = "harmonized"

# The JSON manifest written next to every engine (`MODEL.engine` + suffix) and its schema
# (`harmony.engines.manifest`; the C++ example harmonize_trt reads it too).
ENGINE_MANIFEST_SCHEMA = "harmony-engine-manifest/2"
ENGINE_MANIFEST_SUFFIX = ".json"
# The file names of engines (what harmony build writes and the trt backend runs).
ENGINE_SUFFIXES = (".engine", ".plan")

# Node metadata the exporter keeps: the module scopes a node came from (stage attribution, the
# INT8 layer list), a Python literal list of names ("", "model", "model.encoder", ...).
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def network_module(node) -> str | None:
    """The module of the network (the pipeline's `model`) an ONNX node was traced in, from its
    `NAME_SCOPES_KEY`: e.g. "model_layer8.1", "" for the network's own forward, None for a node
    outside the network or without scopes. The network's scope is "model", or "pipeline.model"
    inside the float16-I/O wrapper."""
    value = next((p.value for p in node.metadata_props if p.key == NAME_SCOPES_KEY), "")
    try:
        names = ast.literal_eval(value) if value else []
    except (ValueError, SyntaxError):
        return None
    names = [name for name in names if isinstance(name, str)] if isinstance(names, list) else []
    network = next((name for name in names if name.split(".")[-1] == "model"), None)
    if network is None:
        return None
    inside = [name[len(network) + 1 :] for name in names if name.startswith(network + ".")]
    return inside[-1] if inside else ""


@dataclass(frozen=True)
class IntAttribute:
    """An integer attribute of a custom op: name, default and inclusive range."""

    name: str
    default: int
    minimum: int
    maximum: int

    def validate(self, value: int) -> int:
        """Return `value` as int, or raise ValueError naming the allowed range."""
        if isinstance(value, bool) or int(value) != value:
            raise ValueError(f"attribute '{self.name}' must be an integer, got {value!r}")
        if not self.minimum <= value <= self.maximum:
            raise ValueError(
                f"attribute '{self.name}' must be in [{self.minimum}, {self.maximum}], got {value}"
            )
        return int(value)


@dataclass(frozen=True)
class OpContract:
    """One fused op: its ONNX op type (= TensorRT plugin name), tensors and attributes."""

    name: str
    torch_name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: tuple[IntAttribute, ...] = field(default=())

    @property
    def version(self) -> str:
        return PLUGIN_VERSION

    @property
    def namespace(self) -> str:
        return PLUGIN_NAMESPACE

    @property
    def torch_op(self) -> str:
        """Qualified name of the PyTorch custom operator, e.g. `harmony::cascaded_lut`."""
        return f"{TORCH_NAMESPACE}::{self.torch_name}"

    def attribute(self, name: str) -> IntAttribute:
        for attr in self.attributes:
            if attr.name == name:
                return attr
        raise KeyError(f"op {self.name} has no attribute '{name}'")


CASCADED_LUT = OpContract(
    name="CascadedLut3D",
    torch_name="cascaded_lut",
    inputs=("image", "mask", "knots", "curve"),
    outputs=("harmonized",),
)

KNN_TOPK_FUSION = OpContract(
    name="KnnTopkFusion",
    torch_name="knn_topk_fusion",
    inputs=("features", "mask"),
    outputs=("fused",),
    attributes=(IntAttribute("k", default=1, minimum=1, maximum=32),),
)

OPS = (CASCADED_LUT, KNN_TOPK_FUSION)

# Fixed sizes of the AICT LUT maps (the plugin checks them at build time).
LUT_KNOTS = 9  # zero-prefixed cumulative sum of 8 softmaxed intervals
LUT_CURVE_POINTS = 8
LUT_CHANNELS = 3

# --- vocabulary shared by commands and libraries ---------------------------------------------

ARCHS = ("aict", "hdnet", "hdnet-lite")
# Graph and engine precisions. "int8" is an explicit Q/DQ graph (`harmony.calibration`): INT8
# convolutions and matrix products with weights, FP16 everywhere else (FP32 islands as in fp16).
FLOAT_PRECISIONS = ("fp32", "fp16")
PRECISIONS = (*FLOAT_PRECISIONS, "int8")
# The harmony-export option that makes a graph of each precision.
PRECISION_FLAGS = {"fp32": "", "fp16": " --fp16", "int8": " --int8"}


def check_precision(precision: str, what: str) -> str:
    """`precision` if it is one of PRECISIONS; otherwise HarmonyError saying that `what` (e.g.
    "the graph x.onnx") declares an unknown precision."""
    if precision not in PRECISIONS:
        raise HarmonyError(
            f"{what} declares precision '{precision}'; expected one of {', '.join(PRECISIONS)}"
        )
    return precision


# Export targets: "trt" keeps the fused ops as the custom nodes above, "ort" writes them with
# standard ONNX operators.
TARGETS = ("trt", "ort")
# ONNX opsets the exporter writes (the dynamo exporter's minimum is 18).
DEFAULT_OPSET = 20
OPSET_RANGE = (18, 23)
# Implementations of the fused ops in PyTorch: the `harmony.ops` reference (any device) or the
# plugin kernels of libharmony_cuda_ops.so (CUDA only).
KERNELS = ("reference", "fused")
# The smallest image side the pipeline accepts (HDNet pads up to its multiple of 8).
MIN_SIDE = 2
# The resolutions the project is measured at: harmony-bench's default and the default engine
# profile (opt = the first, max = the largest).
DEFAULT_RESOLUTIONS = ((1024, 1024), (2048, 2048))
# INT8 calibration (`harmony.calibration`): composites by default (about 10 s for HDNet-lite at
# 1024^2 on 2 CPU cores) and ONNX Runtime's range methods, the first the default.
DEFAULT_CALIBRATION_COUNT = 8
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Held-out composites (`harmony.data.demo.held_out_composites`) that the export verification
# and harmony-bench score fitted weights on: both also verify or time, so a few must do.
QUALITY_CHECK_IMAGES = 2
