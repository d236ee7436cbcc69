"""`sweep reproduce`: the paper's tables, figures and REPORT.md (the main job of `make run`)."""

from __future__ import annotations


def cmd_reproduce(args) -> int:
    from sweep.reproduce import reproduce

    report = reproduce(args.grids, args.output)
    print(report.read_text())
    print(f"wrote {report.parent}/ (NetCDF per table, figures, REPORT.md)")
    return 0


def add_parser(sub) -> None:
    """Add the `reproduce` subcommand to the subparsers `sub`."""
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
