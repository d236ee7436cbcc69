"""Uncertain parameters and their joint draws (sweep.uncertainty.draws): naming, sharing, transforms,
correlation. No kernel runs here: the parameters come from the profile table, the draws from SciPy.

Statistical tolerances: a mean of N independent draws has standard error σ/√N, a standard deviation
about σ·√(κ − 1)/(2√N) (κ the kurtosis), a Pearson correlation (1 − ρ²)/√N; the scrambled Sobol' and
Latin hypercube designs only do better than independent draws. Each check allows 5 standard errors (a false alarm about once in
two million runs), and the draws are seeded, so a pass is reproducible.
"""

import math

import numpy as np
import pytest
from scipy import stats

from sweep.errors import SweepInputError
from sweep.grid import spec as _grid
from sweep.grid.tables import profile_table
from sweep.grid.uncertainty_options import parse_uncertainty
from sweep.uncertainty import draws as D

N = 1 << 16  # draws for the statistical checks
K_SE = 5.0  # standard errors allowed


@pytest.fixture(scope="module")
def table():
    """gpu [H100, B200] × model [llama-3.1-8b, llama-3.1-70b]: rows (H100, 8b), (H100, 70b), (B200, 8b), (B200, 70b)."""
    spec = _grid.parse(
        {
            "profile": "roofline",
            "tp": 8,
            "axes": {
                "gpu": ["H100", "B200"],
                "model": ["llama-3.1-8b", "llama-3.1-70b"],
                "context": [8192],
            },
        },
        "grid.toml",
    )
    return profile_table(spec)


def options(**table):
    return parse_uncertainty("grid.toml", {"method": "monte_carlo", **table})


def uniform(name, width=0.2):
    return {name: {"distribution": "uniform", "width": width}}


def rows_of(table, gpu):
    labels = D._row_labels(table)
    return tuple(i for i, lab in enumerate(labels) if lab["gpu"] == gpu)


# --- naming and sharing ------------------------------------------------------------------------


def test_row_order_is_gpu_major(table):
    assert D._row_labels(table) == [
        {"gpu": g, "model": m} for g in ("H100", "B200") for m in ("llama-3.1-8b", "llama-3.1-70b")
    ]


def test_default_parameters_are_the_projected_catalog_values_one_per_gpu(table):
    params = D.parameters(table, options())
    # H100 specs are measured (no uncertainty), B200 specs projected ±20 %
    assert {p.name for p in params} == {
        "B200.hbm_bandwidth_bytes_per_s",
        "B200.memory_bytes",
        "B200.fp16_flops",
        "B200.fp8_flops",
        "B200.tdp_w",
    }
    b200 = rows_of(table, "B200")
    for p in params:
        assert p.distribution == "uniform" and p.size == 0.2
        assert p.rows == b200  # ONE parameter covering both models' rows


def test_one_parameter_moves_every_row_of_its_gpu(table):
    params = D.parameters(table, options(parameters=uniform("B200.hbm_bandwidth_bytes_per_s")))
    assert [p.name for p in params] == ["B200.hbm_bandwidth_bytes_per_s"]
    index = D.index_map(table, params)
    # rows of B200 (both models) read column 0; H100 rows the all-ones column 1
    np.testing.assert_array_equal(index["gpu.hbm_bandwidth_bytes_per_s"], [1, 1, 0, 0])
    assert set(index) == {"gpu.hbm_bandwidth_bytes_per_s"}
    m = D.multipliers(params, options(parameters=uniform("B200.hbm_bandwidth_bytes_per_s"), samples=8))
    assert m.shape == (8, 2) and np.all(m[:, 1] == 1.0)
    # the per-row multiplier of every B200 row is the same draw
    per_row = m[:, index["gpu.hbm_bandwidth_bytes_per_s"]]
    np.testing.assert_array_equal(per_row[:, 2], per_row[:, 3])
    np.testing.assert_array_equal(per_row[:, :2], 1.0)


def test_bare_field_name_selects_every_gpu_each_its_own_draw(table):
    params = D.parameters(table, options(parameters=uniform("hbm_bandwidth_bytes_per_s", 0.1)))
    assert [(p.name, p.rows, p.size) for p in params] == [
        ("H100.hbm_bandwidth_bytes_per_s", rows_of(table, "H100"), 0.1),
        ("B200.hbm_bandwidth_bytes_per_s", rows_of(table, "B200"), 0.1),
    ]
    index = D.index_map(table, params)
    np.testing.assert_array_equal(index["gpu.hbm_bandwidth_bytes_per_s"], [0, 0, 1, 1])
    m = D.multipliers(params, options(parameters=uniform("hbm_bandwidth_bytes_per_s", 0.1), samples=64))
    assert not np.allclose(m[:, 0], m[:, 1])  # drawn apart


def test_entity_field_selects_one_and_grid_wide_serving_value_is_one_parameter(table):
    given = {
        "B200.tdp_w": {"distribution": "triangular", "width": 0.1},
        "gpu_memory_utilization": {"distribution": "normal", "sigma": 0.02},
    }
    params = D.parameters(table, options(parameters=given))
    assert [(p.name, p.key, p.rows, p.distribution) for p in params] == [
        ("B200.tdp_w", "gpu.tdp_w", rows_of(table, "B200"), "triangular"),
        ("gpu_memory_utilization", "serving.gpu_memory_utilization", (0, 1, 2, 3), "normal"),
    ]


def test_unknown_parameter_is_one_line_error_listing_allowed(table):
    with pytest.raises(SweepInputError) as err:
        D.parameters(table, options(parameters=uniform("B300.tdp_w")), "grid.toml")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("grid.toml: uncertainty.parameters: unknown parameter 'B300.tdp_w'; allowed:")
    for field in ("hbm_bandwidth_bytes_per_s", "tdp_w", "gpu_memory_utilization"):
        assert field in msg
    assert "<entity>.<field>" in msg
    # a model is not an entity of GPU specs
    with pytest.raises(SweepInputError, match="unknown parameter 'llama-3.1-8b.tdp_w'"):
        D.parameters(table, options(parameters=uniform("llama-3.1-8b.tdp_w")))


def test_calibrated_mechanisms_are_lognormal_with_their_standard_errors():
    spec = _grid.parse(
        {
            "profile": "roofline",
            "tp": 8,
            "calibration": "mlenergy-v3",
            "axes": {"gpu": ["B200"], "model": ["llama-3.1-70b"], "context": [8192]},
        }
    )
    t = profile_table(spec)
    params = {p.name: p for p in D.parameters(t, options())}
    assert params["B200.tdp_w"].distribution == "uniform"
    mechanisms = [p for n, p in params.items() if p.key.startswith("serving.")]
    assert {p.name for p in mechanisms} >= {"B200.bandwidth_efficiency", "B200.step_overhead_s"}
    for p in mechanisms:
        assert p.distribution == "lognormal"
        # the table's half-width is √3·SE/|value|, so r = SE/|value| and σ = sqrt(ln(1 + r²))
        u = float(t.uncertainty[p.key][0])
        assert p.size == pytest.approx(math.sqrt(math.log1p((u / math.sqrt(3)) ** 2)), rel=1e-12)


# --- unit draws and transforms -----------------------------------------------------------------


def test_unit_draws_deterministic_open_cube_and_uniform():
    for sampler in ("sobol", "lhs"):
        u = D.unit_draws(3, 1024, seed=7, sampler=sampler)
        assert u.shape == (1024, 3)
        np.testing.assert_array_equal(u, D.unit_draws(3, 1024, seed=7, sampler=sampler))
        assert not np.array_equal(u, D.unit_draws(3, 1024, seed=8, sampler=sampler))
        assert np.all((u > 0) & (u < 1))
        # both designs are stratified: every one of 16 equal bins holds 64 ± 1 of the 1024 points
        counts = np.stack([np.bincount((u[:, j] * 16).astype(int), minlength=16) for j in range(3)])
        assert np.all(np.abs(counts - 64) <= 1), (sampler, counts)


def _iid(seed):
    return np.random.default_rng(seed).random(N)


def _mean_ok(x, mean, sd):
    assert abs(x.mean() - mean) <= K_SE * sd / math.sqrt(N), (x.mean(), mean)


def _std_ok(x, sd, kurtosis):
    assert abs(x.std() - sd) <= K_SE * sd * math.sqrt(kurtosis - 1) / (2 * math.sqrt(N)), (x.std(), sd)


def test_uniform_transform():
    w = 0.2
    m = D.transform(_iid(1), "uniform", w)
    assert m.min() >= 1 - w and m.max() <= 1 + w
    assert m.min() < 1 - 0.999 * w and m.max() > 1 + 0.999 * w  # fills the range
    _mean_ok(m, 1.0, w / math.sqrt(3))
    _std_ok(m, w / math.sqrt(3), 1.8)
    np.testing.assert_allclose(D.transform(np.array([0.0, 0.25, 0.5, 1.0]), "uniform", w), [0.8, 0.9, 1, 1.2])


def test_triangular_transform_symmetric():
    w = 0.3
    m = D.transform(_iid(2), "triangular", w)
    assert m.min() >= 1 - w and m.max() <= 1 + w
    sd = w / math.sqrt(6)
    _mean_ok(m, 1.0, sd)
    _std_ok(m, sd, 2.4)
    # symmetric about 1: the median is 1 (SE of a median 1/(2 f(1)√N), f(1) = 1/w)
    assert abs(np.median(m) - 1.0) <= K_SE * w / (2 * math.sqrt(N))
    # the mode is 1: density in the middle tenth is ~ twice that in the outer tenths
    central = np.mean(np.abs(m - 1) < 0.1 * w)
    assert central == pytest.approx(1 - 0.9**2, abs=K_SE * math.sqrt(0.19 * 0.81 / N))
    # exact quantiles: F⁻¹(1/8) = 1 − w/2
    np.testing.assert_allclose(D.transform(np.array([0.125, 0.5, 0.875]), "triangular", w), [0.85, 1, 1.15])


def test_normal_transform():
    s = 0.1
    m = D.transform(_iid(3), "normal", s)
    _mean_ok(m, 1.0, s)
    _std_ok(m, s, 3.0)
    np.testing.assert_allclose(D.transform(np.array([stats.norm.cdf(1.0)]), "normal", s), [1.1], rtol=1e-12)
    # truncated at a tiny positive value, never negative
    assert D.transform(np.array([1e-12]), "normal", 1.0)[0] == 1e-6


def test_lognormal_transform_has_median_one():
    s = 0.3
    m = D.transform(_iid(4), "lognormal", s)
    assert np.all(m > 0)
    # ln m is normal(0, s): its mean and std, and the median of m (the nominal value) is 1
    _mean_ok(np.log(m), 0.0, s)
    _std_ok(np.log(m), s, 3.0)
    assert abs(np.median(m) - 1.0) <= K_SE * math.sqrt(math.pi / 2) * s / math.sqrt(N)
    mean = math.exp(s * s / 2)
    _mean_ok(m, mean, mean * math.sqrt(math.expm1(s * s)))


@pytest.mark.parametrize(
    ("distribution", "size", "kurtosis"),
    [("uniform", 0.2, 1.8), ("triangular", 0.3, 2.4), ("normal", 0.1, 3.0), ("lognormal", 0.3, 5.0)],
)
def test_parameter_sigma_is_the_std_of_its_multiplier(distribution, size, kurtosis):
    """`Parameter.sigma` (the first-order band's σ, relative to the nominal value) is std(multiplier)."""
    p = D.Parameter("X.v", "gpu.v", (0,), distribution, size)
    m = D.transform(_iid(5), distribution, size)
    _std_ok(m, p.sigma, kurtosis)  # kurtosis: 1.8, 2.4, 3, and 4.6 for lognormal(0.3) (5 allowed)


# --- correlation (Gaussian copula) -------------------------------------------------------------

CORR_PARAMS = {
    "B200.tdp_w": {"distribution": "normal", "sigma": 0.1},
    "B200.hbm_bandwidth_bytes_per_s": {"distribution": "normal", "sigma": 0.1},
    "B200.memory_bytes": {"distribution": "uniform", "width": 0.2},
}
MATRIX = [[1.0, 0.8, -0.3], [0.8, 1.0, 0.0], [-0.3, 0.0, 1.0]]


@pytest.mark.parametrize("sampler", ["sobol", "lhs"])
def test_correlated_normal_scores_have_the_matrix(table, sampler):
    opts = options(
        samples=N,
        seed=11,
        sampler=sampler,
        parameters=CORR_PARAMS,
        correlation={"parameters": list(CORR_PARAMS), "matrix": MATRIX},
    )
    params = D.parameters(table, opts)
    assert [p.name for p in params] == list(CORR_PARAMS)
    m = D.multipliers(params, opts)
    assert m.shape == (N, 4) and np.all(m[:, -1] == 1)
    # normal scores: z = (m − 1)/σ for the normal ones, Φ⁻¹((m − 0.8)/0.4) for the uniform one
    z = np.column_stack([(m[:, 0] - 1) / 0.1, (m[:, 1] - 1) / 0.1, stats.norm.ppf((m[:, 2] - 0.8) / 0.4)])
    c = np.corrcoef(z, rowvar=False)
    rho = np.asarray(MATRIX)
    assert np.all(np.abs(c - rho) <= K_SE * (1 - rho**2) / math.sqrt(N) + 1e-12), c
    # the copula keeps each marginal: the uniform one is still uniform on [0.8, 1.2]
    # (KS critical value at α = 1e-6: √(ln(2/α)/2)/√N = 2.7/√N)
    ks = stats.kstest(m[:, 2], stats.uniform(loc=0.8, scale=0.4).cdf)
    assert ks.statistic < 2.7 / math.sqrt(N)
    _mean_ok(m[:, 0], 1.0, 0.1)


def test_correlation_naming_a_parameter_not_drawn_is_an_error(table):
    opts = options(
        parameters=uniform("B200.tdp_w"),
        correlation={"parameters": ["B200.tdp_w", "H100.tdp_w"], "matrix": [[1.0, 0.5], [0.5, 1.0]]},
    )
    params = D.parameters(table, opts, "grid.toml")
    with pytest.raises(SweepInputError) as err:
        D.multipliers(params, opts, "grid.toml")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("grid.toml: uncertainty.correlation.parameters: ['H100.tdp_w'] are not")
    assert "allowed: B200.tdp_w" in msg


def test_no_correlation_leaves_draws_alone(table):
    params = D.parameters(table, options(parameters=CORR_PARAMS))
    u = D.unit_draws(len(params), 256, 3)
    assert D.correlate(u, params, ()) is u
    np.testing.assert_allclose(D.multipliers_of(u, params)[:, 2], 0.8 + 0.4 * u[:, 2], rtol=1e-15)


def test_an_entrys_own_name_overrides_the_bare_field(table):
    """`B200.tdp_w` wins over `tdp_w` for the B200, whichever comes first; the H100 keeps the bare one."""
    for order in (("tdp_w", "B200.tdp_w"), ("B200.tdp_w", "tdp_w")):
        given = {
            "tdp_w": {"distribution": "uniform", "width": 0.1},
            "B200.tdp_w": {"distribution": "normal", "sigma": 0.05},
        }
        params = {p.name: p for p in D.parameters(table, options(parameters={k: given[k] for k in order}))}
        assert (params["B200.tdp_w"].distribution, params["B200.tdp_w"].size) == ("normal", 0.05)
        assert (params["H100.tdp_w"].distribution, params["H100.tdp_w"].size) == ("uniform", 0.1)
