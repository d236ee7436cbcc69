"""Tables from results: slices (`--sel`), the best setting over some dims (`--best`), tidy rows, CSV.

The command-line answers (`sweep show`, `sweep run --best`, `-o FILE.csv`) are built here from any
result Dataset, in memory or read back from NetCDF (or a zarr store):

- `open_result(path)`: a saved result, loaded; a one-line `SweepInputError` if it cannot be read.
- `select(ds, ["gpu=B200,context=8192"], where)`: a slice; values are parsed to each coordinate's
  dtype (`batch=max` is batch 0), a key may repeat (`gpu=H100,gpu=B200`), numeric dims take ranges
  (`context=4096..32768`).
- `best(ds, "tokens_per_watt", ["gpu", "tp"])`: per combination of the other dims, the setting of
  `gpu` and `tp` with the largest (`minimize=True`: smallest) value.
- `tidy(ds)`: one row per grid point, one column per variable (a variable's `parameter`, `quantile`,
  `pool`, ... dims become columns `<variable>_<label>`: `elasticity_weight_time_s`,
  `tokens_per_watt_quantile_0.05`, `instances_short`); `write_csv(ds, path)` writes it atomically
  with the units in the header (`tokens_per_watt [J-1]`), `format_table` prints it.
- `header(ds, path)`: dims, coordinates, variables with units and the global attributes (what
  `ncdump -h` shows, readable).

Batch 0 encodes "max" (n = n_max): it is labelled `max` in every table and CSV file.
"""

from __future__ import annotations

import fnmatch
import math
import os

import numpy as np
import xarray as xr

from sweep.errors import SweepInputError
from sweep.vocabulary import BATCH_MAX

BATCH_MAX_LABEL = "max"
# dims whose labels become columns (`elasticity_<parameter>`), not rows, of a tidy table
COLUMN_DIMS = ("parameter", "quantile", "pool", "uncertain_parameter", "sample")
DEFAULT_LIMIT = 40  # rows printed unless --limit / --all
# table formats asked for by name that sweep does not write (Parquet would need pyarrow, not a dependency)
UNSUPPORTED_TABLES = (".parquet", ".pq", ".feather", ".arrow", ".xlsx", ".xls", ".tsv", ".json")
# points `best` never picks: (flag variable, value)
SKIP = (("feasible", 0), ("exceeds_model_context", 1), ("meets_slo", 0))
CSV_BLOCK_ROWS = 1 << 18  # rows formatted at a time when writing CSV (bounds memory)


# ----------------------------------------------------------------------------------------------------
# reading and labels


def is_csv(path) -> bool:
    """True where an output path names a CSV table (by its extension, any case)."""
    return path is not None and os.fspath(path).lower().endswith(".csv")


def check_table_format(
    path, allowed: str = ".csv (a tidy table), .nc or any other name (NetCDF)", key: str = "-o"
) -> None:
    """A one-line error for output names that ask for a table format sweep does not write."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in UNSUPPORTED_TABLES:
        why = " (Parquet needs pyarrow, which sweep does not depend on)" if ext in (".parquet", ".pq") else ""
        raise SweepInputError(f"{path}: {key}: sweep does not write {ext} files{why}; allowed: {allowed}")


def label(dim: str, value) -> str:
    """How a coordinate value is printed: batch 0 is `max`; floats in their shortest form."""
    if hasattr(value, "item"):
        value = value.item()
    if dim == "batch" and isinstance(value, int | float) and value == BATCH_MAX:
        return BATCH_MAX_LABEL
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value)


def labels(ds: xr.Dataset, dim: str) -> list[str]:
    """The printed labels of a dim's coordinate (0, 1, ... where it has none)."""
    values = ds[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
    return [label(dim, v) for v in values]


def _allowed(values, most: int = 24) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (f", ... ({len(values)} in all)" if len(values) > most else "")


def units(ds: xr.Dataset, name: str) -> str | None:
    """A variable's CF units, or None where it has none or is dimensionless ("1")."""
    u = ds[name].attrs.get("units") if name in ds.variables else None
    return None if u in (None, "", "1") else str(u)


# ----------------------------------------------------------------------------------------------------
# --sel


def _parse_value(ds: xr.Dataset, dim: str, text: str, where: str) -> list[int]:
    """Positions along `dim` that `text` (a value, or lo..hi on a numeric dim) selects."""
    coord = ds[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
    kind = coord.dtype.kind
    shown = labels(ds, dim)

    def fail():
        raise SweepInputError(f"{where}: --sel {dim}={text}: no such {dim}; allowed: {_allowed(shown)}")

    def number(s: str) -> float:
        s = s.strip()
        if dim == "batch" and s.lower() == BATCH_MAX_LABEL:
            return float(BATCH_MAX)
        try:
            return float(s)
        except ValueError:
            fail()

    if kind in "iuf":
        if ".." in text:
            lo, _, hi = text.partition("..")
            lo = number(lo) if lo.strip() else -math.inf
            hi = number(hi) if hi.strip() else math.inf
            hits = [i for i, v in enumerate(coord) if lo <= v <= hi]
        else:
            x = number(text)
            hits = [
                i for i, v in enumerate(coord) if v == x or (kind == "f" and math.isclose(v, x, rel_tol=1e-9))
            ]
    else:
        hits = [i for i, v in enumerate(coord) if str(v) == text]
        hits = hits or [i for i, v in enumerate(coord) if str(v).lower() == text.lower()]
    if not hits:
        fail()
    return hits


def parse_selection(ds: xr.Dataset, items, where: str) -> dict[str, list[int]]:
    """{dim: positions} from `--sel` texts such as "gpu=B200,context=8192" (repeated keys: several values)."""
    chosen: dict[str, list[int]] = {}
    for item in items or ():
        for piece in str(item).split(","):
            piece = piece.strip()
            if not piece:
                continue
            key, eq, value = piece.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key or not value:
                raise SweepInputError(
                    f"{where}: --sel {piece!r}: expected DIM=VALUE; allowed: comma-separated pairs such as "
                    "gpu=B200,context=8192 (a dim may repeat; numeric dims take lo..hi)"
                )
            if key not in ds.dims:
                raise SweepInputError(
                    f"{where}: --sel {piece}: unknown dim {key!r}; allowed: {_allowed(ds.sizes)}"
                )
            positions = chosen.setdefault(key, [])
            positions += [i for i in _parse_value(ds, key, value, where) if i not in positions]
    return {d: sorted(p) for d, p in chosen.items()}


def select(ds: xr.Dataset, items, where: str) -> xr.Dataset:
    """The slice of `ds` that `--sel` texts name; every dim is kept (a selected one with its chosen values)."""
    return ds.isel(parse_selection(ds, items, where)) if items else ds


# ----------------------------------------------------------------------------------------------------
# --vars


def default_variables(ds: xr.Dataset, screen: bool = False) -> list[str]:
    """Every data variable except per-draw ones (a `sample` dim); on screen also not the inputs `uncertainty`, `draw`."""
    skip = {"uncertainty", "draw"} if screen else set()
    return [str(v) for v in ds.data_vars if "sample" not in ds[v].dims and v not in skip]


def is_provenance(ds: xr.Dataset, name: str) -> bool:
    """True for the provenance record (`provenance`, `provenance_index`: only `provenance_*` dims): a table
    of its own, never crossed with the grid's rows."""
    dims = ds[name].dims
    return bool(dims) and all(str(d).startswith("provenance_") for d in dims)


def auxiliary(ds: xr.Dataset) -> list[str]:
    """Coordinates that are not dims (labels such as a model's `parameters`, or the choice of `best`)."""
    return [str(c) for c in ds.coords if c not in ds.dims]


def check_variables(ds: xr.Dataset, names, where: str, option: str = "--vars") -> list[str]:
    """Data variables (or auxiliary coordinates) named by `names` (names or shell patterns such as
    `tokens_per_watt*`), in order. A pattern never picks the provenance record (`is_provenance`); named, it
    is a table of its own: with other variables, a `SweepInputError`."""
    out: list[str] = []
    available = [str(v) for v in ds.data_vars] + auxiliary(ds)
    for name in names:
        name = name.strip()
        if not name:
            continue
        pattern = any(c in name for c in "*?[")
        hits = (
            [v for v in available if fnmatch.fnmatchcase(v, name) and not is_provenance(ds, v)]
            if pattern
            else []
        )
        hits = hits or ([name] if name in available else [])
        if not hits:
            raise SweepInputError(f"{where}: {option}: no variable {name!r}; allowed: {', '.join(available)}")
        out += [h for h in hits if h not in out]
    record = [v for v in out if is_provenance(ds, v)]
    if record and len(record) < len(out):
        raise SweepInputError(
            f"{where}: {option}: {', '.join(record)} (dims provenance_*) is a table of its own, not a column of "
            f"the grid's rows; allowed: {option} {','.join(record)} alone"
        )
    return out


def numeric_variables(ds: xr.Dataset) -> list[str]:
    return [str(v) for v in ds.data_vars if ds[v].dtype.kind in "iuf"]


# ----------------------------------------------------------------------------------------------------
# --best


def best(
    ds: xr.Dataset,
    variable: str,
    over,
    *,
    minimize: bool = False,
    also=(),
    where: str = "result",
) -> xr.Dataset:
    """Per combination of the dims not in `over`, the setting of the `over` dims where `variable` is
    largest (`minimize`: smallest), ignoring NaN and points with `feasible = 0`, `exceeds_model_context =
    1` or `meets_slo = 0` (no sequence fits; beyond the model's context; misses the P99 TTFT target)
    where the result has those variables.

    Returns a Dataset over the remaining dims holding `variable` and the `also` variables at the optimum,
    with the chosen setting as coordinates named like the `over` dims (the label `"-"` where every value is
    NaN; its value is then NaN). `over=None` or empty: every dim of the variable (the single best point).
    """
    allowed = numeric_variables(ds)
    if variable not in ds.data_vars or variable not in allowed:
        raise SweepInputError(
            f"{where}: --best: no numeric variable {variable!r}; allowed: {', '.join(allowed)}"
        )
    da = ds[variable]
    over = list(over or da.dims)
    for d in over:
        if d not in da.dims:
            raise SweepInputError(
                f"{where}: --over: {d!r} is not a dim of {variable}; allowed: {', '.join(map(str, da.dims))}"
            )
    if len(set(over)) != len(over):
        raise SweepInputError(f"{where}: --over: a dim is named twice ({', '.join(over)})")
    also = [v for v in check_variables(ds, also, where) if v != variable]
    rest = [d for d in da.dims if d not in over]
    skipped = []
    for flag, bad in SKIP:  # the best point is a feasible one, within the model's context, meeting the SLO
        if flag in ds.data_vars and flag != variable and set(ds[flag].dims) <= set(da.dims):
            before = int(da.isnull().sum())
            da = da.where(ds[flag] != bad)
            if count := int(da.isnull().sum()) - before:
                skipped.append(f"{count:,} point(s) with {flag} = {bad}")
    values = da.transpose(*rest, *over).values.astype(np.float64)
    flat = values.reshape(values.shape[: len(rest)] + (-1,))
    missing = np.isnan(flat)
    filled = np.where(missing, np.inf if minimize else -np.inf, flat)
    index = filled.argmin(axis=-1) if minimize else filled.argmax(axis=-1)
    empty = missing.all(axis=-1)
    positions = np.unravel_index(index, [ds.sizes[d] for d in over])
    indexers = {d: xr.DataArray(p, dims=rest) for d, p in zip(over, positions)}
    picked = ds[[variable, *also]].isel(indexers)
    if empty.any():
        keep = ~xr.DataArray(empty, dims=rest)
        for v in [variable, *also]:  # no value where nothing was chosen: NaN, or "-" for labels
            kind = picked[v].dtype.kind
            if kind in "iufb":
                picked[v] = picked[v].astype(np.float64).where(keep)
            else:
                picked[v] = picked[v].astype(object).where(keep, "-")
        for d in over:
            chosen = np.asarray([label(d, v) for v in np.ravel(picked[d].values)], dtype=object)
            chosen[np.ravel(empty)] = "-"
            picked = picked.assign_coords({d: (rest, chosen.reshape(empty.shape))})
    picked.attrs = dict(ds.attrs)
    picked.attrs["best"] = f"{'smallest' if minimize else 'largest'} {variable} over {', '.join(over)}" + (
        f" (skipped: {', '.join(skipped)})" if skipped else ""
    )
    return picked


def check_best_names(spec, variable: str, over) -> None:
    """Before a grid is evaluated: `variable` must be an output sweep can write and the `over` dims among
    the grid's axes (or `pool`, `parameter`, `quantile`), so a typo fails at once, not after the run.
    `best` checks the result itself."""
    from sweep.io.output import MONTE_CARLO_STATISTICS, VARIABLES

    known = set(VARIABLES) | {f"{b}_{s}" for b in VARIABLES for s in MONTE_CARLO_STATISTICS}
    if variable not in known:
        from sweep.grid import evaluators as E

        if spec.mode == "fleet":
            names = [*E.FLEET_OUTPUTS, *E.POOL_OUTPUTS, "meets_slo"]
        else:
            names = [
                "max_concurrency",
                "feasible",
                *E.INSTANCE_OUTPUTS,
                "bound",
                "instance_power",
                "elasticity",
            ]
        raise SweepInputError(
            f"{spec.where}: --best: no output variable {variable!r}; allowed: {', '.join(names)} "
            "(with --uncertainty also <name>_mean, _std, _quantile; first order <name>_rel_uncertainty, _low, _high)"
        )
    dims = [*spec.axes, "pool", "parameter", "quantile"]
    for d in over or ():
        if d not in dims:
            raise SweepInputError(f"{spec.where}: --over: no dim {d!r}; allowed: {', '.join(spec.axes)}")


# ----------------------------------------------------------------------------------------------------
# tidy tables


def _row_dims(ds: xr.Dataset, variables) -> list[str]:
    used = {d for v in variables for d in ds[v].dims}
    return [str(d) for d in ds.sizes if d in used and d not in COLUMN_DIMS]


def _label_array(dim: str, values: np.ndarray) -> np.ndarray:
    """Coordinate values as table cells: batch 0 → "max" (an object column), others unchanged."""
    if dim == "batch" and values.dtype.kind in "iuf":
        out = values.astype(object)
        out[values == BATCH_MAX] = BATCH_MAX_LABEL
        return out
    if values.dtype.kind == "U":
        return values.astype(object)
    return values


def table_columns(ds: xr.Dataset, variables=None, row_dims=None, coords=None) -> tuple[list, list, dict]:
    """(row dims, label coordinates, {column: (variable, units)}) of the tidy table of `variables`.

    Label coordinates: `coords` (auxiliary coordinates along the row dims); by default every one where
    `variables` is None too (the whole result), else none."""
    if coords is None and variables is None:
        coords = auxiliary(ds)
    variables = list(default_variables(ds) if variables is None else variables)
    rows = list(_row_dims(ds, variables) if row_dims is None else row_dims)
    extra = [str(c) for c in coords or () if c not in variables and set(ds[c].dims) <= set(rows)]
    columns = {}
    for v in variables:
        spread = [d for d in ds[v].dims if d not in rows]
        if not spread:
            columns[v] = (v, units(ds, v))
            continue
        combos = [[]]
        for d in spread:
            combos = [c + [x] for c in combos for x in labels(ds, d)]
        for combo in combos:
            columns[f"{v}_{'_'.join(combo)}"] = (v, units(ds, v))
    return rows, extra, columns


def tidy(
    ds: xr.Dataset, variables=None, *, row_dims=None, coords=None, start: int = 0, stop: int | None = None
):
    """A pandas DataFrame, one row per point of the row dims (C order), rows `start:stop`.

    Row dims: every dim of the variables except `parameter`, `quantile`, `pool`, `uncertain_parameter` and
    `sample`, whose labels become column suffixes instead (`elasticity_weight_time_s`, `instances_short`).
    A variable without some row dim is repeated along it (`max_concurrency` over batch). Batch 0 is `max`.
    Auxiliary coordinates `coords` are label columns after the row dims (see `table_columns`).
    `df.attrs["units"]` maps each column to its CF units (None: a label or dimensionless).
    """
    import pandas as pd

    rows, extra, columns = table_columns(ds, variables, row_dims, coords)
    variables = list(default_variables(ds) if variables is None else variables)
    shape = [ds.sizes[d] for d in rows]
    total = int(np.prod(shape)) if shape else 1
    stop = total if stop is None else min(stop, total)
    flat = np.arange(start, max(stop, start))
    index = dict(zip(rows, np.unravel_index(flat, shape))) if rows else {}
    data: dict = {}
    for d in rows:
        coord = ds[d].values if d in ds.coords else np.arange(ds.sizes[d])
        data[d] = _label_array(d, coord[index[d]])
    for c in extra:
        arr = ds[c].transpose(*[d for d in rows if d in ds[c].dims]).values
        taken = arr[tuple(index[d] for d in rows if d in ds[c].dims)] if arr.ndim else np.full(len(flat), arr)
        data[c] = _label_array(c, np.asarray(taken))
    for v in variables:
        da = ds[v]
        own = [d for d in rows if d in da.dims]
        spread = [d for d in da.dims if d not in rows]
        arr = da.transpose(*own, *spread).values
        taken = arr[tuple(index[d] for d in own)] if own else np.broadcast_to(arr, (len(flat),) + arr.shape)
        taken = taken.reshape(len(flat), -1)
        names = [c for c, (var, _) in columns.items() if var == v]
        for j, name in enumerate(names):
            data[name] = taken[:, j]
    df = pd.DataFrame(data, columns=rows + extra + list(columns))
    df.attrs["units"] = {c: u for c, (_, u) in columns.items()}
    df.attrs["rows"] = total
    return df


def _cell(value) -> str:
    if isinstance(value, float | np.floating):
        return "nan" if value != value else f"{value:.4g}"
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def format_table(
    ds: xr.Dataset, variables=None, *, row_dims=None, coords=None, limit: int | None = DEFAULT_LIMIT
) -> str:
    """The tidy table as fixed-width text: a line naming the dims that hold one value, column names, units,
    at most `limit` rows (None: all) and a note on the rows left out."""
    df = tidy(ds, variables, row_dims=row_dims, coords=coords, stop=limit)
    total = df.attrs["rows"]
    unit = df.attrs["units"]
    lines = []
    rows = [d for d in df.columns if d not in unit]
    fixed = [d for d in rows if d in ds.dims and ds.sizes[d] == 1]
    if fixed:
        lines.append("at " + ", ".join(f"{d}={labels(ds, d)[0]}" for d in fixed))
    shown = [c for c in df.columns if c not in fixed] or list(df.columns)
    cells = [[_cell(v) for v in df[c]] for c in shown]
    heads = [[c, f"[{unit[c]}]" if unit.get(c) else ""] for c in shown]
    widths = [max([len(h) for h in head] + [len(x) for x in col]) for head, col in zip(heads, cells)]
    numeric = [df[c].dtype.kind in "iuf" for c in shown]

    def line(parts):
        return "  ".join(p.rjust(w) if r else p.ljust(w) for p, w, r in zip(parts, widths, numeric)).rstrip()

    lines.append(line([h[0] for h in heads]))
    if any(h[1] for h in heads):
        lines.append(line([h[1] for h in heads]))
    lines += [line([col[i] for col in cells]) for i in range(len(df))]
    if len(df) < total:
        lines.append(
            f"... {total - len(df):,} more row{'s' if total - len(df) > 1 else ''} ({total:,} in all): --all prints every row, --limit N "
            "sets the limit, -o FILE.csv writes them"
        )
    return "\n".join(lines)


def write_csv(ds: xr.Dataset, path, variables=None, *, row_dims=None, coords=None) -> int:
    """Write the tidy table of `ds` (see `tidy`) to the CSV file `path`, atomically; return the row count.

    The header row names every column, with its CF units in brackets (`tokens_per_watt [J-1]`,
    `gpu_power [W]`; none: a label or dimensionless). Floats are written in full precision, NaN as an
    empty field, batch 0 as `max`. `variables` None: every variable but per-draw samples, and every
    auxiliary coordinate (a model's `parameters`) as a label column.
    """
    rows, extra, columns = table_columns(ds, variables, row_dims, coords)
    total = int(np.prod([ds.sizes[d] for d in rows])) if rows else 1
    header = rows + extra + [f"{c} [{u}]" if u else c for c, (_, u) in columns.items()]

    def write(f):
        for start in range(0, total, CSV_BLOCK_ROWS):
            df = tidy(
                ds, variables, row_dims=row_dims, coords=coords, start=start, stop=start + CSV_BLOCK_ROWS
            )
            df.columns = header
            df.to_csv(f, index=False, header=start == 0, lineterminator="\n")

    _write_table(path, write)
    return total


def _write_table(path, write) -> None:
    """`write(f)` into a text file `f`: the file `path` (atomically), or standard output where `path` is `-`."""
    from sweep.io.files import content_stream, is_stdout, write_atomic

    if is_stdout(path):
        stream = content_stream()
        write(stream)
        stream.flush()
        return

    def to_file(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            write(f)

    write_atomic(path, to_file)


def check_table_size(ds: xr.Dataset, variables, where: str, budget: tuple) -> None:
    """Refuse, before any row is made, a tidy table whose cells (8 bytes each) exceed the memory budget
    `budget` = (bytes, how it was set; `sweep.io.memory.memory_budget`)."""
    from sweep.io.memory import human

    rows, extra, columns = table_columns(ds, variables)
    total = math.prod(ds.sizes[d] for d in rows)
    width = len(rows) + len(extra) + len(columns)
    if total * width * 8 > budget[0]:
        raise SweepInputError(
            f"{where}: the table has {total:,} rows x {width:,} columns, about {human(total * width * 8)}, over "
            f"the memory budget of {human(budget[0])} ({budget[1]}; --max-memory or SWEEP_MAX_MEMORY); allowed: "
            "a smaller slice (--sel) or fewer variables (--vars)"
        )


def write_attributes(ds: xr.Dataset, path) -> int:
    """Write the global attributes as a two-column CSV (attribute, value: the text as stored) to `path`
    (atomically; `-`: standard output); return their count."""
    import csv

    def write(f):
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["attribute", "value"])
        for k, v in ds.attrs.items():
            out.writerow([k, v.decode() if isinstance(v, bytes) else str(v)])

    _write_table(path, write)
    return len(ds.attrs)


# ----------------------------------------------------------------------------------------------------
# header (what `ncdump -h` shows)


def _attribute(value, width: int = 100) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else f"{text[: width - 5]}... ({len(text):,} chars; --attrs prints all)"


def header(ds: xr.Dataset, where: str) -> str:
    """A readable header: title, provenance, dims with sizes, coordinates, variables with dims, units and
    meaning, and the global attributes (long ones shortened)."""
    a = ds.attrs
    lines = [f"{where}: {a.get('title', 'sweep result')}"]
    facts = [f"{k} {a[k]}" for k in ("source", "convention", "Conventions") if k in a]
    if facts:
        lines.append("  " + "; ".join(facts))
    if "history" in a:
        lines.append(f"  history: {_attribute(a['history'], 200)}")
    lines.append("dims: " + ", ".join(f"{d}={n}" for d, n in ds.sizes.items()))
    lines.append("coordinates:")
    names = [str(c) for c in ds.coords]
    width = max([len(n) for n in names + [str(v) for v in ds.data_vars]] + [8])
    for c in names:
        shown = labels(ds, c) if c in ds.dims else [_cell(v) for v in np.ravel(ds[c].values)]
        values = ", ".join(shown[:8]) + (f", ... {shown[-1]}" if len(shown) > 8 else "")
        values = values if len(values) <= 90 else f"{values[:80]}... ({len(shown)} values)"
        if c not in ds.dims:  # an auxiliary coordinate: name its dims
            values = f"({', '.join(map(str, ds[c].dims))}) {values}"
        note = ds[c].attrs.get("long_name", "")
        if c == "batch":
            note = 'requested sequences in flight; "max" (stored as 0): n = floor(load * n_max)'
        u = units(ds, c)
        lines.append(
            f"  {c:<{width}}  {values}" + (f"  [{u}]" if u else "") + (f"  ({note})" if note else "")
        )
    lines.append("variables (dims; units; meaning):")
    for v in ds.data_vars:
        da = ds[v]
        u = units(ds, str(v)) or ("1" if da.attrs.get("units") == "1" else "-")
        meaning = da.attrs.get("long_name", "")
        if "flag_meanings" in da.attrs and "flag_values" in da.attrs:
            flags = zip(np.ravel(da.attrs["flag_values"]), str(da.attrs["flag_meanings"]).split())
            meaning += " [" + ", ".join(f"{int(k)} {m}" for k, m in flags) + "]"
        lines.append(f"  {str(v):<{width}}  ({', '.join(map(str, da.dims))}; {u}) {meaning}")
    skip = {"title", "source", "convention", "Conventions", "history"}
    rest = [k for k in a if k not in skip]
    if rest:
        lines.append("attributes:")
        lines += [f"  {k}: {_attribute(a[k])}" for k in rest]
    return "\n".join(lines)


def attributes(ds: xr.Dataset) -> str:
    """Every global attribute in full (JSON attributes pretty-printed)."""
    import json

    lines = []
    for k, v in ds.attrs.items():
        text = v.decode() if isinstance(v, bytes) else str(v)
        if text[:1] in "[{":
            try:
                text = json.dumps(json.loads(text), indent=2, sort_keys=True)
            except ValueError:
                pass
        lines.append(f"{k}: {text}")
    return "\n".join(lines)
