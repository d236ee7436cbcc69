"""Careless and hostile input to the measurement reader and to calibrate/predict: each row of the issue's
table ("command | what happens | what should happen") as a regression test, named after its case.

Physical checks (sweep/calibration/measurements.py `check_physical`): power against num_gpus x TDP, the
median ITL against the mean step time concurrency / tokens per second, the concurrency against the KV
cache; repeated rows warn and count once; bad --prompt-tokens values and re-predicted predictions.
"""

import csv
import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from sweep.calibration import measurements as M
from sweep.calibration.fit import PROMPT_BOUNDS, check_prompt_tokens, fit
from sweep.calibration.measurements import PREDICTED_COLUMNS, read_measurements
from sweep.calibration.store import load_calibration
from sweep.calibration.validation import predictions, row_prompt_tokens
from sweep.calibration.workflow import calibrate, predict
from sweep.catalogs import gpu_catalog
from sweep.cli import main
from sweep.errors import InvalidValueError, SweepInputError, SweepWarning

DATA = Path(__file__).resolve().parents[2] / "sweep" / "data" / "measurements"
CHAT = DATA / "mlenergy-v3-chat.csv"
FAMILIES = DATA / "mlenergy-v3-families.csv"
FIT_FEW = ("bandwidth_efficiency", "step_overhead_s", "power_idle_fraction")  # small, quick fits


def table(path) -> tuple[list, list]:
    """(header, rows as dicts) of a CSV file."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def write_table(path, header, rows) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    Path(path).write_text(text.getvalue(), encoding="utf-8")
    return str(path)


def scaled(tmp_path, column, factor, source=CHAT, name="m.csv") -> str:
    """The shipped file with every cell of `column` multiplied by `factor`."""
    header, rows = table(source)
    for r in rows:
        r[column] = f"{float(r[column]) * factor:.10g}"
    return write_table(tmp_path / name, header, rows)


def h100_subset(tmp_path, n=12, name="h100.csv") -> str:
    """The first `n` H100 runs of the shipped chat file (a quick fit)."""
    header, rows = table(CHAT)
    return write_table(tmp_path / name, header, [r for r in rows if r["gpu"] == "H100"][:n])


def refused(path, **kw) -> str:
    """The one-line message with which reading `path` is refused; it names the file."""
    with pytest.raises(SweepInputError) as info:
        read_measurements(path, **kw)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


def cli_refuses(capsys, argv, path) -> str:
    """`sweep ARGV` exits 2 with one line "sweep: error: ..." naming `path`, and writes nothing."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    errors = [line for line in err if line.startswith("sweep: error: ")]
    assert len(errors) == 1 and str(path) in errors[0], err
    assert "Traceback" not in captured.err and "wrote" not in captured.out
    return errors[0]


# --- row 1: power_w x 1000 -------------------------------------------------------------------------


def test_power_times_1000_is_refused_above_num_gpus_times_tdp(tmp_path, capsys):
    path = scaled(tmp_path, "power_w", 1000)
    message = refused(path)
    tdp = gpu_catalog().get("B200").value("tdp_w")  # the first shipped row: one B200
    assert f"{path}:2: column 'power_w': got '639391'; allowed: " in message
    assert f"to {M.POWER_CEILING_OF_TDP * tdp:g} W for 1 B200" in message and f"{tdp:g} W TDP" in message
    assert "above the GPUs' power limit: is power_w in mW?" in message
    out = tmp_path / "c.toml"
    err = cli_refuses(capsys, ["calibrate", path, "-o", str(out)], path)
    assert "column 'power_w'" in err and not out.exists()


def test_power_bound_counts_every_gpu_of_the_row(tmp_path):
    header = "gpu,model,tp,num_gpus,concurrency,output_tokens,tokens_per_second,power_w"
    path = tmp_path / "m.csv"
    path.write_text(f"{header}\nH100,llama-3.1-8b,1,4,32,400,12000,2600\n")  # 4 replicas: 650 W each
    assert read_measurements(path).rows[0]["power_w"] == 2600
    path.write_text(f"{header}\nH100,llama-3.1-8b,1,2,32,400,6000,2600\n")  # 1300 W per H100
    assert "allowed: 70 to 1750 W for 2 H100" in refused(path)


# --- row 2: power_w in kW --------------------------------------------------------------------------


def test_power_in_kilowatts_is_refused_with_a_units_hint(tmp_path, capsys):
    path = scaled(tmp_path, "power_w", 1e-3)
    message = refused(path)
    floor = M.POWER_FLOOR_OF_TDP * gpu_catalog().get("B200").value("tdp_w")
    assert f"{path}:2: column 'power_w': got '0.639391'; allowed: {floor:g} to " in message
    assert "0.639391 W is below the idle draw of any powered GPU: is power_w in kW?" in message
    err = cli_refuses(capsys, ["calibrate", path, "-o", str(tmp_path / "c.toml")], path)
    assert "is power_w in kW?" in err


def test_power_far_off_without_a_unit_gets_no_hint(tmp_path):
    message = refused(scaled(tmp_path, "power_w", 1e-7))
    assert "column 'power_w'" in message and "is power_w in" not in message


# --- row 3: itl_s in ms ----------------------------------------------------------------------------


def test_itl_in_milliseconds_is_refused_with_a_units_hint(tmp_path, capsys):
    path = scaled(tmp_path, "itl_s", 1000, source=FAMILIES)
    message = refused(path)
    assert f"{path}:2: column 'itl_s': got '33.628'; allowed: " in message
    assert f"within {M.STEP_TIME_FACTOR:g}x of the mean step time" in message
    assert "columns 'concurrency', 'tokens_per_second'" in message and message.endswith("is itl_s in ms?")
    err = cli_refuses(capsys, ["calibrate", path, "-o", str(tmp_path / "c.toml")], path)
    assert "is itl_s in ms?" in err


def test_itl_inconsistent_by_less_than_a_unit_is_refused_without_a_hint(tmp_path):
    message = refused(scaled(tmp_path, "itl_s", 30))  # 30x: not a unit, and not near one
    assert ":2: column 'itl_s'" in message and "is itl_s in" not in message


def test_itl_check_uses_the_step_time_of_one_instance(tmp_path):
    # 4 replicas of n = 32 at 12000 tokens/s in all: a step of 4 · 32 / 12000 = 10.7 ms per instance
    header = "gpu,model,tp,num_gpus,concurrency,output_tokens,tokens_per_second,power_w,itl_s"
    path = tmp_path / "m.csv"
    path.write_text(f"{header}\nH100,llama-3.1-8b,1,4,32,400,12000,2600,0.15\n")  # 14x of it: accepted
    assert read_measurements(path).rows[0]["itl_s"] == 0.15  # (32 / 12000 = 2.7 ms would refuse it)


# --- row 4: concurrency 1e12 -----------------------------------------------------------------------


def test_concurrency_beyond_the_kv_cache_is_refused(tmp_path, capsys):
    header, rows = table(CHAT)
    rows[5]["concurrency"] = "1e12"
    path = write_table(tmp_path / "m.csv", header, rows)
    message = refused(path)
    assert f"{path}:7: column 'concurrency': got '1e12'; allowed: at most " in message
    assert "the run cannot fit the KV cache" in message and "GiB of HBM per GPU" in message
    err = cli_refuses(capsys, ["calibrate", path, "-o", str(tmp_path / "c.toml")], path)
    assert ":7: column 'concurrency'" in err
    err = cli_refuses(capsys, ["predict", path, "-o", str(tmp_path / "p.csv")], path)
    assert ":7: column 'concurrency'" in err


def test_kv_bound_is_the_whole_memory_at_one_token_per_sequence(tmp_path):
    # Llama-3.1-8B: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 131072 bytes per token; TP 2 halves it
    header = "gpu,model,tp,concurrency,output_tokens,kv_dtype"
    path = tmp_path / "m.csv"
    most = 80 * 2**30 // 131072
    path.write_text(
        f"{header}\nH100,llama-3.1-8b,1,{most},400,bf16\nH100,llama-3.1-8b,2,{2 * most},400,bf16\n"
    )
    assert len(read_measurements(path, measured=False)) == 2
    path.write_text(f"{header}\nH100,llama-3.1-8b,1,{2 * most},400,fp8\n")  # fp8 KV: twice the tokens
    assert len(read_measurements(path, measured=False)) == 1
    path.write_text(f"{header}\nH100,llama-3.1-8b,1,{most + 1},400,bf16\n")
    assert f"at most {most:,} running sequences" in refused(path, measured=False)


def test_shipped_runs_pass_every_check_far_from_the_bounds():
    """Every shipped run reads, the 2 runs the model says do not fit included; the power floor and the ITL
    factor are at least 3x, the KV bound 100x, away from the shipped extremes, and no run draws its TDP."""
    m = read_measurements([CHAT, FAMILIES])
    assert len(m) == 226 and m.distinct().all()
    cal = load_calibration("mlenergy-v3")
    pred = predictions(m, cal, row_prompt_tokens(m, cal.prompt))
    assert int((~pred["fits"].astype(bool)).sum()) == 2  # predicted not to fit, accepted all the same
    gpus = gpu_catalog()
    tdp = np.array([gpus.get(r["gpu"]).value("tdp_w") for r in m.rows]) * m.column("num_gpus")
    share = m.column("power_w") / tdp
    assert share.min() > 3 * M.POWER_FLOOR_OF_TDP and share.max() < M.POWER_CEILING_OF_TDP
    step = m.column("concurrency") * m.column("replicas") / m.column("tokens_per_second")
    ratio = step / m.column("itl_s")
    assert 3 / M.STEP_TIME_FACTOR < np.nanmin(ratio) and np.nanmax(ratio) < M.STEP_TIME_FACTOR / 3
    assert (m.column("concurrency") < 0.01 * pred["kv_tokens"]).all()  # the model's KV cache, 1 token each


# --- row 5: duplicated rows ------------------------------------------------------------------------


def test_a_row_repeated_20_times_warns_naming_the_lines(tmp_path):
    header, rows = table(CHAT)
    path = write_table(tmp_path / "m.csv", header, rows[:3] + [rows[1]] * 20)
    with pytest.warns(SweepWarning) as caught:
        m = read_measurements(path)
    (notice,) = [str(w.message) for w in caught if "repeat" in str(w.message)]
    assert "\n" not in notice and notice.startswith(f"{path}: 20 of 23 rows repeat an earlier row exactly")
    assert f"{path}:5 = {path}:3, {path}:6 = {path}:3" in notice and "and 12 more" in notice
    assert m.distinct().tolist() == [True] * 3 + [False] * 20


def test_the_same_file_twice_warns(tmp_path):
    path = h100_subset(tmp_path, n=3)
    with pytest.warns(SweepWarning, match=r"3 of 6 rows repeat .*h100.csv:2 \(the file given again\)"):
        m = read_measurements([path, path])
    assert m.distinct().tolist() == [True] * 3 + [False] * 3


def test_rows_differing_in_a_label_column_are_distinct(tmp_path):
    header, rows = table(CHAT)
    rows = [{**rows[0], "run": "a"}, {**rows[0], "run": "b"}]
    path = write_table(tmp_path / "m.csv", [*header, "run"], rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = read_measurements(path)
    assert m.distinct().all() and not any("repeat" in str(w.message) for w in caught)


def test_duplicated_rows_count_once_in_the_fit_and_its_standard_errors(tmp_path):
    once = h100_subset(tmp_path, n=10)
    header, rows = table(once)
    twice = write_table(tmp_path / "twice.csv", header, rows + rows + [rows[0]] * 20)
    with pytest.warns(SweepWarning, match="30 of 40 rows repeat"):
        doubled = read_measurements(twice)
    a, b = fit(read_measurements(once), names=FIT_FEW), fit(doubled, names=FIT_FEW)
    assert a.rows == b.rows == {"H100": 10}
    for n in FIT_FEW:
        assert b.values["H100"][n] == pytest.approx(a.values["H100"][n], rel=1e-7)
        assert b.standard_errors["H100"][n] == pytest.approx(a.standard_errors["H100"][n], rel=1e-6)
    np.testing.assert_allclose(b.correlation, a.correlation, atol=1e-6)


def test_too_few_distinct_rows_says_repeats_count_once(tmp_path):
    header, rows = table(CHAT)
    path = write_table(tmp_path / "m.csv", header, [rows[0]] * 10)
    with pytest.warns(SweepWarning, match="9 of 10 rows repeat"):
        m = read_measurements(path)
    with pytest.raises(SweepInputError, match=r"1 rows \(repeated rows count once\) give 3 residuals"):
        fit(m, names=FIT_FEW)


# --- row 6: --prompt-tokens nan / inf / -50 --------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -50.0, PROMPT_BOUNDS[1] + 1, "100", True])
def test_bad_prompt_tokens_is_refused_by_calibrate_before_fitting(tmp_path, value):
    path = h100_subset(tmp_path, n=3)
    with pytest.raises(SweepInputError) as info:
        calibrate(path, prompt_tokens=value)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: prompt_tokens (--prompt-tokens): got ")
    assert "allowed: finite numbers >= 0, at most 32768" in message


@pytest.mark.parametrize("value", [math.nan, math.inf, -50.0, -1e-9])
def test_bad_prompt_tokens_is_refused_by_predict(tmp_path, value):
    out = tmp_path / "p.csv"
    with pytest.raises(
        InvalidValueError, match=r"prompt_tokens \(--prompt-tokens\): got .*; allowed: finite"
    ):
        predict(CHAT, out, calibration="mlenergy-v3", prompt_tokens=value)
    assert not out.exists()


def test_check_prompt_tokens_accepts_numbers_in_range():
    assert check_prompt_tokens(0, "x") == 0.0 and check_prompt_tokens(np.float32(250), "x") == 250.0
    assert check_prompt_tokens(1e6, "x") == 1e6  # predict: no upper bound
    with pytest.raises(SweepInputError, match="^x: prompt_tokens"):
        check_prompt_tokens(1e6, "x", most=PROMPT_BOUNDS[1])


@pytest.mark.parametrize(
    ("command", "value"), [("calibrate", "nan"), ("calibrate", "inf"), ("predict", "-50")]
)
def test_prompt_tokens_flag_nan_or_negative_exits_2_with_one_line(tmp_path, capsys, command, value):
    path = h100_subset(tmp_path, n=3)
    out = tmp_path / ("c.toml" if command == "calibrate" else "p.csv")
    err = cli_refuses(capsys, [command, path, "-o", str(out), "--prompt-tokens", value], path)
    assert "prompt_tokens (--prompt-tokens): got" in err and not out.exists()


# --- row 7: predict on a previous prediction -------------------------------------------------------


def test_predicting_a_prediction_replaces_the_predicted_columns(tmp_path):
    first, second = tmp_path / "p1.csv", tmp_path / "p2.csv"
    rows1, _ = predict(CHAT, first, calibration="mlenergy-v3")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows2, _ = predict(first, second, calibration="mlenergy-v3")
    assert not [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    header1, written1 = table(first)
    header2, written2 = table(second)
    assert header2 == header1 == [*table(CHAT)[0], *PREDICTED_COLUMNS]  # each once, at the end
    assert written2 == written1
    assert [list(r) for r in rows2] == [list(r) for r in rows1]


def test_stale_predictions_are_overwritten(tmp_path):
    header, rows = table(CHAT)
    stale = [{**r, "predicted_power_w": "1", "exceeds_kv_capacity": "1"} for r in rows[:2]]
    path = write_table(tmp_path / "old.csv", ["predicted_power_w", *header, "exceeds_kv_capacity"], stale)
    out = tmp_path / "new.csv"
    predict(path, out, calibration="mlenergy-v3")
    new_header, written = table(out)
    assert new_header == [*header, *PREDICTED_COLUMNS]
    assert all(float(w["predicted_power_w"]) > 100 and w["exceeds_kv_capacity"] == "0" for w in written)


# --- row 8: the summary of --fit prompt_tokens ------------------------------------------------------


def test_calibrate_fitting_only_prompt_tokens_says_what_it_fitted(tmp_path, capsys):
    path = h100_subset(tmp_path, n=12)
    out = tmp_path / "c.toml"
    assert main(["calibrate", path, "-o", str(out), "--fit", "prompt_tokens"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fitted prompt_tokens on 12 rows (no mechanism named: each at its prior) in ")
    assert lines[1].startswith("prompt_tokens: blank in the data; fitted ")
    assert lines[2] == "  H100 (12 rows): every mechanism at its prior"
    assert all(line.strip() and not line.rstrip().endswith(":") for line in lines)
    assert "fitted  " not in "\n".join(lines)


def test_calibrate_fitting_nothing_says_so(tmp_path, capsys):
    header, rows = table(h100_subset(tmp_path, n=4))
    path = write_table(tmp_path / "known.csv", header, [{**r, "prompt_tokens": "100"} for r in rows])
    assert main(["calibrate", path, "-o", str(tmp_path / "c.toml"), "--fit", "prompt_tokens"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("fitted nothing on 4 rows (no mechanism named, and every row gives its prompt")
    assert lines[1] == "  H100 (4 rows): every mechanism at its prior"
    assert "nothing to fit" in captured.err


def test_calibrate_summary_counts_distinct_rows(tmp_path, capsys):
    path = h100_subset(tmp_path, n=10)
    assert main(["calibrate", path, path, "-o", str(tmp_path / "c.toml"), "--fit", ",".join(FIT_FEW)]) == 0
    captured = capsys.readouterr()
    assert (
        "fitted bandwidth_efficiency, step_overhead_s, power_idle_fraction per gpu on 10 distinct rows of 20"
        in (captured.out)
    )
    assert "  H100 (10 rows): bandwidth_efficiency " in captured.out
    assert "sweep: warning: " in captured.err and "10 of 20 rows repeat" in captured.err
