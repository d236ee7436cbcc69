"""No function in `sweep/` or `scripts/` is longer than a screen: at most 80 code lines.

Code lines are the lines of a function's source that are not blank, not comments and not its
docstring (nested functions count towards their parent too). Read with `ast`, so the count does not
depend on formatting tricks beyond line breaks.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 80
SOURCES = sorted([*(ROOT / "sweep").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])


def code_lines(source: str, node: ast.AST) -> int:
    """Lines of `node` that hold code: not blank, not a comment, not the docstring."""
    docstring = set()
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            docstring = set(range(body[0].lineno, body[0].end_lineno + 1))
    lines = source.splitlines()[node.lineno - 1 : node.end_lineno]
    return sum(
        1
        for number, line in enumerate(lines, start=node.lineno)
        if line.strip() and not line.strip().startswith("#") and number not in docstring
    )


def long_functions(source: str, limit: int = LIMIT) -> list:
    """(name, first line, code lines) of every function in `source` over `limit` code lines."""
    tree = ast.parse(source)
    return [
        (node.name, node.lineno, n)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (n := code_lines(source, node)) > limit
    ]


def test_no_function_is_over_the_limit():
    found = [
        f"{path.relative_to(ROOT)}:{line} {name} ({n} code lines)"
        for path in SOURCES
        for name, line, n in long_functions(path.read_text())
    ]
    assert not found, f"functions over {LIMIT} code lines:\n" + "\n".join(found)


def test_the_count_skips_blank_lines_comments_and_the_docstring():
    source = 'def f():\n    """Doc.\n\n    More.\n    """\n    # a comment\n\n    x = 1\n    return x\n'
    assert code_lines(source, ast.parse(source).body[0]) == 3  # def, x = 1, return


@pytest.mark.parametrize("n, expected", [(LIMIT - 1, []), (LIMIT, [])])
def test_a_function_at_the_limit_passes(n, expected):
    source = "def f():\n" + "    x = 1\n" * (n - 1)
    assert long_functions(source) == expected


def test_a_function_over_the_limit_is_found():
    source = "def g():\n" + "    x = 1\n" * LIMIT
    assert long_functions(source) == [("g", 1, LIMIT + 1)]
