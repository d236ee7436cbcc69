"""Global sensitivity of a grid output to its uncertain parameters (`sweep sensitivity`, docs/uncertainty.md §4).

The design (which joint draws to evaluate) comes from SALib's layouts (`sweep.uncertainty.indices`),
the evaluations from our compiled kernel (`sweep.grid.engine.run_samples`, every grid point under
the same draws), the estimators from `sweep.uncertainty.indices` (vectorised over grid points):

    sobol   first-order S1 and total ST (Saltelli/Jansen), N·(d + 2) draws
    morris  μ*, σ of elementary effects, N trajectories of d + 1 draws, 4 levels
    dgsm    ν_i = E[(∂y/∂u_i)²] in unit-cube coordinates, from JAX gradients at N draws, and
            the bound ν_i/(π²·V) ≥ ST_i
    oat     one parameter at a time at (1 ∓ step) × nominal: the tornado

What cannot be answered is refused or flagged (docs/uncertainty.md §4): samples and seed are
checked, Sobol' N is rounded up to a power of 2, a design over the memory budget stops before it
is built, indices are NaN at grid points with draws of no finite output (`feasible_fraction`
counts the draws where a sequence fits), and Sobol' indices outside [0, 1] are counted against
their bootstrap half-widths.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr
from scipy import stats

from sweep.errors import SweepInputError, SweepWarning
from sweep.grid.engine import run_samples
from sweep.grid.uncertainty_options import SEED_ALLOWED, UncertaintyOptions, valid_count, valid_seed
from sweep.uncertainty import indices as ix
from sweep.uncertainty.draws import index_map, multipliers_of, parameters, unit_draws

METHODS = ("sobol", "morris", "dgsm", "oat")
DEFAULT_SAMPLES = {"sobol": 1024, "morris": 64, "dgsm": 1024, "oat": 0}
MORRIS_LEVELS = 4
BOOTSTRAP_RESAMPLES = 100  # indices.sobol_indices / morris_indices
KERNEL_FLOATS = 32  # floats the compiled kernel holds per evaluation of a block (CPU, measured: ~25)
OUTPUT_FLOATS = 8  # floats per output of a Sobol' design: y, its standardised copies, the differences


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
    max_memory=None,
) -> dict:
    """{index name: array (d, *grid dims)} for the evaluator's target, plus "feasible_fraction" (*grid dims),
    "parameter" names, "samples" (the base samples used) and "evaluations"; see the module docstring.

    Refused up front (`SweepInputError`): an unknown method, samples that are not an integer >= 2 (None:
    the method's default), a seed outside 0 <= seed < 2^63, correlated parameters, and a design whose
    arrays would not fit the memory budget `max_memory` (as `sweep.run`'s: bytes or text such as "8GiB",
    default $SWEEP_MAX_MEMORY, else half of RAM). Sobol' base samples are rounded up to a power of 2
    (a `SweepWarning` says so). Indices are NaN at every grid point where a draw of the design has no
    finite output (no sequence fits), with a warning counting those points and draws; Sobol' indices
    outside [0, 1] are counted in a warning against their bootstrap half-widths."""
    drawn, n, seed = design_inputs(
        table, axes, options, method, samples, seed, chunk_points, where, max_memory
    )
    d = len(drawn)
    index = index_map(table, drawn)
    target = evaluator.target
    common = dict(outputs=(target,), extras=extras, chunk_points=chunk_points, reduce=False)

    def evaluate(m, gradient=False):
        out = run_samples(table, axes, params, evaluator, m, index, gradient=gradient, **common)[target]
        return out.reshape(out.shape[: 2 if gradient else 1] + (-1,)), out.shape[2 if gradient else 1 :]

    y, dims, out = estimate(method, evaluate, drawn, n, seed, step)
    fraction = feasibility(y, out, method, target, where)
    if method == "sobol":
        warn_outside_unit_interval(out)
    result = {k: np.asarray(v).reshape((d,) + tuple(dims)) for k, v in out.items()}
    if method != "oat":  # the tornado's bars show their own draws (NaN where no sequence fits)
        result["feasible_fraction"] = fraction.reshape(tuple(dims))
    result["parameter"] = [p.name for p in drawn]
    result["samples"] = n if method != "oat" else 0
    result["evaluations"] = (
        int(y.shape[0] * y.shape[-1]) if method != "dgsm" else int(n * (d + 2) * y.shape[-1])
    )
    return result


def design_inputs(table, axes, options, method, samples, seed, chunk_points, where, max_memory) -> tuple:
    """(the drawn parameters, base samples N, seed) of a design, checked before anything is built:
    method, samples and seed; no correlation; at least one parameter; Sobol' N rounded up to a power
    of 2 (with a warning); the design under the memory budget."""
    if method not in METHODS:
        raise SweepInputError(f"--method '{method}': allowed values: {', '.join(METHODS)}")
    n = check_samples(method, samples)
    seed = check_seed(seed)
    if method == "oat" and samples is not None:
        warnings.warn(
            f"sensitivity: --samples {n} ignored: oat evaluates 2·d + 1 fixed draws",
            SweepWarning,
            stacklevel=4,
        )
    options = options or UncertaintyOptions(method="monte_carlo")
    if options.correlation:
        raise SweepInputError(
            f"{where}: uncertainty.correlation: sensitivity indices assume independent parameters; "
            "allowed: no correlation (use Monte Carlo for correlated draws)"
        )
    drawn = parameters(table, options, where)
    if not drawn:
        raise SweepInputError(
            f"{where}: no uncertain parameter (no projected value; give [uncertainty.parameters])"
        )
    if method == "sobol" and n & (n - 1):
        rounded = 1 << (n - 1).bit_length()
        warnings.warn(
            f"sensitivity: --samples {n} rounded up to {rounded}: Sobol' base samples are a power of 2 "
            "(the scrambled Sobol' sequence is balanced only at 2^m points)",
            SweepWarning,
            stacklevel=4,
        )
        n = rounded
    points = len(next(iter(table.theta.values()))) * math.prod(len(v) for v in axes.values())
    check_design_fits(method, n, len(drawn), points, chunk_points, max_memory)
    return drawn, n, seed


def estimate(method: str, evaluate, drawn: list, n: int, seed: int, step: float) -> tuple:
    """(the design's outputs y (rows, points), the grid dims, {index: (d, points)}) of one method;
    `evaluate(multipliers, gradient=False)` runs the compiled kernel on a design."""
    d = len(drawn)
    if method == "sobol":
        y, dims = evaluate(multipliers_of(ix.sobol_design(d, n, seed), drawn))
        res = ix.sobol_indices(y, d, seed=seed + 1)
        return y, dims, {k: res[k] for k in ("S1", "ST", "S1_conf", "ST_conf")}
    if method == "morris":
        u = ix.morris_design(d, n, MORRIS_LEVELS, seed)
        y, dims = evaluate(multipliers_of(np.clip(u, 1e-9, 1 - 1e-9), drawn))
        res = ix.morris_indices(u, y, MORRIS_LEVELS, seed=seed + 1)
        return y, dims, {k: res[k] for k in ("mu_star", "sigma", "mu", "mu_star_conf")}
    if method == "dgsm":
        m = multipliers_of(unit_draws(d, n, seed), drawn)
        g, dims = evaluate(m, gradient=True)  # (n, d + 1, points): ∂y/∂m
        dm_du = np.stack(
            [1.0 / _density(m[:, j], p.distribution, p.size) for j, p in enumerate(drawn)], axis=1
        )
        y, _ = evaluate(m)
        res = ix.dgsm_indices(g[:, :d, :] * dm_du[:, :, None], 1.0, y=y)
        return y, dims, {k: res[k] for k in ("nu", "dgsm", "ST_bound")}
    y, dims = evaluate(oat_multipliers(d, step))
    res = ix.oat_tornado(y[1::2], y[2::2], y[0])
    return y, dims, {k: res[k] for k in ("low", "high", "swing")}


def check_samples(method: str, samples) -> int:
    """The base samples of `method`: its default for None, else an integer >= 2 (not a bool, not 0)."""
    if samples is None:
        return DEFAULT_SAMPLES[method]
    n = valid_count(samples, 2)
    if n is None:
        raise SweepInputError(f"--samples {samples!r}: allowed: integers >= 2")
    return n


def check_seed(seed) -> int:
    """The design's seed: 0 <= seed < 2^63 (`sweep.grid.uncertainty_options.valid_seed`)."""
    checked = valid_seed(seed)
    if checked is None:
        raise SweepInputError(f"--seed {seed!r}: allowed: {SEED_ALLOWED}")
    return checked


def oat_multipliers(d: int, step: float) -> np.ndarray:
    """Nominal, then each parameter at (1 − step) and (1 + step) × nominal, the others nominal."""
    m = np.ones((2 * d + 1, d + 1))
    for j in range(d):
        m[1 + 2 * j, j], m[2 + 2 * j, j] = 1.0 - step, 1.0 + step
    return m


def design_rows(method: str, n: int, d: int) -> int:
    """Evaluations per grid point of a design of n base samples over d parameters."""
    return {"sobol": n * (d + 2), "morris": n * (d + 1), "dgsm": 2 * n, "oat": 2 * d + 1}[method]


def design_bytes(method: str, n: int, d: int, points: int, chunk_points: int = 1 << 18) -> int:
    """About the peak memory of a design (on the CPU backend: 1.1-1.6× the measured peak RSS of Sobol',
    Morris and DGSM runs of 10⁵-10⁶ evaluations per point): the unit-cube design and its multipliers (host and device), the compiled kernel's
    intermediates for one block of evaluations, the (rows, points) outputs with the estimator's
    temporaries, and the bootstrap's (resamples, n) resample weights."""
    rows = design_rows(method, n, d)
    per_point = n * (d + 1) if method == "dgsm" else rows  # evaluations a block holds per grid point
    block = per_point * min(points, max(1, chunk_points // max(per_point, 1)))
    design = rows * d + 2 * rows * (d + 1) + (4 * n * d if method == "sobol" else 0)
    kernel = KERNEL_FLOATS * block
    outputs = {
        "sobol": OUTPUT_FLOATS * rows * points,
        "morris": 2 * rows * points + 10 * n * d * points,
        "dgsm": 4 * n * (d + 1) * points + 3 * n * points,
        "oat": rows * points,
    }[method]
    boot = 2 * BOOTSTRAP_RESAMPLES * n if method in ("sobol", "morris") else 0
    return 8 * (design + kernel + outputs + boot)


def check_design_fits(method: str, n: int, d: int, points: int, chunk_points: int, max_memory) -> None:
    """A one-line `SweepInputError` before anything is allocated if the design would exceed the budget."""
    from sweep.io.memory import human, memory_budget

    budget, how = memory_budget(max_memory)
    need = design_bytes(method, n, d, points, chunk_points)
    if need <= budget:
        return
    advice = "fewer grid points"
    if (
        method != "oat" and design_bytes(method, 2, d, points, chunk_points) <= budget
    ):  # the largest n that fits
        lo, hi = 2, n  # fits, does not fit
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if design_bytes(method, mid, d, points, chunk_points) <= budget else (lo, mid)
        fits = 1 << (lo.bit_length() - 1) if method == "sobol" else lo
        advice = f"at most --samples {fits}"
    raise SweepInputError(
        f"sensitivity: the {method} design of {n} base samples ({design_rows(method, n, d):,} evaluations at "
        f"each of {points:,} grid points, {d} parameters) needs about {human(need)} in memory, over the budget "
        f"of {human(budget)} ({how}; set --max-memory or SWEEP_MAX_MEMORY); use {advice}"
    )


def feasibility(y: np.ndarray, out: dict, method: str, target: str, where: str) -> np.ndarray:
    """The fraction of the design's draws at each grid point where a sequence fits (the target finite and
    positive); NaN indices, in place, where any draw's target is not finite (Sobol', Morris, DGSM: the
    indices of an output undefined on part of the parameter space are undefined; the one-at-a-time bars
    are NaN by themselves where their draw is); one `SweepWarning` counting the points and draws."""
    finite = np.isfinite(y)
    feasible = finite & (np.where(finite, y, 0.0) > 0)
    fraction = feasible.mean(axis=0)
    undefined = ~finite.all(axis=0)  # (points,)
    if method != "oat" and undefined.any():
        for v in out.values():
            v[..., undefined] = np.nan
    short = fraction < 1
    if short.any():
        dropped = int((~feasible[:, short]).sum())
        nan_points = int((undefined & short).sum())
        if method == "oat":
            then = "the bars of those draws are NaN (no finite value) or show the drop to 0"
        else:
            then = (
                f"indices are NaN at the {nan_points} with a draw of no finite {target} (the output is "
                "undefined on part of the parameter space)"
            )
            if nan_points < short.sum():
                then += (
                    f"; at the other {int(short.sum()) - nan_points} they include those draws' {target} = 0 "
                    "(the paper convention's value)"
                )
        warnings.warn(
            f"{where}: sensitivity: at {int(short.sum())} of {short.size} grid points some draws have no "
            f"sequence that fits ({dropped:,} of {int(short.sum()) * y.shape[0]:,} draws there); {then}"
            + ("" if method == "oat" else "; see feasible_fraction"),
            SweepWarning,
            stacklevel=4,
        )
    return fraction


def warn_outside_unit_interval(out: dict) -> None:
    """One `SweepWarning` if Sobol' indices fall outside [0, 1]: how many by less than their bootstrap
    half-width (S1_conf, ST_conf: sampling noise) and how many by more."""
    within = beyond = total = 0
    for k in ("S1", "ST"):
        v, conf = np.asarray(out[k]), np.asarray(out[f"{k}_conf"])
        ok = np.isfinite(v)
        total += int(ok.sum())
        excess = np.where(ok, np.maximum(-v, v - 1.0), -np.inf)
        outside = excess > 0
        near = outside & (excess <= np.where(np.isfinite(conf), conf, 0.0))
        within += int(near.sum())
        beyond += int((outside & ~near).sum())
    if within + beyond:
        warnings.warn(
            f"sensitivity: {within + beyond} of {total} Sobol' indices (S1, ST) lie outside [0, 1]: {within} "
            f"by less than their bootstrap 95 % half-width (S1_conf, ST_conf: sampling noise, more --samples "
            f"narrows it), {beyond} by more",
            SweepWarning,
            stacklevel=4,
        )


def to_dataset(
    result: dict, cat: dict, point_axes: list, spec_axes: dict, *, method, target, samples, seed
) -> xr.Dataset:
    """Label the indices: (parameter, profile dims, point axes)."""
    cat_names = list(cat)
    cat_shape = tuple(len(v) for v in cat.values())
    ds = xr.Dataset()
    for k, v in result.items():
        if k in ("parameter", "evaluations", "samples"):
            continue
        if k == "feasible_fraction":  # no parameter dim
            ds[k] = (cat_names + point_axes, v.reshape(cat_shape + v.shape[1:]))
            ds[k].attrs.update(
                long_name=f"fraction of the design's draws where a sequence fits (finite, positive {target})",
                units="1",
            )
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
