"""The REPORT.md section "Uncertainty" (sweep.reproduce.uncertainty_section, issue #11): the paper's
headline ratios with 90 % intervals under the default projected-hardware uncertainty, their drivers,
and the B200 tornado figure; its numbers are those of `sweep.run` + `sweep.compare`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import sweep
from sweep.reproduce import UNCERTAINTY_SAMPLES, UNCERTAINTY_SEED, uncertainty_section

GRIDS = Path(__file__).resolve().parents[1] / "grids"
HEADING = "## Uncertainty"
PNG = b"\x89PNG\r\n\x1a\n"
CLAIMS = {  # claim cell prefix -> involves a projected (B200) value
    "topology: FleetOpt / homogeneous, H100": False,
    "topology: FleetOpt / homogeneous, B200": True,
    "generation: B200 / H100, homogeneous": True,
    "combined: B200 FleetOpt / H100 homogeneous": True,
    "1/W law: 4K / 64K, H100": False,
    "1/W law: 4K / 64K, B200": True,
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("uncertainty")
    return out, uncertainty_section(GRIDS, out)


def table_after(text: str, first_header: str) -> dict:
    """The Markdown table whose header starts with `| first_header |`, as {first cell: {header: cell}}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


def interval(cell: str) -> tuple[float, float]:
    match = re.fullmatch(r"(\d+\.\d\d)–(\d+\.\d\d)", cell)
    assert match, f"not an interval: {cell!r}"
    return float(match.group(1)), float(match.group(2))


def test_heading_claims_and_intervals(report):
    _, text = report
    assert text.startswith(HEADING)
    rows = table_after(text, "claim")
    assert set(rows) == set(CLAIMS)
    for claim, projected in CLAIMS.items():
        row = rows[claim]
        nominal, mean = float(row["ours (nominal)"]), float(row["mean"])
        lo, hi = interval(row["90 % interval"])
        assert lo <= nominal <= hi, claim
        assert lo <= mean <= hi, claim
        if projected:
            assert hi - lo > 0.05 * nominal, f"{claim}: degenerate interval {lo}–{hi}"
            drivers = re.findall(r"`(\w+)` (\d\.\d\d)", row["top-3 drivers (S_T)"])
            assert len(drivers) == 3, claim
            totals = [float(v) for _, v in drivers]
            assert totals == sorted(totals, reverse=True) and totals[0] > 0, claim
        else:  # H100 values are measured: the ratio is exact
            assert lo == hi == nominal, claim
    assert "H100 values are measured" in text
    assert "±20 %" in text


def test_paper_values_match_table3_targets(report):
    _, text = report
    rows = table_after(text, "claim")
    targets = tomllib.loads((Path(sweep.__file__).parent / "data" / "paper_targets.toml").read_text())
    ratios = targets["table3_ratios"]
    assert rows["topology: FleetOpt / homogeneous, H100"]["paper"] == ratios["topology"]
    assert rows["generation: B200 / H100, homogeneous"]["paper"] == ratios["generation"]
    assert rows["combined: B200 FleetOpt / H100 homogeneous"]["paper"] == ratios["combined"]


def test_tornado_figure(report):
    out, text = report
    assert "uncertainty_tornado.png" in text
    figure = out / "uncertainty_tornado.png"
    assert figure.is_file()
    assert figure.read_bytes()[:8] == PNG


def test_generation_gain_equals_sweep_compare(report):
    """Recompute the generation gain independently: Table 3's grid at Azure, B_short = 4096, the same
    Monte Carlo settings, `sweep.compare` over gpu; the section prints the same numbers."""
    _, text = report
    raw = tomllib.loads((GRIDS / "table3.toml").read_text())
    raw["axes"].update(workload=["azure"], b_short=[4096], topology=["homogeneous", "fleetopt"])
    ds = sweep.run(
        raw,
        uncertainty={
            "method": "monte_carlo",
            "samples": UNCERTAINTY_SAMPLES,
            "seed": UNCERTAINTY_SEED,
            "keep_samples": True,
        },
    )
    gain = sweep.compare(ds, dim="gpu", numerator="B200", denominator="H100")
    gain = gain.sel(topology="homogeneous").squeeze()
    row = table_after(text, "claim")["generation: B200 / H100, homogeneous"]
    assert row["ours (nominal)"] == f"{float(gain.ratio):.2f}"
    assert row["mean"] == f"{float(gain.ratio_mean):.2f}"
    q05, q95 = (float(gain.ratio_quantile.sel(quantile=q)) for q in (0.05, 0.95))
    assert row["90 % interval"] == f"{q05:.2f}–{q95:.2f}"
