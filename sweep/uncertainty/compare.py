"""Uncertainty of comparisons and the ranking of drivers (docs/uncertainty.md §3).

A headline claim is a ratio between grid points (B200/H100, FleetOpt/homogeneous, 4K/64K). Both
sides are evaluated under the same joint draws, so a parameter they share (the model's bytes per
token) is drawn once and cancels, while parameters they do not share (each GPU's bandwidth) do not.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from sweep.errors import SweepInputError


def _target(ds: xr.Dataset) -> str:
    return "fleet_tokens_per_watt" if "fleet_tokens_per_watt" in ds else "tokens_per_watt"


def compare(ds: xr.Dataset, dim: str, numerator, denominator, var: str | None = None) -> xr.Dataset:
    """The distribution of var(dim = numerator) / var(dim = denominator) under the same joint draws.

    `ds` comes from a Monte Carlo run with `keep_samples = true`. Returns `ratio` (at the nominal
    values), `ratio_mean`, `ratio_std` and `ratio_quantile` (at the run's quantiles) over the other dims.

    >>> grid = {"profile": "roofline", "tp": 8, "axes": {"gpu": ["H100", "B200"],
    ...         "model": ["llama-3.1-70b"], "context": [8192]},
    ...         "uncertainty": {"method": "monte_carlo", "samples": 256, "keep_samples": True}}
    >>> gain = sweep.compare(sweep.run(grid), dim="gpu", numerator="B200", denominator="H100")
    >>> bool(gain.ratio_quantile.sel(quantile=0.05) < gain.ratio < gain.ratio_quantile.sel(quantile=0.95))
    True
    """
    var = var or _target(ds)
    samples = f"{var}_samples"
    if samples not in ds:
        raise SweepInputError(
            f"compare: the dataset has no '{samples}'; run the grid with uncertainty = "
            '{ method = "monte_carlo", keep_samples = true }'
        )
    if dim not in ds[var].dims:  # not `quantile` or `sample`: those are not grid points
        raise SweepInputError(
            f"compare: dim '{dim}' is not a dimension; allowed: {', '.join(map(str, ds[var].dims))}"
        )
    values = list(ds[dim].values)
    for side in (numerator, denominator):
        if side not in values:
            raise SweepInputError(
                f"compare: {dim} = {side!r} is not in the grid; allowed: {', '.join(map(str, values))}"
            )
    r = ds[samples].sel({dim: numerator}, drop=True) / ds[samples].sel({dim: denominator}, drop=True)
    quantiles = ds["quantile"].values if "quantile" in ds.coords else np.array([0.05, 0.5, 0.95])
    out = xr.Dataset(
        {
            "ratio": ds[var].sel({dim: numerator}, drop=True) / ds[var].sel({dim: denominator}, drop=True),
            "ratio_mean": r.mean("sample", skipna=True),
            "ratio_std": r.std("sample", skipna=True),
            "ratio_quantile": r.quantile(quantiles, dim="sample", skipna=True),
        }
    )
    out.attrs["comparison"] = (
        f"{var}({dim}={numerator}) / {var}({dim}={denominator}) under the same joint draws"
    )
    return out


def drivers(y: np.ndarray, draws: np.ndarray, names: list) -> list:
    """[(name, share)] by share of variance, largest first: squared standardized regression coefficients
    of y on the draws (a linear-in-the-draws ranking; Sobol' indices are `sweep sensitivity`)."""
    ok = np.isfinite(y)
    y, x = y[ok], draws[ok]
    if y.size < x.shape[1] + 2 or np.std(y) == 0:
        return []
    design = np.column_stack([np.ones(len(y)), x])
    beta = np.linalg.lstsq(design, y, rcond=None)[0][1:]
    share = (beta * x.std(axis=0) / y.std()) ** 2
    order = np.argsort(-share)
    return [(names[i], float(share[i])) for i in order]
