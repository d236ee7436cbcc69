"""Helpers shared by the subcommands: list options, the first finite point, error tables, and what each
command writes (`WRITES`: allowed output names, its inputs), checked once in `sweep.cli.run_command`."""

from __future__ import annotations

from dataclasses import dataclass

from sweep.errors import SweepInputError


def comma_list(text: str) -> list:
    """A comma-separated list option (`--over gpu,tp`, `--vars tokens_per_watt,gpu_power`)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def first_point(values) -> dict | None:
    """{dim: coordinate} of the first finite value of a DataArray (C order), or None."""
    import numpy as np

    flat = np.argwhere(np.isfinite(values.values))
    if not len(flat):
        return None
    coordinate = {d: values[d].values[i] for d, i in zip(values.dims, flat[0])}
    return {d: v.item() if hasattr(v, "item") else v for d, v in coordinate.items()}


def percent(x: float) -> str:
    return f"{100 * x:.1f} %" if x == x else "-"


def error_table(summary: dict, title: str) -> str:
    lines = [
        f"{title}: median |ln(predicted / measured)|",
        f"{'gpu':<10}{'rows':>6}{'tok/J':>9}{'tok/s':>9}{'power':>9}{'ITL':>9}{'tok/J bias':>12}",
    ]
    for gpu, e in summary.items():
        lines.append(
            f"{gpu:<10}{e['rows']:>6}{percent(e['tokens_per_joule']):>9}{percent(e['tokens_per_second']):>9}"
            f"{percent(e['power_w']):>9}{percent(e['itl_s']):>9}{e['tokens_per_joule_bias']:>11.3f}x"
        )
    return "\n".join(lines)


def check_best_options(args, where) -> None:
    if (args.over or args.min) and not args.best:
        raise SweepInputError(
            f"{where}: --over/--min: they go with --best VARIABLE; allowed: e.g. --best tokens_per_watt --over gpu,tp"
        )


def best_answer(ds, args, also, where, limit=None, output=None) -> str:
    """--best: the table of the best settings (or, with `output`, write it as CSV and say so)."""
    from sweep.io.tabular import best, format_table, write_csv

    picked = best(ds, args.best, args.over, minimize=args.min, also=also, where=where)
    columns = [args.best, *[v for v in also if v != args.best]]
    rest = [str(d) for d in picked[args.best].dims]
    over = [str(d) for d in ds[args.best].dims if d not in rest]  # the chosen setting: label columns
    if output:
        rows = write_csv(picked, output, columns, row_dims=rest, coords=over)
        return (
            f"wrote {'standard output' if output == '-' else output} ({rows:,} rows: {picked.attrs['best']})"
        )
    convention = f"; {ds.attrs['convention']} convention" if "convention" in ds.attrs else ""
    title = picked.attrs["best"] + (f"; one row per {', '.join(rest)}" if rest else "") + convention
    return title + "\n" + format_table(picked, columns, row_dims=rest, coords=over, limit=limit)


# ----------------------------------------------------------------------------------------------------
# output names


def _grid(args) -> list:
    """A grid command's inputs: the grid file and every file it names (parsed quietly: the run warns)."""
    import warnings

    from sweep.api import as_spec
    from sweep.io.output import grid_inputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return grid_inputs(as_spec(args.grid))


def _result(args) -> list:
    return [(args.result, f"the result file {args.result}")]


def _measurements(args) -> list:
    return [(m, f"the measurement file {m}") for m in args.measurements]


def _rows(args) -> list:
    from sweep.calibration.store import BUILTIN

    found = [(r, f"the rows file {r}") for r in args.rows]
    if args.calibration and args.calibration not in BUILTIN:
        found.append((args.calibration, f"the calibration file {args.calibration}"))
    return found


def _config(args) -> list:
    return [(args.config, f"the config file {args.config}")]


@dataclass(frozen=True)
class Writes:
    """What a subcommand writes: the names its output may have and the inputs it must not replace."""

    what: str  # what it writes, for messages
    endings: tuple  # allowed name endings (lower case); empty: any figure format matplotlib writes
    inputs: object  # args -> [(path, description)]
    text: bool = False  # `-o -` writes the content to standard output
    option: str = "output"  # the attribute of args that holds the output name
    key: str = "-o"  # the option as typed
    partial: bool = False  # a streamed run also writes <out>.partial


NETCDF = (".nc",)
WRITES = {
    "run": Writes("NetCDF, a Zarr store or a CSV table", (".nc", ".zarr", ".csv"), _grid, partial=True),
    "sensitivity": Writes("NetCDF", NETCDF, _grid),
    "compare": Writes("NetCDF", NETCDF, _grid),
    "optimize": Writes("NetCDF", NETCDF, _grid),
    "show": Writes("CSV tables", (".csv",), _result, text=True),
    "plot": Writes("figures", (), _result),
    "calibrate": Writes("a calibration (TOML)", (".toml",), _measurements, text=True),
    "predict": Writes("CSV tables", (".csv",), _rows, text=True),
    "model": Writes("a model catalog (TOML)", (".toml",), _config, option="catalog", key="--catalog"),
}


def _endings(endings) -> str:
    """`a name ending in .nc, .zarr or .csv`."""
    most = ", ".join(endings[:-1]) + " or " if len(endings) > 1 else ""
    return f"a name ending in {most}{endings[-1]}"


def check_output_name(args) -> str | None:
    """The command's output name, checked before any work: none of its inputs (`check_not_an_input`), an
    ending that says what it writes, `-` (standard output) only for text outputs. None: no output."""
    from sweep.io.files import check_not_an_input, is_stdout
    from sweep.io.tabular import check_table_format

    writes = WRITES.get(args.command)
    out = getattr(args, writes.option, None) if writes else None
    if out is None:
        return None
    allowed = "a figure file (.png, .pdf, .svg, ...)" if not writes.endings else _endings(writes.endings)
    if is_stdout(out):
        if not writes.text:
            raise SweepInputError(
                f"-: {writes.key}: sweep {args.command} writes {writes.what}, which standard output does not "
                f"take (only text: CSV, TOML); allowed: {allowed}"
            )
        return out
    name = str(out).rstrip("/").lower()
    check_not_an_input(
        out, writes.inputs(args), key=writes.key, partial=writes.partial and not name.endswith(".csv")
    )
    if not writes.endings:
        from sweep.io.plotting import check_figure_format

        check_figure_format(str(out))
    elif not name.endswith(writes.endings):
        check_table_format(out, allowed=allowed, key=writes.key)
        raise SweepInputError(
            f"{out}: {writes.key}: sweep {args.command} writes {writes.what}; allowed: {allowed}"
        )
    return out
