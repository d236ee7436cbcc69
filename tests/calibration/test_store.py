"""Calibration files (sweep/calibration/store.py): write → load round trip, the values a setup gets
(calibrated or projected), and every bad file as one line naming it."""

import copy
import math
import tomllib

import numpy as np
import pytest
import tomli_w

from sweep.calibration.fit import Fit
from sweep.calibration.measurements import Measurements
from sweep.calibration.store import (
    BUILTIN,
    FORMAT,
    Calibration,
    calibration_table,
    from_fit,
    load_calibration,
    write_calibration,
)
from sweep.errors import SweepInputError
from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS, MECHANISMS
from sweep.version import __version__

FITTED = ("bandwidth_efficiency", "step_overhead_s")


def values(**over) -> dict:
    return {**{n: m.fixed for n, m in MECHANISMS.items()}, **over}


def small_fit() -> Fit:
    """A hand-made two-GPU fit (no solver): what `sweep calibrate` would hand to the store."""
    vals = {
        "H100": values(bandwidth_efficiency=0.73, step_overhead_s=1e-3),
        "B200": values(bandwidth_efficiency=0.66, step_overhead_s=3e-3),
    }
    ses = {
        "H100": {"bandwidth_efficiency": 0.04, "step_overhead_s": 2e-4},
        "B200": {"bandwidth_efficiency": 0.02, "step_overhead_s": 0.0},
    }
    return Fit(
        per="gpu",
        fitted=FITTED,
        groups=("H100", "B200"),
        values=vals,
        standard_errors=ses,
        parameters=tuple(f"{g}.{n}" for g in ("H100", "B200") for n in FITTED),
        correlation=np.array([[1.0, 0.5, 0, 0], [0.5, 1.0, 0, 0], [0, 0, 1.0, -0.25], [0, 0, -0.25, 1.0]]),
        prompt={"handling": "fitted", "value": 612.5, "standard_error": 40.0},
        rows={"H100": 7, "B200": 5},
        cost=0.125,
        evaluations=9,
        warnings=["B200.step_overhead_s: a note"],
    )


MEASUREMENTS = Measurements(
    rows=(), files=({"path": "runs.csv", "sha256": "ab" * 32, "rows": 12},), columns=()
)
RESIDUALS = {"H100": {"rows": 7, "tokens_per_joule": 0.05}, "B200": {"rows": 5, "tokens_per_joule": 0.07}}


def test_write_load_round_trip(tmp_path):
    f = small_fit()
    path = tmp_path / "cal.toml"
    write_calibration(calibration_table(f, MEASUREMENTS, RESIDUALS), path)
    text = path.read_text()
    assert text.startswith("# sweep calibration")
    doc = tomllib.loads(text)
    assert doc["format"] == FORMAT and doc["sweep_version"] == __version__
    assert doc["data"] == list(MEASUREMENTS.files) and doc["residuals"] == RESIDUALS
    assert doc["fit"] == {"cost": 0.125, "evaluations": 9, "warnings": ["B200.step_overhead_s: a note"]}
    assert doc["correlation"]["parameters"] == list(f.parameters)
    np.testing.assert_array_equal(doc["correlation"]["matrix"], f.correlation)
    assert {g: doc["groups"][g]["rows"] for g in f.groups} == f.rows
    assert not [p for p in tmp_path.iterdir() if p.name != "cal.toml"]  # no temporary file left

    cal = load_calibration(path)
    assert cal == Calibration(
        name=str(path),
        per="gpu",
        fitted=FITTED,
        groups={g: {"values": f.values[g], "standard_errors": f.standard_errors[g]} for g in f.groups},
        prompt=f.prompt,
    )
    assert cal == from_fit(f, name=str(path))
    assert load_calibration(str(path)) == cal


def test_builtin_by_name():
    cal = load_calibration("mlenergy-v3")
    assert cal.name == "mlenergy-v3" and cal.per == "gpu" and set(cal.groups) == {"H100", "B200"}
    doc = tomllib.loads(BUILTIN["mlenergy-v3"].read_text())
    assert cal.groups["H100"]["values"] == doc["groups"]["H100"]["values"]
    assert {k: cal.prompt[k] for k in ("handling", "value")} == {
        "handling": "assumed",
        "value": ASSUMED_PROMPT_TOKENS,
    }
    assert set(cal.prompt["tasks"]) == {"gpqa", "sourcegraph-fim"}
    assert cal.for_setup("A100", "llama-3.1-8b")[2] == "projected"  # a GPU it never saw


def test_for_setup_calibrated_and_projected():
    cal = load_calibration("mlenergy-v3")
    v, se, quality = cal.for_setup("H100", "llama-3.1-70b")  # any model of a calibrated GPU
    assert quality == "calibrated"
    assert v == cal.groups["H100"]["values"] and se == cal.groups["H100"]["standard_errors"]
    v["bandwidth_efficiency"] = 0.0  # a copy: the calibration is not changed through it
    assert cal.groups["H100"]["values"]["bandwidth_efficiency"] > 0

    v, se, quality = cal.for_setup("A100", "llama-3.1-8b")  # never measured: mean of the two GPUs
    assert quality == "projected"
    h, b = cal.groups["H100"], cal.groups["B200"]
    for n in MECHANISMS:
        assert v[n] == pytest.approx((h["values"][n] + b["values"][n]) / 2, rel=1e-15), n
    assert set(se) == set(cal.fitted)
    for n in cal.fitted:
        spread = ((h["values"][n] - b["values"][n]) / 2) ** 2
        want = math.sqrt((h["standard_errors"][n] ** 2 + b["standard_errors"][n] ** 2) / 2 + spread)
        assert se[n] == pytest.approx(want, rel=1e-12), n


def test_for_setup_per_gpu_and_model():
    groups = {
        "H100/llama-3.1-8b": {
            "values": values(step_overhead_s=1e-3),
            "standard_errors": {"step_overhead_s": 1e-4},
        },
        "H100/qwen3-8b": {
            "values": values(step_overhead_s=3e-3),
            "standard_errors": {"step_overhead_s": 1e-4},
        },
        "B200/qwen3-8b": {
            "values": values(step_overhead_s=9e-3),
            "standard_errors": {"step_overhead_s": 1e-4},
        },
    }
    cal = Calibration("c", "gpu,model", ("step_overhead_s",), groups, {})
    v, se, quality = cal.for_setup("H100", "qwen3-8b")
    assert (v["step_overhead_s"], se, quality) == (3e-3, {"step_overhead_s": 1e-4}, "calibrated")
    v, se, quality = cal.for_setup("H100", "qwen3-14b")  # other H100 groups only
    assert quality == "projected" and v["step_overhead_s"] == pytest.approx(2e-3, rel=1e-15)
    assert se["step_overhead_s"] == pytest.approx(math.sqrt(1e-8 + 1e-6), rel=1e-12)
    v, _, quality = cal.for_setup("A100", "qwen3-8b")  # all groups
    assert quality == "projected" and v["step_overhead_s"] == pytest.approx(13e-3 / 3, rel=1e-15)
    assert any(label.startswith("B200/") for label in cal.groups)
    assert cal.for_setup("GB200", "qwen3-8b")[2] == "projected"


# ------------------------------------------------------------------------------------------------
# bad files


def _shipped() -> dict:
    return tomllib.loads(BUILTIN["mlenergy-v3"].read_text())


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(doc):
        for k in keys[:-1]:
            doc = doc[k]
        if value is _DELETE:
            del doc[keys[-1]]
        else:
            doc[keys[-1]] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("format", 2), r"format: got 2; allowed: 1"),
        (_set("format", _DELETE), r"format: got None; allowed: 1"),
        (_set("format", True), r"format: got True; allowed: 1"),
        (_set("per", "model"), r"per: got 'model'; allowed: gpu, gpu,model"),
        (
            _set("fitted", ["bandwidth_efficiency", "warp_speed"]),
            r"fitted: unknown mechanism\(s\) \['warp_speed'\]",
        ),
        (_set("fitted", "bandwidth_efficiency"), r"fitted: got 'bandwidth_efficiency'; allowed: a list"),
        (_set("prompt_tokens", 500), r"prompt_tokens: got 500; allowed: a table"),
        (
            _set("prompt_tokens", "value", -5.0),
            r"prompt_tokens: value: got -5\.0; allowed: finite numbers >= 0",
        ),
        (_set("prompt_tokens", "value", "many"), r"prompt_tokens: value: got 'many'"),
        (_set("groups", {}), r"groups: no \[groups\.<GPU>\] table"),
        (_set("groups", _DELETE), r"groups: no \[groups\.<GPU>\] table"),
        (_set("groups", "H100", 3), r"groups\.H100: got 3; allowed: a table"),
        (_set("groups", "H100", "values", 3), r"groups\.H100\.values: got 3; allowed: a table"),
        (
            _set("groups", "H100", "values", "warp_speed", 1.0),
            r"groups\.H100\.values: unknown field\(s\) \['warp_speed'\]; allowed: bandwidth_efficiency",
        ),
        (
            _set("groups", "H100", "values", "layer_overhead_s", _DELETE),
            r"groups\.H100\.values: missing required field\(s\) \['layer_overhead_s'\]",
        ),
        (
            _set("groups", "H100", "values", "bandwidth_efficiency", 1.5),
            r"groups\.H100\.values: bandwidth_efficiency: got 1\.5; allowed: \[0\.05, 1\]",
        ),
        (
            _set("groups", "B200", "values", "step_overhead_s", -1e-3),
            r"groups\.B200\.values: step_overhead_s: got -0\.001; allowed: \[0, 0\.1\]",
        ),
        (_set("groups", "H100", "values", "step_overhead_s", "fast"), r"step_overhead_s: got 'fast'"),
        (
            _set("groups", "H100", "standard_errors", "step_overhead_s", -1e-4),
            r"groups\.H100\.standard_errors: step_overhead_s: got -0\.0001; allowed: finite numbers >= 0",
        ),
        (
            _set("groups", "H100", "standard_errors", "warp_speed", 0.1),
            r"groups\.H100\.standard_errors: unknown mechanism\(s\) \['warp_speed'\]",
        ),
        (_set("groups", "H100", "standard_errors", [0.1]), r"groups\.H100\.standard_errors: got \[0\.1\]"),
    ],
)
def test_bad_file_is_one_line_naming_it(tmp_path, change, expected):
    doc = copy.deepcopy(_shipped())
    change(doc)
    path = tmp_path / "cal.toml"
    path.write_text(tomli_w.dumps(doc))
    with pytest.raises(SweepInputError, match=expected) as info:
        load_calibration(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")


def test_missing_and_unreadable_files(tmp_path):
    for name in (str(tmp_path / "absent.toml"), "mlenergy-v9"):
        with pytest.raises(SweepInputError) as info:
            load_calibration(name)
        message = str(info.value)
        assert "\n" not in message and f"calibration '{name}': no such file" in message
        assert "built-in calibrations: mlenergy-v3" in message
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 1\n[groups\n")
    with pytest.raises(SweepInputError, match=r"bad\.toml: invalid TOML") as info:
        load_calibration(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(SweepInputError, match=r"is a directory"):
        load_calibration(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"format = 1\n\xff\xfe\n")
    with pytest.raises(SweepInputError, match=r"binary\.toml: cannot read calibration file: not UTF-8"):
        load_calibration(binary)
