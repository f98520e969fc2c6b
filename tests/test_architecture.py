"""The package's folders are its layers: imports only go down, never in a circle, never hidden inside a function.

Layers, bottom to top: ``checks`` (argument checks), ``reading`` (model -> representation), ``engine``
(representation -> partition), the tools ``training``, ``pruning``, ``early_bird``, then ``data``, ``plot``,
``pages`` (what only the book needs) and ``experiments`` (one figure family each; the library never imports it).
The package's face (``spline_utils/__init__.py``) sits above all of them and nothing inside imports it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spline_utils"
LAYERS = ["checks", "reading", "engine", "training", "pruning", "early_bird", "data", "plot", "pages", "experiments"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of a module ``spline_utils.<layer>...``; ``None`` for the face itself."""
    parts = module.split(".")
    return None if len(parts) == 1 else LAYERS.index(parts[1])


def package_imports(path: Path) -> list[tuple[str, bool]]:
    """Every ``spline_utils`` module that ``path`` imports, and whether the import is at the module's top level."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "spline_utils":
            found += [(f"{node.module}.{alias.name}", id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the package imports by absolute name")
        elif isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names
                      if alias.name.split(".")[0] == "spline_utils"]
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
EDGES = {name: package_imports(path) for name, path in MODULES.items()}


def resolve(target: str) -> str:
    """An imported name as the module that defines it (``spline_utils.plot`` the face of ``plot``: a module too)."""
    return target if target in MODULES else target.rsplit(".", 1)[0]


def test_every_folder_is_a_known_layer():
    folders = {path.parent.name for path in PACKAGE.rglob("*.py") if path.parent != PACKAGE}
    files = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert folders | files <= set(LAYERS), f"not a layer: {sorted((folders | files) - set(LAYERS))}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    if layer_of(module) is None:
        return
    for target, _ in EDGES[module]:
        target = resolve(target)
        assert layer_of(target) is not None, f"{module} imports the package's face ({target}); import the layer"
        assert layer_of(target) <= layer_of(module), (
            f"{module} (layer {LAYERS[layer_of(module)]}) imports {target} (layer {LAYERS[layer_of(target)]}), "
            "which sits above it")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_package_import_inside_a_function(module):
    hidden = [target for target, top_level in EDGES[module] if not top_level]
    assert not hidden, f"{module} imports {hidden} inside a function (a cycle dodged, or a layer crossed late)"


def test_no_import_cycles():
    graph = {module: {resolve(target) for target, _ in edges} for module, edges in EDGES.items()}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(module, trail):
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(target):] + [target]))
            if target not in state:
                visit(target, trail + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_checks_fail_on_a_bad_house(tmp_path):
    """The rules above catch an upward import, a hidden import and a cycle (so they can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from spline_utils.plot import drawing\n\ndef f():\n    from spline_utils.engine import partition\n")
    edges = package_imports(bad)
    assert ("spline_utils.plot.drawing", True) in edges and ("spline_utils.engine.partition", False) in edges
    assert layer_of(resolve("spline_utils.plot.drawing")) > layer_of("spline_utils.engine.partition")
