"""The op contract shared by the exporter, the plugin library and the runtime.

Every string that crosses the Python / ONNX / TensorRT boundary is spelled here once:
op types, the ONNX domain, plugin name/version/namespace, input/output names and attribute
names with their types, defaults and allowed ranges. The plugin library's C++ sources and
README and the exporter's node attributes are tested against this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ONNX_DOMAIN = "harmony"
ONNX_DOMAIN_VERSION = 1
PLUGIN_NAMESPACE = "harmony"
PLUGIN_VERSION = "1"

# Attribute names TensorRT's ONNX parser reads from a custom node to find the plugin creator.
PLUGIN_VERSION_ATTR = "plugin_version"
PLUGIN_NAMESPACE_ATTR = "plugin_namespace"

# Names of the graph inputs/outputs of every exported harmonization graph.
GRAPH_INPUTS = ("image", "mask")
GRAPH_OUTPUT = "harmonized"

# Node metadata the exporter keeps: the module scopes a node came from (stage attribution).
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


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
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: tuple[IntAttribute, ...] = field(default=())

    @property
    def version(self) -> str:
        return PLUGIN_VERSION

    @property
    def namespace(self) -> str:
        return PLUGIN_NAMESPACE

    def attribute(self, name: str) -> IntAttribute:
        for attr in self.attributes:
            if attr.name == name:
                return attr
        raise KeyError(f"op {self.name} has no attribute '{name}'")


CASCADED_LUT = OpContract(
    name="CascadedLut3D",
    inputs=("image", "mask", "knots", "curve"),
    outputs=("harmonized",),
)

KNN_TOPK_FUSION = OpContract(
    name="KnnTopkFusion",
    inputs=("features", "mask"),
    outputs=("fused",),
    attributes=(IntAttribute("k", default=1, minimum=1, maximum=32),),
)

OPS = (CASCADED_LUT, KNN_TOPK_FUSION)

# Fixed sizes of the AICT LUT maps (the plugin checks them at build time).
LUT_KNOTS = 9  # zero-prefixed cumulative sum of 8 softmaxed intervals
LUT_CURVE_POINTS = 8
LUT_CHANNELS = 3
