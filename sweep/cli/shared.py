"""Helpers shared by the subcommands: list options, the first finite point, error tables."""

from __future__ import annotations

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
        return f"wrote {output} ({rows:,} rows: {picked.attrs['best']})"
    convention = f"; {ds.attrs['convention']} convention" if "convention" in ds.attrs else ""
    title = picked.attrs["best"] + (f"; one row per {', '.join(rest)}" if rest else "") + convention
    return title + "\n" + format_table(picked, columns, row_dims=rest, coords=over, limit=limit)
