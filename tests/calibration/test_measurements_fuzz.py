"""Property-based fuzzing of the measurement-CSV reader and of the flags of calibrate and predict (the
style of tests/test_fuzz.py).

Property: a measurement file with random unit scalings of power_w and itl_s, repeated rows, or a
non-finite, empty or textual cell, and any --prompt-tokens value, either gives a clean result or is
refused with a one-line `SweepInputError` naming the file (and, for a cell, its line and column); never
another exception. No fit runs inside a hypothesis loop: the reader and the validation functions are
tested directly, predict only on a tiny file (one compiled shape). The `slow` variants run many more
examples: `.venv/bin/python -m pytest -m slow tests/calibration/test_measurements_fuzz.py`.
"""

import csv
import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sweep.calibration import measurements as M
from sweep.calibration.fit import PROMPT_BOUNDS, check_prompt_tokens
from sweep.calibration.measurements import read_measurements
from sweep.calibration.workflow import calibrate, predict
from sweep.catalogs import gpu_catalog
from sweep.cli import main
from sweep.errors import SweepInputError, SweepWarning

FAST = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW = settings(FAST, max_examples=400)

CHAT = Path(__file__).resolve().parents[2] / "sweep" / "data" / "measurements" / "mlenergy-v3-chat.csv"
with open(CHAT, newline="", encoding="utf-8") as _f:
    _reader = csv.DictReader(_f)
    HEADER = list(_reader.fieldnames)
    ALL_ROWS = list(_reader)
BASE = [ALL_ROWS[i] for i in (0, 20, 40, 41, 60, 77)]  # B200 and H100, TP 1 and 2, small and large batches

UNIT = st.one_of(
    st.sampled_from([1.0, 1.0, 1e-6, 1e-3, 1e-2, 0.1, 0.5, 2.0, 10.0, 100.0, 1e3, 1e6]),
    st.floats(1e-8, 1e8),
)
CELL = st.one_of(
    st.sampled_from(
        ["nan", "NaN", "inf", "-inf", "Infinity", "", " ", "x", "1e400", "-1e400", "-1", "0", "-0", "1e-320"]
        + ["1e12", "1e300", " 5 ", "0x10", "1_000", "∞", "1,5", '"', "None", "true", "٣"]
    ),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
)
NUMERIC_COLUMNS = [c for c in HEADER if c in M.NUMERIC]
CELL_COLUMNS = [*NUMERIC_COLUMNS, "weight_dtype", "gpu", "model"]
PROMPT = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -50, -1e-9, 0, 0.5, 100, 32768, 32769, 1e300, 10**400]),
    st.sampled_from([True, False, None, "100", "nan", [100]]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
)


def write_rows(path, rows, header=HEADER) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    Path(path).write_text(text.getvalue(), encoding="utf-8")
    return str(path)


def read_or_refused(path, *, line=None, **kw):
    """Read `path`; None when refused with a one-line error that names the file (and `line` and a column)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SweepWarning)
            return read_measurements(path, **kw)
    except SweepInputError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(f"{path}:"), message
        if line is not None:
            assert message.startswith(f"{path}:{line}: column"), message
        event("refused")
        return None


def _scale(factor: float, cell: str) -> str:
    return f"{float(cell) * factor:.12g}"


UNIT_MISTAKES = (1e-6, 1e-3, 1e3, 1e6)  # every shipped run is refused after any of these scalings


def _unit_scalings(tmp_path, power, itl, which):
    rows = [dict(r) for r in BASE]
    for i in which:
        rows[i]["power_w"] = _scale(power, rows[i]["power_w"])
        rows[i]["itl_s"] = _scale(itl, rows[i]["itl_s"])
    path = write_rows(tmp_path / "m.csv", rows)
    try:
        m = read_measurements(path)
    except SweepInputError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert re.match(rf"{re.escape(path)}:(\d+): column '(power_w|itl_s)': got ", message), message
        assert int(message[len(path) + 1 :].split(":")[0]) - 2 in which, message
        assert which and (power != 1.0 or itl != 1.0), message  # the shipped values always read
        event("refused")
        return
    event("read")
    assert not (which and (power in UNIT_MISTAKES or itl in UNIT_MISTAKES)), (power, itl)
    gpus = gpu_catalog()
    tdp = np.array([gpus.get(r["gpu"]).value("tdp_w") for r in m.rows]) * m.column("num_gpus")
    share = m.column("power_w") / tdp
    assert ((M.POWER_FLOOR_OF_TDP <= share) & (share <= M.POWER_CEILING_OF_TDP)).all()
    step = m.column("concurrency") * m.column("replicas") / m.column("tokens_per_second")
    ratio = m.column("itl_s") / step
    assert ((1 / M.STEP_TIME_FACTOR <= ratio) & (ratio <= M.STEP_TIME_FACTOR)).all()


WHICH = st.lists(st.integers(0, len(BASE) - 1), max_size=len(BASE), unique=True)


@FAST
@given(UNIT, UNIT, WHICH)
def test_unit_scalings_of_power_and_itl(tmp_path, power, itl, which):
    _unit_scalings(tmp_path, power, itl, which)


@pytest.mark.slow
@SLOW
@given(UNIT, UNIT, WHICH)
def test_unit_scalings_of_power_and_itl_slow(tmp_path, power, itl, which):
    _unit_scalings(tmp_path, power, itl, which)


def _bad_cell(tmp_path, row, column, cell, measured):
    rows = [dict(r) for r in BASE]
    rows[row][column] = cell
    path = write_rows(tmp_path / "m.csv", rows)
    m = read_or_refused(path, line=row + 2, measured=measured)
    if m is not None:
        event("read")
        for key in M.NUMERIC:
            values = m.column(key)
            assert not np.isinf(values).any(), key  # NaN only where a blank optional cell means "not given"
        assert len(m) == len(BASE)


@FAST
@given(st.integers(0, len(BASE) - 1), st.sampled_from(CELL_COLUMNS), CELL, st.booleans())
def test_non_finite_empty_or_text_cells(tmp_path, row, column, cell, measured):
    _bad_cell(tmp_path, row, column, cell, measured)


@pytest.mark.slow
@SLOW
@given(st.integers(0, len(BASE) - 1), st.sampled_from(CELL_COLUMNS), CELL, st.booleans())
def test_non_finite_empty_or_text_cells_slow(tmp_path, row, column, cell, measured):
    _bad_cell(tmp_path, row, column, cell, measured)


@FAST
@given(st.lists(st.integers(0, len(BASE) - 1), min_size=1, max_size=30), st.booleans())
def test_duplicated_rows_warn_and_count_once(tmp_path, picks, twice):
    path = write_rows(tmp_path / "m.csv", [BASE[i] for i in picks])
    paths = [path, path] if twice else [path]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = read_measurements(paths)
    notices = [str(w.message) for w in caught if "repeat an earlier row" in str(w.message)]
    n = len(picks) * len(paths)
    assert len(m) == n and int(m.distinct().sum()) == len(set(picks))
    if len(set(picks)) < n:
        (notice,) = notices
        assert "\n" not in notice and notice.startswith(f"{path}: {n - len(set(picks))} of {n} rows repeat")
    else:
        assert not notices


def _prompt_tokens(tmp_path, value):
    """check_prompt_tokens, calibrate (only where it refuses: no fit here) and predict on a tiny file."""
    path = write_rows(tmp_path / "m.csv", BASE[:2])
    try:
        checked = check_prompt_tokens(value, path, most=PROMPT_BOUNDS[1])
    except SweepInputError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(f"{path}: prompt_tokens (--prompt-tokens)")
        with pytest.raises(SweepInputError) as info:
            calibrate(path, prompt_tokens=value)  # refused before any fit
        assert str(info.value) == message
        checked = None
    if checked is not None:
        assert 0 <= checked <= PROMPT_BOUNDS[1]
    try:
        rows, _ = predict(path, prompt_tokens=value)
    except SweepInputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{path}: prompt_tokens (--prompt-tokens)")
        event("predict refused")
        return
    event("predicted")
    assert value is None or (math.isfinite(float(value)) and float(value) >= 0)
    for r in rows:  # finite predictions, or NaN where the rows exceed the KV capacity
        ok = r["exceeds_kv_capacity"] == 0
        assert all(math.isfinite(r[f"predicted_{q}"]) == ok for q in M.PREDICTED), r


@FAST
@given(PROMPT)
def test_prompt_tokens_values(tmp_path, value):
    _prompt_tokens(tmp_path, value)


@pytest.mark.slow
@SLOW
@given(PROMPT)
def test_prompt_tokens_values_slow(tmp_path, value):
    _prompt_tokens(tmp_path, value)


@pytest.mark.parametrize(
    ("argv", "column"),
    [
        (["calibrate", "{m}", "-o", "{out}", "--prompt-tokens", "nan"], "prompt_tokens"),
        (["predict", "{kw}", "-o", "{out}"], "power_w"),
    ],
)
def test_cli_refuses_with_exit_2(tmp_path, capsys, argv, column):
    m = write_rows(tmp_path / "m.csv", BASE)
    kw = write_rows(tmp_path / "kw.csv", [{**r, "power_w": _scale(1e-3, r["power_w"])} for r in BASE])
    out = tmp_path / ("out.toml" if argv[0] == "calibrate" else "out.csv")
    assert main([a.format(m=m, kw=kw, out=out) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sweep: error: ") and column in err[0], err
    assert not out.exists()
