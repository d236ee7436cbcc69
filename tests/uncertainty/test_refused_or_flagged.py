"""Monte Carlo, the first-order band and `sweep sensitivity` refuse or flag what they cannot answer
(one test, or more, per row of the issue): a design over the memory budget, a seed outside
[0, 2^63), samples 0 (or bool, or fractional), Sobol' N not a power of 2 and indices outside [0, 1],
infeasible draws, a first-order band below zero, and --samples without an uncertainty method.

Library checks are tested through the Python API (`sweep.run`, `sweep.sensitivity`), and the
command line through `sweep.cli.main` (SweepInputError -> "sweep: error: ..." and exit status 2).
"""

import re
import warnings

import numpy as np
import pytest

import sweep
from sweep.cli import main
from sweep.errors import SweepInputError, SweepWarning
from sweep.uncertainty import sensitivity as _sens

# B200 × Llama-3.1-8B (roofline, physical): 8 grid points; the five projected B200 specs are uncertain
GRID8 = {
    "profile": "roofline",
    "convention": "physical",
    "axes": {"gpu": ["B200"], "model": ["llama-3.1-8b"], "context": [4096, 8192, 16384, 32768], "tp": [1, 2]},
}
GRID8_TOML = """
profile = "roofline"
convention = "physical"
[axes]
gpu = ["B200"]
model = ["llama-3.1-8b"]
context = [4096, 8192, 16384, 32768]
tp = [1, 2]
"""
D = 5  # uncertain parameters of GRID8
# the 8B fits at 128K on one B200 under every draw; the 70B at TP1 does not at nominal (nor in most draws)
INFEASIBLE = {
    "profile": "roofline",
    "convention": "physical",
    "tp": 1,
    "axes": {"gpu": ["B200"], "model": ["llama-3.1-8b", "llama-3.1-70b"], "context": [131072]},
}
# B200 × Llama-3.1-70B TP8 (the first-order tests' grid)
BASE = {
    "profile": "roofline",
    "convention": "physical",
    "tp": 8,
    "axes": {"gpu": ["B200"], "model": ["llama-3.1-70b"], "context": [8192, 32768]},
}
ALLOWED_SEED = "allowed: integers 0 <= seed < 2^63"


@pytest.fixture
def grid8(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(GRID8_TOML)
    return str(path)


def one_error(capsys) -> str:
    """The one error line on stderr (after any `sweep: warning:` lines), no traceback."""
    lines = [
        line
        for line in capsys.readouterr().err.strip().splitlines()
        if not line.startswith("sweep: warning: ")
    ]
    assert len(lines) == 1 and lines[0].startswith("sweep: error: "), lines
    return lines[0]


# ------------------------------------------------------------------------------------------------
# 1. a design over the memory budget is refused before anything is allocated


@pytest.fixture
def nothing_evaluated(monkeypatch):
    """Fail the test if the design is built or evaluated."""

    def boom(*args, **kwargs):
        raise AssertionError("the design was built or evaluated")

    for name in ("run_samples", "unit_draws", "multipliers_of"):
        monkeypatch.setattr(_sens, name, boom)
    monkeypatch.setattr(_sens.ix, "sobol_design", boom)
    monkeypatch.setattr(_sens.ix, "morris_design", boom)


@pytest.mark.parametrize("method", ["sobol", "morris", "dgsm"])
def test_sensitivity_huge_samples_over_the_memory_budget_is_refused_before_allocating(
    method, nothing_evaluated
):
    with pytest.raises(SweepInputError) as err:
        sweep.sensitivity(GRID8, method=method, samples=99999999, max_memory="1GiB")
    msg = str(err.value)
    assert "\n" not in msg
    assert re.search(
        rf"sensitivity: the {method} design of \d+ base samples \([\d,]+ evaluations at each of 8 grid points, "
        r"5 parameters\) needs about [\d.]+ (GB|TB) in memory, over the budget of 1\.1 GB \(max_memory; ",
        msg,
    ), msg
    # ...and it names the largest --samples that fits: that design is under the budget, twice it is not
    fits = int(re.search(r"use at most --samples (\d+)", msg).group(1))
    budget = 1 << 30
    assert _sens.design_bytes(method, fits, D, 8) <= budget < _sens.design_bytes(method, 2 * fits, D, 8)
    if method == "sobol":
        assert fits & (fits - 1) == 0  # a power of 2, as the design will use


def test_sensitivity_memory_budget_defaults_to_sweep_runs(monkeypatch, nothing_evaluated):
    """No max_memory: $SWEEP_MAX_MEMORY, else half of RAM (sweep.io.memory.memory_budget, as sweep.run)."""
    monkeypatch.setenv("SWEEP_MAX_MEMORY", "10MB")
    with pytest.raises(SweepInputError, match=r"over the budget of 10\.0 MB \(SWEEP_MAX_MEMORY; "):
        sweep.sensitivity(GRID8, method="sobol", samples=1 << 16)
    monkeypatch.delenv("SWEEP_MAX_MEMORY")
    with pytest.raises(SweepInputError, match=r"\(half of RAM; set --max-memory or SWEEP_MAX_MEMORY\)"):
        sweep.sensitivity(GRID8, method="sobol", samples=99999999)


def test_sensitivity_design_estimate_covers_its_arrays():
    """The estimate is at least the arrays the design certainly holds: outputs, design, multipliers."""
    for method, rows in (("sobol", 1024 * (D + 2)), ("morris", 1024 * (D + 1)), ("dgsm", 1024)):
        held = 8 * (rows * 8 + rows * D + rows * (D + 1))
        assert _sens.design_bytes(method, 1024, D, 8) > held, method


def test_cli_sensitivity_huge_samples_exits_2_with_max_memory(grid8, capsys):
    assert main(["sensitivity", grid8, "--samples", "99999999", "--max-memory", "1GiB"]) == 2
    err = one_error(capsys)
    assert "sensitivity: the sobol design of 134217728 base samples" in err
    assert "over the budget of 1.1 GB (max_memory" in err


# ------------------------------------------------------------------------------------------------
# 2. seeds: 0 <= seed < 2^63, for sensitivity and for Monte Carlo


@pytest.mark.parametrize("seed", [-1, 2**63, 99999999999999999999, True, 1.5, "0"])
def test_sensitivity_seed_outside_0_to_2_63_is_refused(seed, nothing_evaluated):
    with pytest.raises(SweepInputError, match=re.escape(f"--seed {seed!r}: {ALLOWED_SEED}")):
        sweep.sensitivity(GRID8, method="sobol", samples=8, seed=seed)


@pytest.mark.parametrize("seed", [-1, 2**63, 99999999999999999999, True])
def test_run_monte_carlo_seed_outside_0_to_2_63_is_refused(seed):
    with pytest.raises(SweepInputError, match=re.escape(f"uncertainty.seed: got {seed!r}; {ALLOWED_SEED}")):
        sweep.run(BASE, uncertainty="monte_carlo", samples=8, seed=seed)
    with pytest.raises(SweepInputError, match=re.escape(f"uncertainty.seed: got {seed!r}; {ALLOWED_SEED}")):
        sweep.run({**BASE, "uncertainty": {"seed": seed, "samples": 8}})


def test_seed_check_is_one_function():
    """The grid file, sweep.run and sweep.sensitivity use the same range check."""
    from sweep.grid.uncertainty_options import SEED_LIMIT, valid_seed

    assert SEED_LIMIT == 2**63
    assert [valid_seed(s) for s in (0, 2**63 - 1, np.int64(5), 3.0)] == [0, 2**63 - 1, 5, 3]
    assert {valid_seed(s) for s in (-1, 2**63, 10**20, True, np.True_, 0.5, float("inf"), "1", None)} == {
        None
    }


def test_largest_seed_works_for_sensitivity_and_monte_carlo():
    seed = 2**63 - 1
    s = sweep.sensitivity(GRID8, method="sobol", samples=8, seed=seed)
    assert s.attrs["sensitivity_seed"] == seed and np.isfinite(s.ST).all()
    ds = sweep.run(BASE, uncertainty="monte_carlo", samples=8, seed=seed)
    assert f"seed {seed}" in ds.attrs["uncertainty_method"]


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999"])
def test_cli_seed_out_of_range_exits_2(grid8, capsys, seed, tmp_path):
    assert main(["sensitivity", grid8, "--seed", seed]) == 2
    assert f"--seed {seed}: {ALLOWED_SEED}" in one_error(capsys)
    out = tmp_path / "mc.nc"
    assert main(["run", grid8, "--uncertainty", "--samples", "8", "--seed", seed, "-o", str(out), "-q"]) == 2
    assert f"uncertainty.seed: got {seed}; {ALLOWED_SEED}" in one_error(capsys)
    assert not out.exists()


# ------------------------------------------------------------------------------------------------
# 3. samples 0 (and bool, fractional, negative) are refused, not the default


@pytest.mark.parametrize("method", ["sobol", "morris", "dgsm"])
@pytest.mark.parametrize("samples", [0, 1, -4, True, False, 2.5, "64", float("nan")])
def test_sensitivity_samples_zero_or_not_an_integer_is_refused(method, samples, nothing_evaluated):
    with pytest.raises(SweepInputError, match=re.escape(f"--samples {samples!r}: allowed: integers >= 2")):
        sweep.sensitivity(GRID8, method=method, samples=samples)


def test_sensitivity_samples_none_is_the_default(nothing_evaluated):
    assert _sens.check_samples("sobol", None) == 1024 and _sens.check_samples("morris", None) == 64
    assert _sens.check_samples("sobol", 64.0) == 64 and _sens.check_samples("dgsm", np.int64(2)) == 2


def test_cli_sensitivity_samples_zero_exits_2(grid8, capsys):
    assert main(["sensitivity", grid8, "--method", "sobol", "--samples", "0"]) == 2
    assert "--samples 0: allowed: integers >= 2" in one_error(capsys)


# ------------------------------------------------------------------------------------------------
# 4. Sobol' N rounded up to a power of 2 (a notice, no raw scipy warning); indices outside [0, 1] flagged


def test_sobol_samples_100_rounded_up_to_128_with_a_notice_and_no_scipy_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = sweep.sensitivity(GRID8, method="sobol", samples=100)
    ours = [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    others = [str(w.message) for w in caught if not issubclass(w.category, SweepWarning)]
    assert not others, others  # scipy's "balance properties of Sobol' points require n to be a power of 2"
    rounding = [m for m in ours if "rounded up" in m]
    assert rounding == [
        "sensitivity: --samples 100 rounded up to 128: Sobol' base samples are a power of 2 (the scrambled "
        "Sobol' sequence is balanced only at 2^m points)"
    ]
    assert s.attrs["sensitivity_samples"] == 128
    assert s.attrs["evaluations"] == 128 * (D + 2) * 8


def test_sobol_power_of_2_samples_are_used_as_given():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = sweep.sensitivity(GRID8, method="sobol", samples=8)
    assert not [w for w in caught if "rounded up" in str(w.message) or "power of 2" in str(w.message)]
    assert s.attrs["sensitivity_samples"] == 8


def test_sobol_indices_outside_0_1_are_flagged_with_their_half_width():
    """N = 16: a few S1 fall just below 0 (sampling noise); the warning counts them against S1_conf/ST_conf."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = sweep.sensitivity(GRID8, method="sobol", samples=16)
    flagged = [str(w.message) for w in caught if "outside [0, 1]" in str(w.message)]
    assert len(flagged) == 1, [str(w.message) for w in caught]
    match = re.fullmatch(
        r"sensitivity: (\d+) of (\d+) Sobol' indices \(S1, ST\) lie outside \[0, 1\]: (\d+) by less than their "
        r"bootstrap 95 % half-width \(S1_conf, ST_conf: sampling noise, more --samples narrows it\), (\d+) by more",
        flagged[0],
    )
    assert match, flagged[0]
    outside, total, within, beyond = map(int, match.groups())
    expected_within = expected_beyond = 0
    for k in ("S1", "ST"):
        v, conf = s[k].values, s[f"{k}_conf"].values
        excess = np.maximum(-v, v - 1)
        expected_within += int(((excess > 0) & (excess <= conf)).sum())
        expected_beyond += int(((excess > 0) & (excess > conf)).sum())
    assert (within, beyond) == (expected_within, expected_beyond)
    assert outside == within + beyond > 0 and total == 2 * D * 8
    # the half-widths are there to read: every flagged index is within a few of them of [0, 1]
    assert {"S1_conf", "ST_conf"} <= set(s.data_vars)


def test_warn_outside_unit_interval_counts_within_and_beyond():
    out = {
        "S1": np.array([[-0.01, 0.5], [-0.3, np.nan]]),
        "S1_conf": np.array([[0.02, 0.1], [0.1, np.nan]]),
        "ST": np.array([[1.05, 0.5], [0.2, 1.0]]),
        "ST_conf": np.array([[0.1, 0.1], [0.1, 0.0]]),
    }
    with pytest.warns(
        SweepWarning, match=r"3 of 7 Sobol' indices .* outside \[0, 1\]: 2 by less .*, 1 by more"
    ):
        _sens.warn_outside_unit_interval(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _sens.warn_outside_unit_interval(
            {"S1": np.zeros(2), "S1_conf": np.zeros(2), "ST": np.ones(2), "ST_conf": np.zeros(2)}
        )


# ------------------------------------------------------------------------------------------------
# 5. infeasible draws: NaN indices (never finite ones that break S1 <= ST), feasible_fraction, a warning


@pytest.mark.parametrize(
    ("method", "indices"),
    [("sobol", ("S1", "ST", "S1_conf")), ("morris", ("mu_star", "sigma")), ("dgsm", ("nu",))],
)
def test_sensitivity_at_an_infeasible_point_gives_nan_indices_and_feasible_fraction(method, indices):
    with pytest.warns(
        SweepWarning, match=r"sensitivity: at 1 of 2 grid points some draws have no sequence"
    ) as w:
        s = sweep.sensitivity(INFEASIBLE, method=method, samples=32)
    msg = next(str(x.message) for x in w if "no sequence" in str(x.message))
    assert "indices are NaN at the 1 with a draw of no finite tokens_per_watt" in msg
    assert msg.endswith("see feasible_fraction")
    dropped, total = (
        int(v.replace(",", "")) for v in re.search(r"\(([\d,]+) of ([\d,]+) draws there\)", msg).groups()
    )
    fraction = s.feasible_fraction
    assert set(fraction.dims) == {"gpu", "model", "context", "batch"}
    big, small = fraction.sel(model="llama-3.1-70b"), fraction.sel(model="llama-3.1-8b")
    big, small = float(big.squeeze()), float(small.squeeze())
    assert small == 1.0 and 0 < big < 1
    assert dropped == round((1 - big) * total)
    for index in indices:
        assert np.isnan(s[index].sel(model="llama-3.1-70b")).all()  # every parameter, not memory = 0
        assert np.isfinite(s[index].sel(model="llama-3.1-8b")).all()
    if method == "sobol":
        ok = s.sel(model="llama-3.1-8b")
        assert (ok.S1 <= ok.ST + ok.S1_conf + ok.ST_conf).all()
    assert fraction.attrs["units"] == "1"


def test_feasibility_helper_nan_where_undefined_and_zero_draws_kept():
    """Paper convention: a draw where no sequence fits is a valid 0, so indices stay, and the warning says so."""
    y = np.array([[1.0, np.nan, 0.0, 2.0], [2.0, 1.0, 1.0, 3.0]])  # (draws, points)
    out = {"S1": np.ones((2, 4))}
    with pytest.warns(SweepWarning) as w:
        fraction = _sens.feasibility(y, out, "sobol", "tokens_per_watt", "g.toml")
    np.testing.assert_array_equal(fraction, [1.0, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(out["S1"], [[1, np.nan, 1, 1]] * 2)
    msg = str(w[0].message)
    assert msg.startswith(
        "g.toml: sensitivity: at 2 of 4 grid points some draws have no sequence that fits (2 of 4"
    )
    assert "at the other 1 they include those draws' tokens_per_watt = 0" in msg


def test_oat_at_an_infeasible_nominal_point_is_nan_with_a_warning():
    with pytest.warns(
        SweepWarning, match=r"some draws have no sequence that fits .* the bars of those draws are NaN"
    ):
        s = sweep.sensitivity(INFEASIBLE, method="oat")
    assert np.isnan(s.swing.sel(model="llama-3.1-70b")).all()
    assert np.isfinite(s.swing.sel(model="llama-3.1-8b")).all()


# ------------------------------------------------------------------------------------------------
# 6. the first-order band stays positive (log space) and is the linear band to first order


def first_order(distribution: str, size: float):
    key = "width" if distribution in ("uniform", "triangular") else "sigma"
    return sweep.run(
        {
            **BASE,
            "uncertainty": {
                "method": "first_order",
                "parameters": {"tdp_w": {"distribution": distribution, key: size}},
            },
        }
    )


def test_first_order_band_stays_positive_when_rel_uncertainty_is_large():
    ds = first_order("lognormal", 0.6)  # multiplier σ ≈ 0.79, elasticity ≈ −1: rel ≈ 0.79
    y, rel = ds.tokens_per_watt.values, ds.tokens_per_watt_rel_uncertainty.values
    low, high = ds.tokens_per_watt_low.values, ds.tokens_per_watt_high.values
    assert np.all(rel > 0.5)  # the linear band y·(1 − 2·rel) would be negative here
    assert np.all(y * (1 - 2 * rel) < 0)
    assert np.all((0 < low) & (low < y) & (y < high))
    np.testing.assert_allclose(low * high, y * y, rtol=1e-12)  # symmetric in ln y
    np.testing.assert_allclose(np.log(high / y), 2 * rel, rtol=1e-12)


def test_first_order_band_agrees_with_the_linear_band_for_small_rel_uncertainty():
    ds = first_order("uniform", 0.01)
    y, rel = ds.tokens_per_watt.values, ds.tokens_per_watt_rel_uncertainty.values
    assert np.all((rel > 1e-4) & (rel < 0.01))
    for band, sign in ((ds.tokens_per_watt_low.values, -1), (ds.tokens_per_watt_high.values, 1)):
        linear = y * (1 + sign * 2 * rel)
        # exp(∓2σ) − (1 ∓ 2σ) = 2σ² ∓ (4/3)σ³ + …: second order in σ, positive
        gap = (band - linear) / y
        assert np.all(gap > 0) and np.all(gap <= 2 * rel**2 * (1 + 2 * rel))
    assert "exp(-/+ 2 * rel_uncertainty)" in ds.attrs["uncertainty_method"]


# ------------------------------------------------------------------------------------------------
# 7. samples/seed without an uncertainty method are refused (no silent Monte Carlo, no silent non-streaming)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samples": 64}, "sweep.run: samples needs uncertainty: samples=64 given but no uncertainty method"),
        ({"seed": 3}, "sweep.run: seed needs uncertainty: seed=3 given but no uncertainty method"),
        (
            {"samples": 64, "seed": 3},
            "sweep.run: samples and seed need uncertainty: samples=64, seed=3 given",
        ),
        ({"samples": 64, "uncertainty": False}, "sweep.run: samples needs uncertainty"),
    ],
)
def test_run_samples_without_uncertainty_is_refused(kwargs, message, tmp_path):
    out = tmp_path / "out.nc"
    with pytest.raises(SweepInputError, match=re.escape(message)):
        sweep.run(BASE, out=out, **kwargs)
    with pytest.raises(SweepInputError, match=re.escape(message)):
        sweep.run({**BASE, "uncertainty": False}, out=out, **kwargs)
    assert not out.exists()


def test_run_samples_with_the_grids_uncertainty_table_is_monte_carlo():
    ds = sweep.run({**BASE, "uncertainty": {"seed": 1}}, samples=8)
    assert "8 joint draws" in ds.attrs["uncertainty_method"] and "seed 1" in ds.attrs["uncertainty_method"]


def test_run_samples_with_first_order_warns_they_are_ignored():
    with pytest.warns(SweepWarning, match=r"sweep\.run: samples ignored: the first-order band has no draws"):
        ds = sweep.run(BASE, uncertainty="first_order", samples=64)
    assert "tokens_per_watt_low" in ds


def test_cli_run_samples_without_uncertainty_exits_2(grid8, capsys, tmp_path):
    out = tmp_path / "out.nc"
    assert main(["run", grid8, "--samples", "64", "-o", str(out)]) == 2
    assert "samples needs uncertainty" in one_error(capsys)
    assert not out.exists() and not (tmp_path / "out.nc.partial").exists()
