"""`sweep predict`: predicted tokens/s, power, tokens/J and ITL per row of a measurement CSV."""

from __future__ import annotations

from sweep.cli.shared import error_table


def cmd_predict(args) -> int:
    from sweep.calibration.workflow import predict
    from sweep.io.output import check_writable

    check_writable(args.output)
    rows, summary = predict(
        args.rows, args.output, calibration=args.calibration, prompt_tokens=args.prompt_tokens
    )
    over = sum(r["exceeds_kv_capacity"] for r in rows)
    model = f"calibration {args.calibration}" if args.calibration else "the uncalibrated physical model"
    print(
        f"predicted {len(rows)} rows with {model}"
        + (f"; {over} exceed the KV capacity (NaN)" if over else "")
    )
    if summary:
        print(error_table(summary, "against the measured columns"))
    print(f"wrote {args.output}")
    return 0


def add_parser(sub) -> None:
    """Add the `predict` subcommand to the subparsers `sub`."""
    from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS

    p_pred = sub.add_parser(
        "predict",
        help="predict tokens/s, power, tokens/J and ITL for each row of a measurement-format CSV",
        description="For each row (measured columns may be absent), predict at the row's concurrency and "
        "sequence length and write the row back with predicted_tokens_per_second, predicted_power_w, "
        "predicted_tokens_per_joule, predicted_itl_s and exceeds_kv_capacity (paged check: the n·L̄ tokens "
        "held must fit); an input that already has these columns (an earlier prediction) has them replaced. "
        "Without --calibration: the uncalibrated physical model.",
    )
    p_pred.add_argument("rows", nargs="+", help="measurement-format CSV file(s)")
    p_pred.add_argument("-o", "--output", required=True, help="CSV file to write (atomically)")
    p_pred.add_argument("--calibration", help="calibration TOML or built-in name (mlenergy-v3)")
    p_pred.add_argument(
        "--prompt-tokens",
        type=float,
        metavar="N",
        help="mean prompt tokens where a row leaves it blank (default: the calibration's assumption, else "
        f"{ASSUMED_PROMPT_TOKENS:g})",
    )
    p_pred.set_defaults(func=cmd_predict)
