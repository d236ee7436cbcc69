"""Public entry point: `run(spec)` evaluates a grid and returns a labelled xarray Dataset."""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
import xarray as xr

from sweep.errors import SweepInputError
from sweep.grid import spec as _grid
from sweep.grid.engine import ProfileTable, run_grid
from sweep.grid.evaluators import FleetEvaluator, InstanceEvaluator
from sweep.grid.tables import profile_table
from sweep.output import annotate, check_writable, global_attrs, write_netcdf
from sweep.progress import as_progress
from sweep.version import __version__
from sweep.vocabulary import POOLS, TOPOLOGIES

RELAXATION_NOTE = (
    "elasticities are derivatives of the continuous relaxation of the model: every floor and "
    "ceiling (KV blocks per sequence, sequences per budget, int(n) in the power curve, instance "
    "counts) is replaced by its real-valued argument; values are exact (integer effects kept)"
)
UNCERTAINTY_NOTE = (
    "first-order propagation: each parameter with a catalog uncertainty u (relative half-width) "
    "has an independent uniform error on [-u, u] (variance u^2/3); rel_uncertainty = "
    "sqrt(sum_i (elasticity_i * u_i)^2 / 3) is the relative standard deviation of "
    "tokens_per_watt; low/high = value * (1 -/+ 2 * rel_uncertainty)"
)


def as_spec(spec) -> _grid.GridSpec:
    """Accept a GridSpec, a dict or a path to a TOML grid file."""
    if isinstance(spec, _grid.GridSpec):
        return spec
    if isinstance(spec, dict):
        return _grid.parse(spec)
    if isinstance(spec, (str, os.PathLike)):
        return _grid.load(spec)
    raise SweepInputError(f"spec must be a path, a dict or a GridSpec, got {type(spec).__name__}")


def check_precision() -> str:
    """The precision note recorded in outputs; an error if JAX's 64-bit mode was turned off."""
    if not jax.config.jax_enable_x64:
        raise SweepInputError(
            "JAX's 64-bit mode (jax_enable_x64) is off, but sweep computes in float64; "
            "turn it back on with jax.config.update('jax_enable_x64', True)"
        )
    return "float64 compute (jax_enable_x64)"


def run(
    spec,
    out=None,
    *,
    elasticities: bool | None = None,
    calibration: str | None = None,
    progress=None,
    command: str | None = None,
) -> xr.Dataset:
    """Evaluate every point of a grid and return the results as a labelled `xarray.Dataset`.

    Args:
        spec: a grid file path (TOML), a dict of the same structure, or a parsed `GridSpec`; the
            README section "Grid files" lists every key.
        out: optional NetCDF path; the Dataset is also written there (temporary file, then rename).
        elasticities: True/False overrides the spec's `elasticities` key (None: as the spec says).
        calibration: a calibration file or built-in name ("mlenergy-v3") applied to a physical
            first-principles grid; overrides the spec's `calibration` key (docs/calibration.md §5).
        progress: True (a progress line on stderr for runs over a second), False or None (none), or a
            callable `progress(done_blocks, total_blocks, elapsed_s)`.
        command: the text recorded in the `history` attribute (default: this call).

    Returns a Dataset with one variable per output (README "Reading the output"), CF metadata,
    and the spec, provenance and precision in its attributes. Raises `SweepInputError` (a
    `ValueError`) with a one-line message on bad input.

    >>> ds = sweep.run({"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [8192]}})
    >>> int(ds.max_concurrency.sel(gpu="H100", model="llama-3.1-70b", context=8192))
    128
    """
    precision = check_precision()
    spec = as_spec(spec)
    if calibration is not None:
        spec = _grid.parse({**spec.raw, "calibration": str(calibration)}, spec.where)
    if elasticities is not None:
        spec = dataclasses.replace(spec, elasticities=bool(elasticities) or spec.uncertainty)
    if out is not None:
        check_writable(out)
    table = profile_table(spec)
    point_axes = [n for n in spec.axes if _grid.AXES[n].group != "profile"]
    point_params = {k: v for k, v in spec.params.items() if _grid.AXES[k].group != "profile"}
    model = InstanceEvaluator(spec.convention) if spec.mode == "instance" else FleetEvaluator(spec.convention)
    unknown = sorted(set(spec.outputs) - set(model.outputs))
    if unknown:
        raise SweepInputError(
            f"{spec.where}: outputs: unknown output(s) {unknown}; allowed: {', '.join(model.outputs)}"
        )
    keep = tuple(k for k in model.outputs if k in spec.outputs or k == model.target) if spec.outputs else None
    options = dict(dtype=spec.dtype, chunk_points=spec.chunk_points, progress=as_progress(progress))
    extra_attrs = {}
    if spec.mode == "instance":
        axes = {n: np.asarray(spec.axes[n], dtype=np.float64) for n in point_axes}
        # the results include the model's `pre` pass: max_concurrency and feasible on (profile, context)
        results = run_grid(
            table, axes, point_params, model, elasticities=spec.elasticities, keep=keep, **options
        )
    else:
        from sweep.fleet.workload import load_workload, stack_workloads

        loaded = []
        for name in spec.axes["workload"]:
            try:
                loaded.append(load_workload(spec.workload_source(name)))
            except SweepInputError as exc:
                raise SweepInputError(f"{spec.where}: axes.workload: {exc}") from None
        codes = {
            "workload": np.arange(len(loaded)),
            "topology": np.array([TOPOLOGIES[t] for t in spec.axes["topology"]]),
        }
        axes = {n: codes[n] if n in codes else np.asarray(spec.axes[n], dtype=np.float64) for n in point_axes}
        stacked = stack_workloads(loaded)
        extras = (np.asarray(stacked.lengths_tokens), np.asarray(stacked.cum_fraction))
        results = run_grid(
            table,
            axes,
            point_params,
            model,
            elasticities=spec.elasticities,
            keep=keep,
            extras=extras,
            **options,
        )
        extra_attrs["fleet_lengths"] = (
            "planner (paper convention: the planner's routing of the long pool's first CDF segment and its count of "
            "compressed requests' output tokens)"
            if spec.convention == "paper"
            else "exact (requests routed by (lo, hi], compressed requests generate the clipped output)"
        )
    if spec.elasticities:
        mask_elasticities(results, model.target)
    ds = to_dataset(table, spec, point_axes, results)
    if spec.uncertainty:
        add_uncertainty(ds, table)
        extra_attrs["uncertainty_method"] = UNCERTAINTY_NOTE
    ds.attrs = global_attrs(
        title=spec.title,
        convention=spec.convention,
        spec=spec.raw,
        command=command or f"sweep.run({spec.where!r})",
        version=__version__,
        extra={
            "profile_kind": spec.profile,
            "precision": f"{precision}, {spec.dtype} storage",
            "profile_provenance": json.dumps(table.provenance, sort_keys=True),
            **{k: v for k, v in spec.params.items() if v is not None},
            **({"elasticity_method": RELAXATION_NOTE} if spec.elasticities else {}),
            **({"calibration": spec.calibration} if spec.calibration else {}),
            **extra_attrs,
        },
    )
    if out is not None:
        write_netcdf(ds, out)
    return ds


def mask_elasticities(results: dict, target: str) -> None:
    """NaN elasticities where ln of the exact target is undefined (0 or not finite) or no sequence
    fits: the relaxed model differentiated there has neither n_max = 0 nor floor(load·n_max) = 0."""
    y = results[target]
    bad = ~np.isfinite(y) | (y == 0)
    if "feasible" in results:  # on the (profile, context) sub-grid
        infeasible = results["feasible"] == 0
        bad |= np.expand_dims(infeasible, tuple(range(infeasible.ndim, y.ndim)))
    results["elasticity"][:, bad] = np.nan


def to_dataset(table: ProfileTable, spec: _grid.GridSpec, point_axes: list, results: dict) -> xr.Dataset:
    """Label the engine's arrays: profile dims first, then the point axes (then `pool`)."""
    cat_names = list(table.categorical)
    cat_shape = tuple(len(v) for v in table.categorical.values())
    coords = {}
    for n in cat_names + point_axes:
        values = spec.axes[n]
        if isinstance(values[0], str):
            coords[n] = np.asarray(values, dtype=object)
        elif all(isinstance(v, int) for v in values):
            coords[n] = np.asarray(values, dtype=np.int64)
        else:
            coords[n] = np.asarray(values, dtype=np.float64)
    data_vars = {}
    for k, arr in results.items():
        if k == "elasticity":
            continue
        arr = arr.reshape(cat_shape + arr.shape[1:])
        dims = cat_names + (["context"] if k in ("max_concurrency", "feasible") else point_axes)
        dims += ["pool"] * (arr.ndim - len(dims))
        data_vars[k] = (dims, arr)
    if "pool" in {d for dims, _ in data_vars.values() for d in dims}:
        coords["pool"] = np.asarray(POOLS, dtype=object)
    if "elasticity" in results:
        e = results["elasticity"]
        dims = ["parameter"] + cat_names + point_axes
        data_vars["elasticity"] = (dims, e.reshape(e.shape[:1] + cat_shape + e.shape[2:]))
        coords["parameter"] = np.asarray([k.split(".", 1)[-1] for k in table.elasticity_params], dtype=object)
    return annotate(xr.Dataset(data_vars, coords=coords))


def add_uncertainty(ds: xr.Dataset, table: ProfileTable) -> None:
    """tokens/W relative uncertainty and a ±2σ band from the elasticities (see UNCERTAINTY_NOTE)."""
    target = "fleet_tokens_per_watt" if "fleet_tokens_per_watt" in ds else "tokens_per_watt"
    cat_shape = tuple(len(v) for v in table.categorical.values())
    u = np.stack(
        [
            table.uncertainty.get(k, np.zeros(len(next(iter(table.theta.values())))))
            for k in table.elasticity_params
        ]
    ).reshape((-1,) + cat_shape)
    u = xr.DataArray(u, dims=["parameter"] + list(table.categorical), coords={"parameter": ds.parameter})
    rel = np.sqrt(((ds.elasticity * u) ** 2).sum("parameter", skipna=False) / 3.0)
    ds[f"{target}_rel_uncertainty"] = rel
    ds[f"{target}_low"] = ds[target] * (1 - 2 * rel)
    ds[f"{target}_high"] = ds[target] * (1 + 2 * rel)
    ds["uncertainty"] = u
    annotate(ds)
