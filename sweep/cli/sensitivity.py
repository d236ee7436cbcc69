"""`sweep sensitivity`: Sobol', Morris, DGSM and one-at-a-time indices of a grid's target."""

from __future__ import annotations

import time

from sweep.cli.shared import first_point


def cmd_sensitivity(args) -> int:
    from sweep.api import sensitivity
    from sweep.io.output import check_writable
    from sweep.uncertainty.indices import rank

    if args.output:
        check_writable(args.output)
    start = time.perf_counter()
    ds = sensitivity(
        args.grid,
        method=args.method,
        samples=args.samples,
        seed=args.seed,
        out=args.output,
        max_memory=args.max_memory,
    )
    elapsed = time.perf_counter() - start
    key = {"sobol": "ST", "morris": "mu_star", "dgsm": "ST_bound", "oat": "swing"}[args.method]
    print(
        f"{args.method} indices of {ds.attrs['sensitivity_target']} for {ds.sizes['parameter']} parameters, "
        f"{ds.attrs['evaluations']:,} evaluations in {elapsed:.1f} s"
    )
    where = first_point(ds[key].max("parameter", skipna=True))
    if where is None:
        infeasible = "feasible_fraction" in ds and bool((ds["feasible_fraction"] < 1).all())
        print(
            "no grid point has finite indices ("
            + (
                "every point has draws where no sequence fits: see feasible_fraction"
                if infeasible
                else "no uncertain parameter moves the output"
            )
            + ")"
        )
    else:
        first = ds[key].sel(where)
        label = ", ".join(f"{d}={v}" for d, v in where.items())
        print(f"ranked by {key} at {label}:")
        for name in rank(first.values, list(ds["parameter"].values), top=ds.sizes["parameter"]):
            print(f"  {name:<48} {float(first.sel(parameter=name)):10.4g}")
    if args.output:
        print(f"wrote {args.output}")
    return 0


def add_parser(sub) -> None:
    """Add the `sensitivity` subcommand to the subparsers `sub`."""
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
        "--samples",
        type=int,
        metavar="N",
        help="base samples, an integer >= 2 (default sobol 1024, morris 64, dgsm 1024); sobol rounds N up to "
        "a power of 2",
    )
    p_sens.add_argument(
        "--seed", type=int, default=0, metavar="S", help="design seed, 0 <= S < 2^63 (default 0)"
    )
    p_sens.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget of the design and its outputs, e.g. 8GiB (default: $SWEEP_MAX_MEMORY, else half "
        "of RAM); a design over it stops before computing",
    )
    p_sens.add_argument("-o", "--output", help="NetCDF file for the indices")
    p_sens.set_defaults(func=cmd_sensitivity)
