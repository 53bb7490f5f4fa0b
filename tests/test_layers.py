"""The house in layers (ARCHITECTURE.md): every import in src/harmony points down the layer list
or stays in its layer without a circle, imports inside functions included; and the light entry
points import neither torch nor onnxscript."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

SOURCE = REPO_ROOT / "src" / "harmony"
# Lowest first. A module belongs to the first layer naming it or a package above it.
LAYERS = (
    (
        "harmony.version",
        "harmony.errors",
        "harmony.contract",
        "harmony.custom_nodes",
        "harmony.files",
        "harmony.quiet",
        "harmony.metrics",
        "harmony.memory_model",
        "harmony.quality",
    ),
    ("harmony.ops",),
    ("harmony.plugins",),
    ("harmony.dispatch",),
    ("harmony.models", "harmony.data", "harmony.weights"),
    ("harmony.calibration", "harmony.export"),
    ("harmony.engines",),
    ("harmony.runtime",),
    ("harmony.artifacts",),
    (
        "harmony.profiling",
        "harmony.fitting",
        "harmony.quickstart",
        "harmony.serving",
        "harmony.batch",
        "harmony.polygraphy_ext",
    ),
    ("harmony.cli", "harmony.__main__", "harmony"),
)


def module_names() -> dict[str, Path]:
    """Every module of src/harmony by dotted name (a package by its own name)."""
    names = {}
    for path in SOURCE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The harmony modules `name` imports anywhere in its file: at the top, inside functions
    and under `if TYPE_CHECKING:` alike (`from harmony.x import y` names module harmony.x.y
    where that is a module, else harmony.x)."""
    targets = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                targets.add(candidate if candidate in known else base)
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def named_modules(path: Path, known: dict[str, Path]) -> set[str]:
    """The harmony modules `path` names in strings ("harmony.runtime.ort_runner:OrtRunner"), as
    a registry does that imports them when asked (`Backend.runner_class`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            module = node.value.partition(":")[0]
            if module in known and module != "harmony":
                found.add(module)
    return found


def layer_of(name: str) -> int:
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if name == prefix or (prefix != "harmony" and name.startswith(prefix + ".")):
                return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS and to ARCHITECTURE.md")


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    known = module_names()
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def test_every_import_points_down_or_across_its_layer(import_graph):
    """Modules named in strings count too; they are left out of the circle test below: a
    registry resolves them when asked, after every module involved has loaded."""
    known = module_names()
    upward = [
        f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
        for name, targets in sorted(import_graph.items())
        for target in sorted(targets | named_modules(known[name], known))
        if layer_of(target) > layer_of(name)
    ]
    assert not upward, "imports pointing up:\n" + "\n".join(upward)


def test_no_import_circle(import_graph):
    circles = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(import_graph[name]):
            if state.get(target) == "open":
                circles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(import_graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_walk_sees_imports_inside_functions(import_graph):
    """The AST walk is what the two tests above rely on: `harmony.quickstart` imports the
    exporter only inside a function, and the walk must see that edge."""
    assert "harmony.export.exporter" in import_graph["harmony.quickstart"]


@pytest.mark.parametrize(
    "code",
    [
        "import harmony.runtime.backends",
        "import harmony.cli.main",
        "from harmony.export.metadata import read_graph_metadata; read_graph_metadata(PATH)",
        "from harmony.runtime.sources import describe; describe(PATH)",
    ],
)
def test_light_entry_points_import_neither_torch_nor_onnxscript(code, exported):
    graph, _ = exported("hdnet-lite", "ort", "fp32")
    probe = (
        f"PATH = {str(graph)!r}\n{code}\nimport sys\n"
        "print(sorted(m for m in ('torch', 'onnxscript') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
