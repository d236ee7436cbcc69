"""Global sensitivity designs and estimators, vectorised over grid points (docs/uncertainty.md).

Every estimator takes the model outputs of one design as a matrix ``y`` of shape (rows, points) —
one column per grid point — and returns index arrays of shape (d, points); there is no Python loop
over points. Inputs live in the unit cube [0, 1]^d; their distributions are applied elsewhere.

    Sobol'   S1_i = mean(f_B·(f_ABi − f_A)) / V            Saltelli et al. 2010, CPC 181:259, eq. (b)
             ST_i = mean((f_A − f_ABi)²) / 2 / V            Jansen 1999, CPC 117:35
             V = var([f_A, f_B]); outputs centred and scaled as SALib.analyze.sobol does
    Morris   EE_i = (y(x + Δ·e_i) − y(x)) / Δ,  Δ = L / (2(L − 1)); μ, μ*, σ over trajectories
                                                            Morris 1991; Campolongo et al. 2007
    DGSM     ν_i = E[(∂y/∂x_i)²];  ST_i ≤ ν_i·(b_i − a_i)² / (π²·V)   Sobol' & Kucherenko 2009, MCS 79:3009
    OAT      relative change (y(x_i low/high) − y_0) / y_0 and its swing (tornado)

The Sobol' and Morris estimators equal SALib's on the same samples (same estimator, same centring);
their bootstrap half-widths are z·std over resamples, as SALib's, and use the very resample
indices SALib draws for the same non-zero seed.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, qmc

_EPS = np.finfo(float).eps


def _unit_problem(d: int) -> dict:
    """A SALib problem on the unit cube [0, 1]^d."""
    return {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": [[0.0, 1.0]] * d}


def _as_columns(y: np.ndarray) -> tuple[np.ndarray, bool]:
    """(rows, points) float64 view of y, and whether y was one column (1-D)."""
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        return y[:, None], True
    if y.ndim != 2:
        raise ValueError(f"y must be (rows,) or (rows, points), got shape {y.shape}")
    return y, False


def _counts(index: np.ndarray, n: int) -> np.ndarray:
    """(resamples, n) multiplicities of a (n_draws, resamples) bootstrap index matrix."""
    r = index.shape[1]
    flat = (index + n * np.arange(r)[None, :]).ravel()
    return np.bincount(flat, minlength=n * r).reshape(r, n).astype(float)


# ---------------------------------------------------------------------------------------------
# Sobol'
# ---------------------------------------------------------------------------------------------


def sobol_design(d: int, n: int, seed: int) -> np.ndarray:
    """(n·(d+2), d) unit-cube Saltelli design without second order: rows A_j, AB_j^(1..d), B_j.

    Same base sequence (scrambled Sobol' in 2d dimensions, scipy.stats.qmc) and same block layout
    as SALib.sample.sobol.sample(problem, n, calc_second_order=False, scramble=True, seed=seed),
    built without SALib's per-element Python loop; tests check the two are identical.
    """
    if d < 1 or n < 1:
        raise ValueError(f"need d >= 1 and n >= 1, got d={d}, n={n}")
    base = qmc.Sobol(d=2 * d, scramble=True, seed=seed).random(n)  # warns if n is not a power of 2
    a, b = base[:, :d], base[:, d:]
    out = np.repeat(a[:, None, :], d + 2, axis=1)  # (n, d+2, d)
    idx = np.arange(d)
    out[:, 1 + idx, idx] = b[:, idx]  # AB^(i): A with column i from B
    out[:, d + 1, :] = b
    return out.reshape(n * (d + 2), d)


def sobol_indices(
    y: np.ndarray,
    d: int,
    *,
    resamples: int = 100,
    confidence: float = 0.95,
    seed: int = 0,
    nan_policy: str = "drop",
) -> dict:
    """First-order and total Sobol' indices, with bootstrap half-widths, for every column of y.

    y: (n·(d+2), points) outputs on sobol_design (or SALib's layout); a 1-D y gives (d,) arrays.
    Per point, outputs are standardised over all rows (as SALib), then with V = var([f_A, f_B]):
    S1_i = mean(f_B·(f_ABi − f_A))/V (Saltelli 2010), ST_i = mean((f_A − f_ABi)²)/2/V (Jansen 1999).
    Half-widths: z·std(ddof=1) of the estimates over `resamples` bootstrap resamples of the base rows,
    z = Φ⁻¹(1/2 + confidence/2); the resample indices are default_rng(seed).integers(n, (n, resamples)),
    those SALib.analyze.sobol draws for the same non-zero seed (SALib uses the global RNG for seed 0).

    Non-finite outputs (infeasible draws): nan_policy="drop" drops, per point, every base row j
    whose block (A_j, AB_j, B_j) holds a non-finite value, and estimates from the rest — the same as
    running SALib on the remaining blocks; "propagate" gives NaN indices for any such point.
    Points with (near-)zero variance of [f_A, f_B], or fewer than 2 usable base rows, get NaN.

    Returns {"S1", "ST", "S1_conf", "ST_conf"} of shape (d, points) and "n" (points,), the number
    of base rows used.
    """
    if nan_policy not in ("drop", "propagate"):
        raise ValueError(f"nan_policy must be 'drop' or 'propagate', got {nan_policy!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    y, one = _as_columns(y)
    step = d + 2
    rows, points = y.shape
    if rows % step:
        raise ValueError(f"y has {rows} rows, not a multiple of d + 2 = {step}")
    n = rows // step
    blocks = y.reshape(n, step, points)

    valid = np.isfinite(blocks).all(axis=1)  # (n, points): base rows with a finite block
    bad_point = ~valid.all(axis=0) if nan_policy == "propagate" else np.zeros(points, bool)
    m = valid.astype(float)
    n_ok = m.sum(axis=0)
    safe_n = np.maximum(n_ok, 1.0)
    z = np.where(valid[:, None, :], blocks, 0.0)

    # Standardise per point over all usable rows, as SALib: Y = (Y − mean) / std.
    mean = z.sum(axis=(0, 1)) / (safe_n * step)
    z = z - mean
    z *= valid[:, None, :]
    std = np.sqrt((z * z).sum(axis=(0, 1)) / (safe_n * step))
    z /= np.where(std > 0, std, 1.0)

    a, b, ab = z[:, 0, :], z[:, -1, :], z[:, 1:-1, :]  # (n, P), (n, P), (n, d, P)
    diff = a[:, None, :] - ab  # f_A − f_ABi, zero on dropped rows
    mu = (a + b).sum(axis=0) / (2 * safe_n)
    dev_a, dev_b = (a - mu) * m, (b - mu) * m
    var = ((dev_a * dev_a).sum(axis=0) + (dev_b * dev_b).sum(axis=0)) / (2 * safe_n)

    num_s1 = -np.einsum("np,nip->ip", b, diff) / safe_n
    num_st = 0.5 * np.einsum("nip,nip->ip", diff, diff) / safe_n
    undefined = (std <= 0) | (var <= _EPS) | (n_ok < 2) | bad_point
    with np.errstate(divide="ignore", invalid="ignore"):
        s1 = np.where(undefined, np.nan, num_s1 / var)
        st = np.where(undefined, np.nan, num_st / var)

    # Bootstrap: every resample statistic is a count-weighted sum over base rows, so one matrix
    # product W @ Q (W: resamples × n multiplicities) replaces gathering (n, resamples, points) arrays.
    resamples = int(resamples)
    if resamples >= 2:
        w = _counts(np.random.default_rng(seed).integers(n, size=(n, resamples)), n)
        q = np.concatenate(
            [
                (-b[:, None, :] * diff).reshape(n, d * points),
                (0.5 * diff * diff).reshape(n, d * points),
                a + b,
                a * a + b * b,
                m,
            ],
            axis=1,
        )
        sums = w @ q  # (resamples, 2·d·P + 3·P)
        dp = d * points
        k = np.maximum(sums[:, 2 * dp + 2 * points :], 1.0)  # usable rows drawn per resample
        mean_k = sums[:, 2 * dp : 2 * dp + points] / (2 * k)
        var_k = sums[:, 2 * dp + points : 2 * dp + 2 * points] / (2 * k) - mean_k * mean_k
        var_k = var_k[:, None, :]
        ok = var_k > _EPS  # SALib returns 0 for a constant resample
        den = np.where(ok, var_k, 1.0) * k[:, None, :]
        s1_k = np.where(ok, sums[:, :dp].reshape(resamples, d, points) / den, 0.0)
        st_k = np.where(ok, sums[:, dp : 2 * dp].reshape(resamples, d, points) / den, 0.0)
        zq = norm.ppf(0.5 + confidence / 2)
        s1_conf = np.where(undefined, np.nan, zq * s1_k.std(axis=0, ddof=1))
        st_conf = np.where(undefined, np.nan, zq * st_k.std(axis=0, ddof=1))
    else:
        s1_conf = np.full((d, points), np.nan)
        st_conf = np.full((d, points), np.nan)

    out = {"S1": s1, "ST": st, "S1_conf": s1_conf, "ST_conf": st_conf, "n": n_ok.astype(int)}
    if one:
        out = {key: val[..., 0] for key, val in out.items()}
    return out


# ---------------------------------------------------------------------------------------------
# Morris
# ---------------------------------------------------------------------------------------------


def morris_design(d: int, trajectories: int, levels: int, seed: int) -> np.ndarray:
    """(trajectories·(d+1), d) unit-cube Morris trajectories on a `levels`-level grid (SALib.sample.morris)."""
    from SALib.sample import morris

    return morris.sample(_unit_problem(d), trajectories, num_levels=levels, seed=seed)


def morris_indices(
    x: np.ndarray,
    y: np.ndarray,
    levels: int,
    *,
    resamples: int = 100,
    confidence: float = 0.95,
    seed: int | None = None,
) -> dict:
    """Morris μ, μ*, σ of the elementary effects EE_i = (y(x + Δe_i) − y(x))/Δ, Δ = L/(2(L − 1)).

    x: (T·(d+1), d) unit-cube trajectories (morris_design); y: (T·(d+1), points) or 1-D.
    μ = mean EE, μ* = mean |EE| (Campolongo et al. 2007), σ = std(EE, ddof=1) over trajectories —
    as SALib.analyze.morris (ungrouped, unscaled). "mu_star_conf" is z·std of μ* over bootstrap
    resamples of trajectories, with the indices SALib draws for the same seed.
    Non-finite outputs make the elementary effects they enter NaN; the statistics skip those.
    Returns {"mu", "mu_star", "sigma", "mu_star_conf"} of shape (d, points).
    """
    x = np.asarray(x, dtype=float)
    y, one = _as_columns(y)
    d = x.shape[1]
    t = x.shape[0] // (d + 1)
    if t * (d + 1) != x.shape[0] or y.shape[0] != x.shape[0]:
        raise ValueError(f"x {x.shape} and y {y.shape} are not whole trajectories of {d + 1} rows")
    delta = levels / (2.0 * (levels - 1))
    dx = np.diff(x.reshape(t, d + 1, d), axis=1)  # (T, d steps, d vars)
    sign = (dx > 0).astype(float) - (dx < 0)  # +1 if the step raised var i, −1 if it lowered it
    dy = np.diff(y.reshape(t, d + 1, -1), axis=1)  # (T, d steps, P)
    bad = ~np.isfinite(dy)
    ee = np.einsum("tkp,tki->itp", np.where(bad, 0.0, dy), sign) / delta  # (d, T, P)
    ee[np.einsum("tkp,tki->itp", bad.astype(float), np.abs(sign)) > 0] = np.nan  # only EEs using it

    finite = np.isfinite(ee)
    cnt = finite.sum(axis=1)
    e0 = np.where(finite, ee, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = e0.sum(axis=1) / cnt
        mu_star = np.abs(e0).sum(axis=1) / cnt
        dev = np.where(finite, ee - mu[:, None, :], 0.0)
        sigma = np.sqrt((dev * dev).sum(axis=1) / (cnt - 1))
        sigma = np.where(cnt > 1, sigma, np.nan)

        zq = norm.ppf(0.5 + confidence / 2)
        rng = np.random.default_rng(seed)
        conf = np.full_like(mu_star, np.nan)
        if resamples >= 2:
            fm = finite.astype(float)
            for i in range(d):  # loop over parameters (as SALib, same draw order), not over points
                w = _counts(rng.integers(t, size=(resamples, t)).T, t)  # (resamples, T)
                boot = (w @ np.abs(e0[i])) / (w @ fm[i])
                conf[i] = zq * boot.std(axis=0, ddof=1)

    out = {"mu": mu, "mu_star": mu_star, "sigma": sigma, "mu_star_conf": conf}
    if one:
        out = {key: val[..., 0] for key, val in out.items()}
    return out


# ---------------------------------------------------------------------------------------------
# DGSM, one-at-a-time, ranking
# ---------------------------------------------------------------------------------------------


def dgsm_indices(
    gradients: np.ndarray,
    bounds_width: np.ndarray | float = 1.0,
    *,
    variance: np.ndarray | float | None = None,
    y: np.ndarray | None = None,
) -> dict:
    """Derivative-based measures ν_i = E[(∂y/∂x_i)²] and the bound ST_i ≤ ν_i·w_i²/(π²·V).

    gradients: (n, d, points) — or (n, d) — ∂y/∂x_i at n random input samples, in the coordinates
    in which x_i is uniform on an interval of width w_i = bounds_width[i] (Sobol' & Kucherenko 2009,
    MCS 79:3009). For gradients in unit-cube coordinates w = 1; this also covers non-uniform inputs
    x = F⁻¹(u), as y is then a function of the uniform u. V (the output variance) is `variance`
    (points,), or var(y, ddof=1) over the rows of y (n, points), NaN rows skipped; with neither,
    "ST_bound" is omitted. Non-finite gradients are skipped in the means.
    Returns {"nu", "dgsm" = ν·w²/π² (a bound on the unnormalised total variance), "ST_bound"}, (d, points).
    """
    g = np.asarray(gradients, dtype=float)
    if g.ndim not in (2, 3):
        raise ValueError(f"gradients must be (n, d) or (n, d, points), got shape {g.shape}")
    finite = np.isfinite(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = np.where(finite, g * g, 0.0).sum(axis=0) / finite.sum(axis=0)
    w = np.asarray(bounds_width, dtype=float)
    if w.ndim == 1:
        w = w.reshape((-1,) + (1,) * (nu.ndim - 1))
    dgsm = nu * w * w / np.pi**2
    out = {"nu": nu, "dgsm": dgsm}
    if variance is None and y is not None:
        variance = np.nanvar(np.asarray(y, dtype=float), axis=0, ddof=1)
    if variance is not None:
        v = np.asarray(variance, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ST_bound"] = np.where(v > 0, dgsm / np.where(v > 0, v, 1.0), np.nan)
    return out


def oat_tornado(y_low: np.ndarray, y_high: np.ndarray, y_nominal: np.ndarray) -> dict:
    """One-at-a-time tornado: low/high = y(x_i at low/high)/y_0 − 1, swing = |high − low|.

    y_low, y_high: (d, ...) outputs with parameter i at its low/high value and the others nominal;
    y_nominal: (...) the output at nominal. Relative changes are NaN where y_0 = 0 or non-finite.
    "order": (d, ...) parameter indices by decreasing swing (NaN last) — order[0] is the widest bar.
    """
    lo = np.asarray(y_low, dtype=float)
    hi = np.asarray(y_high, dtype=float)
    y0 = np.asarray(y_nominal, dtype=float)
    ok = np.isfinite(y0) & (y0 != 0)
    den = np.where(ok, y0, 1.0)
    low = np.where(ok, lo / den - 1.0, np.nan)
    high = np.where(ok, hi / den - 1.0, np.nan)
    swing = np.abs(high - low)
    order = np.argsort(np.where(np.isnan(swing), np.inf, -swing), axis=0, kind="stable")
    return {"low": low, "high": high, "swing": swing, "order": order}


def rank(total: np.ndarray, names: list, top: int = 3) -> list:
    """The `top` names by decreasing index, NaN indices skipped (ties keep parameter order).

    total: (d,) gives a list of names; (d, points) a list of such lists, one per point.
    """
    total = np.asarray(total, dtype=float)
    if total.shape[0] != len(names):
        raise ValueError(f"{total.shape[0]} indices for {len(names)} names")
    if total.ndim == 2:
        return [rank(total[:, p], names, top) for p in range(total.shape[1])]
    order = np.argsort(-np.where(np.isnan(total), -np.inf, total), kind="stable")
    return [names[i] for i in order if not np.isnan(total[i])][:top]
