"""`sweep calibrate` and `sweep predict` as functions (docs/calibration.md §5–§6): read measurement
files, fit or apply a calibration, write the calibration TOML or the predictions CSV atomically."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from pathlib import Path

import numpy as np

from sweep.calibration.fit import check_prompt_tokens, emit_warnings, fit
from sweep.calibration.measurements import PREDICTED, PREDICTED_COLUMNS, read_measurements
from sweep.calibration.store import calibration_table, from_fit, load_calibration, write_calibration
from sweep.calibration.validation import errors, predictions, row_prompt_tokens
from sweep.io.files import write_atomic
from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS, DEFAULT_FIT


def calibrate(
    measurements, out=None, *, fit_names=DEFAULT_FIT, per="gpu", prompt_tokens=ASSUMED_PROMPT_TOKENS
) -> dict:
    """Fit the decode-step mechanisms to measurement files; write the calibration to `out` (TOML).

    Returns the calibration document (the TOML's content). Identifiability problems are emitted
    as `SweepWarning`s and recorded in the document. Refused with a one-line `SweepInputError`: a bad
    or physically impossible measurement (`sweep.calibration.measurements`), a `prompt_tokens` that is
    not a finite number in [0, 32768]. Rows that repeat an earlier row exactly warn and count once (in
    the fit and in the residuals).

    >>> doc = sweep.calibrate("sweep/data/measurements/mlenergy-v3-chat.csv")  # doctest: +SKIP
    """
    data = read_measurements(measurements)
    result = fit(data, names=fit_names, per=per, prompt_tokens=prompt_tokens)
    emit_warnings(result)
    prompt = row_prompt_tokens(data, result.prompt)
    distinct = data.distinct()
    if not distinct.all():  # the residual table counts each distinct run once, as the fit does
        data = dataclasses.replace(data, rows=tuple(r for r, d in zip(data.rows, distinct) if d))
        prompt = prompt[distinct]
    residuals = errors(data, predictions(data, from_fit(result), prompt))
    table = calibration_table(result, data, residuals)
    if out is not None:
        write_calibration(table, out)
    return table


def prompt_assumption(calibration, prompt_tokens) -> float:
    """The mean prompt length for rows that leave it blank: given, else the calibration's, else the default."""
    if prompt_tokens is not None:
        return float(prompt_tokens)
    if calibration is not None and "value" in calibration.prompt:
        return float(calibration.prompt["value"])
    return ASSUMED_PROMPT_TOKENS


def predict(rows, out=None, *, calibration=None, prompt_tokens=None):
    """Predict each row of measurement-format files (measured columns optional) and write them back.

    Adds `predicted_tokens_per_second`, `predicted_power_w`, `predicted_tokens_per_joule`,
    `predicted_itl_s` and `exceeds_kv_capacity` (1 where n·L̄ > the KV tokens; predictions NaN). An input
    that already has these columns (an earlier prediction) has them replaced, not repeated: the output
    keeps the other columns in their order and appends the new predictions.
    `calibration`: a calibration file or built-in name; None = the uncalibrated physical model.
    `prompt_tokens`: None, or a finite number >= 0 (else a one-line `SweepInputError`).
    Returns (the rows with predictions as a list of dicts, {gpu: errors} where measured values exist).

    >>> from importlib.resources import files
    >>> runs = files("sweep") / "data" / "measurements" / "mlenergy-v3-chat.csv"
    >>> rows, errors = sweep.predict(runs, calibration="mlenergy-v3")
    >>> round(errors["H100"]["tokens_per_joule"], 2)  # median |ln(predicted / measured)|
    0.06
    """
    if prompt_tokens is not None:
        prompt_tokens = check_prompt_tokens(prompt_tokens, _paths(rows))
    data = read_measurements(rows, measured=False)
    cal = load_calibration(calibration) if calibration is not None else None
    prompt = prompt_assumption(cal, prompt_tokens)
    if prompt_tokens is None and cal is not None:  # the calibration's per-task prompt lengths
        prompt = row_prompt_tokens(data, cal.prompt, prompt)
    pred = predictions(data, cal, prompt)
    fits = pred["fits"].astype(bool)
    columns = [*(c for c in data.columns if c not in PREDICTED_COLUMNS), *PREDICTED_COLUMNS]
    out_rows = []
    for i, row in enumerate(data.rows):
        kept = {k: v for k, v in row["raw"].items() if k not in PREDICTED_COLUMNS}  # an earlier prediction's
        values = {f"predicted_{q}": float(pred[q][i]) if fits[i] else math.nan for q in PREDICTED}
        out_rows.append({**kept, **values, "exceeds_kv_capacity": int(not fits[i])})
    if out is not None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        for r in out_rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        write_atomic(out, lambda tmp: Path(tmp).write_text(text.getvalue(), encoding="utf-8"))
    measured = np.isfinite(data.column("tokens_per_second")) & np.isfinite(data.column("power_w"))
    summary = errors(data, {k: np.where(fits, v, np.nan) for k, v in pred.items()}) if measured.any() else {}
    return out_rows, summary


def _paths(paths) -> str:
    """The file name(s) given, for a one-line error about an argument of the call that reads them."""
    if isinstance(paths, (str, os.PathLike)):
        return os.fspath(paths)
    return ", ".join(os.fspath(p) for p in paths)
