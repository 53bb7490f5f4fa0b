"""The plugin library's contract header and READMEs spell exactly what harmony.contract says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harmony import contract

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DIR = REPO_ROOT / "plugins"
HEADER = PLUGINS_DIR / "common" / "harmonyContract.h"

# C++ identifiers of each op in harmonyContract.h.
OP_PREFIX = {contract.CASCADED_LUT: "kCascadedLut", contract.KNN_TOPK_FUSION: "kKnnTopkFusion"}


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
    assert c["kOnnxDomain"] == contract.ONNX_DOMAIN
    assert c["kOnnxDomainVersion"] == contract.ONNX_DOMAIN_VERSION
    assert c["kGraphInputs"] == contract.GRAPH_INPUTS
    assert c["kGraphOutput"] == contract.GRAPH_OUTPUT
    assert c["kEngineManifestSchema"] == contract.ENGINE_MANIFEST_SCHEMA
    assert c["kEngineManifestSuffix"] == contract.ENGINE_MANIFEST_SUFFIX
    assert c["kPluginNamespace"] == contract.PLUGIN_NAMESPACE
    assert c["kPluginVersion"] == contract.PLUGIN_VERSION
    assert c["kPluginVersionAttr"] == contract.PLUGIN_VERSION_ATTR
    assert c["kPluginNamespaceAttr"] == contract.PLUGIN_NAMESPACE_ATTR
    assert c["kLutKnots"] == contract.LUT_KNOTS
    assert c["kLutCurvePoints"] == contract.LUT_CURVE_POINTS
    assert c["kLutChannels"] == contract.LUT_CHANNELS
    assert set(contract.OPS) == set(OP_PREFIX)
    for op in contract.OPS:
        prefix = OP_PREFIX[op]
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


# Names of the contract that only harmonyContract.h and harmony/contract.py may spell.
CONTRACT_NAMES = (
    *(op.name for op in contract.OPS),
    *(op.torch_op for op in contract.OPS),
    contract.PLUGIN_VERSION_ATTR,
    contract.PLUGIN_NAMESPACE_ATTR,
    contract.ENGINE_MANIFEST_SCHEMA,
)
CONTRACT_SOURCES = {HEADER, REPO_ROOT / "src" / "harmony" / "contract.py"}
CODE_FOLDERS = ("src", "plugins", "scripts", "benchmarks", "tests", "examples")
CPP_SUFFIXES = {".h", ".cpp", ".cu"}


def _code_files(suffixes: set[str]) -> list[Path]:
    files = []
    for folder in CODE_FOLDERS:
        files += [
            path
            for path in (REPO_ROOT / folder).rglob("*")
            if path.suffix in suffixes and path not in CONTRACT_SOURCES
        ]
    return files


def _cpp_string_literals(text: str) -> list[str]:
    """The string literals of C++/CUDA source, comments and character literals skipped."""
    literals, i = [], 0
    while i < len(text):
        if text.startswith("//", i):
            i = text.find("\n", i) % (len(text) + 1)
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        elif text[i] in "\"'":
            quote, j = text[i], i + 1
            while text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            if quote == '"':
                literals.append(text[i + 1 : j])
            i = j + 1
        else:
            i += 1
    return literals


def _python_string_literals(text: str) -> list[str]:
    """The string constants of Python source (f-string parts included), docstrings excluded."""
    tree = ast.parse(text)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _spelled(literals: list[str]) -> set[str]:
    return {
        name
        for name in CONTRACT_NAMES
        for literal in literals
        if re.search(rf"(?<![\w:]){re.escape(name)}(?![\w])", literal)
    }


def test_the_lexers_find_names_inside_longer_literals():
    """The scanner itself: a name inside a message is found, comments and docstrings are not."""
    name = contract.KNN_TOPK_FUSION.name
    cpp = f'// {name} in a comment\nlog("{name}::enqueue failed", \'"\');'
    python = f'"""{name} in a docstring."""\nmessage = f"{{x}} {name}: k must be > 0"\n'
    assert _spelled(_cpp_string_literals(cpp)) == {name}
    assert _spelled(_python_string_literals(python)) == {name}
    assert _spelled([f"harmonyCuda{name}Float"]) == set()  # a C symbol, not the op's name


@pytest.mark.parametrize("language", ["C++", "Python"])
def test_contract_names_are_spelled_only_in_the_contract(language):
    """Op names, custom-op names and the parser's attribute names appear in no string literal
    outside harmonyContract.h and harmony/contract.py (docstrings and comments aside)."""
    if language == "C++":
        files, literals_of = _code_files(CPP_SUFFIXES), _cpp_string_literals
    else:
        files, literals_of = _code_files({".py"}), _python_string_literals
    offenders = {
        str(path.relative_to(REPO_ROOT)): spelled
        for path in files
        if (spelled := _spelled(literals_of(path.read_text())))
    }
    assert not offenders, f"spell these through the contract instead: {offenders}"


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
