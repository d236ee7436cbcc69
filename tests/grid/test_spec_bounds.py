"""Grid values that would overflow the engine (huge, non-finite, wrong types) are refused by the spec with a
one-line SweepInputError naming the key and the largest allowed value, before anything is allocated."""

import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sweep
from sweep import SweepInputError
from sweep import validate as V
from sweep.cli import main
from sweep.grid.spec import AXES, MAX_DENSE_PARAMS, parse

FAST = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
INSTANCE = {"profile": "roofline", "axes": {"gpu": ["H100"], "model": ["llama-3.1-8b"], "context": [8192]}}
FLEET = {
    "profile": "roofline",
    "axes": {"gpu": ["H100"], "model": ["llama-3.1-8b"], "workload": ["lmsys"], "topology": ["pool"]},
}
NUMERIC = [n for n, a in AXES.items() if a.kind not in ("name", "choice")]
HUGE = st.sampled_from(
    [2**53, 2**53 + 1, 2**63, 2**64, 10**19, 10**30, 10**400, 1e19, 1e300, 1.7e308, -1e300, 2.0**53 + 2]
)
WEIRD = st.one_of(
    HUGE,
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, -0.0, 0.5, True, False, "x", "max", "", None]),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(1, 10), max_size=2),
    st.dictionaries(st.sampled_from(["start", "stop"]), st.integers(), max_size=2),
)
VALUE = st.one_of(WEIRD, st.lists(WEIRD, min_size=1, max_size=3))
RANGE = st.fixed_dictionaries(
    {"start": WEIRD, "stop": WEIRD},
    optional={"step": WEIRD, "num": WEIRD, "spacing": st.sampled_from(["linear", "geometric", "pow2", "x"])},
)


def grid_with(name: str, value) -> dict:
    """The instance or fleet grid (by the axis's group) with `value` under [axes] `name`."""
    base = FLEET if AXES[name].group == "fleet" else INSTANCE
    return {**base, "axes": {**base["axes"], name: value}}


def parsed_or_refused(grid: dict):
    """parse(grid), or None for a one-line SweepInputError; any other exception fails the test."""
    try:
        return parse(grid)
    except SweepInputError as exc:
        assert "\n" not in str(exc), str(exc)
        return None


def check_valid(spec) -> None:
    """Every accepted number is finite, within its axis's bound, and an int64 where it is a count."""
    for name, values in spec.axes.items():
        bound = AXES[name].bound
        for v in values:
            if isinstance(v, str):
                continue
            assert math.isfinite(v), (name, v)
            if bound is not None:
                assert v <= bound, (name, v)
            if AXES[name].kind in ("positive_int", "batch"):
                assert isinstance(v, int) and np.int64(v) == v, (name, v)


@FAST
@given(name=st.sampled_from(NUMERIC), value=VALUE)
def test_fuzzed_axis_values_give_a_valid_spec_or_one_line_error(name, value):
    spec = parsed_or_refused(grid_with(name, value))
    if spec is not None:
        check_valid(spec)


@FAST
@given(name=st.sampled_from(NUMERIC), table=RANGE)
def test_fuzzed_range_tables_give_a_valid_spec_or_one_line_error(name, table):
    spec = parsed_or_refused(grid_with(name, table))
    if spec is not None:
        check_valid(spec)


@FAST
@given(value=st.one_of(WEIRD, st.floats(1e-6, 2e15)))
def test_fuzzed_dense_params_give_a_valid_spec_or_one_line_error(value):
    spec = parsed_or_refused(grid_with("model", {"dense_params": value}))
    if spec is not None:
        assert all(0 < float(m[len("dense-") : -1]) * 1e9 <= MAX_DENSE_PARAMS for m in spec.axes["model"])


@pytest.mark.parametrize(
    "name, value",
    [
        ("context", 1e300),
        ("context", 10**30),
        ("context", 2**53 + 1),
        ("batch", 1e19),
        ("batch", 10**400),
        ("tp", 2**64),
        ("expert_parallel", 1e300),
        ("data_parallel", 10**30),
        ("prefill_chunk_tokens", 1e300),
        ("b_short", 1e300),
        ("long_context", 10**30),
    ],
)
def test_too_large_counts_name_the_key_and_the_largest_allowed_value(name, value):
    with pytest.raises(SweepInputError, match=rf"axes\.{name}: got .*at most 2\^53 = 9007199254740992"):
        parse(grid_with(name, [value]))


def test_kv_block_tokens_and_reserve_bytes_have_their_own_bounds():
    with pytest.raises(SweepInputError, match=r"axes\.kv_block_tokens: .*at most 2\^20 = 1048576"):
        parse(grid_with("kv_block_tokens", [2**21]))
    with pytest.raises(SweepInputError, match=r"axes\.reserve_bytes: .*at most 2\^53"):
        parse(grid_with("reserve_bytes", [1e300]))


@pytest.mark.parametrize("value", [math.inf, math.nan, -math.inf])
def test_non_finite_counts_are_refused(value):
    with pytest.raises(SweepInputError, match=r"axes\.context: got .*; allowed: finite integers > 0"):
        parse(grid_with("context", [value]))


def test_largest_count_is_accepted():
    spec = parse(grid_with("context", [2**53]))
    assert spec.axes["context"] == [2**53] and np.int64(2**53) == 2**53


@pytest.mark.parametrize(
    "table",
    [
        {"start": 1, "stop": 1e300, "step": 1},
        {"start": 1, "stop": 1e300, "num": 3},
        {"start": 1, "stop": 1e300, "num": 3, "spacing": "geometric"},
        {"start": 1, "stop": 2**1000, "spacing": "pow2"},
    ],
)
def test_a_range_with_a_huge_stop_is_refused_before_it_is_expanded(table):
    begin = time.perf_counter()
    with pytest.raises(SweepInputError, match=r"axes\.context\.stop: got .*at most 2\^53"):
        parse(grid_with("context", table))
    assert time.perf_counter() - begin < 1.0


def test_a_range_of_too_many_counts_is_refused_by_its_size():
    with pytest.raises(SweepInputError, match=r"axes\.context: the range has 9\.007e\+15 values"):
        parse(grid_with("context", {"start": 1, "stop": 2**53, "step": 1}))


@pytest.mark.parametrize("name", ["dense-1e300b", "dense-2e6b", "dense-0b"])
def test_dense_model_names_beyond_the_bound_are_refused(name):
    with pytest.raises(SweepInputError, match=r"axes\.model: .*parameters; allowed: dense-<N>b with"):
        parse(grid_with("model", [name]))


def test_dense_params_beyond_the_bound_are_refused():
    with pytest.raises(
        SweepInputError, match=r"axes\.model\.dense_params: got 1e\+300; allowed: .*at most 1e\+15"
    ):
        parse(grid_with("model", {"dense_params": [1e300]}))
    with pytest.raises(SweepInputError, match=r"axes\.model\.dense_params\.stop: got 1e\+300"):
        parse(grid_with("model", {"dense_params": {"start": 1e9, "stop": 1e300, "num": 3}}))


def test_api_huge_context_is_a_sweep_input_error_not_an_overflow():
    with pytest.raises(SweepInputError, match=r"axes\.context: got 10{30}; allowed: .*2\^53"):
        sweep.run(grid_with("context", [10**30]))


@pytest.mark.parametrize(
    "line", ["context = [1e300]", "batch = [1e19]", "context = {start = 1, stop = 1e300, num = 3}"]
)
def test_cli_huge_grid_values_exit_2_with_one_line(tmp_path, capsys, line):
    grid = tmp_path / "g.toml"
    body = 'profile = "roofline"\n[axes]\ngpu = ["H100"]\nmodel = ["llama-3.1-8b"]\n'
    grid.write_text(body + (line if "context" in line else "context = [8192]\n" + line) + "\n")
    assert main(["run", str(grid), "-o", str(tmp_path / "c.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sweep: error: ") and "\n" not in err and "2^53" in err, err
    assert not (tmp_path / "c.nc").exists()


def test_counts_up_to_the_bound_run_without_overflow():
    """The largest context and batch run end to end (int64 coordinates, int64 floors): nothing fits."""
    ds = sweep.run(
        {
            **INSTANCE,
            "convention": "paper",
            "axes": {**INSTANCE["axes"], "context": [V.MAX_COUNT], "batch": [V.MAX_COUNT]},
        }
    )
    assert int(ds.context.values[0]) == 2**53 and int(ds.batch.values[0]) == 2**53
    assert int(ds.feasible.values.ravel()[0]) == 0
