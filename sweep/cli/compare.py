"""`sweep compare`: the distribution of a ratio between grid points under the same draws."""

from __future__ import annotations


def cmd_compare(args) -> int:
    from sweep.api import run
    from sweep.io.output import check_writable, write_netcdf
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


def add_parser(sub) -> None:
    """Add the `compare` subcommand to the subparsers `sub`."""
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
