"""Command-line interface: `sweep run`, `sweep list`, `sweep calibrate`, `sweep predict`, ….

One module per subcommand, each with `add_parser(sub)` and its `cmd_*` function; `shared` holds
the helpers they share. Bad input exits with status 2 and a one-line message naming the file, key
and allowed values.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from sweep.errors import SweepInputError, SweepWarning
from sweep.io import signals as _signals
from sweep.io.progress import pause

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

Grid files are TOML; docs/grids.md lists every key.
"""

SUBCOMMANDS = (
    "run",
    "show",
    "plot",
    "sensitivity",
    "compare",
    "reproduce",
    "optimize",
    "calibrate",
    "predict",
    "lists",
    "model",
)


def build_parser() -> argparse.ArgumentParser:
    """The `sweep` parser: one subparser per module of SUBCOMMANDS, in that order."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="sweep",
        description="Vectorised, differentiable energy efficiency (tokens per joule) of LLM inference.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"sweep.cli.{name}").add_parser(sub)
    return parser


def _one_line_warnings(show):
    """`warnings.showwarning` that prints a SweepWarning as `sweep: warning: ...` and others with `show`."""

    def showwarning(message, category, *args, **kwargs):
        if issubclass(category, SweepWarning):
            print(f"sweep: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    return showwarning


def run_command(args) -> int:
    """`args.func(args)` after the check every command shares (`shared.check_output_name`): its output is
    none of its inputs and names what it writes; with `-o -` (a text output) the content goes to standard
    output and every other line the command prints to stderr."""
    from sweep.cli.shared import check_output_name
    from sweep.io.files import content_to_stdout, is_stdout

    if is_stdout(check_output_name(args)):
        with content_to_stdout():
            return args.func(args)
    return args.func(args)


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
        _signals.set_target(getattr(args, "output", None) if args.command != "reproduce" else None)
        pause("parse")  # test hook (sweep.io.progress.pause): inert unless SWEEP_TEST_PAUSE is set
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return _signals.run_in_worker(lambda: run_command(args))
    except SweepInputError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _signals.restore(previous)
