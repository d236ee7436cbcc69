"""`sweep predict` as a function (sweep/calibration/workflow.py): the CSV it writes, the before/after gap
of the shipped calibration on the shipped measurements, and rows beyond the KV capacity."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from sweep.calibration.measurements import read_measurements
from sweep.calibration.store import BUILTIN, load_calibration
from sweep.calibration.validation import predictions
from sweep.calibration.workflow import PREDICTED, predict, prompt_assumption
from sweep.errors import SweepWarning
from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS

SHIPPED = Path(__file__).resolve().parents[2] / "sweep" / "data" / "measurements" / "mlenergy-v3-chat.csv"
ADDED = [*(f"predicted_{q}" for q in PREDICTED), "exceeds_kv_capacity"]


def read_csv(path) -> tuple[list, list]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "pred.csv"
    rows, summary = predict(SHIPPED, out, calibration="mlenergy-v3")
    return out, rows, summary


def test_predict_writes_rows_with_predictions(calibrated):
    out, rows, _ = calibrated
    header, written = read_csv(out)
    original_header, original = read_csv(SHIPPED)
    assert header == original_header + ADDED
    assert len(written) == len(original) == len(rows) == 78
    for w, o in zip(written, original):
        assert {k: w[k] for k in original_header} == o  # the original cells, unchanged
    data = read_measurements(SHIPPED)
    want = predictions(data, load_calibration("mlenergy-v3"), ASSUMED_PROMPT_TOKENS)
    fits = want["fits"].astype(bool)
    assert fits.all()  # the assumed prompt length is the largest at which every shipped run fits
    for i, w in enumerate(written):
        assert w["exceeds_kv_capacity"] == str(int(not fits[i]))
        assert rows[i]["exceeds_kv_capacity"] == int(not fits[i])
        for q in PREDICTED:
            if fits[i]:
                assert float(w[f"predicted_{q}"]) == pytest.approx(want[q][i], rel=1e-5)  # 6 digits
                assert rows[i][f"predicted_{q}"] == want[q][i]
            else:
                assert math.isnan(float(w[f"predicted_{q}"])) and math.isnan(rows[i][f"predicted_{q}"])


def test_calibration_closes_the_gap(calibrated):
    """Median |ln(predicted / measured)| of tokens per joule: > 50 % uncalibrated, <= 15 % with mlenergy-v3."""
    _, _, after = calibrated
    _, before = predict(SHIPPED)
    assert set(before) == set(after) == {"H100", "B200"}
    for gpu in ("H100", "B200"):
        assert before[gpu]["tokens_per_joule"] > 0.5, before[gpu]
        assert after[gpu]["tokens_per_joule"] <= 0.15, after[gpu]
        assert before[gpu]["tokens_per_joule_bias"] > 1.5  # the uncalibrated roofline is optimistic
        assert 0.9 < after[gpu]["tokens_per_joule_bias"] < 1.1


def test_calibration_file_path_equals_builtin_name(tmp_path, calibrated):
    copy = tmp_path / "copy.toml"
    copy.write_text(BUILTIN["mlenergy-v3"].read_text())
    rows, summary = predict(SHIPPED, calibration=copy)
    assert summary == calibrated[2] and rows == calibrated[1]


def test_rows_beyond_capacity_and_without_measured_columns(tmp_path):
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text(
        "gpu,model,tp,concurrency,output_tokens,note\n"
        "H100,llama-3.1-70b,2,256,8000,too long\n"
        "H100,llama-3.1-70b,2,8,300,fits\n"
    )
    out = tmp_path / "pred.csv"
    with pytest.warns(SweepWarning, match="ignoring unknown columns: note"):
        rows, summary = predict(rows_csv, out, calibration="mlenergy-v3")
    assert summary == {}  # nothing measured to compare with
    header, written = read_csv(out)
    assert header == ["gpu", "model", "tp", "concurrency", "output_tokens", "note", *ADDED]
    assert [w["exceeds_kv_capacity"] for w in written] == ["1", "0"]
    assert [w["note"] for w in written] == ["too long", "fits"]
    for q in PREDICTED:
        assert written[0][f"predicted_{q}"] in ("", "nan")
        assert float(written[1][f"predicted_{q}"]) > 0
    assert np.isnan(rows[0]["predicted_tokens_per_joule"]) and rows[1]["predicted_tokens_per_joule"] > 0


def test_prompt_assumption():
    cal = load_calibration("mlenergy-v3")
    assert prompt_assumption(cal, 250) == 250.0
    assert prompt_assumption(cal, None) == cal.prompt["value"]
    assert prompt_assumption(None, None) == ASSUMED_PROMPT_TOKENS
