"""Labelled results: xarray Datasets with CF-1.11 metadata, written to NetCDF atomically."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone

import numpy as np
import xarray as xr

from sweep._errors import SweepInputError

# name -> (long_name, CF units). Counts and ratios are dimensionless ("1").
VARIABLES = {
    "max_concurrency": ("maximum concurrent sequences n_max (KV-cache and slot limits)", "1"),
    "feasible": ("1 where at least one sequence fits, else 0", "1"),
    "concurrency": ("sequences in flight n = min(batch, n_max)", "1"),
    "iteration_time": ("decode iteration time tau", "s"),
    "tokens_per_second": ("decode output tokens per second of one instance", "s-1"),
    "gpu_power": ("power of one GPU", "W"),
    "instance_power": ("power of one instance (TP GPUs)", "W"),
    "tokens_per_watt": ("output tokens per joule (tokens per second per watt), active convention", "J-1"),
    "bound": ("roofline regime: 0 memory-bound, 1 compute-bound", "1"),
    "elasticity": ("elasticity d ln(tokens_per_watt) / d ln(parameter), continuous relaxation", "1"),
}
COORDS = {
    "gpu": ("GPU SKU", None),
    "model": ("model id", None),
    "context": ("context window C (tokens)", "1"),
    "batch": ('requested sequences in flight; 0 means "max" (n = n_max)', "1"),
    "mean_length_fraction": ("mean sequence length in flight / context window", "1"),
    "load": ('utilisation rho at batch "max": n = floor(rho * n_max)', "1"),
    "parameter": ("profile parameter theta of the elasticity", None),
}


def annotate(ds: xr.Dataset) -> xr.Dataset:
    """Add `long_name` and `units` to every known variable and coordinate."""
    for name, (long_name, units) in {**VARIABLES, **COORDS}.items():
        if name in ds.variables:
            ds[name].attrs["long_name"] = long_name
            if units is not None:
                ds[name].attrs["units"] = units
    if "bound" in ds:
        ds["bound"].attrs.update(flag_values=np.array([0, 1], dtype=np.int8), flag_meanings="memory_bound compute_bound")
    if "feasible" in ds:
        ds["feasible"].attrs.update(flag_values=np.array([0, 1], dtype=np.int8), flag_meanings="infeasible feasible")
    return ds


def history_line(command: str) -> str:
    """CF `history` entry: ISO timestamp and the command that made the data."""
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    return f"{stamp}: {command}"


def global_attrs(*, title, convention, spec, command, version, extra=None) -> dict:
    attrs = {
        "Conventions": "CF-1.11",
        "title": title,
        "history": history_line(command),
        "source": f"sweep {version}",
        "convention": convention,
        "grid_spec": json.dumps(spec, sort_keys=True, default=str),
    }
    attrs.update(extra or {})
    return attrs


def write_netcdf(ds: xr.Dataset, path) -> None:
    """Write `ds` to `path` via a temporary file in the same folder, then rename (atomic)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SweepInputError(f"{path}: cannot write output: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise SweepInputError(f"{path}: cannot write output: folder {folder} is not writable")
    fd, tmp = tempfile.mkstemp(prefix=".sweep-", suffix=".nc.tmp", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.replace(tmp, path)
    except OSError as exc:
        raise SweepInputError(f"{path}: cannot write output: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
