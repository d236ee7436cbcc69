"""mkdocs hook: render the doctest examples of docstrings (`>>>` lines) as Python code blocks.

Our docstrings end with short doctests, not inside an "Examples:" section, so mkdocstrings would
show them as running text. This Markdown preprocessor fences every run of lines that starts with
`>>> ` at the left margin (with its `... ` continuations and expected output, up to a blank
line), outside existing fenced code. It runs on the Markdown of the pages and of the docstrings.
"""

from __future__ import annotations

import re

from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

FENCE = re.compile(r"^\s*(```|~~~)")


def fence_doctests(lines: list[str]) -> list[str]:
    """`lines` with each doctest run wrapped in a ```pycon fence."""
    out, in_fence, in_doctest = [], False, False
    for line in lines:
        if in_doctest and not line.strip():
            out += ["```", line]
            in_doctest = False
            continue
        if not in_doctest and FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and not in_doctest and line.startswith(">>> "):
            out.append("```pycon")
            in_doctest = True
        out.append(line)
    if in_doctest:
        out.append("```")
    return out


class DoctestPreprocessor(Preprocessor):
    def run(self, lines):
        return fence_doctests(lines)


class DoctestExtension(Extension):
    def extendMarkdown(self, md):  # noqa: N802 (Python-Markdown's name)
        # before the fenced-code preprocessor (priority 25), so the fences it adds are code blocks
        md.preprocessors.register(DoctestPreprocessor(md), "sweep_doctest_blocks", 30)


@event_priority(100)  # before mkdocstrings reads the extension list in its own on_config
def on_config(config):
    config.markdown_extensions.append(DoctestExtension())
    return config
