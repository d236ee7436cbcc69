"""How close the model is to measured runs (docs/calibration.md §6): median |ln(predicted / measured)|
per GPU, in-sample and leave-one-model-out (fit on the other models, predict this one)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from sweep.calibration.fit import fit
from sweep.calibration.model import neutral_mechanisms, predict, row_inputs
from sweep.calibration.store import from_fit
from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS, MECHANISMS

QUANTITIES = ("tokens_per_joule", "tokens_per_second", "power_w", "itl_s")


def row_mechanisms(calibration, rows) -> dict:
    """Per-row (K,) arrays of every mechanism from a `Calibration`."""
    per_row = [calibration.for_setup(r["gpu"], r["model"])[0] for r in rows]
    return {n: jnp.asarray([v[n] for v in per_row]) for n in MECHANISMS}


def row_prompt_tokens(measurements, prompt: dict | None, default=None) -> np.ndarray:
    """Per-row mean prompt length for rows that leave it blank: the fitted value of the row's task in a
    calibration's `prompt` record (its "tasks" table), else `default` (None: the record's own value, chat's,
    or the documented assumption)."""
    prompt = prompt or {}
    if default is None:
        default = prompt.get("value", ASSUMED_PROMPT_TOKENS)
    tasks = prompt.get("tasks", {})
    return np.array(
        [
            float(tasks[r["task"]]["value"]) if r.get("task") in tasks else float(default)
            for r in measurements.rows
        ]
    )


def predictions(measurements, calibration=None, prompt_tokens=ASSUMED_PROMPT_TOKENS) -> dict:
    """Per-row predictions (NumPy) of the calibrated model, or of the uncalibrated one when None."""
    inputs = row_inputs(measurements)
    if calibration is None:
        pred = predict(inputs, neutral_mechanisms(), prompt_tokens, calibrated=False)
    else:
        pred = predict(inputs, row_mechanisms(calibration, measurements.rows), prompt_tokens)
    return {k: np.asarray(v) for k, v in pred.items()}


def errors(measurements, pred: dict) -> dict:
    """{gpu: {rows, median |ln| of each quantity, tokens/J bias (geometric mean ratio)}}."""
    measured = {
        "tokens_per_second": measurements.column("tokens_per_second"),
        "power_w": measurements.column("power_w"),
        "itl_s": measurements.column("itl_s"),
    }
    measured["tokens_per_joule"] = measured["tokens_per_second"] / measured["power_w"]
    gpus = np.array([r["gpu"] for r in measurements.rows])
    out = {}
    for gpu in dict.fromkeys(gpus):
        sel = gpus == gpu
        compared = sel & np.isfinite(pred["tokens_per_joule"]) & np.isfinite(measured["tokens_per_joule"])
        row = {"rows": int(compared.sum())}  # runs with a prediction and a measurement
        for q in QUANTITIES:
            log_ratio = np.log(pred[q][sel] / measured[q][sel])
            log_ratio = log_ratio[np.isfinite(log_ratio)]
            row[q] = float(np.median(np.abs(log_ratio))) if log_ratio.size else float("nan")
            if q == "tokens_per_joule":
                bias = float(np.exp(np.mean(log_ratio))) if log_ratio.size else float("nan")
                row["tokens_per_joule_bias"] = bias
        out[str(gpu)] = row
    return out


def held_out_predictions(measurements, key: str = "model", **fit_kwargs) -> dict:
    """Per-row predictions, each from the fit that leaves out every row sharing the row's `key` ("model",
    or e.g. "family"): one fit per value, all with the same shapes (one compile)."""
    values = np.array([r[key] for r in measurements.rows])
    prompt = fit_kwargs.get("prompt_tokens", ASSUMED_PROMPT_TOKENS)
    pooled = {}
    for value in dict.fromkeys(values):
        held = values == value
        result = fit(measurements, use=~held, **fit_kwargs)
        prompt_used = row_prompt_tokens(measurements, result.prompt, result.prompt.get("value", prompt))
        for k, v in predictions(measurements, from_fit(result), prompt_used).items():  # all rows: one compile
            pooled.setdefault(k, np.empty_like(v))[held] = v[held]
    return pooled


def leave_one_model_out(measurements, **fit_kwargs) -> dict:
    """{held-out model: {gpu: errors}} and {"pooled": {gpu: errors}} of leave-one-model-out fits."""
    pooled = held_out_predictions(measurements, "model", **fit_kwargs)
    models = np.array([r["model"] for r in measurements.rows])
    out = {}
    for model in dict.fromkeys(models):
        held = models == model
        test = dataclasses.replace(measurements, rows=tuple(r for r, h in zip(measurements.rows, held) if h))
        out[str(model)] = errors(test, {k: v[held] for k, v in pooled.items()})
    out["pooled"] = errors(measurements, pooled)
    return out
