"""Monte Carlo uncertainty in the compiled kernel (sweep.uncertainty.montecarlo, sweep.grid.engine.run_samples).

The acceptance case of issue #11: B200, Llama-3.1-70B, TP8 (roofline, physical convention) with ±20 %
uniform errors on the B200's HBM bandwidth, memory and TDP. The kernel evaluates every grid point under
the same joint draws; a brute-force loop of plain `sweep.run` calls, one per draw, on a grid whose
inline `[gpus.B200X]` holds the catalog B200 specs × that draw's multipliers, must give the same values
per draw (to rounding: both compute value × multiplier in float64 and then the same model), hence the
same mean, standard deviation and quantiles.

Statistical tolerances: the mean of N draws has standard error σ/√N and the p-quantile lies between
the order statistics y_(l) and y_(u) of the binomial interval (l, u) of Bin(N, p) — both for
independent draws; the scrambled Sobol' draws only do better. The checks use 4 standard errors or
intervals of coverage 1 − 1e-4.
"""

import json
import math

import numpy as np
import pytest
from scipy import stats

import sweep
from sweep.catalogs.gpus import default_gpu_catalog
from sweep.grid import spec as _grid
from sweep.grid.tables import profile_table
from sweep.uncertainty import draws as D

CONTEXTS = [8192, 32768]
BASE = {
    "profile": "roofline",
    "convention": "physical",
    "tp": 8,
    "axes": {"gpu": ["B200"], "model": ["llama-3.1-70b"], "context": CONTEXTS},
}
FIELDS = ["hbm_bandwidth_bytes_per_s", "memory_bytes", "tdp_w"]
NAMES = [f"B200.{f}" for f in FIELDS]
WIDTH = 0.20
N_LOOP = 64  # draws checked one by one against plain runs
N_BIG = 16384  # draws for the statistics (σ/√N ≈ 0.13 % of the mean)
QUANTILES = (0.05, 0.5, 0.95)
ALPHA = 1e-4  # order-statistic intervals of coverage 1 − ALPHA
K_SE = 4.0
Y = "tokens_per_watt"


def grid(samples, *, seed=0, keep=False, **extra):
    return {
        **BASE,
        **extra,
        "uncertainty": {
            "method": "monte_carlo",
            "samples": samples,
            "seed": seed,
            "keep_samples": keep,
            "parameters": {f: {"distribution": "uniform", "width": WIDTH} for f in FIELDS},
        },
    }


def flat(da):
    """(…, points): the grid dims (gpu, model, context, batch) flattened, leading dims kept."""
    lead = [d for d in da.dims if d in ("sample", "quantile")]
    return da.transpose(*lead, "gpu", "model", "context", "batch").values.reshape(
        tuple(da.sizes[d] for d in lead) + (-1,)
    )


def order_interval(y, p, alpha=ALPHA):
    """(lo, hi) per column: y_(l) ≤ q_p ≤ y_(u) with probability ≥ 1 − alpha for independent draws."""
    n = len(y)
    ys = np.sort(y, axis=0)
    lo = int(stats.binom.ppf(alpha / 2, n, p))  # P(#{y ≤ q_p} < lo) ≤ alpha/2
    hi = int(stats.binom.ppf(1 - alpha / 2, n, p)) + 1
    low = ys[lo - 1] if lo >= 1 else np.full(ys.shape[1], -np.inf)
    high = ys[hi - 1] if hi <= n else np.full(ys.shape[1], np.inf)
    return low, high


@pytest.fixture(scope="module")
def small():
    return sweep.run(grid(N_LOOP, keep=True))


@pytest.fixture(scope="module")
def big():
    return sweep.run(grid(N_BIG))


@pytest.fixture(scope="module")
def big_chunked():
    """The same draws, blocks of one grid point (chunk_points 1024 < N_BIG), samples kept."""
    return sweep.run(grid(N_BIG, keep=True, chunk_points=1024))


@pytest.fixture(scope="module")
def loop(small):
    """tokens_per_watt (draw, point) from one plain run per draw of `small` on an inline B200X."""
    specs = {k: v.value for k, v in default_gpu_catalog().get("B200").specs.items()}
    out = []
    for row in small.draw.transpose("sample", "uncertain_parameter").values:
        m = dict(zip(small.uncertain_parameter.values, row))
        gpu = {k: v * m.get(f"B200.{k}", 1.0) for k, v in specs.items()}
        spec = {**BASE, "gpus": {"B200X": gpu}, "axes": {**BASE["axes"], "gpu": ["B200X"]}}
        out.append(flat(sweep.run(spec)[Y]))
    return np.stack(out)


def test_draws_are_the_declared_parameters(small):
    assert list(small.uncertain_parameter.values) == NAMES
    described = json.loads(small.attrs["uncertainty_parameters"])
    assert described == [{"name": n, "distribution": "uniform", "size": WIDTH} for n in NAMES]
    assert f"same {N_LOOP} joint draws of 3 uncertain parameters" in small.attrs["uncertainty_method"]
    # the run's draws are those sweep.uncertainty.draws makes for the same options
    spec = _grid.parse(grid(N_LOOP, keep=True))
    params = D.parameters(profile_table(spec), spec.uncertainty)
    expected = D.multipliers(params, spec.uncertainty)[:, :3]
    np.testing.assert_array_equal(small.draw.transpose("sample", "uncertain_parameter").values, expected)
    assert np.all(np.abs(expected - 1) <= WIDTH) and small.sizes["sample"] == N_LOOP


def test_kernel_equals_a_loop_of_plain_runs_per_draw(small, loop):
    kernel = flat(small[f"{Y}_samples"])
    assert kernel.shape == loop.shape == (N_LOOP, len(CONTEXTS))
    assert np.isfinite(loop).all()
    # rounding only: the same float64 products value × multiplier, then the same model
    np.testing.assert_allclose(kernel, loop, rtol=1e-12, atol=0)


def test_kernel_statistics_equal_the_loops(small, loop):
    np.testing.assert_allclose(flat(small[f"{Y}_mean"]), loop.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(flat(small[f"{Y}_std"]), loop.std(axis=0), rtol=1e-10)
    assert list(small["quantile"].values) == list(QUANTILES)
    np.testing.assert_allclose(flat(small[f"{Y}_quantile"]), np.quantile(loop, QUANTILES, axis=0), rtol=1e-12)


def test_big_sample_statistics_agree_with_the_loop_within_sampling_error(big, loop):
    mean, std = flat(big[f"{Y}_mean"]), flat(big[f"{Y}_std"])
    assert np.all(np.abs(loop.mean(axis=0) - mean) <= K_SE * std / math.sqrt(N_LOOP))
    q = flat(big[f"{Y}_quantile"])
    for i, p in enumerate(QUANTILES):
        low, high = order_interval(loop, p)
        assert np.all((low <= q[i]) & (q[i] <= high)), (p, low, q[i], high)


def test_chunk_size_does_not_change_the_results(big, big_chunked):
    for stat in ("mean", "std", "quantile"):
        # same draws and per-draw values; a sum over the draws may be ordered differently per block shape
        np.testing.assert_allclose(big_chunked[f"{Y}_{stat}"], big[f"{Y}_{stat}"], rtol=1e-14, atol=0)
    np.testing.assert_array_equal(big_chunked[f"{Y}_quantile"], big[f"{Y}_quantile"])


def test_band_is_asymmetric(big_chunked):
    """TDP enters as 1/TDP (convex): the upper tail is longer. q95 + q05 − 2·q50 > 0 beyond 4 bootstrap SEs."""
    y = flat(big_chunked[f"{Y}_samples"])
    q = np.quantile(y, QUANTILES, axis=0)
    asymmetry = q[2] + q[0] - 2 * q[1]
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(200):
        r = np.quantile(y[rng.integers(0, len(y), len(y))], QUANTILES, axis=0)
        boot.append(r[2] + r[0] - 2 * r[1])
    assert np.all(asymmetry > K_SE * np.std(boot, axis=0)), (asymmetry, np.std(boot, axis=0))


def test_mean_is_above_the_nominal_value(big):
    """E[1/TDP] > 1/E[TDP] (for U(0.8, 1.2): ln(1.5)/0.4 = 1.014): the mean sits above the nominal value."""
    mean, std = flat(big[f"{Y}_mean"]), flat(big[f"{Y}_std"])
    nominal = flat(big[Y])
    assert np.all(mean - nominal > K_SE * std / math.sqrt(N_BIG)), (mean, nominal)
    # ...by about the TDP convexity (bandwidth and memory move it by less), well under 3 %
    assert np.all((mean / nominal - 1 > 0.005) & (mean / nominal - 1 < 0.03))


def test_first_order_low_end_is_below_the_monte_carlo_5_percent_quantile(big_chunked):
    first = sweep.run(
        {
            **BASE,
            "uncertainty": {
                "method": "first_order",
                "parameters": {f: {"distribution": "uniform", "width": WIDTH} for f in FIELDS},
            },
        }
    )
    low = flat(first[f"{Y}_low"])
    q05_low, _ = order_interval(flat(big_chunked[f"{Y}_samples"]), 0.05)
    assert np.all(low < q05_low), (low, q05_low)
    # both describe the same inputs: the first-order σ is within 15 % of the Monte Carlo σ
    rel = flat(first[f"{Y}_rel_uncertainty"]) * flat(first[Y])
    np.testing.assert_allclose(rel, flat(big_chunked[f"{Y}_std"]), rtol=0.15)


def test_same_seed_same_results_other_seed_other_draws(small):
    again = sweep.run(grid(N_LOOP, keep=True))
    for name in ("draw", f"{Y}_samples", f"{Y}_mean", f"{Y}_std", f"{Y}_quantile"):
        np.testing.assert_array_equal(again[name], small[name])
    other = sweep.run(grid(N_LOOP, seed=1, keep=True))
    assert not np.any(other.draw.values == small.draw.values)
    assert np.all(flat(other[f"{Y}_mean"]) != flat(small[f"{Y}_mean"]))
    # ...and the two seeds agree within sampling error (difference of two means: σ·√(2/N))
    std = flat(small[f"{Y}_std"])
    assert np.all(
        np.abs(flat(other[f"{Y}_mean"]) - flat(small[f"{Y}_mean"])) <= K_SE * std * math.sqrt(2 / N_LOOP)
    )


def test_kept_samples_reduce_to_the_statistics(small, big_chunked):
    for ds, n in ((small, N_LOOP), (big_chunked, N_BIG)):
        y = flat(ds[f"{Y}_samples"])
        assert y.shape == (n, len(CONTEXTS)) and ds.draw.shape == (n, 3)
        np.testing.assert_allclose(np.nanmean(y, axis=0), flat(ds[f"{Y}_mean"]), rtol=1e-13)
        np.testing.assert_allclose(np.nanstd(y, axis=0), flat(ds[f"{Y}_std"]), rtol=1e-10)
        np.testing.assert_allclose(
            np.nanquantile(y, QUANTILES, axis=0), flat(ds[f"{Y}_quantile"]), rtol=1e-13
        )
    assert f"{Y}_samples" not in sweep.run(grid(N_LOOP))


def test_fleet_grid_monte_carlo():
    ds = sweep.run(
        {
            "convention": "physical",
            "arrival_rate": 1000.0,
            "ttft_p99_s": 0.5,
            "axes": {
                "gpu": ["B200"],
                "model": ["llama-3.1-70b"],
                "workload": ["azure"],
                "topology": ["homogeneous", "fleetopt"],
                "b_short": [4096],
                "gamma": [2.0],
            },
            "uncertainty": {"method": "monte_carlo", "samples": 16},
        }
    )
    target = "fleet_tokens_per_watt"
    mean, std, q = ds[f"{target}_mean"], ds[f"{target}_std"], ds[f"{target}_quantile"]
    assert mean.sizes["topology"] == 2 and np.isfinite(mean).all()
    assert (std > 0).all()  # the B200 profile is projected: its values are drawn
    assert (q.sel(quantile=0.05) <= mean).all() and (mean <= q.sel(quantile=0.95)).all()
    names = [p["name"] for p in json.loads(ds.attrs["uncertainty_parameters"])]
    assert names and all(n.startswith("B200/llama-3.1-70b.") for n in names)


def test_calibrated_grid_draws_the_calibrated_mechanisms_lognormally():
    ds = sweep.run(
        {**BASE, "calibration": "mlenergy-v3", "uncertainty": {"method": "monte_carlo", "samples": 16}}
    )
    described = {p["name"]: p for p in json.loads(ds.attrs["uncertainty_parameters"])}
    mechanisms = {"B200.bandwidth_efficiency", "B200.step_overhead_s", "B200.power_idle_fraction"}
    assert mechanisms <= set(described)
    for name, p in described.items():
        field = name.split(".", 1)[1]
        if field in ("hbm_bandwidth_bytes_per_s", "memory_bytes", "fp16_flops", "fp8_flops", "tdp_w"):
            assert (p["distribution"], p["size"]) == ("uniform", WIDTH), name
        else:  # a fitted mechanism: lognormal with its relative standard error
            assert p["distribution"] == "lognormal" and 0 < p["size"] < 1, name
    assert np.isfinite(ds[f"{Y}_mean"]).all() and (ds[f"{Y}_std"] > 0).all()
