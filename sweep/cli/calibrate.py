"""`sweep calibrate`: fit the decode-step mechanisms to measured runs and write CAL.toml."""

from __future__ import annotations

import argparse
import time

from sweep.cli.shared import error_table


def cmd_calibrate(args) -> int:
    from sweep.calibration.fit import check_fit_names
    from sweep.calibration.workflow import calibrate
    from sweep.io.output import check_writable

    names = check_fit_names(args.fit.split(","))
    check_writable(args.output)
    start = time.perf_counter()
    doc = calibrate(
        args.measurements, args.output, fit_names=names, per=args.per, prompt_tokens=args.prompt_tokens
    )
    elapsed = time.perf_counter() - start
    print(f"{_fitted_line(doc)} in {elapsed:.1f} s")
    prompt = doc["prompt_tokens"]
    if prompt["handling"] == "assumed":
        print(
            f"prompt_tokens: blank in the data; assumed {prompt['value']:g} tokens (--prompt-tokens; "
            "docs/calibration.md §4)"
        )
    elif prompt["handling"] == "fitted":
        print(
            f"prompt_tokens: blank in the data; fitted {prompt['value']:.0f} ± {prompt['standard_error']:.0f}"
        )
    for task, t in prompt.get("tasks", {}).items():
        print(f"prompt_tokens of task {task}: fitted {t['value']:.0f} ± {t['standard_error']:.0f}")
    for label, g in doc["groups"].items():
        fitted = ", ".join(f"{n} {g['values'][n]:.4g} ± {g['standard_errors'][n]:.2g}" for n in doc["fitted"])
        print(f"  {label} ({g['rows']} rows): {fitted or 'every mechanism at its prior'}")
    print(error_table(doc["residuals"], "in-sample"))
    print(f"wrote {args.output}")
    return 0


def _fitted_line(doc: dict) -> str:
    """What the fit fitted, on how many rows: the mechanisms per group or, when none was named, the prompt
    lengths (they are shared; the lines below give each prompt length either way)."""
    prompt = doc["prompt_tokens"]
    prompts = ["prompt_tokens"] if prompt["handling"] == "fitted" else []
    prompts += [f"prompt_tokens of task {task}" for task in prompt.get("tasks", {})]
    if doc["fitted"]:
        what, note = f"{', '.join(doc['fitted'])} per {doc['per']}", ""
    elif prompts:
        what, note = ", ".join(prompts), " (no mechanism named: each at its prior)"
    else:
        what = "nothing"
        note = " (no mechanism named, and every row gives its prompt length: each mechanism at its prior)"
    distinct = sum(g["rows"] for g in doc["groups"].values())
    read = sum(f["rows"] for f in doc["data"])
    rows = f"{distinct} rows" if distinct == read else f"{distinct} distinct rows of {read}"
    return f"fitted {what} on {rows}{note}"


def add_parser(sub) -> None:
    """Add the `calibrate` subcommand to the subparsers `sub`."""
    from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS, DEFAULT_FIT, MECHANISMS
    from sweep.vocabulary import CALIBRATION_GROUPS

    p_cal = sub.add_parser(
        "calibrate",
        help="fit the decode-step mechanisms to measured runs (CSV) and write a calibration (TOML)",
        description="Fit the chosen mechanisms of the physical model (per GPU, shared across models and "
        "TP) by least squares on ln tokens/s, ln power and ln ITL of measured runs, and write the values, "
        "standard errors, correlations, data hashes and residuals to CAL.toml. The measurement format is "
        "in docs/calibration.md §7, the science in the rest of it.",
        epilog="mechanisms (name: meaning [bounds]):\n"
        + "\n".join(f"  {n}: {m.meaning} [{m.lower:g}, {m.upper:g}] {m.unit}" for n, m in MECHANISMS.items())
        + "\n  prompt_tokens: also fit chat's prompt length (every other task's is always fitted, one per task)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_cal.add_argument("measurements", nargs="+", help="measurement CSV file(s)")
    p_cal.add_argument("-o", "--output", required=True, help="calibration TOML to write (atomically)")
    p_cal.add_argument(
        "--fit",
        default=",".join(DEFAULT_FIT),
        metavar="NAMES",
        help=f"comma-separated parameters to fit (default: {','.join(DEFAULT_FIT)}); the others stay at "
        "their documented priors",
    )
    p_cal.add_argument(
        "--per",
        choices=CALIBRATION_GROUPS,
        default="gpu",
        help="one set per GPU (default) or per GPU and model",
    )
    p_cal.add_argument(
        "--prompt-tokens",
        type=float,
        default=ASSUMED_PROMPT_TOKENS,
        metavar="N",
        help=f"assumed mean prompt tokens of chat rows that leave prompt_tokens blank (default {ASSUMED_PROMPT_TOKENS:g}; "
        "--fit …,prompt_tokens fits it instead; other tasks' prompt lengths are fitted, one per task)",
    )
    p_cal.set_defaults(func=cmd_calibrate)
