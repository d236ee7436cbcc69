"""`sweep show`: dims, units and a table of any slice of a saved result; CSV export."""

from __future__ import annotations

import argparse

from sweep.cli.shared import best_answer, check_best_options, comma_list
from sweep.errors import SweepInputError

SHOW_EPILOG = """\
examples:
  sweep show out.nc                                    dims, coordinates, variables with units, then rows
  sweep show out.nc --sel gpu=B200,context=8192        one slice (batch=max selects batch "max", stored as 0)
  sweep show out.nc --sel context=4096..32768 --vars 'tokens_per_watt*'
  sweep show out.nc --best tokens_per_watt --over gpu,tp      best GPU and TP per model, context, batch
  sweep show fleet.nc --best cost_per_mtok --min --over topology,b_short,gamma --vars instances
  sweep show out.nc --sel gpu=H100 -o h100.csv         the slice as a tidy CSV table
  sweep show out.nc --attrs                            every global attribute in full
  sweep show out.nc --vars 'tokens_per_watt*' -o - > t.csv     the CSV on standard output
"""


def cmd_show(args) -> int:
    """`sweep show`; the output name was checked by `sweep.cli.run_command` (`shared.WRITES`)."""
    from sweep.io import tabular
    from sweep.io.memory import memory_budget
    from sweep.io.output import check_writable
    from sweep.io.stream import open_result

    where = args.result
    check_best_options(args, where)
    if args.limit is not None and args.limit < 1:
        raise SweepInputError(f"{where}: --limit: got {args.limit}; allowed: an integer >= 1 (or --all)")
    if args.attrs and (args.sel or args.vars or args.best):
        raise SweepInputError(
            f"{where}: --attrs: it shows the global attributes, so it takes no --sel, --vars or --best; "
            "allowed: --attrs alone (with -o FILE.csv: attribute, value rows)"
        )
    budget = memory_budget(args.max_memory)
    if args.output is not None:
        check_writable(args.output)
    ds = open_result(where)
    if args.attrs:
        if args.output:
            count = tabular.write_attributes(ds, args.output)
            print(f"wrote {_name(args.output)} ({count} attributes: attribute, value)")
        else:
            print(tabular.attributes(ds))
        return 0
    sliced = tabular.select(ds, args.sel, where)
    names = tabular.check_variables(sliced, args.vars, where) if args.vars else None
    limit = None if args.all else (args.limit or tabular.DEFAULT_LIMIT)
    if args.best:
        print(best_answer(sliced, args, names or [], where, limit=limit, output=args.output))
        return 0
    if args.output:
        tabular.check_table_size(sliced, names, where, budget)
        rows = tabular.write_csv(sliced, args.output, names)
        print(f"wrote {_name(args.output)} ({rows:,} rows, one per grid point)")
        return 0
    if not (args.sel or args.vars):
        print(tabular.header(ds, where))
        print()
    shown = names or tabular.default_variables(sliced, screen=True)
    if limit is None:
        tabular.check_table_size(sliced, shown, where, budget)
    print(tabular.format_table(sliced, shown, limit=limit))
    return 0


def _name(output) -> str:
    return "standard output" if output == "-" else output


def add_parser(sub) -> None:
    """Add the `show` subcommand to the subparsers `sub`."""
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
        type=comma_list,
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
        type=comma_list,
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
        "-o",
        "--output",
        metavar="FILE.csv",
        help="write the table (every row) as CSV, atomically; - writes it to standard output (the other "
        "lines go to stderr); with --attrs: one row per attribute (attribute, value)",
    )
    p_show.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget of a whole table (-o, --all), e.g. 8GiB (default: $SWEEP_MAX_MEMORY, else half of "
        "RAM); a larger table stops before the first row",
    )
    p_show.set_defaults(func=cmd_show)
