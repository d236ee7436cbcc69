"""The package's rooms import one way only: a module may import its own room and the rooms below it.

Read from the source with `ast` (imports inside functions count too), so a new upward import fails
here before it becomes a cycle.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sweep"

# lowest first; a module may import only from its own layer or a lower one
LAYERS = [
    (
        "sweep.errors",
        "sweep.vocabulary",
        "sweep.version",
        "sweep.validate",
        "sweep.io",
        "sweep.io.files",
        "sweep.io.progress",
        "sweep.io.memory",
        "sweep.distributed",
    ),
    ("sweep.physics",),
    ("sweep.fleet",),
    ("sweep.catalogs",),
    ("sweep.calibration",),
    ("sweep.grid",),
    ("sweep.uncertainty",),
    # NetCDF, Zarr; tables, CSV; figures
    ("sweep.io.output", "sweep.io.stream", "sweep.io.tabular", "sweep.io.plotting"),
    ("sweep.api",),
    ("sweep.optimizer",),
    ("sweep.reproduce", "sweep.io.signals"),
    ("sweep.cli", "sweep.__main__", "sweep"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    """The layer of module `name`: the longest room prefix that matches it."""
    best = None
    for i, rooms in enumerate(LAYERS):
        for room in rooms:
            if (name == room or name.startswith(room + ".")) and (best is None or len(room) > len(best[1])):
                best = (i, room)
    assert best is not None, f"{name} belongs to no room of LAYERS"
    return best[0]


def imported(tree: ast.AST) -> set:
    """Every sweep module a module imports (`from sweep import x` counts as sweep.x)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "sweep"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sweep":
            if node.module == "sweep":
                out |= {f"sweep.{a.name}" for a in node.names if not a.name.startswith("__")}
            else:
                out.add(node.module)
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_go_down_only(path):
    source = module_name(path)
    for target in imported(ast.parse(path.read_text())):
        assert layer(target) <= layer(source), (
            f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
        )


def test_every_module_is_in_a_room():
    assert len(MODULES) > 30
    for path in MODULES:
        layer(module_name(path))


def test_the_checker_catches_an_upward_import():
    tree = ast.parse("from sweep.api import run\nfrom sweep import grid")
    assert imported(tree) == {"sweep.api", "sweep.grid"}
    assert layer("sweep.physics.roofline") < layer("sweep.api")
