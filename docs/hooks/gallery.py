"""mkdocs hook: the gallery page shows the figures `make run` wrote to outputs/paper/, if any.

outputs/ is git-ignored, so a fresh clone (and CI) has no figures: then docs/gallery.md is shown
as it is, saying which command makes them. When outputs/paper/*.png exist, they are added to the
site under gallery/ and listed on the page, below the marker line of docs/gallery.md. The build
never runs the reproduction itself.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

PAGE = "gallery.md"
MARKER = "<!-- gallery: figures -->"
FOLDER = "gallery"

# what each figure of `sweep reproduce` shows; any other PNG there is listed under its file name
CAPTIONS = {
    "one_over_w.png": (
        "The 1/W law (Table 1)",
        "Tokens per watt of the calibrated H100 and B200 profiles (Llama-3.1-70B TP8, n = n_max) over "
        "the context window, log-log, with a dashed 1/C line: throughput halves with every doubling "
        "of the window, tokens per watt a little less, because power drops with concurrency.",
    ),
    "topologies.png": (
        "Routing topology against GPU generation (Table 3)",
        "Fleet tokens per watt of homogeneous, pool-routed and FleetOpt fleets (Llama-3.1-70B TP8, "
        "1000 requests/s) on the Azure (B_short 4096) and LMSYS (B_short 1536) workloads, H100 and "
        "B200: bars in the paper convention, ticks the physical convention × 8.",
    ),
    "measured_parity.png": (
        "Measured reality: predicted against measured tokens per joule",
        "The ML.ENERGY Benchmark v3 chat runs (H100 and B200): the uncalibrated physical model "
        "(prompt 100 tokens) and the built-in `mlenergy-v3` calibration, in-sample, with a ±25 % band.",
    ),
    "uncertainty_tornado.png": (
        "Uncertainty: what drives the B200 projection",
        "Relative change of the B200 fleet's tokens per joule (Llama-3.1-70B TP8, Azure, homogeneous, "
        "paper convention) when each value of its projected profile moves by ±20 %, one at a time.",
    ),
}


def figures(config) -> list[Path]:
    """The PNG figures in outputs/paper/ next to mkdocs.yml, known ones first."""
    folder = Path(config.config_file_path).parent / "outputs" / "paper"
    found = sorted(folder.glob("*.png")) if folder.is_dir() else []
    order = list(CAPTIONS)
    return sorted(found, key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))


def on_files(files, config):
    for path in figures(config):
        files.append(File.generated(config, f"{FOLDER}/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != PAGE:
        return markdown
    found = figures(config)
    head, marker, _ = markdown.partition(MARKER)
    if not found or not marker:
        return markdown
    blocks = [head.rstrip(), "", "Figures from the last `make run` in this checkout (outputs/paper/):", ""]
    for path in found:
        title, caption = CAPTIONS.get(path.name, (path.stem.replace("_", " "), ""))
        blocks += [f"## {title}", "", f"![{title}]({FOLDER}/{path.name})", ""]
        if caption:
            blocks += [caption, ""]
        blocks += [f"`outputs/paper/{path.name}`", ""]
    return "\n".join(blocks)
