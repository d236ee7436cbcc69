"""`sweep run`: evaluate a grid file, print a summary, --best answers, the uncertainty drivers."""

from __future__ import annotations

import shlex
import time
import warnings

from sweep.cli.shared import best_answer, check_best_options, comma_list, first_point
from sweep.errors import SweepWarning


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
    from sweep.io.tabular import label as coordinate_label  # batch 0 is "max"

    label = ", ".join(f"{d}={coordinate_label(d, ds[d].values[0])}" for d in others)
    labels = [_column_label(c) for c in ds[column].values[:10]]
    name = "fleet tokens/W" if fleet else "tokens/W"
    rows = sel.stack(row=row_dims).transpose("row", column)
    shown = [rows.isel(row=i) for i in range(min(rows.sizes["row"], 12))]
    titles = [" / ".join(str(r[d].values) for d in row_dims) for r in shown]
    cells = [[f"{v:.4g}" for v in r.values[: len(labels)]] for r in shown]
    # every column as wide as its label or its widest value, plus two spaces: nothing runs together
    widths = [max([len(c)] + [len(row[j]) for row in cells]) + 2 for j, c in enumerate(labels)]
    head = name + (" (" + label + ")" if label else "")
    first = max([44, len(head) + 2] + [len(t) + 2 for t in titles])
    lines.append(f"{head:<{first}}" + "".join(f"{c:>{w}}" for c, w in zip(labels, widths)))
    for title, row in zip(titles, cells):
        lines.append(f"{title:<{first}}" + "".join(f"{v:>{w}}" for v, w in zip(row, widths)))
    if rows.sizes["row"] > 12:
        lines.append(f"... {rows.sizes['row'] - 12} more rows")
    return "\n".join(lines)


def _column_label(value) -> str:
    """A summary column's label: a whole number of 10^7 or more as 1e9, 9e15 where that is exact (else in
    full), anything else as given."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    number = float(value)
    if abs(number) >= 1e7 and number.is_integer():
        mantissa, _, exponent = f"{number:.6g}".partition("e")
        if exponent and float(f"{mantissa}e{int(exponent)}") == number:
            return f"{mantissa}e{int(exponent)}"
    return str(value)


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
    run_answers(args, ds)  # --best (sweep.io.tabular)
    return 0


def drivers_table(grid, ds, args) -> str:
    """The uncertain parameters ranked by their share of the target's variance at the summary slice."""
    import numpy as np

    from sweep.api import run
    from sweep.uncertainty.compare import drivers
    from sweep.vocabulary import BATCH_MAX

    target = "fleet_tokens_per_watt" if "fleet_tokens_per_watt" in ds else "tokens_per_watt"
    spread = ds[f"{target}_rel_uncertainty" if f"{target}_rel_uncertainty" in ds else f"{target}_std"]
    first = first_point(spread.where(spread > 0))
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


def cmd_run_with_answers(args) -> int:
    """`sweep run`: check --best and --over before evaluating, then `cmd_run` (which prints the answer)."""
    from sweep.io.tabular import check_best_names

    check_best_options(args, args.grid)
    if args.best:
        from sweep.api import as_spec

        check_best_names(as_spec(args.grid), args.best, args.over)
    return cmd_run(args)


def run_answers(args, ds) -> None:
    """The end of `sweep run`: --best prints the best settings."""
    if getattr(args, "best", None):
        print(best_answer(ds, args, (), str(args.grid)))


def add_parser(sub) -> None:
    """Add the `run` subcommand to the subparsers `sub`."""
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
    add_large_grid_options(p_run)
    p_run.add_argument(
        "--best",
        metavar="VARIABLE",
        help="also print, per combination of the other dims, the setting of the --over dims with the largest "
        "VARIABLE (any numeric output), e.g. --best tokens_per_watt --over gpu,tp; points with feasible = 0, "
        "exceeds_model_context = 1 or meets_slo = 0 are skipped (printed even with -q)",
    )
    p_run.add_argument(
        "--over",
        type=comma_list,
        metavar="DIM[,...]",
        help="dims --best chooses over (default: every dim of VARIABLE: the single best point)",
    )
    p_run.add_argument(
        "--min", action="store_true", help="--best picks the smallest value (cost, time, power)"
    )
    p_run.set_defaults(func=cmd_run_with_answers)


def add_large_grid_options(p_run) -> None:
    """`sweep run`'s options for large grids: streaming, --resume, compression, memory, distributed."""
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
