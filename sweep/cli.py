"""Command-line interface: `sweep run`, `sweep list`, `sweep calibrate`, `sweep predict`, ….

Bad input exits with status 2 and a one-line message naming the file, key and allowed values.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings

from sweep import signals as _signals
from sweep.errors import SweepInputError, SweepWarning

EPILOG = """\
examples:
  sweep run grids/table1.toml -o outputs/table1.nc     evaluate a grid, write NetCDF
  sweep run grids/table1.toml --elasticities           add d ln(tok/W) / d ln(theta)
  sweep list profiles|gpus|models|workloads            catalogs, with provenance
  sweep model import config.json --name my-model       add a model from a local HF config
  sweep optimize grids/fleet_split.toml --refine       best routing split per setup
  sweep reproduce                                      the paper's Tables 1-5 (make run)
  sweep run grid.toml --uncertainty --samples 4096     Monte Carlo mean, std, quantiles; ranked drivers
  sweep run grid.toml --best tokens_per_watt --over gpu,tp    best GPU and TP per model, context, batch
  sweep run grid.toml -o out.csv                       a tidy table: one row per point, a column per variable
  sweep show out.nc --sel gpu=B200,context=8192        dims, units (like ncdump -h) and any slice as a table
  sweep plot out.nc --x context --hue gpu -o fig.png   tokens/W over context, one line per GPU
  sweep sensitivity grid.toml --method sobol -o s.nc   Sobol' / Morris / DGSM / tornado indices
  sweep compare grid.toml --dim gpu --numerator B200 --denominator H100
  sweep calibrate MEAS.csv -o CAL.toml                 fit the physics to measured runs
  sweep predict ROWS.csv --calibration mlenergy-v3 -o PRED.csv
                                                       predicted tok/s, power, tok/J per row

Grid files are TOML; see the README section "Grid files" for every key.
"""


def summary(ds, elapsed_s: float) -> str:
    """A short text summary: size, speed and tokens/W per setup (rows) over context or topology."""
    import numpy as np

    fleet = "fleet_tokens_per_watt" in ds
    target = ds["fleet_tokens_per_watt" if fleet else "tokens_per_watt"]
    column = "topology" if fleet else "context"
    row_dims = ["gpu", "model"] + (["workload"] if fleet else [])
    points = int(np.prod([ds.sizes[d] for d in target.dims]))
    lines = [
        f"{points:,} points in {elapsed_s:.2f} s ({points / max(elapsed_s, 1e-9):,.0f} points/s); "
        f"convention {ds.attrs.get('convention')}; dims " + ", ".join(f"{d}={n}" for d, n in ds.sizes.items())
    ]
    others = [d for d in target.dims if d not in row_dims + [column]]
    sel = target.isel({d: 0 for d in others})
    from sweep.tabular import label as coordinate_label  # batch 0 is "max"

    label = ", ".join(f"{d}={coordinate_label(d, ds[d].values[0])}" for d in others)
    columns = ds[column].values[:10]
    name = "fleet tokens/W" if fleet else "tokens/W"
    lines.append(
        f"{name + (' (' + label + ')' if label else ''):<44}" + "".join(f"{str(c):>12}" for c in columns)
    )
    rows = sel.stack(row=row_dims).transpose("row", column)
    for i in range(min(rows.sizes["row"], 12)):
        r = rows.isel(row=i)
        title = " / ".join(str(r[d].values) for d in row_dims)
        lines.append(f"{title:<44}" + "".join(f"{v:>12.4g}" for v in r.values[: len(columns)]))
    if rows.sizes["row"] > 12:
        lines.append(f"... {rows.sizes['row'] - 12} more rows")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from sweep.api import run

    command = "sweep " + " ".join(shlex.quote(a) for a in args.argv)
    start = time.perf_counter()
    if args.distributed:
        from sweep.distributed import initialize

        initialize(args.coordinator, args.num_processes, args.process_id)
    ds = run(
        args.grid,
        out=args.output,
        elasticities=True if args.elasticities else None,
        uncertainty=args.uncertainty,
        samples=args.samples,
        seed=args.seed,
        progress=not args.quiet,
        resume=args.resume,
        compression=args.compress,
        max_memory=args.max_memory,
        distributed=args.distributed,
        command=command,
    )
    elapsed = time.perf_counter() - start
    if "meets_slo" in ds and (missed := int((ds["meets_slo"] == 0).sum())):
        warnings.warn(
            f"{missed} of {ds['meets_slo'].size} fleet points miss their P99 TTFT target "
            "(ttft_p99 > ttft_p99_s; see meets_slo)",
            SweepWarning,
            stacklevel=2,
        )
    if not args.quiet:
        print(summary(ds, elapsed))
        if "uncertainty_method" in ds.attrs:
            print(drivers_table(args.grid, ds, args))
        if args.output:
            print(f"wrote {args.output}")
    run_answers(args, ds)  # --best (sweep.tabular)
    return 0


def drivers_table(grid, ds, args) -> str:
    """The uncertain parameters ranked by their share of the target's variance at the summary slice."""
    import numpy as np

    from sweep.api import run
    from sweep.uncertainty.compare import drivers
    from sweep.vocabulary import BATCH_MAX

    target = "fleet_tokens_per_watt" if "fleet_tokens_per_watt" in ds else "tokens_per_watt"
    spread = ds[f"{target}_rel_uncertainty" if f"{target}_rel_uncertainty" in ds else f"{target}_std"]
    first = _first_point(spread.where(spread > 0))
    if first is None:
        return f"drivers of {target}: no grid point has an uncertain parameter"
    label = ", ".join(f"{d}={v}" for d, v in first.items())
    if "elasticity" in ds and "uncertainty" in ds:  # first order: (e_i·u_i)² / 3 per parameter
        e = ds["elasticity"].sel(first)
        u = ds["uncertainty"].sel({d: first[d] for d in ds["uncertainty"].dims if d in first})
        contribution = np.nan_to_num(((e * u) ** 2 / 3.0).values)
        share = contribution / contribution.sum()
        ranked = sorted(((n, v) for n, v in zip(ds["parameter"].values, share) if v > 0), key=lambda t: -t[1])
        how = "first-order share of variance, (e·u)²/3 / total"
    else:  # Monte Carlo: the point again, its draws kept
        import sweep.api as api

        spec = api.as_spec(grid)
        as_given = {d: ["max" if d == "batch" and v == BATCH_MAX else v] for d, v in first.items()}
        one = run(
            {**spec.raw, "axes": {**spec.raw.get("axes", {}), **as_given}},
            uncertainty={"method": "monte_carlo", "keep_samples": True},
            samples=args.samples,
            seed=args.seed,
        )
        y = one[f"{target}_samples"].values.reshape(one.sizes["sample"], -1)[:, 0]
        ranked = drivers(y, one["draw"].values, list(one["uncertain_parameter"].values))
        how = "share of variance by standardized regression on the draws (SRC²; Sobol' indices: sweep sensitivity)"
    lines = [f"drivers of {target} at {label} ({how}):"]
    lines += [f"  {i + 1:>2}. {name:<48} {100 * share:6.1f} %" for i, (name, share) in enumerate(ranked[:10])]
    return "\n".join(lines)


def _first_point(values) -> dict | None:
    """{dim: coordinate} of the first finite value of a DataArray (C order), or None."""
    import numpy as np

    flat = np.argwhere(np.isfinite(values.values))
    if not len(flat):
        return None
    coordinate = {d: values[d].values[i] for d, i in zip(values.dims, flat[0])}
    return {d: v.item() if hasattr(v, "item") else v for d, v in coordinate.items()}


def cmd_sensitivity(args) -> int:
    from sweep.api import sensitivity
    from sweep.output import check_writable
    from sweep.uncertainty.indices import rank

    if args.output:
        check_writable(args.output)
    start = time.perf_counter()
    ds = sensitivity(args.grid, method=args.method, samples=args.samples, seed=args.seed, out=args.output)
    elapsed = time.perf_counter() - start
    key = {"sobol": "ST", "morris": "mu_star", "dgsm": "ST_bound", "oat": "swing"}[args.method]
    print(
        f"{args.method} indices of {ds.attrs['sensitivity_target']} for {ds.sizes['parameter']} parameters, "
        f"{ds.attrs['evaluations']:,} evaluations in {elapsed:.1f} s"
    )
    where = _first_point(ds[key].max("parameter", skipna=True))
    if where is None:
        print("no grid point has finite indices (no uncertain parameter moves the output)")
    else:
        first = ds[key].sel(where)
        label = ", ".join(f"{d}={v}" for d, v in where.items())
        print(f"ranked by {key} at {label}:")
        for name in rank(first.values, list(ds["parameter"].values), top=ds.sizes["parameter"]):
            print(f"  {name:<48} {float(first.sel(parameter=name)):10.4g}")
    if args.output:
        print(f"wrote {args.output}")
    return 0


def cmd_compare(args) -> int:
    from sweep.api import run
    from sweep.output import check_writable, write_netcdf
    from sweep.uncertainty.compare import compare

    if args.output:
        check_writable(args.output)
    ds = run(
        args.grid,
        uncertainty={"method": "monte_carlo", "keep_samples": True},
        samples=args.samples,
        seed=args.seed,
        progress=True,
    )
    coord = ds[args.dim].values if args.dim in ds.dims else []

    def typed(v):
        for c in coord:
            if str(c) == v:
                return c
        return v

    out = compare(ds, args.dim, typed(args.numerator), typed(args.denominator))
    q = out["ratio_quantile"]
    flat = (
        out["ratio"].stack(point=out["ratio"].dims)
        if out["ratio"].dims
        else out["ratio"].expand_dims("point")
    )
    print(f"{out.attrs['comparison']}; {ds.sizes['sample']} draws")
    print(
        f"{'point':<50}{'nominal':>9}{'mean':>9}"
        + "".join(f"{'q' + format(v, 'g'):>9}" for v in q["quantile"].values)
    )
    for i in range(flat.sizes["point"]):
        sel = (
            {d: flat["point"].values[i][j] for j, d in enumerate(out["ratio"].dims)}
            if out["ratio"].dims
            else {}
        )
        label = ", ".join(f"{d}={v}" for d, v in sel.items())
        line = f"{label:<50}{float(out['ratio'].sel(sel)):>9.3f}{float(out['ratio_mean'].sel(sel)):>9.3f}"
        line += "".join(f"{float(v):>9.3f}" for v in q.sel(sel).values)
        print(line)
    if args.output:
        write_netcdf(out, args.output)
        print(f"wrote {args.output}")
    return 0


# ---- answers on the command line (sweep.tabular, sweep.plotting): `sweep run --best` and
# `-o FILE.csv`, `sweep show`, `sweep plot`


def _names(text: str) -> list:
    """A comma-separated list option (`--over gpu,tp`, `--vars tokens_per_watt,gpu_power`)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def _check_best_options(args, where) -> None:
    if (args.over or args.min) and not args.best:
        raise SweepInputError(
            f"{where}: --over/--min: they go with --best VARIABLE; allowed: e.g. --best tokens_per_watt --over gpu,tp"
        )


def cmd_run_with_answers(args) -> int:
    """`sweep run`: check --best and --over before evaluating, then `cmd_run` (which prints the answer)."""
    from sweep.tabular import check_best_names

    _check_best_options(args, args.grid)
    if args.best:
        from sweep.api import as_spec

        check_best_names(as_spec(args.grid), args.best, args.over)
    return cmd_run(args)


def run_answers(args, ds) -> None:
    """The end of `sweep run`: --best prints the best settings."""
    if getattr(args, "best", None):
        print(_best_answer(ds, args, (), str(args.grid)))


def _best_answer(ds, args, also, where, limit=None, output=None) -> str:
    """--best: the table of the best settings (or, with `output`, write it as CSV and say so)."""
    from sweep.tabular import best, format_table, write_csv

    picked = best(ds, args.best, args.over, minimize=args.min, also=also, where=where)
    columns = [args.best, *[v for v in also if v != args.best]]
    rest = [str(d) for d in picked[args.best].dims]
    over = [str(d) for d in ds[args.best].dims if d not in rest]  # the chosen setting: label columns
    if output:
        rows = write_csv(picked, output, columns, row_dims=rest, coords=over)
        return f"wrote {output} ({rows:,} rows: {picked.attrs['best']})"
    convention = f"; {ds.attrs['convention']} convention" if "convention" in ds.attrs else ""
    title = picked.attrs["best"] + (f"; one row per {', '.join(rest)}" if rest else "") + convention
    return title + "\n" + format_table(picked, columns, row_dims=rest, coords=over, limit=limit)


def cmd_show(args) -> int:
    from sweep import tabular
    from sweep.output import check_writable
    from sweep.stream import open_result

    where = args.result
    _check_best_options(args, where)
    if args.limit is not None and args.limit < 1:
        raise SweepInputError(f"{where}: --limit: got {args.limit}; allowed: an integer >= 1 (or --all)")
    if args.output is not None:
        tabular.check_table_format(args.output, allowed="a name ending in .csv")
        if not tabular.is_csv(args.output):
            raise SweepInputError(
                f"{args.output}: -o: sweep show writes CSV tables; allowed: a name ending in .csv"
            )
        check_writable(args.output)
    ds = open_result(where)
    if args.attrs:
        print(tabular.attributes(ds))
        return 0
    sliced = tabular.select(ds, args.sel, where)
    names = tabular.check_variables(sliced, args.vars, where) if args.vars else None
    limit = None if args.all else (args.limit or tabular.DEFAULT_LIMIT)
    if args.best:
        print(_best_answer(sliced, args, names or [], where, limit=limit, output=args.output))
        return 0
    if args.output:
        rows = tabular.write_csv(sliced, args.output, names)
        print(f"wrote {args.output} ({rows:,} rows, one per grid point)")
        return 0
    if not (args.sel or args.vars):
        print(tabular.header(ds, where))
        print()
    print(tabular.format_table(sliced, names or tabular.default_variables(sliced, screen=True), limit=limit))
    return 0


def cmd_plot(args) -> int:
    from sweep import tabular
    from sweep.plotting import plot
    from sweep.stream import open_result

    ds = tabular.select(open_result(args.result), args.sel, args.result)
    what = plot(
        ds,
        args.output,
        x=args.x,
        y=args.y,
        hue=args.hue,
        col=args.col,
        row=args.row,
        xscale=args.xscale,
        yscale=args.yscale,
        where=args.result,
    )
    print(f"wrote {args.output}: {what}")
    return 0


SHOW_EPILOG = """\
examples:
  sweep show out.nc                                    dims, coordinates, variables with units, then rows
  sweep show out.nc --sel gpu=B200,context=8192        one slice (batch=max selects batch "max", stored as 0)
  sweep show out.nc --sel context=4096..32768 --vars 'tokens_per_watt*'
  sweep show out.nc --best tokens_per_watt --over gpu,tp      best GPU and TP per model, context, batch
  sweep show fleet.nc --best cost_per_mtok --min --over topology,b_short,gamma --vars instances
  sweep show out.nc --sel gpu=H100 -o h100.csv         the slice as a tidy CSV table
  sweep show out.nc --attrs                            every global attribute in full
"""

PLOT_EPILOG = """\
examples:
  sweep plot out.nc --x context --hue gpu -o fig.png             tokens/W (the default --y) over context
  sweep plot out.nc --x context --y gpu_power --hue gpu --col model --sel batch=max -o power.pdf
  sweep plot fleet.nc --x b_short --hue topology --col workload --sel gpu=B200,gamma=2 -o split.png
"""


def _add_show_and_plot(sub) -> None:
    """The `show` and `plot` subcommands."""
    p_show = sub.add_parser(
        "show",
        help="dims, units and a table of any slice of a saved result (NetCDF or zarr); CSV export",
        description="Print a saved result (written by sweep run, optimize, compare, ...): with no options its\n"
        "header (dims with sizes, coordinates, variables with dims, units and meaning, global attributes;\n"
        "what ncdump -h shows) and its first rows; --sel/--vars a table of a slice, one row per grid point\n"
        "and one column per variable (elasticity and uncertainty columns included: elasticity_<parameter>,\n"
        "<var>_quantile_<q>, <var>_<pool>); --best the best setting over some dims. Batch 0 is shown as\n"
        "max (n = n_max). -o FILE.csv writes the table (every row) instead of printing it; CSV only\n"
        "(Parquet would need pyarrow, not a dependency).",
        epilog=SHOW_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_show.add_argument("result", help="result file: NetCDF (.nc) or a zarr store (a directory)")
    p_show.add_argument(
        "--sel",
        action="append",
        metavar="DIM=VALUE[,...]",
        help="select a slice: comma-separated DIM=VALUE pairs (values as printed; batch=max is batch 0); "
        "repeat a dim for several values (gpu=H100,gpu=B200), lo..hi for a range of a numeric dim "
        "(context=4096..32768); the option may repeat",
    )
    p_show.add_argument(
        "--vars",
        type=_names,
        metavar="NAME[,...]",
        help="variables to show (names or shell patterns, e.g. 'tokens_per_watt*'); default: every "
        "variable except the per-parameter input uncertainty and per-draw samples (CSV: also uncertainty); "
        "with --best, the variables shown at the best point",
    )
    p_show.add_argument(
        "--best",
        metavar="VARIABLE",
        help="per combination of the other dims, the setting of the --over dims with the largest VARIABLE "
        "(any numeric variable); points with feasible = 0, exceeds_model_context = 1 or meets_slo = 0 are skipped",
    )
    p_show.add_argument(
        "--over",
        type=_names,
        metavar="DIM[,...]",
        help="dims --best chooses over, e.g. gpu,tp (default: every dim of VARIABLE: the single best point)",
    )
    p_show.add_argument(
        "--min", action="store_true", help="--best picks the smallest value (cost, time, power)"
    )
    p_show.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="print at most N rows (default 40); -o writes every row",
    )
    p_show.add_argument("--all", action="store_true", help="print every row")
    p_show.add_argument("--attrs", action="store_true", help="print every global attribute in full and exit")
    p_show.add_argument(
        "-o", "--output", metavar="FILE.csv", help="write the table (every row) as CSV, atomically"
    )
    p_show.set_defaults(func=cmd_show)

    p_plot = sub.add_parser(
        "plot",
        help="a figure of one variable against one dim of a saved result (lines per --hue, panels per --col)",
        description="Draw --y (default: tokens_per_watt, or fleet_tokens_per_watt of a fleet result) against\n"
        "the dim --x, one line per --hue value and one panel per --col (and --row) value; every other dim\n"
        "must hold one value (--sel). An axis is logarithmic where it is geometric (x: spans >= 10x with\n"
        "about constant ratios; y: positive, spans >= 10x) unless --xscale/--yscale say otherwise. Labels\n"
        "carry units and, for tokens per watt, the convention (paper: 'paper tok/W (per GPU)'; physical:\n"
        "'tokens per joule'). Built on xarray's plot.line (matplotlib, no window).",
        epilog=PLOT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_plot.add_argument("result", help="result file: NetCDF (.nc) or a zarr store (a directory)")
    p_plot.add_argument(
        "--x", required=True, metavar="DIM", help="the dim along the x axis (context, batch, ...)"
    )
    p_plot.add_argument(
        "--y", metavar="VARIABLE", help="the variable on the y axis (default: tokens per watt)"
    )
    p_plot.add_argument("--hue", metavar="DIM", help="one line per value of this dim (gpu, batch, ...)")
    p_plot.add_argument("--col", metavar="DIM", help="one panel per value of this dim, side by side")
    p_plot.add_argument("--row", metavar="DIM", help="one panel row per value of this dim")
    p_plot.add_argument(
        "--sel", action="append", metavar="DIM=VALUE[,...]", help="select a slice first, as in sweep show"
    )
    p_plot.add_argument("--xscale", choices=("auto", "linear", "log"), default="auto", help="default: auto")
    p_plot.add_argument("--yscale", choices=("auto", "linear", "log"), default="auto", help="default: auto")
    p_plot.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FIG.png",
        help="figure file (.png, .pdf, .svg, ...), atomically",
    )
    p_plot.set_defaults(func=cmd_plot)


def _prov(p) -> str:
    if p is None:
        return ""
    unc = f" ±{p.uncertainty:.0%}" if p.uncertainty else ""
    return f"  [{p.quality}{unc}] {p.source}"


def _list_profiles() -> None:
    from sweep.catalogs import profile_catalog

    for (gpu, model), prof in profile_catalog().items():
        print(f"{gpu} / {model}  (tp {prof.values['tp']:g})")
        for key, value in prof.values.items():
            print(f"    {key:<24} {value:<14g}{_prov(prof.provenance.get(key))}")
        print()


def _list_gpus() -> None:
    from sweep.catalogs import gpu_catalog

    catalog = gpu_catalog()
    for name in catalog.names():
        entry = catalog.get(name)
        aliases = f"  (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        print(f"{name}{aliases}  from {entry.origin}")
        for key, value in entry.specs.items():
            print(f"    {key:<26} {value.value:<14g}{_prov(value)}")
        print()


def _list_models() -> None:
    from sweep.catalogs import model_catalog
    from sweep.physics.architecture import param_counts

    catalog = model_catalog()
    print(
        f"{'model':<22}{'params (B)':>11}{'active (B)':>11}{'layers':>7}{'heads':>6}{'kv':>4}{'head_dim':>9}"
        f"{'MoE':>9}  source"
    )
    for name in catalog.names():
        entry = catalog.get(name)
        counts = param_counts(entry.arrays(), "physical")
        moe = f"{entry.value('experts_per_token'):g}/{entry.value('n_experts'):g}" if entry.is_moe else "-"
        source = next(iter(entry.arch.values())).source
        print(
            f"{name:<22}{float(counts['total']) / 1e9:>11.2f}{float(counts['active']) / 1e9:>11.2f}"
            f"{entry.value('n_layers'):>7g}{entry.value('n_heads'):>6g}{entry.value('n_kv_heads'):>4g}"
            f"{entry.value('head_dim'):>9g}{moe:>9}  {source}"
        )


def _list_workloads() -> None:
    from sweep.catalogs import workload_names
    from sweep.fleet.workload import load_workload

    for name in workload_names():
        w = load_workload(name)
        lengths, cum = w.lengths_tokens, w.cum_fraction
        mean = float(
            sum((lengths[i] + lengths[i - 1]) / 2 * (cum[i] - cum[i - 1]) for i in range(1, len(cum)))
        )
        print(f"{name:<14} {len(cum) - 1} knots, up to {int(lengths[-1])} tokens, mean {mean:,.0f} tokens")
    print("sources: sweep/data/workloads/PROVENANCE.md")


LISTS = {"profiles": _list_profiles, "gpus": _list_gpus, "models": _list_models, "workloads": _list_workloads}


def cmd_list(args) -> int:
    LISTS[args.what]()
    return 0


def cmd_model_import(args) -> int:
    from sweep.catalogs import import_model
    from sweep.catalogs.user import user_catalog_files

    name, target = import_model(args.config, name=args.name, catalog=args.catalog)
    where = "the user catalog" if target.as_posix() in user_catalog_files("models") else "a catalog file"
    print(f"added model {name!r} to {where} {target}")
    if where == "a catalog file":
        print(f'use it in a grid with model_catalogs = ["{target}"]')
    return 0


def cmd_optimize(args) -> int:
    from sweep.api import as_spec, run
    from sweep.optimizer import check_max_compression, optimize, refine
    from sweep.output import check_writable, write_netcdf
    from sweep.vocabulary import REFINEMENT_STATUS

    command = "sweep " + " ".join(shlex.quote(a) for a in args.argv)
    gmax = check_max_compression(args.max_compression)
    spec = as_spec(args.grid)
    if args.output:
        check_writable(args.output)
    if spec.mode != "fleet":
        raise SweepInputError(
            f"{args.grid}: topology: sweep optimize needs a fleet grid (one with a topology axis)"
        )
    ds = run(spec, progress=True, command=command)
    best = refine(spec, ds, max_compression=gmax) if args.refine else optimize(ds, max_compression=gmax)
    flat = (
        best.stack(group=[d for d in best.best_fleet_tokens_per_watt.dims])
        if best.best_fleet_tokens_per_watt.dims
        else best.expand_dims("group")
    )
    print(
        f"best split per setup ({spec.convention} convention, P99 TTFT <= target, gamma <= {gmax:g}; "
        "gain = best / homogeneous)"
    )
    header = f"{'setup':<44}{'topology':>12}{'b_short':>9}{'gamma':>7}{'tok/W':>10}{'homog.':>10}{'gain':>7}"
    print(header + ("   refined: b_short  gamma   tok/W   gain  reason" if args.refine else ""))
    for i in range(flat.sizes["group"]):
        row = flat.isel(group=i)
        label = " / ".join(str(row[d].values) for d in best.best_fleet_tokens_per_watt.dims)
        line = (
            f"{label:<44}{str(row.best_topology.values):>12}{float(row.best_b_short):>9.0f}"
            f"{float(row.best_gamma):>7.2f}{float(row.best_fleet_tokens_per_watt):>10.4g}"
            f"{float(row.homogeneous_fleet_tokens_per_watt):>10.4g}{float(row.gain_over_homogeneous):>7.2f}"
        )
        if args.refine:
            line += (
                f"   {float(row.refined_b_short):>15.0f}{float(row.refined_gamma):>7.2f}"
                f"{float(row.refined_fleet_tokens_per_watt):>8.4g}{float(row.refined_gain_over_homogeneous):>7.2f}"
                f"  {REFINEMENT_STATUS[int(row.refinement_status)]}"
            )
        print(line)
    if args.output:
        write_netcdf(best, args.output)
        print(f"wrote {args.output}")
    return 0


def cmd_reproduce(args) -> int:
    from sweep.reproduce import reproduce

    report = reproduce(args.grids, args.output)
    print(report.read_text())
    print(f"wrote {report.parent}/ (NetCDF per table, figures, REPORT.md)")
    return 0


def _percent(x: float) -> str:
    return f"{100 * x:.1f} %" if x == x else "-"


def _error_table(summary: dict, title: str) -> str:
    lines = [
        f"{title}: median |ln(predicted / measured)|",
        f"{'gpu':<10}{'rows':>6}{'tok/J':>9}{'tok/s':>9}{'power':>9}{'ITL':>9}{'tok/J bias':>12}",
    ]
    for gpu, e in summary.items():
        lines.append(
            f"{gpu:<10}{e['rows']:>6}{_percent(e['tokens_per_joule']):>9}{_percent(e['tokens_per_second']):>9}"
            f"{_percent(e['power_w']):>9}{_percent(e['itl_s']):>9}{e['tokens_per_joule_bias']:>11.3f}x"
        )
    return "\n".join(lines)


def cmd_calibrate(args) -> int:
    from sweep.calibration.fit import check_fit_names
    from sweep.calibration.workflow import calibrate
    from sweep.output import check_writable

    names = check_fit_names(args.fit.split(","))
    check_writable(args.output)
    start = time.perf_counter()
    doc = calibrate(
        args.measurements, args.output, fit_names=names, per=args.per, prompt_tokens=args.prompt_tokens
    )
    elapsed = time.perf_counter() - start
    rows = sum(f["rows"] for f in doc["data"])
    print(f"fitted {', '.join(doc['fitted'])} per {doc['per']} on {rows} rows in {elapsed:.1f} s")
    prompt = doc["prompt_tokens"]
    if prompt["handling"] == "assumed":
        print(
            f"prompt_tokens: blank in the data; assumed {prompt['value']:g} tokens (--prompt-tokens; "
            "docs/calibration.md §4)"
        )
    elif prompt["handling"] == "fitted":
        print(
            f"prompt_tokens: blank in the data; fitted {prompt['value']:.0f} ± {prompt['standard_error']:.0f}"
        )
    for task, t in prompt.get("tasks", {}).items():
        print(f"prompt_tokens of task {task}: fitted {t['value']:.0f} ± {t['standard_error']:.0f}")
    for label, g in doc["groups"].items():
        fitted = ", ".join(f"{n} {g['values'][n]:.4g} ± {g['standard_errors'][n]:.2g}" for n in doc["fitted"])
        print(f"  {label} ({g['rows']} rows): {fitted}")
    print(_error_table(doc["residuals"], "in-sample"))
    print(f"wrote {args.output}")
    return 0


def cmd_predict(args) -> int:
    from sweep.calibration.workflow import predict
    from sweep.output import check_writable

    check_writable(args.output)
    rows, summary = predict(
        args.rows, args.output, calibration=args.calibration, prompt_tokens=args.prompt_tokens
    )
    over = sum(r["exceeds_kv_capacity"] for r in rows)
    model = f"calibration {args.calibration}" if args.calibration else "the uncalibrated physical model"
    print(
        f"predicted {len(rows)} rows with {model}"
        + (f"; {over} exceed the KV capacity (NaN)" if over else "")
    )
    if summary:
        print(_error_table(summary, "against the measured columns"))
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep",
        description="Vectorised, differentiable energy efficiency (tokens per joule) of LLM inference.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_run = sub.add_parser(
        "run",
        help="evaluate a grid file",
        description="Evaluate every point of a grid file "
        "(the Cartesian product of its axes) and print a summary; -o writes NetCDF.",
    )
    p_run.add_argument("grid", help="grid file (TOML)")
    p_run.add_argument(
        "-o",
        "--output",
        help="NetCDF file to write (atomically: temporary file, then rename); "
        "only a regular file is replaced, a symlink is written through to its target; "
        "a name ending in .csv writes a tidy CSV table instead (one row per grid point, one column per "
        "variable, units in the header; CSV only: no Parquet)",
    )
    p_run.add_argument(
        "--elasticities",
        action="store_true",
        help="add elasticity(parameter, ...) = d ln(tokens_per_watt) / d ln(parameter)",
    )
    p_run.add_argument(
        "--uncertainty",
        nargs="?",
        const="monte_carlo",
        choices=("first_order", "monte_carlo"),
        help="add uncertainty outputs: monte_carlo (default: <var>_mean/_std/_quantile over joint draws of "
        "the uncertain parameters) or first_order (a band from the elasticities); prints the ranked drivers",
    )
    p_run.add_argument("--samples", type=int, metavar="N", help="Monte Carlo draws (default 4096)")
    p_run.add_argument("--seed", type=int, metavar="S", help="Monte Carlo seed (default 0)")
    p_run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    big = p_run.add_argument_group(
        "large grids",
        "With -o out.nc or -o out.zarr (and no --uncertainty), blocks are streamed to the file as they are "
        "computed: memory does not grow with the grid. Until the run ends the data go to OUT.partial and the "
        "target is untouched; a killed run is finished with --resume. See docs/scaling.md.",
    )
    big.add_argument(
        "--resume",
        action="store_true",
        help="finish the interrupted streamed run of the same command (its OUT.partial): only the missing "
        "blocks are computed; the data equal an uninterrupted run bit for bit",
    )
    big.add_argument(
        "--compress",
        type=int,
        default=0,
        choices=range(0, 10),
        metavar="LEVEL",
        help="compress a streamed output: 1-9 (zlib for NetCDF, zstd for Zarr), recorded in the file; "
        "default 0 (none)",
    )
    big.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget of an in-memory run, e.g. 8GiB (default: $SWEEP_MAX_MEMORY, else half of RAM); "
        "a run over it stops before computing and asks for -o",
    )
    big.add_argument(
        "--distributed",
        action="store_true",
        help="one process of a jax.distributed job (every process runs the same command with -o out.zarr): "
        "it computes its share of the blocks; on SLURM or Open MPI the job is found from the environment, "
        "else give --coordinator, --num-processes and --process-id",
    )
    big.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0 (--distributed)")
    big.add_argument("--num-processes", type=int, metavar="N", help="processes in the job (--distributed)")
    big.add_argument(
        "--process-id", type=int, metavar="I", help="this process's index, 0..N-1 (--distributed)"
    )
    p_run.add_argument(
        "--best",
        metavar="VARIABLE",
        help="also print, per combination of the other dims, the setting of the --over dims with the largest "
        "VARIABLE (any numeric output), e.g. --best tokens_per_watt --over gpu,tp; points with feasible = 0, "
        "exceeds_model_context = 1 or meets_slo = 0 are skipped (printed even with -q)",
    )
    p_run.add_argument(
        "--over",
        type=_names,
        metavar="DIM[,...]",
        help="dims --best chooses over (default: every dim of VARIABLE: the single best point)",
    )
    p_run.add_argument(
        "--min", action="store_true", help="--best picks the smallest value (cost, time, power)"
    )
    p_run.set_defaults(func=cmd_run_with_answers)
    _add_show_and_plot(sub)

    p_sens = sub.add_parser(
        "sensitivity",
        help="global sensitivity indices (Sobol', Morris, DGSM, one-at-a-time) of a grid's tokens/W",
        description="Sensitivity of the grid's target output (tokens_per_watt or fleet_tokens_per_watt) at "
        "every grid point to its uncertain parameters ([uncertainty.parameters], default every projected "
        "catalog value): sobol (first-order and total indices with bootstrap half-widths), morris (mu*, "
        "sigma), dgsm (derivative-based, from JAX gradients; a bound on the total index) or oat (a ±20 %% "
        "tornado). Designs are SALib's, evaluations our compiled kernel (docs/uncertainty.md).",
    )
    p_sens.add_argument("grid", help="grid file (TOML)")
    p_sens.add_argument("--method", choices=("sobol", "morris", "dgsm", "oat"), default="sobol")
    p_sens.add_argument(
        "--samples", type=int, metavar="N", help="base samples (sobol 1024, morris 64, dgsm 1024)"
    )
    p_sens.add_argument("--seed", type=int, default=0, metavar="S", help="design seed (default 0)")
    p_sens.add_argument("-o", "--output", help="NetCDF file for the indices")
    p_sens.set_defaults(func=cmd_sensitivity)

    p_cmp = sub.add_parser(
        "compare",
        help="the distribution of a ratio between grid points (B200/H100, 4K/64K) under the same draws",
        description="Run the grid with Monte Carlo draws kept and report the ratio of its target output "
        "between two values of one dim, e.g. --dim gpu --numerator B200 --denominator H100, under the same "
        "joint draws (a parameter both sides share is drawn once).",
    )
    p_cmp.add_argument("grid", help="grid file (TOML)")
    p_cmp.add_argument("--dim", required=True, help="the dim to compare along (gpu, context, topology, ...)")
    p_cmp.add_argument("--numerator", required=True)
    p_cmp.add_argument("--denominator", required=True)
    p_cmp.add_argument("--samples", type=int, metavar="N", help="Monte Carlo draws (default 4096)")
    p_cmp.add_argument("--seed", type=int, metavar="S", help="Monte Carlo seed (default 0)")
    p_cmp.add_argument("-o", "--output", help="NetCDF file for the ratio statistics")
    p_cmp.set_defaults(func=cmd_compare)

    p_rep = sub.add_parser(
        "reproduce",
        help="reproduce the paper's tables (the main job of `make run`)",
        description="Evaluate every paper grid in GRIDS, write one NetCDF per table, "
        "the figures and REPORT.md (ours beside the paper's numbers) to OUTPUT.",
    )
    p_rep.add_argument("--grids", default="grids", help="folder with the paper grid files (default: grids)")
    p_rep.add_argument(
        "-o", "--output", default="outputs/paper", help="output folder (default: outputs/paper)"
    )
    p_rep.set_defaults(func=cmd_reproduce)

    p_opt = sub.add_parser(
        "optimize",
        help="best routing split (topology, b_short, gamma) of a fleet grid",
        description="Evaluate a fleet grid and report, per (gpu, model, workload, ...), the topology, b_short "
        "and gamma that maximise fleet tokens per watt subject to the P99 TTFT target, and the gain over a "
        "homogeneous fleet. --refine adds a gradient-refined split over continuous (b_short, gamma), "
        "confirmed with the exact model (see sweep.optimizer).",
    )
    p_opt.add_argument("grid", help="fleet grid file (TOML) with b_short and/or gamma axes")
    p_opt.add_argument("-o", "--output", help="NetCDF file for the optimum per setup")
    p_opt.add_argument(
        "--refine", action="store_true", help="gradient refinement on the continuous relaxation"
    )
    p_opt.add_argument(
        "--max-compression",
        type=float,
        default=2.0,
        metavar="G",
        help="largest prompt compression factor gamma a FleetOpt split may use (default 2, the "
        "paper's); grid points above it are skipped",
    )
    p_opt.set_defaults(func=cmd_optimize)

    from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS, DEFAULT_FIT, MECHANISMS
    from sweep.vocabulary import CALIBRATION_GROUPS

    p_cal = sub.add_parser(
        "calibrate",
        help="fit the decode-step mechanisms to measured runs (CSV) and write a calibration (TOML)",
        description="Fit the chosen mechanisms of the physical model (per GPU, shared across models and "
        "TP) by least squares on ln tokens/s, ln power and ln ITL of measured runs, and write the values, "
        "standard errors, correlations, data hashes and residuals to CAL.toml. The measurement format is "
        "in the README (section 'Measured reality'); the science in docs/calibration.md.",
        epilog="mechanisms (name: meaning [bounds]):\n"
        + "\n".join(f"  {n}: {m.meaning} [{m.lower:g}, {m.upper:g}] {m.unit}" for n, m in MECHANISMS.items())
        + "\n  prompt_tokens: also fit chat's prompt length (every other task's is always fitted, one per task)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_cal.add_argument("measurements", nargs="+", help="measurement CSV file(s)")
    p_cal.add_argument("-o", "--output", required=True, help="calibration TOML to write (atomically)")
    p_cal.add_argument(
        "--fit",
        default=",".join(DEFAULT_FIT),
        metavar="NAMES",
        help=f"comma-separated parameters to fit (default: {','.join(DEFAULT_FIT)}); the others stay at "
        "their documented priors",
    )
    p_cal.add_argument(
        "--per",
        choices=CALIBRATION_GROUPS,
        default="gpu",
        help="one set per GPU (default) or per GPU and model",
    )
    p_cal.add_argument(
        "--prompt-tokens",
        type=float,
        default=ASSUMED_PROMPT_TOKENS,
        metavar="N",
        help=f"assumed mean prompt tokens of chat rows that leave prompt_tokens blank (default {ASSUMED_PROMPT_TOKENS:g}; "
        "--fit …,prompt_tokens fits it instead; other tasks' prompt lengths are fitted, one per task)",
    )
    p_cal.set_defaults(func=cmd_calibrate)

    p_pred = sub.add_parser(
        "predict",
        help="predict tokens/s, power, tokens/J and ITL for each row of a measurement-format CSV",
        description="For each row (measured columns may be absent), predict at the row's concurrency and "
        "sequence length and write the row back with predicted_tokens_per_second, predicted_power_w, "
        "predicted_tokens_per_joule, predicted_itl_s and exceeds_kv_capacity (paged check: the n·L̄ tokens "
        "held must fit). Without --calibration: the uncalibrated physical model.",
    )
    p_pred.add_argument("rows", nargs="+", help="measurement-format CSV file(s)")
    p_pred.add_argument("-o", "--output", required=True, help="CSV file to write (atomically)")
    p_pred.add_argument("--calibration", help="calibration TOML or built-in name (mlenergy-v3)")
    p_pred.add_argument(
        "--prompt-tokens",
        type=float,
        metavar="N",
        help="mean prompt tokens where a row leaves it blank (default: the calibration's assumption, else "
        f"{ASSUMED_PROMPT_TOKENS:g})",
    )
    p_pred.set_defaults(func=cmd_predict)

    p_list = sub.add_parser("list", help="list catalog entries with provenance")
    p_list.add_argument("what", choices=list(LISTS), help="what to list")
    p_list.set_defaults(func=cmd_list)

    p_model = sub.add_parser("model", help="manage the model catalog")
    model_sub = p_model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    p_import = model_sub.add_parser(
        "import",
        help="add a model from a local Hugging Face config.json (no network)",
        description="Read a local config.json and add the architecture to the user model catalog "
        "($SWEEP_HOME/models.toml, default ~/.sweep/models.toml), which every grid reads; or to --catalog FILE, "
        "which a grid names in model_catalogs.",
    )
    p_import.add_argument("config", help="path to config.json")
    p_import.add_argument(
        "--name",
        help="model id to use (default: derived from the config): lower-case "
        "letters, digits, '.', '-' and '_', starting with a letter or digit",
    )
    p_import.add_argument("--catalog", help="catalog TOML file to add to (default: the user catalog)")
    p_import.set_defaults(func=cmd_model_import)
    return parser


def _one_line_warnings(show):
    """`warnings.showwarning` that prints a SweepWarning as `sweep: warning: ...` and others with `show`."""

    def showwarning(message, category, *args, **kwargs):
        if issubclass(category, SweepWarning):
            print(f"sweep: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    return showwarning


def main(argv=None) -> int:
    import signal

    previous = _signals.install()  # first: Ctrl-C/SIGTERM end with one line, exit 130/143, in any phase
    if hasattr(signal, "SIGPIPE"):  # `sweep list profiles | head` must not print a traceback
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        parser = build_parser()
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parser.parse_args(argv)
        args.argv = argv
        _signals.state["target"] = getattr(args, "output", None) if args.command != "reproduce" else None
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return _signals.run_in_worker(lambda: args.func(args))
    except SweepInputError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _signals.restore(previous)


if __name__ == "__main__":
    sys.exit(main())
