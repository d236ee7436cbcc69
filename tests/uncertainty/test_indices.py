"""Sensitivity designs and estimators: analytic Ishigami indices, and agreement with SALib per point."""

import numpy as np
import pytest
from SALib.analyze import morris as salib_morris
from SALib.analyze import sobol as salib_sobol
from SALib.sample import sobol as salib_sobol_sample

from sweep.uncertainty.indices import (
    dgsm_indices,
    morris_design,
    morris_indices,
    oat_tornado,
    rank,
    sobol_design,
    sobol_indices,
)

B = 0.1  # Ishigami b


def problem(d):
    return {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": [[0.0, 1.0]] * d}


def ishigami(u, a, b=B):
    """Ishigami on unit-cube samples u (rows, ≥3); a may be (points,) -> (rows, points)."""
    x = 2 * np.pi * u[:, :3, None] - np.pi
    a = np.asarray(a, dtype=float)
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def g_function(u, a):
    """Sobol' G-function ∏ (|4u_i − 2| + a_i)/(1 + a_i); a: (points, d) -> (rows, points)."""
    a = np.asarray(a, dtype=float).T[None]  # (1, d, points)
    return np.prod((np.abs(4 * u[:, :, None] - 2) + a) / (1 + a), axis=1)


def ishigami_exact(a, b=B):
    """Analytic S1, ST of Ishigami with inputs uniform on [−π, π]³."""
    v = a**2 / 8 + b * np.pi**4 / 5 + b**2 * np.pi**8 / 18 + 0.5
    v1 = 0.5 * (1 + b * np.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * np.pi**8 * (1 / 18 - 1 / 50)
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


# --- Sobol' ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("d", "n", "seed"), [(3, 64, 5), (8, 256, 1)])
def test_sobol_design_is_salib_layout(d, n, seed):
    ours = sobol_design(d, n, seed)
    ref = salib_sobol_sample.sample(problem(d), n, calc_second_order=False, scramble=True, seed=seed)
    assert ours.shape == (n * (d + 2), d)
    np.testing.assert_array_equal(ours, ref)


def test_ishigami_analytic():
    s1_exact, st_exact = ishigami_exact(7.0)
    np.testing.assert_allclose(s1_exact, [0.3139, 0.4424, 0.0], atol=5e-5)
    np.testing.assert_allclose(st_exact, [0.5576, 0.4424, 0.2437], atol=5e-5)
    u = sobol_design(3, 2**13, seed=3)
    res = sobol_indices(ishigami(u, [7.0]), 3, seed=4)
    assert res["S1"].shape == res["ST"].shape == res["S1_conf"].shape == (3, 1)
    np.testing.assert_allclose(res["S1"][:, 0], s1_exact, atol=0.02)
    np.testing.assert_allclose(res["ST"][:, 0], st_exact, atol=0.02)
    assert np.all(res["S1_conf"] > 0) and np.all(res["S1_conf"] < 0.05)
    assert res["n"][0] == 2**13


def _points(u):
    """Columns: Ishigami with a = 5, 7, 9 (x3 a dummy), two G-functions."""
    return np.concatenate(
        [ishigami(u, [5.0, 7.0, 9.0]), g_function(u, [[0.0, 1.0, 4.5, 9.0], [0.0, 0.0, 1.0, 99.0]])], axis=1
    )


def test_sobol_equals_salib_per_point():
    d, n = 4, 2**10
    y = _points(sobol_design(d, n, seed=7))
    ours = sobol_indices(y, d, resamples=100, seed=11)
    other_seed = sobol_indices(y, d, resamples=100, seed=12)
    for p in range(y.shape[1]):
        ref = salib_sobol.analyze(
            problem(d), y[:, p], calc_second_order=False, num_resamples=100, seed=11, print_to_console=False
        )
        np.testing.assert_allclose(ours["S1"][:, p], ref["S1"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(ours["ST"][:, p], ref["ST"], rtol=0, atol=1e-10)
        # Same seed: the very resamples SALib draws.
        np.testing.assert_allclose(ours["S1_conf"][:, p], ref["S1_conf"], rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(ours["ST_conf"][:, p], ref["ST_conf"], rtol=1e-7, atol=1e-12)
        # Another seed: same bootstrap distribution, within bootstrap noise.
        for key in ("S1_conf", "ST_conf"):
            mine, theirs = other_seed[key][:, p], np.asarray(ref[key])
            big = theirs > 1e-12
            assert np.all((mine[big] / theirs[big] > 1 / 1.5) & (mine[big] / theirs[big] < 1.5)), key
            assert np.all(mine[~big] < 1e-12), key


def test_sobol_one_column_gives_vectors():
    y = ishigami(sobol_design(3, 256, seed=1), [7.0])[:, 0]
    res = sobol_indices(y, 3)
    assert res["S1"].shape == (3,) and res["ST_conf"].shape == (3,)


def test_sobol_nan_rows_dropped_per_point_and_constant_points():
    d, n = 4, 2**9
    y = _points(sobol_design(d, n, seed=2))
    y = np.concatenate([y, np.full((y.shape[0], 1), 3.0)], axis=1)  # a constant point
    bad_rows = [5, 17 * (d + 2) + 3, 100 * (d + 2) + d + 1]  # an AB row, another AB row, a B row
    y[bad_rows, 1] = np.nan
    ours = sobol_indices(y, d, seed=0)
    # Point 1 equals SALib on the blocks without a NaN; the other points are untouched.
    keep = np.setdiff1d(np.arange(n), np.array(bad_rows) // (d + 2))
    reduced = y[:, 1].reshape(n, d + 2)[keep].ravel()
    ref = salib_sobol.analyze(problem(d), reduced, calc_second_order=False, print_to_console=False)
    np.testing.assert_allclose(ours["S1"][:, 1], ref["S1"], atol=1e-10)
    np.testing.assert_allclose(ours["ST"][:, 1], ref["ST"], atol=1e-10)
    assert ours["n"].tolist() == [n, n - 3, n, n, n, n]
    clean = sobol_indices(np.delete(y, 1, axis=1), d, seed=0)
    np.testing.assert_array_equal(np.delete(ours["S1"], 1, axis=1)[:, :4], clean["S1"][:, :4])
    # Zero variance: NaN indices and half-widths, no exception.
    for key in ("S1", "ST", "S1_conf", "ST_conf"):
        assert np.all(np.isnan(ours[key][:, -1])), key
        assert np.all(np.isfinite(ours[key][:, :-1])), key
    prop = sobol_indices(y, d, nan_policy="propagate")
    assert np.all(np.isnan(prop["S1"][:, 1])) and np.all(np.isfinite(prop["S1"][:, 0]))


def test_sobol_rejects_bad_shape():
    with pytest.raises(ValueError):
        sobol_indices(np.zeros((11, 2)), 3)


# --- Morris ----------------------------------------------------------------------------------


def _morris_points(x):
    return np.concatenate(
        [ishigami(x, [7.0]), g_function(x, [[0.0, 1.0, 4.5, 9.0]]), (x @ [3.0, -1.0, 0.5, 0.0])[:, None]],
        axis=1,
    )


def test_morris_equals_salib_per_point():
    d, levels = 4, 4
    x = morris_design(d, 40, levels, seed=3)
    assert x.shape == (40 * (d + 1), d)
    np.testing.assert_allclose(np.unique(x), np.arange(levels) / (levels - 1))
    y = _morris_points(x)
    ours = morris_indices(x, y, levels, seed=5)
    for p in range(y.shape[1]):
        ref = salib_morris.analyze(problem(d), x, y[:, p], num_levels=levels, num_resamples=100, seed=5)
        for key in ("mu", "mu_star", "sigma"):
            np.testing.assert_allclose(ours[key][:, p], np.asarray(ref[key]), rtol=0, atol=1e-10, err_msg=key)
        np.testing.assert_allclose(
            ours["mu_star_conf"][:, p], np.asarray(ref["mu_star_conf"]), rtol=1e-8, atol=1e-12
        )
    # Linear y = 3x0 − x1 + x2/2: every elementary effect is the slope.
    np.testing.assert_allclose(ours["mu"][:, 2], [3.0, -1.0, 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(ours["sigma"][:, 2], 0.0, atol=1e-12)


def test_morris_nan_output_drops_only_its_effects():
    d, levels = 4, 4
    x = morris_design(d, 30, levels, seed=8)
    y = _morris_points(x)[:, :1]
    clean = morris_indices(x, y, levels)
    row = 7 * (d + 1) + 2  # third point of trajectory 7: enters the effects of steps 1 and 2
    y[row, 0] = np.nan
    res = morris_indices(x, y, levels)
    steps = np.diff(x[7 * (d + 1) : 8 * (d + 1)], axis=0)
    hit = np.flatnonzero(np.abs(steps[1:3]).sum(axis=0) > 0)
    untouched = np.setdiff1d(np.arange(d), hit)
    assert np.all(np.isfinite(res["mu_star"]))
    np.testing.assert_allclose(res["mu_star"][untouched], clean["mu_star"][untouched], rtol=1e-12)
    assert not np.allclose(res["mu_star"][hit], clean["mu_star"][hit], rtol=1e-12)


# --- DGSM ------------------------------------------------------------------------------------


def test_dgsm_linear():
    rng = np.random.default_rng(0)
    c = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]]).T  # (d, points)
    width = np.array([1.0, 2.0, 4.0])
    n = 4000
    x = rng.uniform(0.0, width, size=(n, 3))
    y = x @ c
    grads = np.broadcast_to(c, (n, 3, 2))
    res = dgsm_indices(grads, width, y=y)
    np.testing.assert_allclose(res["nu"], c**2)
    st = (c * width[:, None]) ** 2 / 12
    st /= st.sum(axis=0)
    assert np.all(res["ST_bound"] >= st - 1e-12)
    # The bound for a linear function is 12/π² · ST (up to the sample variance).
    np.testing.assert_allclose(res["ST_bound"], 12 / np.pi**2 * st, rtol=0.05)
    # Unit-cube gradients (∂y/∂u = c·w) with width 1 give the same bound.
    unit = dgsm_indices(grads * width[None, :, None], 1.0, variance=np.var(y, axis=0, ddof=1))
    np.testing.assert_allclose(unit["ST_bound"], res["ST_bound"])
    assert "ST_bound" not in dgsm_indices(grads, width)


def test_dgsm_bounds_ishigami_total_indices():
    a = 7.0
    u = np.random.default_rng(1).random((20000, 3))
    x = 2 * np.pi * u - np.pi
    grad_x = np.stack(
        [
            np.cos(x[:, 0]) * (1 + B * x[:, 2] ** 4),
            a * np.sin(2 * x[:, 1]),
            4 * B * x[:, 2] ** 3 * np.sin(x[:, 0]),
        ],
        axis=1,
    )
    s1, st = ishigami_exact(a)
    v = a**2 / 8 + B * np.pi**4 / 5 + B**2 * np.pi**8 / 18 + 0.5
    res = dgsm_indices(2 * np.pi * grad_x[:, :, None], 1.0, variance=np.array([v]))  # unit-cube gradients
    np.testing.assert_allclose(res["nu"][1, 0], (2 * np.pi) ** 2 * a**2 / 2, rtol=0.03)
    assert np.all(res["ST_bound"][:, 0] >= st)


# --- OAT and ranking -------------------------------------------------------------------------


def test_oat_tornado_signs_and_ranking():
    def f(x):  # two points: y = 2 + 3x0 − x1 + 0.1x2 and y = 4 − 0.5x0 + 2x1 + x2
        return np.stack(
            [
                2 + 3 * x[..., 0] - x[..., 1] + 0.1 * x[..., 2],
                4 - 0.5 * x[..., 0] + 2 * x[..., 1] + x[..., 2],
            ],
            -1,
        )

    nominal = np.full(3, 0.5)
    lows = np.where(np.eye(3, dtype=bool), 0.0, nominal)
    highs = np.where(np.eye(3, dtype=bool), 1.0, nominal)
    res = oat_tornado(f(lows), f(highs), f(nominal))
    assert res["low"].shape == res["swing"].shape == (3, 2)
    np.testing.assert_array_equal(np.sign(res["high"]), [[1, -1], [-1, 1], [1, 1]])
    np.testing.assert_array_equal(np.sign(res["low"]), -np.sign(res["high"]))
    np.testing.assert_allclose(res["swing"][:, 0], np.array([3.0, 1.0, 0.1]) / f(nominal)[0])
    np.testing.assert_array_equal(res["order"], [[0, 1], [1, 2], [2, 0]])
    names = ["alpha", "beta", "gamma"]
    assert rank(res["swing"], names, top=2) == [["alpha", "beta"], ["beta", "gamma"]]
    zero = oat_tornado(np.array([1.0, 2.0]), np.array([3.0, 4.0]), 0.0)
    assert np.all(np.isnan(zero["swing"]))


def test_rank_nan_safe():
    names = ["a", "b", "c", "d"]
    assert rank(np.array([0.1, np.nan, 0.7, 0.3]), names) == ["c", "d", "a"]
    assert rank(np.array([0.1, np.nan, 0.7, 0.3]), names, top=10) == ["c", "d", "a"]
    assert rank(np.full(4, np.nan), names) == []
    assert rank(np.array([0.2, 0.2, 0.5, 0.0]), names, top=2) == ["c", "a"]
    with pytest.raises(ValueError):
        rank(np.zeros(3), names)
