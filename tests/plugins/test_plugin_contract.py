"""The plugin library's contract header and READMEs spell exactly what harmony.contract says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harmony import contract

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
HEADER = PLUGINS_DIR / "common" / "harmonyContract.h"

# C++ identifiers of each op in harmonyContract.h.
OP_PREFIX = {"CascadedLut3D": "kCascadedLut", "KnnTopkFusion": "kKnnTopkFusion"}


def _folder(op: contract.OpContract) -> Path:
    return PLUGINS_DIR / f"{op.name[0].lower()}{op.name[1:]}Plugin"


def _header_constants() -> dict[str, object]:
    text = HEADER.read_text()
    constants: dict[str, object] = {}
    for name, value in re.findall(r'constexpr char const\* (\w+)\{"([^"]*)"\};', text):
        constants[name] = value
    for name, values in re.findall(r"constexpr char const\* (\w+)\[\]\{([^}]*)\};", text):
        constants[name] = tuple(re.findall(r'"([^"]*)"', values))
    for name, value in re.findall(r"constexpr int32_t (\w+)\{(-?\d+)\};", text):
        constants[name] = int(value)
    return constants


def test_header_matches_contract():
    c = _header_constants()
    assert c["kPluginNamespace"] == contract.PLUGIN_NAMESPACE
    assert c["kPluginVersion"] == contract.PLUGIN_VERSION
    assert c["kLutKnots"] == contract.LUT_KNOTS
    assert c["kLutCurvePoints"] == contract.LUT_CURVE_POINTS
    assert c["kLutChannels"] == contract.LUT_CHANNELS
    assert {op.name for op in contract.OPS} == set(OP_PREFIX)
    for op in contract.OPS:
        prefix = OP_PREFIX[op.name]
        assert c[f"{prefix}Name"] == op.name
        assert c[f"{prefix}Inputs"] == op.inputs
        assert c[f"{prefix}Outputs"] == op.outputs
        assert c[f"{prefix}NbInputs"] == len(op.inputs)
        assert c[f"{prefix}NbOutputs"] == len(op.outputs)
    assert contract.CASCADED_LUT.attributes == ()
    (k,) = contract.KNN_TOPK_FUSION.attributes
    assert (c["kKnnAttrK"], c["kKnnKDefault"], c["kKnnKMin"], c["kKnnKMax"]) == (
        k.name,
        k.default,
        k.minimum,
        k.maximum,
    )


def test_plugin_sources_spell_names_only_through_the_header():
    """Op and attribute names appear as string literals in harmonyContract.h only."""
    spelled = {op.name for op in contract.OPS} | {
        a.name for op in contract.OPS for a in op.attributes
    }
    for path in PLUGINS_DIR.rglob("*"):
        if path.suffix not in {".h", ".cpp", ".cu"} or path == HEADER:
            continue
        literals = set(re.findall(r'"((?:[^"\\\n]|\\.)*)"', path.read_text()))
        assert not literals & spelled, f"{path} spells {literals & spelled}; use harmonyContract.h"


def _table(text: str, section: str) -> list[list[str]]:
    match = re.search(rf"^## {section}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README has no '## {section}' section"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    cells = [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]
    return [row for row in cells[2:]]  # skip header and separator


@pytest.mark.parametrize("op", contract.OPS, ids=lambda op: op.name)
def test_readme_matches_contract(op):
    readme = _folder(op) / "README.md"
    text = readme.read_text()
    assert text.startswith(f"# {op.name}\n")
    facts = dict(re.findall(r"^\| plugin (name|version|namespace) \| `([^`]*)` \|$", text, re.M))
    assert facts == {"name": op.name, "version": op.version, "namespace": op.namespace}
    assert [(row[0], row[1]) for row in _table(text, "Inputs")] == [
        (str(i), name) for i, name in enumerate(op.inputs)
    ]
    assert [(row[0], row[1]) for row in _table(text, "Outputs")] == [
        (str(i), name) for i, name in enumerate(op.outputs)
    ]
    attributes = [row for row in _table(text, "Attributes") if row and row[0]]
    assert [(row[0], row[2], row[3]) for row in attributes] == [
        (a.name, str(a.default), f"[{a.minimum}, {a.maximum}]") for a in op.attributes
    ]


def test_every_plugin_folder_has_its_files():
    for op in contract.OPS:
        folder = _folder(op)
        stem = folder.name.removesuffix("Plugin")
        for name in (
            f"{stem}Plugin.h",
            f"{stem}Plugin.cpp",
            f"{stem}Kernel.h",
            f"{stem}Kernel.cu",
            f"{stem}Math.h",
            "README.md",
            "CMakeLists.txt",
        ):
            assert (folder / name).is_file(), f"missing {folder / name}"
