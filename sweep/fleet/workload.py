"""Workload CDFs (docs/models.md §3) and exact, closed-form pool statistics.

A workload is the CDF of *total* request tokens L (input + output), given as knots
`[tokens, cumulative_fraction]`. Between knots L is uniform (piecewise-linear CDF). Below the
first knot the planner's reading is used: an implicit knot (0, 0), i.e. the first knot's mass is
uniform on (0, t_1] (fleet-sim `calibrate` samples randint(1, t_1) there, and its `cdf_eval` and
`_cdf_mean_l_out` interpolate from (0, 0)).

Pool statistics. A pool receives the requests with L in (lo, hi] (its traffic share is
F(hi) − F(lo)) and serves each at length L_c = min(L, window). With output share f,
L_in = (1 − f)·L_c, L_out = f·L_c, chunked prefill of `chunk` tokens per iteration and the
iteration time linear in the request's own length, τ(L) = α + β·L (α = W_s, β = H_s·n_max/C_cal):

    S(L) = (ceil(L_in / chunk) + L_out) · τ(L_c)                         (docs/models.md §3)

E[S], E[S²] (→ squared coefficient of variation E[S²]/E[S]² − 1), E[L_out] and
E[ceil(L_in/chunk)] are integrated exactly: with y = (1 − f)·L/chunk, S is a polynomial in y and
k = ceil(y), and ∫ ceil(t)^p t^q dt has a closed form through Faulhaber's power sums, so no
sampling, no grid and no data-dependent number of pieces (shapes stay static under jit/vmap).
Requests above the window form a point mass at L_c = window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sweep import validate as V
from sweep.errors import SweepInputError

WORKLOAD_DIR = Path(__file__).parent.parent / "data" / "workloads"
_CDF_TOLERANCE = 1e-9  # |last fraction − 1| accepted (then set to exactly 1)


# --------------------------------------------------------------------------- loading


class Workload(NamedTuple):
    """Piecewise-uniform length distribution; knots on the last axis, leading (0, 0) included."""

    lengths_tokens: jax.Array  # (..., K+1) strictly increasing, lengths_tokens[..., 0] = 0
    cum_fraction: jax.Array  # (..., K+1) non-decreasing, cum_fraction[..., 0] = 0, last = 1


def available_workloads() -> tuple[str, ...]:
    """Names of the built-in workloads (files `sweep/data/workloads/<name>.json`)."""
    return tuple(sorted(p.stem for p in WORKLOAD_DIR.glob("*.json")))


def _fail(source: str, key: str, problem: str, allowed: str):
    raise SweepInputError(f"workload {source}: key '{key}': {problem} (allowed: {allowed})")


def validate_cdf(data, source: str = "<cdf>") -> np.ndarray:
    """Check a parsed CDF (bare list or {"cdf": list}); return a float64 (K, 2) array.

    Rules: a non-empty list of [tokens, cumulative_fraction] pairs; tokens finite, positive and
    strictly increasing; fractions finite, in [0, 1], non-decreasing, the last equal to 1.
    """
    key = "cdf"
    if isinstance(data, dict):
        if "cdf" not in data:
            _fail(
                source,
                "cdf",
                f"missing; keys present: {sorted(data)}",
                'an object with a "cdf" array, or a bare array',
            )
        data = data["cdf"]
    if not isinstance(data, (list, tuple)) or len(data) == 0:
        _fail(source, key, "must be a non-empty array", "[[tokens, cumulative_fraction], ...]")
    rows = []
    for i, entry in enumerate(data):
        ok = (
            isinstance(entry, (list, tuple))
            and len(entry) == 2
            and all(V.is_number(v) and V.finite(v) for v in entry)
        )
        if not ok:
            _fail(
                source,
                f"{key}[{i}]",
                f"got {entry!r}",
                "a pair [tokens, cumulative_fraction] of finite numbers",
            )
        rows.append((float(entry[0]), float(entry[1])))
    arr = np.asarray(rows, dtype=np.float64)
    tokens, frac = arr[:, 0], arr[:, 1]
    if tokens[0] <= 0:
        _fail(source, f"{key}[0][0]", f"token length {tokens[0]:g} is not positive", "token lengths > 0")
    steps = np.diff(tokens)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        _fail(
            source,
            f"{key}[{i}][0]",
            f"token length {tokens[i]:g} does not exceed the previous {tokens[i - 1]:g}",
            "strictly increasing token lengths",
        )
    bad = (frac < 0) | (frac > 1)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        _fail(
            source, f"{key}[{i}][1]", f"cumulative fraction {frac[i]:g} outside [0, 1]", "fractions in [0, 1]"
        )
    if np.any(np.diff(frac) < 0):
        i = int(np.flatnonzero(np.diff(frac) < 0)[0]) + 1
        _fail(
            source,
            f"{key}[{i}][1]",
            f"cumulative fraction {frac[i]:g} is below the previous {frac[i - 1]:g}",
            "non-decreasing fractions",
        )
    if abs(frac[-1] - 1.0) > _CDF_TOLERANCE:
        _fail(
            source,
            f"{key}[{len(frac) - 1}][1]",
            f"last cumulative fraction is {frac[-1]:g}",
            "a last fraction of 1",
        )
    arr[-1, 1] = 1.0
    return arr


def _resolve(source) -> Path:
    text = str(source)
    path = Path(text)
    if text in available_workloads():
        return WORKLOAD_DIR / f"{text}.json"
    if path.suffix == ".json" or path.exists() or "/" in text:
        if not path.is_file():
            raise SweepInputError(
                f"workload file '{text}': not found (allowed: an existing JSON CDF file, or one of "
                f"{', '.join(available_workloads())})"
            )
        return path
    raise SweepInputError(
        f"workload '{text}': unknown name (allowed: {', '.join(available_workloads())}, "
        "or a path to a JSON CDF file)"
    )


def load_cdf(source) -> np.ndarray:
    """Read and validate a built-in workload name or a JSON CDF file; (K, 2) float64 array."""
    path = _resolve(source)
    label = f"'{source}'" if str(source) in available_workloads() else f"file '{path}'"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SweepInputError(
            f"workload {label}: key '<root>': invalid JSON ({exc.msg} at line {exc.lineno}) "
            '(allowed: a JSON array of [tokens, cumulative_fraction] or an object with "cdf")'
        ) from None
    except OSError as exc:
        raise SweepInputError(f"workload {label}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SweepInputError(f"workload {label}: not UTF-8 text (allowed: a JSON CDF file)") from None
    return validate_cdf(data, label)


def workload_from_cdf(cdf, source: str = "<cdf>") -> Workload:
    """Validated Workload from a parsed CDF (list of pairs, {"cdf": ...} or (K, 2) array)."""
    data = cdf.tolist() if isinstance(cdf, np.ndarray) else cdf
    arr = validate_cdf(data, source)
    return Workload(
        jnp.asarray(np.concatenate([[0.0], arr[:, 0]])), jnp.asarray(np.concatenate([[0.0], arr[:, 1]]))
    )


def load_workload(source) -> Workload:
    """Built-in workload by name (see `available_workloads()`) or a user JSON CDF file."""
    arr = load_cdf(source)
    return Workload(
        jnp.asarray(np.concatenate([[0.0], arr[:, 0]])), jnp.asarray(np.concatenate([[0.0], arr[:, 1]]))
    )


def stack_workloads(workloads) -> Workload:
    """Stack workloads along a new leading axis, padding short ones with zero-mass knots."""
    size = max(int(w.lengths_tokens.shape[-1]) for w in workloads)
    lengths, fractions = [], []
    for w in workloads:
        t = np.asarray(w.lengths_tokens, dtype=np.float64)
        f = np.asarray(w.cum_fraction, dtype=np.float64)
        pad = size - t.shape[-1]
        lengths.append(np.concatenate([t, t[-1] + np.arange(1, pad + 1)]))
        fractions.append(np.concatenate([f, np.ones(pad)]))
    return Workload(jnp.asarray(np.stack(lengths)), jnp.asarray(np.stack(fractions)))


def cdf_at(workload: Workload, tokens):
    """F(tokens): the piecewise-linear CDF (0 at 0, 1 beyond the last knot)."""
    t, f = workload.lengths_tokens, workload.cum_fraction
    x = jnp.asarray(tokens)[..., None]
    width = t[..., 1:] - t[..., :-1]
    part = jnp.clip((x - t[..., :-1]) / width, 0.0, 1.0)
    return jnp.sum(part * (f[..., 1:] - f[..., :-1]), axis=-1)


# --------------------------------------------------------------------------- exact integrals


def _power_sum(r: int, m):
    """Faulhaber: S_r(m) = Σ_{j=1}^{m} j^r for integer-valued m ≥ 0, r = 1..4."""
    if r == 1:
        return m * (m + 1) / 2
    if r == 2:
        return m * (m + 1) * (2 * m + 1) / 6
    if r == 3:
        return (m * (m + 1) / 2) ** 2
    if r == 4:
        return m * (m + 1) * (2 * m + 1) * (3 * m * m + 3 * m - 1) / 30
    raise ValueError(r)


def _ceil_moment_primitive(p: int, q: int, x):
    """G_{p,q}(x) = ∫_0^x ceil(t)^p · t^q dt for x ≥ 0 (p ≤ 2, p + q ≤ 3 or q ≤ 2 for p = 2).

    With n = ceil(x) and r = q + 1 (summation by parts on Σ_{k≤m} k^p (k^r − (k−1)^r)):
        p = 0:  x^r / r
        p = 1:  [ (n−1)^{r+1} − S_r(n−2) + n·(x^r − (n−1)^r) ] / r
        p = 2:  [ (n−1)^{r+2} − 2 S_{r+1}(n−2) − S_r(n−2) + n²·(x^r − (n−1)^r) ] / r
    """
    r = q + 1
    if p == 0:
        return x**r / r
    n = jnp.maximum(jnp.ceil(x), 1.0)
    m = n - 1.0  # complete unit intervals below x
    mm = jnp.maximum(m - 1.0, 0.0)
    last = x**r - m**r
    if p == 1:
        full = m ** (r + 1) - _power_sum(r, mm)
        return (full + n * last) / r
    full = m ** (r + 2) - 2.0 * _power_sum(r + 1, mm) - _power_sum(r, mm)
    return (full + n * n * last) / r


def _segment_integrals(y_lo, y_hi):
    """J[(p, q)] = ∫_{y_lo}^{y_hi} ceil(y)^p y^q dy for the terms S and S² need."""
    terms = [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2)]
    return {pq: _ceil_moment_primitive(*pq, y_hi) - _ceil_moment_primitive(*pq, y_lo) for pq in terms}


def _ceil_exact(x):
    """ceil(x) that treats x within 1e-12 (relative) of an integer as that integer."""
    nearest = jnp.round(x)
    return jnp.where(jnp.abs(x - nearest) <= 1e-12 * jnp.maximum(1.0, jnp.abs(x)), nearest, jnp.ceil(x))


def _segment_masses(t, big_f, lo, hi, w, planner_routing: bool):
    """Per knot segment: bounds a, b, window split (tokens); routed, below-window, at-window mass."""
    t0, t1 = t[..., :-1], t[..., 1:]
    density = (big_f[..., 1:] - big_f[..., :-1]) / (t1 - t0)  # knots strictly increasing
    a = jnp.maximum(t0, lo)
    b = jnp.minimum(t1, hi)
    inside = b > a
    mass = jnp.where(inside, density * (b - a), 0.0)
    if planner_routing:
        a = jnp.where((t0 <= lo) & (lo < t1) & (lo > 0), 0.0, a)
    width = jnp.where(inside, b - a, 1.0)
    # split each piece at the window: [a, min(b, w)] uniform, the rest a point mass at w
    below_hi = jnp.clip(w, a, b)
    mass_below = jnp.where(inside, mass * (below_hi - a) / width, 0.0)
    mass_point = mass - mass_below
    return a, b, below_hi, mass, mass_below, mass_point


def _uniform_service_integrals(y_lo, y_hi, mass_below, c, f, alpha, beta):
    """Probability per unit y, the J integrals, ∫S dy (s) and ∫S² dy (s²) per uniform y-segment."""
    has_below = mass_below > 0
    y_width = jnp.where(has_below, y_hi - y_lo, 1.0)
    weight = jnp.where(has_below, mass_below / y_width, 0.0)  # probability per unit y
    j = _segment_integrals(y_lo, y_hi)
    u0, u1, v1, v2 = alpha, beta * c, f * c * alpha, f * c * c * beta
    int_s = u0 * j[1, 0] + u1 * j[1, 1] + v1 * j[0, 1] + v2 * j[0, 2]
    int_s2 = (
        u0 * u0 * j[2, 0]
        + 2 * u0 * u1 * j[2, 1]
        + u1 * u1 * j[2, 2]
        + 2 * (u0 * v1 * j[1, 1] + (u0 * v2 + u1 * v1) * j[1, 2] + u1 * v2 * j[1, 3])
        + v1 * v1 * j[0, 2]
        + 2 * v1 * v2 * j[0, 3]
        + v2 * v2 * j[0, 4]
    )
    return weight, j, int_s, int_s2


def _window_service(w, chunk, g, f, alpha, beta):
    """Prefill chunks k_w and service time S(w) (s) of a request served at the window length w."""
    k_w = _ceil_exact(g * w / chunk)
    s_w = (k_w + f * w) * (alpha + beta * w)
    return k_w, s_w


class PoolStats(NamedTuple):
    """Closed-form statistics of one pool's requests (conditional on being routed to it)."""

    traffic_share: jax.Array  # F(hi) − F(lo): fraction of all requests routed here
    mean_service_s: jax.Array  # E[S] (s)
    service_scv: jax.Array  # E[S²]/E[S]² − 1
    mean_output_tokens: jax.Array  # E[L_out]
    mean_prefill_chunks: jax.Array  # E[ceil(L_in / chunk)]
    mean_served_tokens: jax.Array  # E[L_c] = E[min(L, window)]


def pool_statistics(
    workload: Workload,
    lo_tokens,
    hi_tokens,
    window_tokens,
    chunk_tokens,
    iter_base_s,
    iter_per_token_s,
    output_share=0.2,
    *,
    planner_routing: bool = False,
    output_unclipped: bool = False,
) -> PoolStats:
    """Exact pool statistics for requests with L in (lo, hi], served at L_c = min(L, window).

    τ(L_c) = iter_base_s + iter_per_token_s·L_c; S = (ceil((1−f)L_c/chunk) + f·L_c)·τ(L_c).
    Every argument broadcasts (the workload's knot axis is its last axis); hi may be +inf.

    Static planner-compatibility switches (fleet-sim conventions that the paper's numbers carry):
    - `planner_routing`: the segment that contains `lo` keeps its mass F(t_i) − F(lo) but spreads
      it over (0, t_i] instead of (lo, t_i] (fleet-sim `_split_cdf` renormalises the long pool's
      knots and its sampler/mean then start the first segment at 0).
    - `output_unclipped`: E[L_out] = f·E[L] of the uncompressed lengths (fleet-sim counts the
      output tokens of compressed requests at their original length), not f·E[L_c].
    """
    t, big_f = workload.lengths_tokens, workload.cum_fraction
    lo = jnp.asarray(lo_tokens, dtype=t.dtype)[..., None]
    hi = jnp.asarray(hi_tokens, dtype=t.dtype)[..., None]
    w = jnp.asarray(window_tokens, dtype=t.dtype)[..., None]
    chunk = jnp.asarray(chunk_tokens, dtype=t.dtype)[..., None]
    alpha = jnp.asarray(iter_base_s, dtype=t.dtype)[..., None]
    beta = jnp.asarray(iter_per_token_s, dtype=t.dtype)[..., None]
    f = jnp.asarray(output_share, dtype=t.dtype)[..., None]

    a, b, below_hi, mass, mass_below, mass_point = _segment_masses(t, big_f, lo, hi, w, planner_routing)

    # uniform part, in y = (1 − f)·L / chunk units: L = c·y
    g = 1.0 - f
    c = chunk / g
    weight, j, int_s, int_s2 = _uniform_service_integrals(a / c, below_hi / c, mass_below, c, f, alpha, beta)
    k_w, s_w = _window_service(w, chunk, g, f, alpha, beta)

    share = jnp.sum(mass, axis=-1)
    safe_share = jnp.where(share > 0, share, 1.0)

    def expect(uniform_integral, point_value):
        total = jnp.sum(weight * uniform_integral + mass_point * point_value, axis=-1)
        return total / safe_share

    e_s = expect(int_s, s_w)
    e_s2 = expect(int_s2, s_w * s_w)
    e_chunks = expect(j[1, 0], k_w)
    e_served = expect(c * j[0, 1], w)
    if output_unclipped:
        e_length = jnp.sum(mass * 0.5 * (a + b), axis=-1) / safe_share
    else:
        e_length = e_served
    e_out = f[..., 0] * e_length
    safe_e_s = jnp.where(e_s > 0, e_s, 1.0)
    scv = jnp.where(e_s > 0, jnp.maximum(e_s2 / (safe_e_s * safe_e_s) - 1.0, 0.0), 0.0)
    return PoolStats(share, e_s, scv, e_out, e_chunks, e_served)
