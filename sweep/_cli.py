"""Command-line interface: `sweep run`, `sweep list`.

Bad input exits with status 2 and a one-line message naming the file, key and allowed values.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

from sweep._errors import SweepInputError

EPILOG = """\
examples:
  sweep run grids/table1.toml -o outputs/table1.nc     evaluate a grid, write NetCDF
  sweep run grids/table1.toml --elasticities           add d ln(tok/W) / d ln(theta)
  sweep list profiles                                  calibrated profiles with provenance

Grid files are TOML; see the README section "Grid files" for every key.
"""


def _progress_printer(stream):
    state = {"last": 0.0}

    def progress(done, total, elapsed_s):
        if total == 1 or (elapsed_s < 1.0 and done < total):
            return
        if done < total and elapsed_s - state["last"] < 0.5:
            return
        state["last"] = elapsed_s
        end = "\n" if done == total else ""
        stream.write(f"\r  block {done}/{total} ({100 * done / total:.0f} %), {elapsed_s:.1f} s{end}")
        stream.flush()

    return progress


def summary(ds, elapsed_s: float) -> str:
    """A short text summary: size, speed and tokens/W over context per (gpu, model)."""
    points = int(np.prod([ds.sizes[d] for d in ds.tokens_per_watt.dims]))
    lines = [
        f"{points:,} points in {elapsed_s:.2f} s ({points / max(elapsed_s, 1e-9):,.0f} points/s); "
        f"convention {ds.attrs.get('convention')}; dims "
        + ", ".join(f"{d}={n}" for d, n in ds.sizes.items())
    ]
    tpw = ds.tokens_per_watt
    extra = {d: 0 for d in tpw.dims if d not in ("gpu", "model", "context")}
    sel = tpw.isel(extra)
    label = ", ".join(f"{d}={ds[d].values[0]}" for d in extra if d in ds.coords)
    contexts = ds.context.values[:10]
    header = f"{'tokens/W (' + label + ')':<34}" + "".join(f"{c:>9d}" for c in contexts)
    lines.append(header)
    rows = [(g, m) for g in ds.gpu.values for m in ds.model.values]
    for g, m in rows[:12]:
        vals = sel.sel(gpu=g, model=m).values[: len(contexts)]
        lines.append(f"{g + ' / ' + m:<34}" + "".join(f"{v:>9.4g}" for v in vals))
    if len(rows) > 12:
        lines.append(f"... {len(rows) - 12} more (gpu, model) rows")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from sweep._api import run

    command = "sweep " + " ".join(shlex.quote(a) for a in args.argv)
    start = time.perf_counter()
    ds = run(
        args.grid,
        out=args.output,
        elasticities=True if args.elasticities else None,
        progress=None if args.quiet else _progress_printer(sys.stderr),
        command=command,
    )
    elapsed = time.perf_counter() - start
    if not args.quiet:
        print(summary(ds, elapsed))
        if args.output:
            print(f"wrote {args.output}")
    return 0


def cmd_list(args) -> int:
    from sweep._calibrated import load_catalog

    if args.what == "profiles":
        for (gpu, model), prof in load_catalog().items():
            print(f"{gpu} / {model}  (tp {prof.values['tp']})")
            for key, value in prof.values.items():
                p = prof.provenance.get(key)
                unc = f" ±{p.uncertainty:.0%}" if p and p.uncertainty else ""
                where = f"  [{p.quality}{unc}] {p.source}" if p else ""
                print(f"    {key:<22} {value!r:<22}{where}")
            print()
    return 0


def cmd_reproduce(args) -> int:
    from sweep._reproduce import reproduce

    report = reproduce(args.grids, args.output)
    print(report.read_text())
    print(f"wrote {report.parent}/ (NetCDF per table, figures, REPORT.md)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep",
        description="Vectorised, differentiable energy efficiency (tokens per joule) of LLM inference.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_run = sub.add_parser("run", help="evaluate a grid file", description="Evaluate every point of a grid file "
                           "(the Cartesian product of its axes) and print a summary; -o writes NetCDF.")
    p_run.add_argument("grid", help="grid file (TOML)")
    p_run.add_argument("-o", "--output", help="NetCDF file to write (atomically: temporary file, then rename)")
    p_run.add_argument("--elasticities", action="store_true",
                       help="add elasticity(parameter, ...) = d ln(tokens_per_watt) / d ln(parameter)")
    p_run.add_argument("-q", "--quiet", action="store_true", help="no progress line or summary")
    p_run.set_defaults(func=cmd_run)

    p_rep = sub.add_parser("reproduce", help="reproduce the paper's tables (the main job of `make run`)",
                           description="Evaluate every paper grid in GRIDS, write one NetCDF per table, "
                           "the figures and REPORT.md (ours beside the paper's numbers) to OUTPUT.")
    p_rep.add_argument("--grids", default="grids", help="folder with the paper grid files (default: grids)")
    p_rep.add_argument("-o", "--output", default="outputs/paper", help="output folder (default: outputs/paper)")
    p_rep.set_defaults(func=cmd_reproduce)

    p_list = sub.add_parser("list", help="list catalog entries with provenance")
    p_list.add_argument("what", choices=["profiles"], help="what to list")
    p_list.set_defaults(func=cmd_list)
    return parser


def main(argv=None) -> int:
    import signal

    if hasattr(signal, "SIGPIPE"):  # `sweep list profiles | head` must not print a traceback
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except SweepInputError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
