"""`sweep plot`: a figure of one variable against one dim of a saved result."""

from __future__ import annotations

import argparse

PLOT_EPILOG = """\
examples:
  sweep plot out.nc --x context --hue gpu -o fig.png             tokens/W (the default --y) over context
  sweep plot out.nc --x context --y gpu_power --hue gpu --col model --sel batch=max -o power.pdf
  sweep plot fleet.nc --x b_short --hue topology --col workload --sel gpu=B200,gamma=2 -o split.png
"""


def cmd_plot(args) -> int:
    from sweep.io import tabular
    from sweep.io.plotting import plot
    from sweep.io.stream import open_result

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


def add_parser(sub) -> None:
    """Add the `plot` subcommand to the subparsers `sub`."""
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
