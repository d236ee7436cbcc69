"""The README and the docs site: README fits in two screens, every relative link resolves (anchors to a
heading of the target), every page of the mkdocs.yml nav exists, and the API reference names the
public API through the modules that define it.

Plain text parsing only (no mkdocs, no yaml, no sweep import), so it runs in milliseconds; `make docs`
(mkdocs build --strict) is the full check of the site.
"""

import ast
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
PAGES = sorted(DOCS.glob("*.md"))
README_MAX_LINES = 200

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...
# modules being moved or reworked: the API reference must not point into them
UNSTABLE = (
    "sweep.cli",
    "sweep.output",
    "sweep.stream",
    "sweep.files",
    "sweep.signals",
    "sweep.memory",
    "sweep.progress",
    "sweep.tabular",
    "sweep.plotting",
    "sweep.reproduce",
)


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code removed."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence and not line.startswith("    "):
            yield number, CODE_SPAN.sub("", line)


def heading_texts(text: str) -> list[str]:
    """The text of every Markdown heading, formatting removed (`code`, *emphasis*, [links](x))."""
    out, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (m := HEADING.match(line)):
            title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(2))
            out.append(re.sub(r"[`*]", "", title))
    return out


def slug_mkdocs(title: str) -> str:
    """Python-Markdown's toc slugify (what mkdocs uses for heading ids)."""
    value = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def slug_github(title: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set:
    """Anchors that work both on GitHub and on the mkdocs site."""
    titles = heading_texts(path.read_text(encoding="utf-8"))
    return {slug_mkdocs(t) for t in titles} & {slug_github(t) for t in titles}


def broken_links(path: Path, text: str | None = None) -> list[str]:
    """Every relative link of a Markdown file (or of `text`, as if it were that file) that does not
    resolve to an existing file, or whose #anchor is not a heading of its target."""
    text = path.read_text(encoding="utf-8") if text is None else text
    out = []
    for number, line in prose_lines(text):
        for target in LINK.findall(line):
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            if not resolved.exists():
                out.append(f"{where} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                out.append(f"{where} (no heading with this anchor)")
    return out


def nav_pages(config: str) -> list[str]:
    """The .md files the `nav:` of mkdocs.yml lists (entries `- Title: page.md` or `- page.md`)."""
    nav = config.partition("\nnav:")[2]
    return re.findall(r"^\s+-\s+(?:[^:\n]+:\s+)?([\w./-]+\.md)\s*$", nav, flags=re.MULTILINE)


def test_readme_fits_two_screens():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_readme_names_the_two_commands_and_links_the_docs():
    text = README.read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text
    linked = {t.partition("#")[0] for _, line in prose_lines(text) for t in LINK.findall(line)}
    for page in ("docs/getting-started.md", "docs/grids.md", "docs/cli.md", "docs/api.md"):
        assert page in linked, f"README.md does not link {page}"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_link_checker_finds_broken_links():
    page = DOCS / "index.md"
    text = "\n".join(
        [
            "[gone](no-such-page.md) and ![figure](img/missing.png)",
            "[bad anchor](models.md#no-such-section) and [ok](models.md#1-the-three-instance-models)",
            "[web](https://example.org/x.md) `[in code](nowhere.md)`",
            "```",
            "[in a fence](nowhere.md)",
            "```",
            "[self](#about-these-docs) [self, wrong](#nothing-here)",
        ]
    )
    found = broken_links(page, text)
    assert [f.split(": ", 1)[1] for f in found] == [
        "no-such-page.md (no such file)",
        "img/missing.png (no such file)",
        "models.md#no-such-section (no heading with this anchor)",
        "#nothing-here (no heading with this anchor)",
    ]


def test_slugs_follow_mkdocs_and_github():
    title = "5. Where the paper's method is weak, and the physical convention"
    assert (
        slug_mkdocs(title)
        == slug_github(title)
        == "5-where-the-papers-method-is-weak-and-the-physical-convention"
    )
    assert slug_mkdocs("Scaling & speed") == "scaling-speed"
    assert slug_github("Scaling & speed") == "scaling--speed"  # so neither is linked: not in anchors()


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    config = MKDOCS.read_text(encoding="utf-8")
    pages = nav_pages(config)
    assert "index.md" in pages and "api.md" in pages and "gallery.md" in pages
    missing = [p for p in pages if not (DOCS / p).is_file()]
    assert missing == [], f"mkdocs.yml nav names missing pages: {missing}"
    assert sorted(p.name for p in PAGES) == sorted(pages), "a docs/*.md page is not in the nav"
    for hook in re.findall(r"^\s+-\s+(docs/hooks/\S+\.py)", config, flags=re.MULTILINE):
        assert (ROOT / hook).is_file(), hook
    assert re.search(r"^site_dir:\s*build/site\s*$", config, flags=re.MULTILINE)


def test_nav_parser_reads_titles_and_bare_pages():
    config = "site_name: x\nnav:\n  - Home: index.md\n  - Guide:\n      - Grid files: grids.md\n  - api.md\n"
    assert nav_pages(config) == ["index.md", "grids.md", "api.md"]


def public_api() -> dict[str, str]:
    """sweep.__all__ as {name: defining module}, read from sweep/__init__.py without importing it."""
    tree = ast.parse((ROOT / "sweep" / "__init__.py").read_text(encoding="utf-8"))
    lazy = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_LAZY"
    )
    names = {k.value: v.value for k, v in zip(lazy.keys, lazy.values)}
    names.update({"SweepInputError": "sweep.errors", "SweepWarning": "sweep.errors"})
    return names


def defines(module: str, name: str) -> bool:
    """Whether the source of `module` defines `name` at its top level (def, class or assignment)."""
    base = ROOT / Path(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not path.is_file():
        return False
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return True
    return False


def test_api_reference_documents_the_public_api_where_it_is_defined():
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    targets = re.findall(r"^:::\s+(\S+)\s*$", text, flags=re.MULTILINE)
    for target in targets:
        module, _, name = target.rpartition(".")
        assert not any(module == m or module.startswith(m + ".") for m in UNSTABLE), target
        assert defines(module, name), f"api.md: {target} is not defined there"
    for name, module in public_api().items():
        assert f"{module}.{name}" in targets, f"api.md does not document sweep.{name} ({module}.{name})"


def test_gallery_hook_falls_back_without_figures(tmp_path):
    pytest.importorskip("mkdocs")
    import importlib.util

    spec = importlib.util.spec_from_file_location("gallery_hook", DOCS / "hooks" / "gallery.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)

    class Config:
        config_file_path = str(tmp_path / "mkdocs.yml")

    class Page:
        class file:
            src_uri = "gallery.md"

    source = (DOCS / "gallery.md").read_text(encoding="utf-8")
    assert hook.MARKER in source and "make run" in source
    assert hook.on_page_markdown(source, Page, Config, None) == source  # no outputs/paper: as written
    (tmp_path / "outputs" / "paper").mkdir(parents=True)
    (tmp_path / "outputs" / "paper" / "topologies.png").write_bytes(b"png")
    (tmp_path / "outputs" / "paper" / "extra_figure.png").write_bytes(b"png")
    page = hook.on_page_markdown(source, Page, Config, None)
    assert page.index("(gallery/topologies.png)") < page.index("(gallery/extra_figure.png)")
    assert hook.MARKER not in page


def test_doctest_hook_fences_examples_outside_code():
    pytest.importorskip("mkdocs")
    import importlib.util

    spec = importlib.util.spec_from_file_location("doctest_hook", DOCS / "hooks" / "doctest_blocks.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    lines = ["Text.", "", ">>> 1 + 1", "2", "", "```", ">>> kept", "```", ">>> last", "... more"]
    assert hook.fence_doctests(lines) == [
        "Text.",
        "",
        "```pycon",
        ">>> 1 + 1",
        "2",
        "```",
        "",
        "```",
        ">>> kept",
        "```",
        "```pycon",
        ">>> last",
        "... more",
        "```",
    ]
