"""`sweep optimize`: the best routing split (topology, b_short, gamma) per setup of a fleet grid."""

from __future__ import annotations

import shlex

from sweep.errors import SweepInputError


def cmd_optimize(args) -> int:
    from sweep.api import as_spec, run
    from sweep.io.output import check_writable, write_netcdf
    from sweep.optimizer import check_max_compression, optimize, refine
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


def add_parser(sub) -> None:
    """Add the `optimize` subcommand to the subparsers `sub`."""
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
