"""Shared pieces of the REPORT.md sections: the paper's printed targets, Markdown helpers, grid runs."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from sweep.api import run
from sweep.grid import spec as _grid

FLEET_PAIRS = (("azure", 4096), ("lmsys", 1536))  # the paper's B_short per workload
TOPOLOGY_LABELS = {"homogeneous": "homogeneous", "pool": "pool routing", "fleetopt": "FleetOpt"}


def paper_targets() -> dict:
    """The paper's printed values (sweep/data/paper_targets.toml), shown beside ours."""
    return tomllib.loads(resources.files("sweep").joinpath("data/paper_targets.toml").read_text())


def _decimals(printed: str) -> int:
    return len(printed.split(".")[1]) if "." in printed else 0


def fmt_like(value: float, printed) -> str:
    """Our value with as many decimals as the paper printed."""
    return f"{value:.{_decimals(str(printed))}f}"


def rel_err(ours: float, paper) -> str:
    """(ours − paper) / paper in percent, signed, on our unrounded value."""
    return f"{100 * (ours - float(paper)) / float(paper):+.2f} %"


def md_table(header: list, rows: list) -> list:
    """A Markdown table's lines: header, rule, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def section(title: str, *blocks: list) -> list:
    """A REPORT.md section: a `##` title, then each block of lines followed by a blank line."""
    return [f"## {title}", "", *(line for block in blocks for line in (*block, ""))]


def run_grid(path: Path, out: Path, convention: str | None = None):
    """Evaluate grid file `path` (in `convention`, else its own) and write `out`/<stem>[_convention].nc."""
    spec = _grid.load(path)
    suffix = ""
    if convention is not None and convention != spec.convention:
        spec.convention = convention
        suffix = f"_{convention}"
    target = out / f"{path.stem}{suffix}.nc"
    return run(spec, out=target, command=f"sweep reproduce ({path.name}, {spec.convention} convention)")
