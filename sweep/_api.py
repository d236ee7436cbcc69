"""Public entry point: `run(spec)` evaluates a grid and returns a labelled xarray Dataset."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from sweep import _calibrated, _grid
from sweep._dataset import annotate, global_attrs, write_netcdf
from sweep._engine import CONTEXT_OUTPUTS, POINT_OUTPUTS, ProfileTable, run_grid
from sweep._errors import SweepInputError
from sweep._profile import CONTINUOUS_FIELDS, Profile

CONTINUOUS_AXES = ("context", "batch", "mean_length_fraction", "load")
RELAXATION_NOTE = (
    "elasticities are derivatives of the continuous relaxation of the model: every floor and "
    "ceiling (KV blocks per sequence, sequences per budget, int(n) in the power curve) is replaced "
    "by its real-valued argument; values are exact (integer effects kept)"
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


def calibrated_table(spec: _grid.GridSpec) -> ProfileTable:
    """Profiles for every (gpu, model) of the grid from inline tables, then the catalog."""
    catalog = _calibrated.load_catalog()
    inline = {}
    for i, entry in enumerate(spec.profiles):
        prof = _calibrated.parse_profile(entry, f"{spec.where}: profiles[{i}]")
        inline[(prof.gpu, prof.model)] = prof
    available = {**catalog, **inline}
    entries = []
    for gpu in spec.axes["gpu"]:
        for model in spec.axes["model"]:
            key = _lookup(available, gpu, model)
            if key is None:
                names = ", ".join(f"{g}/{m}" for g, m in sorted(available))
                raise SweepInputError(
                    f"{spec.where}: axes.gpu/axes.model: no calibrated profile for gpu {gpu!r} and "
                    f"model {model!r}; available: {names} (or define one in [[profiles]])"
                )
            entries.append(available[key])
    table = _calibrated.profile_table(entries, np.float64)
    provenance = {
        f"{e.gpu}/{e.model}": {k: vars(p) for k, p in e.provenance.items()} for e in entries
    }
    return ProfileTable(
        categorical={"gpu": list(spec.axes["gpu"]), "model": list(spec.axes["model"])},
        theta=table._asdict(),
        derive=lambda theta: Profile(**theta),
        elasticity_params=CONTINUOUS_FIELDS,
        provenance=provenance,
    )


def _lookup(available: dict, gpu: str, model: str):
    for g, m in available:
        if g.lower() == gpu.lower() and m.lower() == model.lower():
            return (g, m)
    return None


def run(spec, out=None, *, elasticities: bool | None = None, progress=None, command: str | None = None) -> xr.Dataset:
    """Evaluate a grid spec (path, dict or GridSpec) and return an `xarray.Dataset`.

    With `out`, also write it to NetCDF (atomically). `elasticities` overrides the spec's flag.
    """
    from sweep import __version__

    spec = as_spec(spec)
    if elasticities is not None:
        spec.elasticities = bool(elasticities)
    if out is not None:
        _check_writable(out)
    table = calibrated_table(spec)
    cont_axes = {n: np.asarray(spec.axes[n]) for n in CONTINUOUS_AXES if n in spec.axes}
    results = run_grid(
        table,
        cont_axes,
        spec.params,
        convention=spec.convention,
        dtype=spec.dtype,
        chunk_points=spec.chunk_points,
        elasticities=spec.elasticities,
        progress=progress,
    )
    ds = to_dataset(table, cont_axes, results, spec)
    ds.attrs = global_attrs(
        title=spec.title,
        convention=spec.convention,
        spec=spec.raw,
        command=command or f"sweep.run({spec.where!r})",
        version=__version__,
        extra={"profile_kind": spec.profile, "profile_provenance": _json(table.provenance),
               **({"elasticity_method": RELAXATION_NOTE} if spec.elasticities else {})},
    )
    if out is not None:
        write_netcdf(ds, out)
    return ds


def _json(obj) -> str:
    import json

    return json.dumps(obj, sort_keys=True)


def _check_writable(out) -> None:
    folder = Path(out).absolute().parent
    if not folder.is_dir():
        raise SweepInputError(f"{out}: cannot write output: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise SweepInputError(f"{out}: cannot write output: folder {folder} is not writable")


def to_dataset(table: ProfileTable, cont_axes: dict, results: dict, spec: _grid.GridSpec) -> xr.Dataset:
    """Label the engine's arrays: categorical dims first, then the continuous axes."""
    cat_names = list(table.categorical)
    cat_shape = tuple(len(v) for v in table.categorical.values())
    cont_names = list(cont_axes)
    coords = {n: np.asarray(v, dtype=object) for n, v in table.categorical.items()}
    for n, v in cont_axes.items():
        coords[n] = v.astype(np.int64) if n in ("context", "batch") else v.astype(np.float64)
    data_vars = {}
    for k in CONTEXT_OUTPUTS:
        arr = results[k].reshape(cat_shape + results[k].shape[1:])
        arr = arr.astype(np.int64) if k == "max_concurrency" else arr
        data_vars[k] = (cat_names + ["context"], arr)
    for k in POINT_OUTPUTS:
        arr = results[k].reshape(cat_shape + results[k].shape[1:])
        data_vars[k] = (cat_names + cont_names, arr)
    if "elasticity" in results:
        e = results["elasticity"]
        data_vars["elasticity"] = (["parameter"] + cat_names + cont_names, e.reshape(e.shape[:1] + cat_shape + e.shape[2:]))
        coords["parameter"] = np.asarray(table.elasticity_params, dtype=object)
    ds = xr.Dataset(data_vars, coords=coords)
    for n, v in spec.params.items():
        ds.attrs[n] = v
    return annotate(ds)
