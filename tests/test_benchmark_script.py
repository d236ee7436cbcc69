"""scripts/benchmark.py: sections over scripts/bench/, --only parsing, report lines, function length."""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import pytest

SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_entry", SCRIPTS / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code_lines(node, source_lines) -> int:
    """Lines of a function's body, less blank lines, comment-only lines and its docstring."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        doc = set(range(body[0].lineno, body[0].end_lineno + 1))
    else:
        doc = set()
    count = 0
    for n in range(node.lineno, node.end_lineno + 1):
        text = source_lines[n - 1].strip()
        if text and not text.startswith("#") and n not in doc:
            count += 1
    return count


def test_benchmark_only_parses_sections_and_rejects_unknown_names(bench):
    args = bench.build_parser().parse_args(["--only", "scale,grid"])
    assert bench.selected(args) == ["grid", "scale"]
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--only", "fleet"])


def test_benchmark_old_only_flags_select_the_same_sections(bench):
    parse = bench.build_parser().parse_args
    assert bench.selected(parse([])) == ["grid", "uncertainty", "scale", "stream"]
    assert bench.selected(parse(["--only-scale"])) == ["scale"]
    assert bench.selected(parse(["--only-uncertainty", "--only-scale"])) == ["uncertainty", "scale"]
    assert bench.selected(parse(["--only-stream"])) == ["stream"]


def test_benchmark_every_section_method_is_runnable_in_a_child(bench):
    for methods in bench.SECTIONS.values():
        for m in methods:
            assert m in bench.METHODS or m in bench.ENV


def test_benchmark_grid_report_keeps_row_names_and_ratios(bench):
    r = {"points": 100, "seconds": 1.0, "peak_rss_mb": 10.0}
    results = {
        "machine": {"cpus": 2, "processor": "x", "jax": "0", "backend": "cpu", "device": "1 × cpu"},
        "python": {**r, "points": 10},
        "numpy": {**r, "compute_s": 0.5},
        "sweep": {**r, "seconds": 0.1, "first_s": 2.0, "bytes_per_point": 49.0},
        "sweep_fresh": {**r, "seconds": 0.2},
        "kernel": {"points": 100, "seconds": 0.01},
        "sweep1": {**r, "seconds": 0.05},
    }
    args = bench.build_parser().parse_args(["--contexts", "5", "--batches", "10"])
    text = "\n".join(bench.report(results, args))
    for row in (
        "(a) Python per-point loop*",
        "(b) NumPy, materialised inputs",
        "(c) sweep.run",
        "    compiled kernel alone",
        "(c') sweep.run, one output",
    ):
        assert row in text
    assert "sweep / NumPy: 10.0× (vs NumPy compute only: 5.0×); sweep / Python loop: 100×" in text


def test_no_function_in_scripts_is_over_80_code_lines():
    long = []
    for path in sorted(SCRIPTS.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _code_lines(node, lines) > 80:
                long.append(f"{path.name}:{node.name}")
    assert not long, long
