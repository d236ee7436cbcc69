"""Calibration files (`CAL.toml`, docs/calibration.md §5): written by `sweep calibrate`, read by grids
(`calibration = "CAL.toml"` or a built-in name such as "mlenergy-v3") and by `sweep predict`.

A file records, per group (a GPU, or a GPU and model), every mechanism value (fitted and fixed)
and the fitted standard errors; the correlation matrix of the free parameters; how the unknown
prompt length was handled (per task: `prompt_tokens.tasks`); the data it was fitted on (file, SHA-256, rows); and the residuals.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w

from sweep import validate as V
from sweep.errors import InvalidValueError, SweepInputError
from sweep.io.files import read_text, write_atomic
from sweep.physics.mechanisms import MECHANISMS
from sweep.version import __version__
from sweep.vocabulary import CALIBRATION_GROUPS, TASKS

FORMAT = 1
BUILTIN_DIR = Path(__file__).parent.parent / "data" / "calibrations"
BUILTIN = {"mlenergy-v3": BUILTIN_DIR / "mlenergy-v3.toml"}
"""Calibrations shipped with sweep: name -> file (fitted on the shipped measurements)."""


@dataclass(frozen=True)
class Calibration:
    """A calibration as grids and `sweep predict` use it."""

    name: str  # the built-in name or the path given
    per: str
    fitted: tuple
    groups: dict  # label -> {"values": {mechanism: v}, "standard_errors": {mechanism: se}}
    prompt: dict

    def for_setup(self, gpu: str, model: str) -> tuple[dict, dict, str]:
        """(values, standard errors, quality) of the mechanisms for a (GPU, model) setup.

        The setup's own group if the calibration has it ("calibrated"); otherwise the mean over the
        groups of the same GPU, or over all groups for a GPU it never saw, with a standard error
        that adds their spread ("projected").
        """
        if self.per == "gpu" and gpu in self.groups:
            g = self.groups[gpu]
            return dict(g["values"]), dict(g["standard_errors"]), "calibrated"
        key = f"{gpu}/{model}"
        if key in self.groups:
            g = self.groups[key]
            return dict(g["values"]), dict(g["standard_errors"]), "calibrated"
        same_gpu = [g for label, g in self.groups.items() if label.split("/")[0] == gpu]
        pool = same_gpu or list(self.groups.values())
        values, errors = {}, {}
        for n in MECHANISMS:
            v = np.array([g["values"][n] for g in pool])
            values[n] = float(v.mean())
            if n in self.fitted:
                se = np.array([g["standard_errors"].get(n, 0.0) for g in pool])
                errors[n] = float(np.sqrt(np.mean(se**2) + v.var()))
        return values, errors, "projected"


def from_fit(fit, name: str = "(this fit)") -> Calibration:
    """The `Calibration` of a `sweep.calibration.fit.Fit`, without writing it."""
    groups = {g: {"values": fit.values[g], "standard_errors": fit.standard_errors[g]} for g in fit.groups}
    return Calibration(
        name=name, per=fit.per, fitted=tuple(fit.fitted), groups=groups, prompt=dict(fit.prompt)
    )


def calibration_table(fit, measurements, residuals: dict) -> dict:
    """The TOML document of a fit (see the module docstring)."""
    return {
        "format": FORMAT,
        "sweep_version": __version__,
        "per": fit.per,
        "fitted": list(fit.fitted),
        "solver": "scipy.optimize.least_squares (trust-region reflective, bounds) with the JAX Jacobian; "
        "standard errors from s^2 (J^T J)^-1, s^2 = RSS / (m - k)",
        "residuals_fitted": "ln tokens/s, ln power and ln ITL (where given), weight 1 each",
        "prompt_tokens": fit.prompt,
        "data": [dict(f) for f in measurements.files],
        "fit": {"cost": fit.cost, "evaluations": fit.evaluations, "warnings": list(fit.warnings)},
        "residuals_statistic": "per GPU, in-sample: median |ln(predicted / measured)|; tokens_per_joule_bias: "
        "geometric mean of predicted / measured",
        "residuals": residuals,
        "groups": {
            g: {"rows": fit.rows[g], "values": fit.values[g], "standard_errors": fit.standard_errors[g]}
            for g in fit.groups
        },
        "correlation": {
            "parameters": list(fit.parameters),
            "matrix": [[round(float(x), 6) for x in row] for row in fit.correlation],
        },
    }


def write_calibration(table: dict, path) -> None:
    """Write a calibration TOML atomically."""
    text = "# sweep calibration (docs/calibration.md); written by `sweep calibrate`\n" + tomli_w.dumps(table)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def load_calibration(name_or_path) -> Calibration:
    """A built-in calibration by name, or a calibration file; every value checked against its bounds."""
    name = str(name_or_path)
    path = BUILTIN.get(name, Path(name))
    if name not in BUILTIN and not path.exists():
        raise SweepInputError(
            f"calibration '{name}': no such file; built-in calibrations: {', '.join(BUILTIN)}"
        )
    try:
        doc = tomllib.loads(read_text(path, "calibration file"))
    except tomllib.TOMLDecodeError as exc:
        raise SweepInputError(f"{path}: invalid TOML ({exc})") from None
    where = str(path)
    fmt = doc.get("format")
    if isinstance(fmt, bool) or fmt != FORMAT:  # true == 1 in Python, but not a format number
        raise InvalidValueError(f"{where}: format: got {fmt!r}; allowed: {FORMAT}")
    per = doc.get("per", "gpu")
    if per not in CALIBRATION_GROUPS:
        V.fail(where, "per", f"got {per!r}", ", ".join(CALIBRATION_GROUPS))
    fitted = doc.get("fitted", [])
    if not isinstance(fitted, list) or not all(isinstance(n, str) for n in fitted):
        V.fail(where, "fitted", f"got {fitted!r}", "a list of mechanism names")
    V.keys(f"{where}: fitted", fitted, list(MECHANISMS), what="mechanism")
    prompt = _table(where, "prompt_tokens", doc.get("prompt_tokens", {}))
    if "value" in prompt:
        V.number(f"{where}: prompt_tokens", "value", prompt["value"], "nonnegative")
    tasks = _table(where, "prompt_tokens.tasks", prompt.get("tasks", {}))
    V.keys(f"{where}: prompt_tokens.tasks", list(tasks), list(TASKS), what="task")
    for task, record in tasks.items():
        record = _table(where, f"prompt_tokens.tasks.{task}", record)
        V.number(f"{where}: prompt_tokens.tasks.{task}", "value", record.get("value"), "nonnegative")
    groups = doc.get("groups")
    if not isinstance(groups, dict) or not groups:
        raise InvalidValueError(
            f"{where}: groups: no [groups.<GPU>] table; allowed: a file from `sweep calibrate`"
        )
    checked = {}
    for label, g in groups.items():
        g = _table(where, f"groups.{label}", g)
        values = _table(where, f"groups.{label}.values", g.get("values", {}))
        V.keys(f"{where}: groups.{label}.values", list(values), list(MECHANISMS), list(MECHANISMS))
        for n, v in values.items():
            m = MECHANISMS[n]
            V.number(f"{where}: groups.{label}.values", n, v)
            if not m.lower <= v <= m.upper:
                V.fail(f"{where}: groups.{label}.values", n, f"got {v!r}", f"[{m.lower:g}, {m.upper:g}]")
        errors = _table(where, f"groups.{label}.standard_errors", g.get("standard_errors", {}))
        V.keys(f"{where}: groups.{label}.standard_errors", list(errors), list(MECHANISMS), what="mechanism")
        for n, v in errors.items():
            V.number(f"{where}: groups.{label}.standard_errors", n, v, "nonnegative")
        checked[label] = {"values": dict(values), "standard_errors": dict(errors)}
    return Calibration(name=name, per=per, fitted=tuple(fitted), groups=checked, prompt=dict(prompt))


def _table(where: str, key: str, value) -> dict:
    """`value` if it is a TOML table, else a one-line error naming the file and key."""
    if not isinstance(value, dict):
        V.fail(where, key, f"got {value!r}", "a table")
    return value
