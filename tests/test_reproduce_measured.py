"""The REPORT.md section "Measured reality" (sweep.reproduce.measured_reality): its numbers come from
the calibration models, and the shipped calibration meets the acceptance targets of issue #10."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from sweep.calibration.measurements import read_measurements
from sweep.calibration.store import load_calibration
from sweep.calibration.validation import errors, predictions
from sweep.reproduce import CALIBRATION, MEASUREMENTS, TARGET_IN_SAMPLE, TARGET_LOMO, measured_reality

HEADING = "## Measured reality"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("measured")
    return out, measured_reality(out)  # leave-one-model-out runs once, here


def table_after(text: str, first_header: str) -> list[dict]:
    """The Markdown table whose header line starts with `| first_header |`, as dicts by header."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


def percent(cell: str) -> float:
    match = re.fullmatch(r"(-?\d+\.\d) %", cell)
    assert match, f"not a one-decimal percentage: {cell!r}"
    return float(match.group(1))


def test_section_and_figure(report):
    out, text = report
    assert text.startswith(HEADING)
    for gpu in ("H100", "B200"):
        assert gpu in text
    assert "median |ln(pred/meas)| (%)" in text
    assert "measured_parity.png" in text
    figure = out / "measured_parity.png"
    assert figure.is_file()
    assert figure.read_bytes()[:8] == PNG
    assert "Projections, not measurements" in text
    projections = table_after(text, "GPU | model")
    assert {r["model"] for r in projections} == {"llama-3.1-70b", "llama-3.1-405b"}
    assert {r["TP"] for r in projections} == {"2", "4", "8"}
    for r in projections:  # a number (NaN is not > 0) or the KV verdict, for every hand-built projection row
        assert all(r[c] == "does not fit" or float(r[c]) > 0 for c in ("tok/s", "power (W)", "tok/J")), r


def test_calibrated_in_sample_matches_models(report):
    """The printed in-sample errors are those of the shipped calibration on the shipped data."""
    _, text = report
    with resources.as_file(resources.files("sweep").joinpath(MEASUREMENTS)) as path:
        m = read_measurements(path)
    cal = load_calibration(CALIBRATION)
    expected = errors(m, predictions(m, cal, cal.prompt.get("value", 500.0)))
    rows = {r["GPU"]: r for r in table_after(text, "GPU | runs")}
    assert set(rows) == set(expected) == {"H100", "B200"}
    for gpu, e in expected.items():
        assert int(rows[gpu]["runs"]) == e["rows"]
        for column, key in (
            ("calibrated tok/J (%)", "tokens_per_joule"),
            ("calibrated tok/s (%)", "tokens_per_second"),
            ("calibrated power (%)", "power_w"),
            ("calibrated ITL (%)", "itl_s"),
        ):
            assert percent(rows[gpu][column]) == pytest.approx(round(100 * e[key], 1), abs=1e-9)


def test_acceptance_targets(report):
    """Issue #10: tokens/J median |ln| in-sample <= 15 % and leave-one-model-out (pooled) <= 25 %."""
    _, text = report
    rows = {r["GPU"]: r for r in table_after(text, "GPU | runs")}
    for gpu in ("H100", "B200"):
        assert percent(rows[gpu]["calibrated tok/J (%)"]) <= 100 * TARGET_IN_SAMPLE
        assert percent(rows[gpu]["leave-one-model-out tok/J (%), pooled"]) <= 100 * TARGET_LOMO
    lomo = {r["held-out model"]: r for r in table_after(text, "held-out model")}
    for gpu in ("H100", "B200"):
        assert lomo["**pooled**"][gpu] == rows[gpu]["leave-one-model-out tok/J (%), pooled"]
    assert "NOT met" not in text
    assert TARGET_IN_SAMPLE == 0.15 and TARGET_LOMO == 0.25


def test_families_section_per_family_task_and_gpu(tmp_path):
    """REPORT.md's modern-architecture section: every shipped (model, task, GPU) group, in-sample within the
    issue #20 target, and at most 2 % of the runs predicted beyond the KV capacity."""
    from sweep.reproduce import TARGET_FAMILY, measured_families

    text = measured_families(tmp_path)
    assert text.startswith("## Measured reality — modern architectures")
    rows = table_after(text, "family")
    assert {r["model"] for r in rows} >= {"qwen3-30b-a3b", "gpt-oss-20b", "llama-4-scout", "gemma-3-12b"}
    assert {r["task"] for r in rows} == {"lm-arena-chat", "gpqa", "sourcegraph-fim"}
    assert sum(int(r["runs"]) for r in rows) == 78 + 148
    for r in rows:
        assert percent(r["tok/J (%)"]) <= 100 * TARGET_FAMILY, r
        assert percent(r["ITL (%)"]) <= 100 * TARGET_FAMILY, r
    not_fit = sum(int(r["runs"]) * float(r["not fit"].rstrip(" %")) / 100 for r in rows)
    assert not_fit <= 0.02 * (78 + 148)
