"""Global sensitivity of a grid (sweep.sensitivity): our pipeline against SALib's on the same design
outputs, DGSM against finite differences, the tornado against the elasticities.

Grid: B200 × Llama-3.1-8B (roofline, physical) at contexts 8K and 32K; the uncertain parameters are
the five projected B200 specs (uniform ±20 %). The design outputs for SALib are recomputed through the
same internals (`sobol_design`/`morris_design` → multipliers → `run_samples`), so SALib sees exactly the
values our estimators saw; the indices must then agree to rounding (same estimators, same centring,
same bootstrap resample indices for the same non-zero seed).
"""

import numpy as np
import pytest
from SALib.analyze import morris as salib_morris
from SALib.analyze import sobol as salib_sobol

import sweep
from sweep import api
from sweep.errors import SweepInputError
from sweep.grid import spec as _grid
from sweep.grid.engine import run_samples
from sweep.grid.evaluators import InstanceEvaluator
from sweep.grid.tables import profile_table
from sweep.uncertainty import indices as ix
from sweep.uncertainty.draws import index_map, multipliers_of, parameters, unit_draws
from sweep.uncertainty.sensitivity import MORRIS_LEVELS

GRID = {
    "profile": "roofline",
    "convention": "physical",
    "axes": {"gpu": ["B200"], "model": ["llama-3.1-8b"], "context": [8192, 32768]},
}
NAMES = [
    f"B200.{f}" for f in ("hbm_bandwidth_bytes_per_s", "memory_bytes", "fp16_flops", "fp8_flops", "tdp_w")
]
D = len(NAMES)
SEED = 3
N_SOBOL = 256  # 256·(d + 2) = 1792 evaluations per point
N_MORRIS = 32  # 32 trajectories of d + 1 = 192 evaluations
N_DGSM = 192
Y = "tokens_per_watt"


@pytest.fixture(scope="module")
def inputs():
    """What sweep.sensitivity hands the engine, to evaluate a design ourselves."""
    spec = api.as_spec(GRID)
    table = profile_table(spec)
    params = parameters(table, spec.uncertainty or _monte_carlo())
    axes, extras = api.point_inputs(spec, ["context", "batch"])
    point_params = {k: v for k, v in spec.params.items() if _grid.AXES[k].group != "profile"}

    def evaluate(u):
        out = run_samples(
            table,
            axes,
            point_params,
            InstanceEvaluator(spec.convention),
            multipliers_of(u, params),
            index_map(table, params),
            outputs=(Y,),
            reduce=False,
        )[Y]
        return out.reshape(len(u), -1)  # (rows, points)

    return params, evaluate


def _monte_carlo():
    from sweep.grid.uncertainty_options import UncertaintyOptions

    return UncertaintyOptions(method="monte_carlo")


def problem():
    return {"num_vars": D, "names": NAMES, "bounds": [[0.0, 1.0]] * D}


def points(ds, name):
    """(d, points) of an index."""
    return ds[name].transpose("parameter", ...).values.reshape(D, -1)


@pytest.fixture(scope="module")
def sobol():
    return sweep.sensitivity(GRID, method="sobol", samples=N_SOBOL, seed=SEED)


def test_parameters_and_labels(sobol, inputs):
    assert list(sobol.parameter.values) == NAMES == [p.name for p in inputs[0]]
    assert dict(sobol.S1.sizes) == {"parameter": D, "gpu": 1, "model": 1, "context": 2, "batch": 1}
    assert sobol.attrs["sensitivity_method"] == "sobol" and sobol.attrs["sensitivity_target"] == Y
    assert sobol.attrs["evaluations"] == N_SOBOL * (D + 2) * 2


def test_sobol_equals_salib_on_the_same_design_outputs(sobol, inputs):
    _, evaluate = inputs
    y = evaluate(ix.sobol_design(D, N_SOBOL, SEED))
    assert np.isfinite(y).all()
    for p in range(y.shape[1]):
        ref = salib_sobol.analyze(
            problem(), y[:, p], calc_second_order=False, num_resamples=100, conf_level=0.95, seed=SEED + 1
        )
        for key in ("S1", "ST", "S1_conf", "ST_conf"):
            # same estimator on the same outputs: equal to rounding (indices are O(1))
            np.testing.assert_allclose(points(sobol, key)[:, p], ref[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_sobol_indices_are_consistent(sobol):
    s1, st = points(sobol, "S1"), points(sobol, "ST")
    conf = points(sobol, "S1_conf") + points(sobol, "ST_conf")
    assert np.all(st >= s1 - conf)  # ST ≥ S1, up to the estimators' bootstrap half-widths
    assert np.all(s1.sum(axis=0) <= 1 + conf.sum(axis=0))
    # tokens/W here is bandwidth and TDP: they carry almost all the variance, fp8 (bf16 weights) none
    top = {NAMES[i] for i in np.argsort(-st[:, 0])[:2]}
    assert top == {"B200.hbm_bandwidth_bytes_per_s", "B200.tdp_w"}
    assert np.all(st[[0, 4]].sum(axis=0) > 0.9)
    assert np.all(st[NAMES.index("B200.fp8_flops")] == 0)


@pytest.fixture(scope="module")
def morris():
    return sweep.sensitivity(GRID, method="morris", samples=N_MORRIS, seed=SEED)


def test_morris_equals_salib_on_the_same_design_outputs(morris, inputs):
    _, evaluate = inputs
    u = ix.morris_design(D, N_MORRIS, MORRIS_LEVELS, SEED)
    y = evaluate(np.clip(u, 1e-9, 1 - 1e-9))  # as sweep.sensitivity: no infinite normal quantile at 0/1
    assert morris.attrs["evaluations"] == N_MORRIS * (D + 1) * 2
    for p in range(y.shape[1]):
        ref = salib_morris.analyze(
            problem(), u, y[:, p], num_levels=MORRIS_LEVELS, num_resamples=100, seed=SEED + 1
        )
        # the bootstrap half-width too: the same resampled trajectories for the same seed
        for key in ("mu", "mu_star", "sigma", "mu_star_conf"):
            expected = np.asarray(ref[key], dtype=float)
            np.testing.assert_allclose(
                points(morris, key)[:, p], expected, rtol=1e-9, atol=1e-12, err_msg=key
            )


@pytest.fixture(scope="module")
def dgsm():
    return sweep.sensitivity(GRID, method="dgsm", samples=N_DGSM, seed=SEED)


def test_dgsm_nu_matches_finite_differences(dgsm, inputs):
    """ν_i = mean over the draws of (∂y/∂u_i)²: the JAX gradients against central differences in u."""
    _, evaluate = inputs
    u = unit_draws(D, N_DGSM, SEED)
    h = 1e-6  # in the unit cube; truncation error O(h²), rounding ~1e-16·|y|/h ≈ 1e-9 relative
    rows = []
    for i in range(D):
        for sign in (1, -1):
            shifted = u.copy()
            shifted[:, i] += sign * h
            rows.append(shifted)
    y = evaluate(np.concatenate(rows)).reshape(D, 2, N_DGSM, -1)
    grad = (y[:, 0] - y[:, 1]) / (2 * h)  # (d, draws, points)
    nu_fd = (grad**2).mean(axis=1)
    nu = points(dgsm, "nu")
    big = nu_fd > 1e-6 * nu_fd.max()
    # the gradients are those of the continuous relaxation (every floor removed, as the elasticities),
    # the differences those of the exact model: they differ by the rounding of n and of the KV blocks,
    # under 1 % here (an exact-model FD of the relaxation would agree to ~1e-6)
    np.testing.assert_allclose(nu[big], nu_fd[big], rtol=1e-2)
    # where the differences see (almost) nothing, ν is (almost) nothing too — except memory, which acts
    # only through floors: the exact model's differences are 0 there, the relaxation's gradient is not
    through_floors = np.zeros_like(big)
    through_floors[NAMES.index("B200.memory_bytes")] = True
    assert np.all(nu[~big & ~through_floors] <= 1e-5 * nu_fd.max())
    assert np.all(nu[NAMES.index("B200.memory_bytes")] > 0)
    assert dgsm.attrs["evaluations"] == N_DGSM * (D + 2) * 2
    # the bound on the total index: ν/(π²·V) with V the variance of y over the same draws
    v = np.var(evaluate(u), axis=0, ddof=1)
    np.testing.assert_allclose(
        points(dgsm, "ST_bound")[big.any(axis=1)], (nu / (np.pi**2 * v))[big.any(axis=1)], rtol=1e-10
    )


def test_dgsm_bound_covers_the_large_sobol_indices(dgsm, sobol):
    """ST_i ≤ ν_i/(π²V) (Sobol' & Kucherenko 2009): for the smooth drivers (bandwidth, TDP)."""
    bound, st = points(dgsm, "ST_bound"), points(sobol, "ST") - points(sobol, "ST_conf")
    for i in (0, 4):
        assert np.all(st[i] <= bound[i]), (NAMES[i], st[i], bound[i])


def test_dgsm_bound_covers_memory(dgsm, sobol):
    i = NAMES.index("B200.memory_bytes")
    st = points(sobol, "ST")[i] - points(sobol, "ST_conf")[i]
    assert np.all(st > 0)
    assert np.all(st <= points(dgsm, "ST_bound")[i])


@pytest.fixture(scope="module")
def elasticities():
    return sweep.run(GRID, elasticities=True)


def test_oat_swings_follow_the_elasticities(elasticities):
    step = 0.2
    oat = sweep.sensitivity(GRID, method="oat")
    assert oat.attrs["evaluations"] == (2 * D + 1) * 2
    e = elasticities.elasticity.sel(parameter=[n.split(".", 1)[1] for n in NAMES]).transpose("parameter", ...)
    e = e.values.reshape(D, -1)
    low, high, swing = points(oat, "low"), points(oat, "high"), points(oat, "swing")
    np.testing.assert_allclose(swing, np.abs(high - low), rtol=1e-15)
    strong = np.abs(e) > 0.05
    assert strong[[0, 4]].all()  # bandwidth (+1) and TDP (−1)
    # the sign: raising a value with a positive elasticity raises tokens/W, and lowering it lowers them
    assert np.all(np.sign(high[strong]) == np.sign(e[strong]))
    assert np.all(np.sign(low[strong]) == -np.sign(e[strong]))
    # the size: a ±20 % step moves ln y by about ±0.2·e (nonlinearity: 1/(1 ± 0.2) is 4 % off linear)
    np.testing.assert_allclose(swing[strong], 2 * step * np.abs(e[strong]), rtol=0.1)
    # the order of the bars is the order of |e| for the parameters that matter
    for p in range(e.shape[1]):
        s = strong[:, p]
        assert list(np.argsort(-swing[s, p])) == list(np.argsort(-np.abs(e[s, p])))
    # no effect at all, no bar: fp8 (bf16 weights)
    assert np.all(swing[NAMES.index("B200.fp8_flops")] == 0)


def test_correlated_parameters_are_refused():
    grid = {
        **GRID,
        "uncertainty": {
            "parameters": {
                "B200.tdp_w": {"distribution": "uniform", "width": 0.2},
                "B200.hbm_bandwidth_bytes_per_s": {"distribution": "uniform", "width": 0.2},
            },
            "correlation": {
                "parameters": ["B200.tdp_w", "B200.hbm_bandwidth_bytes_per_s"],
                "matrix": [[1.0, 0.5], [0.5, 1.0]],
            },
        },
    }
    with pytest.raises(
        SweepInputError, match=r"uncertainty\.correlation: sensitivity indices assume independent"
    ):
        sweep.sensitivity(grid, method="sobol", samples=8)


def test_bad_method_and_samples():
    with pytest.raises(SweepInputError, match=r"--method 'fast': allowed values: sobol, morris, dgsm, oat"):
        sweep.sensitivity(GRID, method="fast")
    with pytest.raises(SweepInputError, match=r"--samples 1: allowed: integers >= 2"):
        sweep.sensitivity(GRID, method="sobol", samples=1)
