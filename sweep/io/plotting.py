"""Figures from results (`sweep plot`): one variable against one dim, lines per `hue`, panels per `col`/`row`.

Built on xarray's `DataArray.plot.line` (matplotlib). Axes are logarithmic where they are geometric:
an x coordinate that spans at least 10x with roughly constant ratios (context windows in powers of
two), y values that are positive and span at least 10x. Labels carry the units and, for tokens per
watt, the convention: the paper's "tok/W" divides an instance's throughput by one GPU's power.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import xarray as xr

from sweep.errors import SweepInputError
from sweep.io.tabular import check_variables, labels, numeric_variables

SCALES = ("auto", "linear", "log")
STATISTICS = {
    "mean": "Monte Carlo mean",
    "std": "Monte Carlo std",
    "quantile": "Monte Carlo quantile",
    "low": "mean - 2 std (first order)",
    "high": "mean + 2 std (first order)",
}
TOKENS_PER_WATT = {
    ("tokens_per_watt", "paper"): "paper tok/W (per GPU)",
    ("tokens_per_watt", "physical"): "tokens per joule",
    ("fleet_tokens_per_watt", "paper"): "paper fleet tok/W (per GPU)",
    ("fleet_tokens_per_watt", "physical"): "fleet tokens per joule",
}


def default_variable(ds: xr.Dataset) -> str:
    """The result's target: fleet tokens/W for a fleet grid, else tokens/W (else the first numeric variable)."""
    for name in ("fleet_tokens_per_watt", "tokens_per_watt", "best_fleet_tokens_per_watt"):
        if name in ds.data_vars:
            return name
    numeric = numeric_variables(ds)
    if not numeric:
        raise SweepInputError("result: nothing to plot: no numeric variable")
    return numeric[0]


def axis_label(ds: xr.Dataset, name: str) -> str:
    """`meaning [units]` for an axis: tokens per watt in the dataset's convention, else the long name
    (the name itself where that is long); dimensionless units ("1") are left out."""
    convention = str(ds.attrs.get("convention", ""))
    base, _, stat = name.rpartition("_")
    text = None
    for target in ("fleet_tokens_per_watt", "tokens_per_watt"):
        if name.endswith(target) and name[: -len(target)] in ("", "best_", "refined_", "homogeneous_"):
            text = TOKENS_PER_WATT.get((target, convention))
            if text and name != target:
                text = f"{text}, {name[: -len(target)].rstrip('_')}"
        elif base == target and stat in STATISTICS:
            text = TOKENS_PER_WATT.get((target, convention))
            text = text and f"{text}: {STATISTICS[stat]}"
        if text:
            break
    if text is None:
        long_name = str(ds[name].attrs.get("long_name", "")) if name in ds.variables else ""
        text = long_name if 0 < len(long_name) <= 48 else name
    units = ds[name].attrs.get("units") if name in ds.variables else None
    return text + (f" [{units}]" if units not in (None, "", "1") else "")


def is_geometric(values) -> bool:
    """True for positive values spanning at least 10x whose sorted ratios are roughly constant."""
    v = np.asarray(values, dtype=np.float64)
    v = np.unique(v[np.isfinite(v)])
    if len(v) < 2 or v[0] <= 0 or v[-1] / v[0] < 10:
        return False
    steps = np.diff(np.log(v))
    return len(steps) < 2 or float(steps.std()) <= 0.5 * float(steps.mean())


def spans_decades(values) -> bool:
    """True for finite values, all positive, spanning at least 10x (a log y axis)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return len(v) > 1 and v.min() > 0 and v.max() / v.min() >= 10


def check_figure_format(path: str) -> str:
    """The figure format (extension) of `path`; a one-line error unless matplotlib writes it."""
    import matplotlib.figure

    ext = os.path.splitext(path)[1].lower().lstrip(".")
    supported = sorted(matplotlib.figure.Figure().canvas.get_supported_filetypes())
    if ext not in supported:
        raise SweepInputError(
            f"{path}: -o: unknown figure format {('.' + ext) if ext else '(no extension)'}; "
            f"allowed: {', '.join('.' + s for s in supported)}"
        )
    return ext


def _checked_roles(ds: xr.Dataset, y: str, roles: dict, where: str) -> tuple:
    """Check that `y` is numeric and that the dims of `roles` ({option: dim}) leave one value of every other
    dim; return (`ds[y]`, its dims, the dims used)."""
    check_variables(ds, [y], where, option="--y")
    if y not in numeric_variables(ds):
        raise SweepInputError(
            f"{where}: --y: {y} is not numeric; allowed: {', '.join(numeric_variables(ds))}"
        )
    da = ds[y]
    dims = [str(d) for d in da.dims]
    for option, dim in roles.items():
        if dim is not None and dim not in dims:
            raise SweepInputError(
                f"{where}: {option}: {dim!r} is not a dim of {y}; allowed: {', '.join(dims)}"
            )
    used = [d for d in roles.values() if d is not None]
    if len(set(used)) != len(used):
        raise SweepInputError(
            f"{where}: --x, --hue, --col and --row must name different dims; got {', '.join(used)}"
        )
    for d in dims:
        if d not in used and da.sizes[d] > 1:
            raise SweepInputError(
                f"{where}: {y} also varies over {d} ({_few(labels(ds, d))}); allowed: pick one with "
                f"--sel {d}=VALUE or draw it with --hue/--col/--row {d}"
            )
    if not np.isfinite(da.values.astype(np.float64)).any():
        raise SweepInputError(f"{where}: nothing to plot: every value of {y} in the selection is NaN")
    return da, dims, used


def plot(
    ds: xr.Dataset,
    path,
    *,
    x: str,
    y: str | None = None,
    hue: str | None = None,
    col: str | None = None,
    row: str | None = None,
    xscale: str = "auto",
    yscale: str = "auto",
    where: str = "result",
) -> str:
    """Draw `y` (default: the result's tokens per watt) against the dim `x`, one line per `hue` value and
    one panel per `col` (and `row`) value, and write the figure to `path` (format from the extension;
    atomically). Every other dim of `y` must hold one value (select it first, e.g. `sweep.io.tabular.select`).
    Returns a one-line description of the figure."""
    path = os.fspath(path)
    ext = check_figure_format(path)
    y = y or default_variable(ds)
    da, dims, used = _checked_roles(ds, y, {"--x": x, "--hue": hue, "--col": col, "--row": row}, where)

    data = da.copy()
    data.attrs = {"long_name": axis_label(ds, y)}
    numeric_x = x in ds.coords and ds[x].dtype.kind in "iuf" and not (x == "batch" and 0 in ds[x].values)
    ticks = None  # a categorical x (names, or batch with "max"): positions 0, 1, ... labelled
    for d in dims:  # coordinates print as in tables: batch 0 is "max"
        if d != x:
            data = data.assign_coords({d: labels(ds, d)}) if d in ds.coords else data
        elif numeric_x:  # in increasing order, labelled with its meaning and units
            data = data.sortby(d)
            data[d].attrs = {"long_name": axis_label(ds, d)}
        else:
            ticks = labels(ds, d)
            data = data.assign_coords({d: (d, np.arange(len(ticks)), {"long_name": axis_label(ds, d)})})
    data = data.squeeze([d for d in dims if d not in used])

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # no window; a session that already chose a backend keeps it
    import matplotlib.pyplot as plt

    facets = col is not None or row is not None
    kwargs = dict(x=x, hue=hue, marker="o", markersize=3)
    if facets:
        n_col = data.sizes[col] if col else 1
        kwargs.update(
            col=col, row=row, size=3.2, aspect=1.25, col_wrap=4 if row is None and n_col > 4 else None
        )
        grid = data.plot.line(**kwargs)
        fig, axes = grid.fig, [a for a in np.ravel(grid.axs) if a is not None]
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        data.plot.line(ax=ax, **kwargs)
        axes = [ax]
    try:
        scales = {}
        scales["x"] = _scale(xscale, numeric_x and is_geometric(ds[x].values), "--xscale", where)
        scales["y"] = _scale(yscale, spans_decades(data.values), "--yscale", where)
        for ax in axes:
            ax.set_xscale(scales["x"])
            ax.set_yscale(scales["y"])
            ax.grid(True, which="major", alpha=0.3)
            if ticks is not None:
                ax.set_xticks(range(len(ticks)), ticks)
        note = f"{ds.attrs['convention']} convention" if "convention" in ds.attrs else ""
        if not facets:
            title = axes[0].get_title()
            axes[0].set_title("\n".join(t for t in (title, note) if t), fontsize=9)
        else:  # the dims held at one value, which the panel titles do not name
            fixed = [f"{d} = {labels(ds, d)[0]}" for d in dims if d not in used]
            fig.suptitle(", ".join(fixed) + (f" ({note})" if note else ""), y=1.02, fontsize=10)
        from sweep.io.files import write_atomic

        write_atomic(path, lambda tmp: fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight"))
    finally:
        plt.close(fig)
    lines = data.sizes[hue] if hue else 1
    panels = (data.sizes[col] if col else 1) * (data.sizes[row] if row else 1)
    return f"{y} against {x} ({scales['x']} x, {scales['y']} y), {lines} line(s) per panel, {panels} panel(s)"


def _few(values, most: int = 6) -> str:
    return ", ".join(values[:most]) + (f", ... {len(values)} values" if len(values) > most else "")


def _scale(choice: str, geometric: bool, option: str, where: str) -> str:
    if choice not in SCALES:
        raise SweepInputError(f"{where}: {option}: got {choice!r}; allowed: {', '.join(SCALES)}")
    if choice == "auto":
        return "log" if geometric else "linear"
    return choice
