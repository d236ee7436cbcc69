"""Optimum routing split (issue 4 item 5): grid search, then an optional gradient refinement.

`optimize(ds)` — grid search over a fleet Dataset from `sweep.run`. The *search dims* are
`topology` and, where they are axes, `b_short` and `gamma`; every other dim (gpu, model,
workload, arrival_rate, ttft_p99_s, …) is a *group*. Per group it reports the (topology,
b_short, gamma) with the largest `fleet_tokens_per_watt` among the points that meet the SLO
(`ttft_p99 <= ttft_p99_s`, the grid's target: an axis of the grid or its scalar attribute), the
homogeneous fleet's value (`topology = "homogeneous"`, itself subject to the SLO) and the gain
best / homogeneous. It is exact: an argmax over the values the engine computed. Prompt
compression is not free: FleetOpt points with γ above `max_compression` (γ_max, default 2, the
paper's value) are not candidates. `optimum_flags` marks an optimum on the edge of the grid or at
γ_max, or with an empty pool, and one warning line counts them.

`refine(spec_or_ds)` — gradient refinement of the grid optimum over continuous (b_short, γ) of
the FleetOpt topology (pool routing is its face γ = 1), using the continuous relaxation
`fleet_metrics(..., relaxed=True)`: instance counts, n_max and the power curve's int(n) are real
valued, the SLO-driven instance growth is the real root of the Kimura tail equation with an
implicit derivative. The relaxed objective ln(fleet tokens/W) is differentiable almost
everywhere in (ln b_short, ln γ); it is only *piecewise* smooth: it has kinks where the split
γ·b_short or the window b_short crosses a knot of the piecewise-linear CDF, where the binding
constraint on N switches (rate floor ↔ SLO), and small jumps where ceil(0.8·b_short/chunk) of
the requests compressed to the window changes (that ceiling is kept in the pool statistics).

Procedure, vectorised over all groups at once (each step is one call of a jitted, vmapped
value-and-gradient over every group; no Python loop over points):
1. start from each group's best *routed* grid point (pool or FleetOpt; pool starts at γ = 1);
2. `steps` iterations of monotone projected gradient ascent in u = (ln b_short, ln γ): the
   step is along the normalised projected gradient (components pushing out of an active bound
   dropped), of per-group length η; a step is accepted only if the relaxed objective increases
   (then η ← 1.5 η), otherwise rejected (η ← η / 2). Both kinds of bounds cap γ at γ_max.
   Bounds: "grid" (default) — the box of
   the grid's b_short and γ axes, γ ≥ 1, intersected with γ ≤ long_context / b_short; "model" —
   b_short in [first CDF knot, long_context − 1], γ in [1, long_context / b_short].
   Why "grid" by default: fleet tokens/W puts no price on compression, so the model rewards
   ever larger γ (until γ·b_short covers the whole CDF) and, under the paper convention
   (`lengths="planner"`, output of compressed requests counted at the original length), ever
   smaller b_short too: with "model" bounds the Azure/H100 optimum becomes b_short ≈ 330,
   γ ≈ 25 at ~180 tok/W, an artefact of that convention, not a deployable split. The grid's γ
   range is the user's statement of how much compression is acceptable;
3. re-evaluate the *exact* model (integer instance counts, the engine's own conventions) at the
   continuous optimum rounded to integer b_short and at a stencil of neighbours (b_short and γ
   scaled by ±2.5 % and ±5 %, and γ = 1), keep the best point that meets the SLO, and accept it
   only if its exact tokens/W is at least the grid optimum's. Otherwise the grid optimum is kept
   and `refinement_status` says so.

In what sense this is sound: the gradient finds a local optimum of the *relaxed* objective
near the grid optimum, not a global optimum of the exact model (whose instance counts are
integers, so it is piecewise constant in b_short and γ and has no useful gradient). The relaxed
optimum is a proposal; the number reported is always an exact-model evaluation, and it is never
below the grid optimum: `refined_fleet_tokens_per_watt >= best_fleet_tokens_per_watt` holds by
construction. Where the relaxation points the wrong way (its real-valued N misses an integer
step) the refinement simply reports the grid optimum.
"""

from __future__ import annotations

import json
import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from sweep.api import as_spec, run
from sweep.errors import SweepInputError, SweepWarning
from sweep.fleet.sizing import FLEETOPT, fleet_metrics
from sweep.fleet.workload import Workload, load_workload, stack_workloads
from sweep.grid import spec as gridspec
from sweep.grid.tables import profile_table
from sweep.io.output import annotate, history_line
from sweep.vocabulary import OPTIMUM_FLAGS

SEARCH_DIMS = ("topology", "b_short", "gamma")
# point parameters of fleet_metrics that a fleet grid may sweep (group dims) or fix (attributes)
POINT_PARAMS = ("arrival_rate", "long_context", "ttft_p99_s", "rho_max", "output_share")
STENCIL = (0.95, 0.975, 1.0, 1.025, 1.05)  # neighbours of the refined point, multiplicative
MAX_COMPRESSION = 2.0  # default γ_max: the paper's prompt compression factor
EMPTY_SHARE = 1e-3  # a pool with less traffic share than this (or 0 instances) is empty

EDGE = 1 | 2 | 4


OPTIMIZE_NOTE = (
    "grid search: per group (every dim but topology, b_short, gamma) the argmax of fleet_tokens_per_watt over the "
    "grid's (topology, b_short, gamma) points with ttft_p99 <= ttft_p99_s; ties go to the first point in "
    "(topology, b_short, gamma) order; gain = best / homogeneous; FleetOpt points with gamma > max_compression "
    "are excluded"
)
REFINE_NOTE = (
    "gradient refinement: monotone projected gradient ascent of ln fleet tokens/W of the continuous relaxation "
    "(fleet_metrics relaxed=True) over (ln b_short, ln gamma) of FleetOpt, from the best routed grid point; then the "
    "exact model at the rounded optimum and a stencil of neighbours; reported only where the exact model is at least "
    "as good as the grid optimum (refinement_status = 1), else the grid optimum is kept (status 0). The relaxation is "
    "piecewise smooth, so this is a local optimum of the relaxed objective; every reported value is exact."
)


def check_max_compression(value) -> float:
    """γ_max as a float; SweepInputError unless it is a finite number >= 1."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
        or value < 1
    ):
        raise SweepInputError(
            f"max_compression: must be a finite number >= 1 (the largest prompt compression "
            f"factor gamma allowed), got {value!r}"
        )
    return float(value)


def _warn(out: xr.Dataset) -> None:
    """One warning line summarising the setups whose optimum sits on an edge or has an empty pool."""
    flags = out["optimum_flags"].values.ravel()
    edge, empty = np.count_nonzero(flags & EDGE), np.count_nonzero(flags & OPTIMUM_FLAGS["empty_pool"])
    if edge or empty:
        warnings.warn(
            f"optimize: of {flags.size} setups, {edge} have the optimum on the edge of the grid or at "
            f"gamma = max_compression = {out.attrs['max_compression']:g} (widen the grid), {empty} an empty "
            "pool (the split degenerated); see optimum_flags",
            SweepWarning,
            stacklevel=3,
        )


def _check_fleet(ds: xr.Dataset) -> None:
    missing = [v for v in ("fleet_tokens_per_watt", "ttft_p99") if v not in ds]
    if missing or "topology" not in ds.dims:
        raise SweepInputError(
            "optimize needs a fleet Dataset from sweep.run (a grid with a `topology` axis); missing: "
            + ", ".join(missing + ([] if "topology" in ds.dims else ["topology dim"]))
        )


def slo_target(ds: xr.Dataset) -> xr.DataArray:
    """The P99 TTFT target of every point: the `ttft_p99_s` axis, else the scalar attribute."""
    if "ttft_p99_s" in ds.coords:
        return ds["ttft_p99_s"].astype(float)
    if "ttft_p99_s" in ds.attrs:
        return xr.DataArray(float(ds.attrs["ttft_p99_s"]))
    raise SweepInputError("optimize: the Dataset has neither a ttft_p99_s axis nor a ttft_p99_s attribute")


def feasible_mask(ds: xr.Dataset) -> xr.DataArray:
    """True where the point meets the SLO (and its tokens/W is a finite number)."""
    return (ds["ttft_p99"] <= slo_target(ds)) & np.isfinite(ds["fleet_tokens_per_watt"])


def _fixed(ds: xr.Dataset, name: str) -> float:
    """A search parameter that is not a dim: a scalar coordinate (after .sel) or the attribute."""
    if name in ds.coords and ds[name].ndim == 0:
        return float(ds[name].values)
    value = ds.attrs.get(name)
    return float(value) if value is not None else np.nan


def optimize(ds: xr.Dataset, max_compression: float = MAX_COMPRESSION) -> xr.Dataset:
    """Grid optimum of fleet tokens/W per group, subject to the SLO (see module docstring).

    Returns a Dataset over the group dims (all dims of `ds` except topology, b_short, gamma and
    pool) with best_topology (str; "none" where no point meets the SLO), best_b_short,
    best_gamma (NaN for homogeneous; γ = 1 for pool routing), best_fleet_tokens_per_watt,
    best_ttft_p99, best_instances (pool), homogeneous_fleet_tokens_per_watt (NaN if absent or
    missing the SLO), gain_over_homogeneous, feasible_points and optimum_flags (OPTIMUM_FLAGS bits; one
    warning line summarises them). b_short/gamma fixed in the grid are taken from the Dataset's
    attributes. FleetOpt points with γ > `max_compression` (γ_max) are not candidates.

    Args:
        ds: a fleet Dataset from `sweep.run` (a grid with a `topology` axis).
        max_compression: γ_max, the largest FleetOpt compression allowed (a number >= 1).

    >>> best = sweep.optimize(sweep.run("grids/fleet_split.toml"))    # doctest: +SKIP
    >>> best.best_gamma.max() <= 2                                    # doctest: +SKIP
    """
    out = _grid_optimum(ds, check_max_compression(max_compression))
    _warn(out)
    return out


class _Argmax(NamedTuple):
    """Each group's argmax of fleet tokens/W over the search points that are candidates."""

    group: list  # group dims
    search: list  # search dims (of SEARCH_DIMS) that are dims of the Dataset
    tpw: xr.DataArray  # fleet tokens/W, transposed to (*group, *search)
    ok: xr.DataArray  # candidate mask, same layout
    gshape: tuple  # sizes of the group dims
    values: np.ndarray  # (groups, candidates) tokens/W, -inf where not a candidate
    flat: np.ndarray  # (groups,) flat index of the argmax candidate
    any_ok: np.ndarray  # (groups,) whether the group has a candidate
    idx: dict  # search dim -> (groups,) index of the argmax along it


def _masked_argmax(ds: xr.Dataset, gmax: float) -> _Argmax:
    """Argmax of fleet tokens/W per group over the points that meet the SLO and γ <= gmax."""
    tpw = ds["fleet_tokens_per_watt"]
    search = [d for d in SEARCH_DIMS if d in tpw.dims]
    group = [d for d in tpw.dims if d not in search]
    gamma = ds["gamma"] if "gamma" in ds.coords else xr.DataArray(_fixed(ds, "gamma"))
    ok = feasible_mask(ds) & ((ds["topology"] != "fleetopt") | ~(gamma > gmax))  # only FleetOpt compresses
    ok = ok.broadcast_like(tpw).transpose(*group, *search)
    tpw = tpw.transpose(*group, *search)
    gshape = tuple(ds.sizes[d] for d in group)
    sshape = tuple(ds.sizes[d] for d in search)
    n_groups, n_cand = int(np.prod(gshape, dtype=int)), int(np.prod(sshape, dtype=int))
    values = np.where(ok.values, tpw.values, -np.inf).reshape(n_groups, n_cand)
    flat = np.argmax(values, axis=1)
    any_ok = np.isfinite(values[np.arange(n_groups), flat])
    idx = dict(zip(search, np.unravel_index(flat, sshape)))
    return _Argmax(group, search, tpw, ok, gshape, values, flat, any_ok, idx)


def _pick(am: _Argmax, var: xr.DataArray) -> tuple:
    """`var` at each group's argmax (NaN where none), and its dims beyond the group and search dims."""
    n_groups, n_cand = am.values.shape
    extra = [d for d in var.dims if d not in am.group and d not in am.search]
    arr = var.broadcast_like(am.tpw).transpose(*am.group, *am.search, *extra).values
    arr = arr.reshape((n_groups, n_cand) + arr.shape[len(am.group) + len(am.search) :])
    out = arr[np.arange(n_groups), am.flat].astype(float)
    out[~am.any_ok] = np.nan
    return out, extra


def _picked_coord(ds: xr.Dataset, am: _Argmax, name: str) -> np.ndarray:
    """The search parameter `name` at each group's argmax (its fixed value where it is not a dim)."""
    if name in am.idx:
        return np.asarray(ds[name].values, dtype=float)[am.idx[name]]
    return np.full(am.values.shape[0], _fixed(ds, name))


def _picked_variables(ds: xr.Dataset, am: _Argmax) -> tuple:
    """(data, coords, topology): the best_* variables and feasible_points of every group."""
    n_groups, group, gshape = am.values.shape[0], am.group, am.gshape
    topo_labels = np.asarray(ds["topology"].values, dtype=object)
    topology = np.where(am.any_ok, topo_labels[am.idx["topology"]], "none").astype(object)
    homog = topology == "homogeneous"
    pool = topology == "pool"
    b_short = np.where(am.any_ok & ~homog, _picked_coord(ds, am, "b_short"), np.nan)
    gamma = np.where(am.any_ok & ~homog, np.where(pool, 1.0, _picked_coord(ds, am, "gamma")), np.nan)
    best = np.where(am.any_ok, am.values[np.arange(n_groups), am.flat], np.nan)
    ttft, _ = _pick(am, ds["ttft_p99"])
    coords = {d: ds[d] for d in group}
    data = {
        "best_topology": (group, topology.reshape(gshape)),
        "best_b_short": (group, b_short.reshape(gshape)),
        "best_gamma": (group, gamma.reshape(gshape)),
        "best_fleet_tokens_per_watt": (group, best.reshape(gshape)),
        "best_ttft_p99": (group, ttft.reshape(gshape)),
        "feasible_points": (group, np.sum(np.isfinite(am.values), axis=1).reshape(gshape).astype(np.int64)),
    }
    if "instances" in ds:
        inst, extra = _pick(am, ds["instances"])
        data["best_instances"] = (group + extra, inst.reshape(gshape + inst.shape[1:]))
        coords.update({d: ds[d] for d in extra if d in ds.coords})
    return data, coords, topology


def _optimum_flags(ds: xr.Dataset, am: _Argmax, topology: np.ndarray, gmax: float) -> np.ndarray:
    """OPTIMUM_FLAGS of every group's optimum (edges, γ_max, empty pool), int8 of the group shape."""
    n_groups = am.values.shape[0]
    pool = topology == "pool"
    empty = np.zeros(n_groups, dtype=bool)
    for name, floor in (("instances", 0.0), ("traffic_share", EMPTY_SHARE)):
        if name in ds:
            empty |= np.any(_pick(am, ds[name])[0].reshape(n_groups, -1) <= floor, axis=1)
    flags = _edge_flags(ds, am.idx, topology, gmax) | np.where(
        (pool | (topology == "fleetopt")) & empty, OPTIMUM_FLAGS["empty_pool"], 0
    )
    return flags.astype(np.int8).reshape(am.gshape)


def _homogeneous_and_gain(ds: xr.Dataset, am: _Argmax, best: np.ndarray) -> dict:
    """homogeneous_fleet_tokens_per_watt (NaN without a homogeneous topology) and gain_over_homogeneous."""
    topo_labels = np.asarray(ds["topology"].values, dtype=object)
    homogeneous = (
        _homogeneous(am.tpw, am.ok, am.group, am.search, am.gshape)
        if "homogeneous" in list(topo_labels)
        else np.full(am.gshape, np.nan)
    )
    data = {"homogeneous_fleet_tokens_per_watt": (am.group, homogeneous)}
    with np.errstate(invalid="ignore", divide="ignore"):
        data["gain_over_homogeneous"] = (am.group, best / homogeneous)
    return data


def _grid_optimum(ds: xr.Dataset, gmax: float) -> xr.Dataset:
    """`optimize` without the warning: the grid optimum of every group as a Dataset."""
    _check_fleet(ds)
    am = _masked_argmax(ds, gmax)
    data, coords, topology = _picked_variables(ds, am)
    data["optimum_flags"] = (am.group, _optimum_flags(ds, am, topology, gmax))
    data.update(_homogeneous_and_gain(ds, am, data["best_fleet_tokens_per_watt"][1]))
    out = xr.Dataset(data, coords=coords)
    out.attrs = dict(ds.attrs)
    out.attrs["history"] = "\n".join(filter(None, [ds.attrs.get("history"), history_line("sweep optimize")]))
    out.attrs["title"] = f"optimum split: {ds.attrs.get('title', 'fleet grid')}"
    out.attrs["optimum_method"] = OPTIMIZE_NOTE
    out.attrs["max_compression"] = gmax
    return annotate(out)


def _homogeneous(tpw, ok, group, search, gshape) -> np.ndarray:
    h = tpw.sel(topology="homogeneous").where(ok.sel(topology="homogeneous"))
    rest = [d for d in search if d != "topology"]
    homogeneous = h.max(rest) if rest else h  # identical across b_short/gamma; NaN if all miss the SLO
    return homogeneous.transpose(*group).values.reshape(gshape)


def _edge_flags(ds: xr.Dataset, idx: dict, topology: np.ndarray, gmax: float) -> np.ndarray:
    """OPTIMUM_FLAGS bits 1, 2, 4 of each group's optimum (routed topologies only)."""
    routed, fleetopt = np.isin(topology, ("pool", "fleetopt")), topology == "fleetopt"
    flags = np.zeros(len(topology), dtype=np.int64)
    if "b_short" in idx and ds.sizes["b_short"] > 1:
        at_edge = np.isin(idx["b_short"], (0, ds.sizes["b_short"] - 1))
        flags |= np.where(routed & at_edge, OPTIMUM_FLAGS["b_short_at_grid_edge"], 0)
    gammas = np.asarray(ds["gamma"].values if "gamma" in idx else [_fixed(ds, "gamma")], dtype=float)
    chosen = gammas[idx["gamma"]] if "gamma" in idx else np.full(len(topology), gammas[0])
    offered = gammas[gammas <= gmax]
    if offered.size > 1:
        at_edge = np.isin(chosen, (offered.min(), offered.max()))
        flags |= np.where(fleetopt & at_edge, OPTIMUM_FLAGS["gamma_at_grid_edge"], 0)
    return flags | np.where(
        fleetopt & np.isclose(chosen, gmax, rtol=1e-9, atol=0), OPTIMUM_FLAGS["gamma_at_max_compression"], 0
    )


# ---------------------------------------------------------------------------------------------
# Gradient refinement


def _metrics(data, topology, b_short, gamma, *, derive, convention, lengths, relaxed):
    """fleet_metrics on arrays (G, n), vmapped over the G groups: each call sees one group's
    scalar parameters and its (n,) points, exactly as the engine evaluates one grid point."""

    def one(theta, w_lengths, w_fraction, params, topo, b, g):
        return fleet_metrics(
            derive(theta, relaxed),
            Workload(w_lengths, w_fraction),
            params["arrival_rate"],
            topo,
            b,
            g,
            params["long_context"],
            params["ttft_p99_s"],
            params["rho_max"],
            params["output_share"],
            convention=convention,
            relaxed=relaxed,
            lengths=lengths,
        )

    return jax.vmap(one)(*data, topology, b_short, gamma)


@partial(jax.jit, static_argnames=("derive", "convention", "lengths"))
def _exact_kernel(data, topology, b_short, gamma, *, derive, convention, lengths):
    out = _metrics(
        data, topology, b_short, gamma, derive=derive, convention=convention, lengths=lengths, relaxed=False
    )
    return {k: out[k] for k in ("fleet_tokens_per_watt", "ttft_p99", "instances")}


def _relaxed_log(data, u, **static):
    """ln fleet tokens/W of the relaxed FleetOpt model at u = (ln b_short, ln γ), shape (G, 2)."""

    b, g = jnp.exp(u[:, 0:1]), jnp.exp(u[:, 1:2])
    topo = jnp.full(b.shape, FLEETOPT, dtype=jnp.int32)
    return jnp.log(_metrics(data, topo, b, g, relaxed=True, **static)["fleet_tokens_per_watt"][:, 0])


@partial(jax.jit, static_argnames=("derive", "convention", "lengths"))
def _relaxed_value_grad(data, u, *, derive, convention, lengths):
    def total(u):
        f = _relaxed_log(data, u, derive=derive, convention=convention, lengths=lengths)
        return jnp.sum(f), f

    (_, f), g = jax.value_and_grad(total, has_aux=True)(u)
    return f, g


class FleetProblem:
    """The fleet model of one spec restricted to the groups of a Dataset, as flat JAX arrays.

    Group g (C order over `group_dims`) has profile row `profile[g]`, workload `workload[g]` and
    point parameters `params[name][g]`. `exact(topology, b, gamma)` and `relaxed(u)` evaluate
    the engine's model (same conventions as `sweep.run`) for arrays of shape (G, n).
    """

    def __init__(self, spec, ds: xr.Dataset):
        _check_fleet(ds)
        self.spec = spec = as_spec(spec)
        if spec.mode != "fleet":
            raise SweepInputError(f"{spec.where}: refine needs a fleet grid (one with a topology axis)")
        self.group_dims = [d for d in ds["fleet_tokens_per_watt"].dims if d not in SEARCH_DIMS]
        self.group_shape = tuple(ds.sizes[d] for d in self.group_dims)
        n = int(np.prod(self.group_shape, dtype=int))
        grids = np.meshgrid(*(np.arange(s) for s in self.group_shape), indexing="ij")
        index = {d: g.ravel() for d, g in zip(self.group_dims, grids)}

        table = profile_table(spec)
        cat = list(table.categorical)
        rows = np.zeros(n, dtype=np.int64)
        for name in cat:
            labels = list(table.categorical[name])
            if name in self.group_dims:
                wanted = [ds[name].values[i] for i in index[name]]
            elif name in ds.coords and ds[name].ndim == 0:
                wanted = [ds[name].values.item()] * n
            elif len(labels) == 1:
                wanted = labels * n
            else:
                raise SweepInputError(f"refine: profile axis {name!r} is not a dim of the Dataset")
            try:
                pos = np.array([labels.index(w) for w in wanted], dtype=np.int64)
            except ValueError:
                raise SweepInputError(
                    f"refine: a {name} of the Dataset is not in the spec's {name} axis"
                ) from None
            rows = rows * len(labels) + pos
        self.theta = {k: jnp.asarray(np.asarray(v)[rows]) for k, v in table.theta.items()}
        self.derive = table.derive

        names = (
            [ds["workload"].values[i] for i in index["workload"]]
            if "workload" in self.group_dims
            else list(spec.value("workload")) * n
        )
        unique = list(dict.fromkeys(names))
        loaded = []
        for name in unique:
            loaded.append(load_workload(spec.workload_source(name)))
        stacked = stack_workloads(loaded)
        w_idx = np.array([unique.index(w) for w in names])
        self.workload_lengths = jnp.asarray(np.asarray(stacked.lengths_tokens)[w_idx])
        self.workload_fraction = jnp.asarray(np.asarray(stacked.cum_fraction)[w_idx])

        self.params = {}
        for name in POINT_PARAMS:
            if name in self.group_dims:
                vals = np.asarray(ds[name].values, dtype=float)[index[name]]
            else:
                vals = np.full(n, float(spec.value(name)[0]))
            self.params[name] = jnp.asarray(vals)
        self.lengths = "planner" if spec.convention == "paper" else "exact"
        self.n_groups = n
        self._data = (self.theta, self.workload_lengths, self.workload_fraction, self.params)
        self._static = dict(derive=self.derive, convention=spec.convention, lengths=self.lengths)

    def exact(self, topology, b_short, gamma) -> dict:
        """Exact model; every argument broadcasts to (G, n). Returns numpy arrays."""
        shape = np.broadcast_shapes(
            (self.n_groups, 1), np.shape(topology), np.shape(b_short), np.shape(gamma)
        )
        if len(shape) != 2:
            raise ValueError(f"exact: arguments must broadcast to (groups, points), got shape {shape}")
        width = -(-shape[1] // 32) * 32  # pad the point axis to a multiple of 32: fewer compilations
        args = []
        for i, a in enumerate((topology, b_short, gamma)):
            a = np.broadcast_to(np.asarray(a, dtype=float if i else np.int32), shape)
            args.append(jnp.asarray(np.pad(a, ((0, 0), (0, width - shape[1])), mode="edge")))
        out = _exact_kernel(self._data, *args, **self._static)
        return {k: np.asarray(v)[:, : shape[1]] for k, v in out.items()}

    def value_grad(self, u):
        """(ln tokens/W of the relaxed FleetOpt model, ∂/∂u) per group at u = (ln b_short, ln γ),
        shape (G, 2). One reverse pass of the sum over groups (they are independent, so
        ∂Σf/∂u_g = ∂f_g/∂u_g). This is the gradient `ascend` follows."""
        f, g = _relaxed_value_grad(self._data, jnp.asarray(u, dtype=float), **self._static)
        return np.asarray(f), np.asarray(g)

    def relaxed(self, u) -> np.ndarray:
        """ln fleet tokens/W of the relaxation, per group, at u (G, 2)."""
        return self.value_grad(u)[0]

    # bounds ------------------------------------------------------------------------------
    def bounds(self, kind: str, ds: xr.Dataset, max_compression: float = MAX_COMPRESSION):
        """(b_lo, b_hi, g_lo, g_hi, long_context) per group (numpy; `ascend` takes their logs);
        γ is capped at `max_compression` whatever `kind`."""
        long_ctx = np.asarray(self.params["long_context"])
        if kind == "model":
            b_lo = np.asarray(self.workload_lengths[:, 1])
            b_hi = long_ctx - 1.0
            g_lo, g_hi = np.ones(self.n_groups), np.full(self.n_groups, np.inf)
        elif kind == "grid":
            bs = np.asarray(
                ds["b_short"].values if "b_short" in ds.dims else [_fixed(ds, "b_short")], dtype=float
            )
            gs = np.asarray(ds["gamma"].values if "gamma" in ds.dims else [_fixed(ds, "gamma")], dtype=float)
            b_lo, b_hi = np.full(self.n_groups, bs.min()), np.full(self.n_groups, bs.max())
            g_lo, g_hi = np.full(self.n_groups, min(1.0, gs.min())), np.full(self.n_groups, gs.max())
        else:
            raise SweepInputError(f"refine: bounds must be 'model' or 'grid', got {kind!r}")
        b_lo = np.minimum(b_lo, b_hi)
        return b_lo, b_hi, g_lo, np.minimum(g_hi, max_compression), long_ctx


def _project(u, lo1, hi1, lo2, hi2, ln_long):
    u1 = np.clip(u[:, 0], lo1, hi1)
    u2 = np.clip(u[:, 1], lo2, np.maximum(lo2, np.minimum(hi2, ln_long - u1)))
    return np.stack([u1, u2], axis=1)


def ascend(problem: FleetProblem, u0, bounds, steps: int = 40, step0: float = 0.25):
    """Monotone projected gradient ascent of the relaxed objective, all groups at once.

    `bounds` = (ln b_lo, ln b_hi, ln γ_lo, ln γ_hi, ln long_context), each (G,). Every step is one
    call of the jitted, group-vectorised value-and-gradient (`FleetProblem.value_grad`); the
    per-group step-size control is elementwise NumPy. Returns (u, relaxed ln tokens/W at u).
    """
    lo1, hi1, lo2, hi2, ln_long = (np.asarray(b, dtype=float) for b in bounds)
    tol = 1e-12

    def direction(u, g):
        # drop components that push out of an active bound, then normalise
        cap2 = np.minimum(hi2, ln_long - u[:, 0])
        out1 = ((u[:, 0] <= lo1 + tol) & (g[:, 0] < 0)) | ((u[:, 0] >= hi1 - tol) & (g[:, 0] > 0))
        out2 = ((u[:, 1] <= lo2 + tol) & (g[:, 1] < 0)) | ((u[:, 1] >= cap2 - tol) & (g[:, 1] > 0))
        g1, g2 = np.where(out1, 0.0, g[:, 0]), np.where(out2, 0.0, g[:, 1])
        d = np.stack([g1, g2], axis=1)
        d = np.where(np.isfinite(d), d, 0.0)
        norm = np.sqrt(np.sum(d * d, axis=1, keepdims=True))
        return np.where(norm > 0, d / np.where(norm > 0, norm, 1.0), 0.0)

    u = _project(np.asarray(u0, dtype=float), lo1, hi1, lo2, hi2, ln_long)
    f, g = problem.value_grad(u)
    eta = np.full(u.shape[0], float(step0))
    for _ in range(steps):
        u_new = _project(u + eta[:, None] * direction(u, g), lo1, hi1, lo2, hi2, ln_long)
        f_new, g_new = problem.value_grad(u_new)
        accept = np.isfinite(f_new) & (f_new > f)
        u = np.where(accept[:, None], u_new, u)
        f = np.where(accept, f_new, f)
        g = np.where(accept[:, None], g_new, g)
        eta = np.where(accept, np.minimum(1.5 * eta, 1.0), 0.5 * eta)
    return u, f


def _spec_from_dataset(ds: xr.Dataset):
    if "grid_spec" not in ds.attrs:
        raise SweepInputError("refine: the Dataset has no grid_spec attribute; pass the grid spec too")
    return gridspec.parse(json.loads(ds.attrs["grid_spec"]), "<dataset grid_spec>")


def _refine_start(ds: xr.Dataset, problem: FleetProblem, gmax: float) -> tuple:
    """(has_start, b0, g0): each group's best routed grid point (pool or FleetOpt; pool at γ = 1)."""
    group, n = problem.group_dims, problem.n_groups
    routed = ds.sel(topology=[t for t in ds["topology"].values if t != "homogeneous"])
    if routed.sizes["topology"] == 0:
        raise SweepInputError("refine: the grid has no routed topology (pool or fleetopt) to refine")
    start = _grid_optimum(routed, gmax)
    has_start = start["best_topology"].transpose(*group).values.reshape(n) != "none"
    b0 = np.where(has_start, start["best_b_short"].transpose(*group).values.reshape(n), 4096.0)
    g0 = np.where(has_start, start["best_gamma"].transpose(*group).values.reshape(n), 1.0)
    return has_start, b0, g0


def _continuous_optimum(problem: FleetProblem, box: tuple, b0, g0, steps: int, step0: float) -> tuple:
    """(b_cont, g_cont, f, moved, at_bound): the projected ascent of the relaxation from (b0, g0) in `box`."""
    b_lo, b_hi, g_lo, g_hi, long_ctx = box
    log_box = tuple(np.log(x) for x in (b_lo, b_hi, g_lo, g_hi, long_ctx))
    u0 = _project(np.stack([np.log(b0), np.log(g0)], axis=1), *log_box)
    u, f = ascend(problem, u0, log_box, steps=steps, step0=step0)
    moved = f > problem.relaxed(u0) + 1e-12  # the relaxed objective found an improving direction
    b_cont = np.clip(np.exp(u[:, 0]), b_lo, b_hi)
    g_cap = np.maximum(g_lo, np.minimum(g_hi, long_ctx / b_cont))
    g_cont = np.clip(np.exp(u[:, 1]), g_lo, g_cap)
    at_bound = (
        np.isclose(b_cont, b_lo, rtol=1e-9)
        | np.isclose(b_cont, b_hi, rtol=1e-9)
        | (g_cont >= g_cap * (1 - 1e-9))
    )
    return b_cont, g_cont, f, moved, at_bound


def _exact_on_stencil(problem: FleetProblem, box: tuple, b_cont, g_cont) -> tuple:
    """(value, b_short, gamma, ttft_p99) per group: the exact model's best SLO-meeting stencil point."""
    b_lo, b_hi, g_lo, g_hi, long_ctx = box
    n = problem.n_groups
    # exact model at the rounded optimum and its neighbours (and γ = 1: pool routing)
    b_c = np.clip(
        np.round(b_cont[:, None] * np.asarray(STENCIL)[None, :]),
        np.ceil(b_lo)[:, None],
        np.floor(b_hi)[:, None],
    )
    g_c = np.concatenate([g_cont[:, None] * np.asarray(STENCIL)[None, :], np.ones((n, 1))], axis=1)
    bb = np.repeat(b_c, g_c.shape[1], axis=1)
    gg = np.tile(g_c, (1, b_c.shape[1]))
    gg = np.clip(
        gg, g_lo[:, None], np.maximum(g_lo[:, None], np.minimum(g_hi[:, None], long_ctx[:, None] / bb))
    )
    ex = problem.exact(FLEETOPT, bb, gg)
    target = np.asarray(problem.params["ttft_p99_s"])[:, None]
    val = np.where(
        (ex["ttft_p99"] <= target) & np.isfinite(ex["fleet_tokens_per_watt"]),
        ex["fleet_tokens_per_watt"],
        -np.inf,
    )
    j = np.argmax(val, axis=1)
    rows = np.arange(n)
    return val[rows, j], bb[rows, j], gg[rows, j], ex["ttft_p99"][rows, j]


def _put_refined(
    out: xr.Dataset, problem: FleetProblem, has_start, candidate: tuple, continuous: tuple
) -> None:
    """Add the refined_*, refinement_status, continuous_* and relaxed_* variables to `out` (in place)."""
    group, gshape, n = problem.group_dims, problem.group_shape, problem.n_groups
    cand_val, cand_b, cand_g, cand_ttft = candidate
    b_cont, g_cont, f, moved, at_bound = continuous
    grid_best = out["best_fleet_tokens_per_watt"].transpose(*group).values.reshape(n)
    grid_ok = np.isfinite(grid_best)
    improved = has_start & np.isfinite(cand_val) & (~grid_ok | (cand_val > grid_best))
    status = np.select([~has_start, improved, at_bound, ~moved], [-1, 1, 2, 3], 0).astype(np.int8)

    flat = lambda name: out[name].transpose(*group).values.reshape(n)  # noqa: E731
    cand_topo = np.where(cand_g == 1.0, "pool", "fleetopt").astype(object)
    r_topo = np.where(improved, cand_topo, flat("best_topology")).astype(object)
    r_b = np.where(improved, cand_b, flat("best_b_short"))
    r_g = np.where(improved, cand_g, flat("best_gamma"))
    r_val = np.where(improved, cand_val, grid_best)
    r_ttft = np.where(improved, cand_ttft, flat("best_ttft_p99"))
    homog = flat("homogeneous_fleet_tokens_per_watt")
    relaxed_val = np.where(has_start, np.exp(f), np.nan)

    def put(name, arr):
        out[name] = (group, np.asarray(arr).reshape(gshape))

    put("refined_topology", r_topo)
    put("refined_b_short", r_b)
    put("refined_gamma", r_g)
    put("refined_fleet_tokens_per_watt", r_val)
    put("refined_ttft_p99", r_ttft)
    with np.errstate(invalid="ignore", divide="ignore"):
        put("refined_gain_over_homogeneous", r_val / homog)
    put("refinement_status", status)
    put("continuous_b_short", np.where(has_start, b_cont, np.nan))
    put("continuous_gamma", np.where(has_start, g_cont, np.nan))
    put("relaxed_fleet_tokens_per_watt", relaxed_val)


def refine(
    spec_or_ds,
    ds: xr.Dataset | None = None,
    *,
    steps: int = 40,
    bounds: str = "grid",
    step0: float = 0.25,
    max_compression: float = MAX_COMPRESSION,
) -> xr.Dataset:
    """Grid optimum (`optimize`) plus a gradient-refined optimum checked by the exact model.

    `spec_or_ds`: a grid spec (path, dict or GridSpec; the grid is run unless `ds` is given) or a
    fleet Dataset from `sweep.run` (its `grid_spec` attribute is re-parsed; workload files given
    by relative path then resolve against the current folder). `bounds`: "model" (b_short in
    [first CDF knot, long_context − 1], γ in [1, long_context/b_short]) or "grid" (the swept
    box); either way γ <= `max_compression`. See the module docstring for the method and in
    what sense it is sound.

    Adds to `optimize`'s output: refined_topology, refined_b_short, refined_gamma,
    refined_fleet_tokens_per_watt (exact), refined_ttft_p99, refined_gain_over_homogeneous,
    refinement_status (1 refined; else the grid optimum is kept because: 0 the exact model did
    not confirm, 2 the ascent stopped at a bound, 3 flat, −1 nothing to refine), continuous_b_short,
    continuous_gamma and relaxed_fleet_tokens_per_watt (the relaxation at its local optimum).

    >>> sweep.refine("grids/fleet_split.toml").refinement_status    # doctest: +SKIP
    """

    gmax = check_max_compression(max_compression)
    if isinstance(spec_or_ds, xr.Dataset):
        ds, spec = spec_or_ds, _spec_from_dataset(spec_or_ds)
    else:
        spec = as_spec(spec_or_ds)
        if ds is None:
            ds = run(spec)
    out = _grid_optimum(ds, gmax)
    problem = FleetProblem(spec, ds)
    if list(out["best_topology"].dims) != problem.group_dims:
        raise AssertionError("group dims of optimize and refine differ")
    has_start, b0, g0 = _refine_start(ds, problem, gmax)
    box = problem.bounds(bounds, ds, gmax)
    continuous = _continuous_optimum(problem, box, b0, g0, steps, step0)
    candidate = _exact_on_stencil(problem, box, *continuous[:2])
    _put_refined(out, problem, has_start, candidate, continuous)
    out.attrs["refine_method"] = REFINE_NOTE
    out.attrs["refine_bounds"] = bounds
    out.attrs["refine_steps"] = int(steps)
    out = annotate(out)
    _warn(out)
    return out
