"""Global sensitivity of a grid output to its uncertain parameters (`sweep sensitivity`, docs/uncertainty.md §4).

The design (which joint draws to evaluate) comes from SALib's layouts (`sweep.uncertainty.indices`),
the evaluations from our compiled kernel (`sweep.grid.engine.run_samples`, every grid point under
the same draws), the estimators from `sweep.uncertainty.indices` (vectorised over grid points):

    sobol   first-order S1 and total ST (Saltelli/Jansen), N·(d + 2) draws
    morris  μ*, σ of elementary effects, N trajectories of d + 1 draws, 4 levels
    dgsm    ν_i = E[(∂y/∂u_i)²] in unit-cube coordinates, from JAX gradients at N draws, and
            the bound ν_i/(π²·V) ≥ ST_i
    oat     one parameter at a time at (1 ∓ step) × nominal: the tornado
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from sweep.errors import SweepInputError
from sweep.grid.engine import run_samples
from sweep.grid.uncertainty_options import UncertaintyOptions
from sweep.uncertainty import indices as ix
from sweep.uncertainty.draws import index_map, multipliers_of, parameters, unit_draws

METHODS = ("sobol", "morris", "dgsm", "oat")
DEFAULT_SAMPLES = {"sobol": 1024, "morris": 64, "dgsm": 1024, "oat": 0}
MORRIS_LEVELS = 4


def _density(m: np.ndarray, distribution: str, size: float) -> np.ndarray:
    """pdf of the multiplier at m, so dm/du = 1 / pdf (inverse-transform sampling)."""
    if distribution == "uniform":
        return np.full_like(m, 1.0 / (2.0 * size))
    if distribution == "triangular":
        return stats.triang.pdf(m, c=0.5, loc=1.0 - size, scale=2.0 * size)
    if distribution == "normal":
        return stats.norm.pdf((m - 1.0) / size) / size
    return stats.lognorm.pdf(m, s=size)


def sensitivity(
    table,
    axes: dict,
    params: dict,
    evaluator,
    options: UncertaintyOptions | None,
    *,
    method: str = "sobol",
    samples: int | None = None,
    seed: int = 0,
    step: float = 0.2,
    extras=(),
    chunk_points: int = 1 << 18,
    where: str = "<grid>",
) -> dict:
    """{index name: array (d, *grid dims)} for the evaluator's target, plus "parameter" names and
    "evaluations"; see the module docstring."""
    if method not in METHODS:
        raise SweepInputError(f"--method '{method}': allowed values: {', '.join(METHODS)}")
    options = options or UncertaintyOptions(method="monte_carlo")
    if options.correlation:
        raise SweepInputError(
            f"{where}: uncertainty.correlation: sensitivity indices assume independent parameters; "
            "allowed: no correlation (use Monte Carlo for correlated draws)"
        )
    drawn = parameters(table, options, where)
    d = len(drawn)
    if d < 1:
        raise SweepInputError(
            f"{where}: no uncertain parameter (no projected value; give [uncertainty.parameters])"
        )
    n = samples or DEFAULT_SAMPLES[method]
    if method != "oat" and n < 2:
        raise SweepInputError(f"--samples {n}: allowed: integers >= 2")
    index = index_map(table, drawn)
    target = evaluator.target
    common = dict(outputs=(target,), extras=extras, chunk_points=chunk_points, reduce=False)

    def evaluate(m, gradient=False):
        out = run_samples(table, axes, params, evaluator, m, index, gradient=gradient, **common)[target]
        return out.reshape(out.shape[: 2 if gradient else 1] + (-1,)), out.shape[2 if gradient else 1 :]

    if method == "sobol":
        u = ix.sobol_design(d, n, seed)
        y, dims = evaluate(multipliers_of(u, drawn))
        res = ix.sobol_indices(y, d, seed=seed + 1)
        out = {k: res[k] for k in ("S1", "ST", "S1_conf", "ST_conf")}
    elif method == "morris":
        u = ix.morris_design(d, n, MORRIS_LEVELS, seed)
        y, dims = evaluate(multipliers_of(np.clip(u, 1e-9, 1 - 1e-9), drawn))
        res = ix.morris_indices(u, y, MORRIS_LEVELS, seed=seed + 1)
        out = {k: res[k] for k in ("mu_star", "sigma", "mu", "mu_star_conf")}
    elif method == "dgsm":
        u = unit_draws(d, n, seed)
        m = multipliers_of(u, drawn)
        g, dims = evaluate(m, gradient=True)  # (n, d + 1, points): ∂y/∂m
        dm_du = np.stack(
            [1.0 / _density(m[:, j], p.distribution, p.size) for j, p in enumerate(drawn)], axis=1
        )
        grad_u = g[:, :d, :] * dm_du[:, :, None]
        y, _ = evaluate(m)
        res = ix.dgsm_indices(grad_u, 1.0, y=y)
        out = {k: res[k] for k in ("nu", "dgsm", "ST_bound")}
    else:
        m = np.ones((2 * d + 1, d + 1))
        for j in range(d):
            m[1 + 2 * j, j], m[2 + 2 * j, j] = 1.0 - step, 1.0 + step
        y, dims = evaluate(m)
        res = ix.oat_tornado(y[1::2], y[2::2], y[0])
        out = {k: res[k] for k in ("low", "high", "swing")}
        n = len(m)
    result = {k: np.asarray(v).reshape((d,) + tuple(dims)) for k, v in out.items()}
    result["parameter"] = [p.name for p in drawn]
    result["evaluations"] = (
        int(y.shape[0] * y.shape[-1]) if method != "dgsm" else int(n * (d + 2) * y.shape[-1])
    )
    return result


def to_dataset(
    result: dict, cat: dict, point_axes: list, spec_axes: dict, *, method, target, samples, seed
) -> xr.Dataset:
    """Label the indices: (parameter, profile dims, point axes)."""
    cat_names = list(cat)
    cat_shape = tuple(len(v) for v in cat.values())
    ds = xr.Dataset()
    for k, v in result.items():
        if k in ("parameter", "evaluations"):
            continue
        ds[k] = (["parameter"] + cat_names + point_axes, v.reshape(v.shape[:1] + cat_shape + v.shape[2:]))
    ds.coords["parameter"] = np.asarray(result["parameter"], dtype=object)
    for n in cat_names + point_axes:
        values = spec_axes[n]
        ds.coords[n] = np.asarray(values, dtype=object if isinstance(values[0], str) else None)
    ds.attrs.update(
        {
            "sensitivity_method": method,
            "sensitivity_target": target,
            "sensitivity_samples": samples,
            "sensitivity_seed": seed,
            "sensitivity_note": "designs: SALib layouts (Saltelli without second order; Morris trajectories); "
            "evaluations: sweep's compiled kernel; estimators: sweep.uncertainty.indices (equal to SALib's "
            "Saltelli/Jansen and Morris estimators, vectorised over grid points); docs/uncertainty.md",
        }
    )
    return ds
