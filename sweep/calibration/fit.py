"""Least-squares calibration of the decode-step mechanisms to measured runs (docs/calibration.md §2–§3).

Residuals per row (each weight 1): ln(tokens/s predicted / measured), ln(power predicted / measured)
and, where the row gives it, ln(ITL predicted / measured). The chosen mechanisms are free per group
(per GPU by default, shared across models and TP, so a fit on small models transfers to large ones;
or per GPU and model), every other mechanism sits at its documented prior (`Mechanism.fixed`).

Prompt lengths (docs/calibration.md §4): rows that leave `prompt_tokens` blank take one prompt length per
task. Every task but chat has its own fitted value (fim prompts are long, reasoning prompts short);
chat's is the documented assumption unless `prompt_tokens` is among the names fitted, then chat's is
fitted too.

Solver: scipy.optimize.least_squares (trust-region reflective, bounds) fed with the exact JAX
Jacobian (`jax.jacfwd`, jitted). Standard errors from s²·(JᵀJ)⁻¹, s² = RSS / (m − k).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from sweep import validate as V
from sweep.calibration.model import predict, row_inputs
from sweep.errors import InvalidValueError, SweepInputError, SweepWarning
from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS, DEFAULT_FIT, MECHANISMS
from sweep.vocabulary import CALIBRATION_GROUPS, TASKS

PROMPT = "prompt_tokens"  # the nuisance parameter: mean prompt length where a row leaves it blank
PROMPT_BOUNDS = (0.0, 32768.0)
REFERENCE_TASK = TASKS[0]  # chat: its prompt length is assumed unless --fit names prompt_tokens
NOT_IDENTIFIED_REL_SE = 0.5  # SE above half the value (or of the bound range near 0): not identified
CORRELATED = 0.95


@dataclass
class Fit:
    """A fitted calibration: values, standard errors and correlations of the free parameters."""

    per: str
    fitted: tuple  # mechanism names free per group
    groups: tuple  # group labels: "H100" or "H100/llama-3.1-8b"
    values: dict  # group -> {mechanism: value} (fitted and fixed)
    standard_errors: dict  # group -> {mechanism: SE} (fitted only)
    parameters: tuple  # labels of the free parameters, "H100.bandwidth_efficiency", "prompt_tokens"
    correlation: np.ndarray
    prompt: dict  # {"handling": "assumed"|"fitted"|"measured", "value": .., "standard_error": ..,
    #                "tasks": {task: {"handling": "fitted", "value": .., "standard_error": ..}}}
    rows: dict  # group -> row count
    cost: float
    evaluations: int
    warnings: list = field(default_factory=list)


def _group_of(row, per: str) -> str:
    return row["gpu"] if per == "gpu" else f"{row['gpu']}/{row['model']}"


def check_fit_names(names) -> tuple:
    """The names to fit, checked: mechanisms of `sweep.physics.mechanisms` or `prompt_tokens`."""
    names = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    allowed = (*MECHANISMS, PROMPT)
    for n in names:
        if n not in allowed:
            raise InvalidValueError(f"--fit: unknown parameter '{n}'; allowed: {', '.join(allowed)}")
    if not names:
        raise InvalidValueError(f"--fit: no parameter named; allowed: {', '.join(allowed)}")
    return names


def check_prompt_tokens(value, where: str, most: float | None = None) -> float:
    """The assumed mean prompt length (`prompt_tokens`, the CLI's --prompt-tokens), checked: a finite
    number >= 0 (at most `most` when given); a one-line `SweepInputError` naming `where` otherwise."""
    if isinstance(value, np.generic):
        value = value.item()
    return float(V.number(where, "prompt_tokens (--prompt-tokens)", value, "nonnegative", most=most))


def _start(name: str) -> float:
    m = MECHANISMS[name]
    return m.fixed if m.fixed > m.lower else m.lower + 0.01 * (m.upper - m.lower)


@dataclass
class _Problem:
    """What one fit solves: the free parameters (their bounds, scale and start), the data and the rows."""

    mech_names: tuple
    groups: tuple
    index: np.ndarray  # (K,) group of each row
    use: np.ndarray  # (K,) rows fitted: the ones asked for, each distinct row once
    prompt_tasks: tuple  # tasks whose prompt length is fitted
    unknown_prompt: bool  # some fitted row leaves its prompt blank
    lower: np.ndarray
    upper: np.ndarray
    scale: np.ndarray  # x = θ / scale: O(1) variables
    start: np.ndarray
    fixed: dict  # mechanisms at their priors
    data: tuple  # the residual function's arrays (see `_residuals`)
    static: dict  # its static arguments
    m: int  # residuals
    k: int  # parameters


def fit(
    measurements,
    *,
    names=DEFAULT_FIT,
    per: str = "gpu",
    prompt_tokens: float = ASSUMED_PROMPT_TOKENS,
    use=None,
) -> Fit:
    """Fit `names` per group to `measurements` (a `Measurements`); see the module docstring.

    `prompt_tokens` is the assumed mean prompt length of chat rows that leave it blank (and the start of
    every fitted one; finite, in `PROMPT_BOUNDS`); every other task present gets its own fitted prompt
    length, and so does chat when "prompt_tokens" is among `names` (module docstring). `use`: optional
    boolean mask of the rows to fit (the others are ignored; same shapes, so no recompilation). A row that
    repeats an earlier one exactly (`Measurements.distinct`) is fitted once: the degrees of freedom and
    standard errors count distinct rows.
    """
    from scipy.optimize import least_squares

    if per not in CALIBRATION_GROUPS:
        raise InvalidValueError(f"--per '{per}': allowed values: {', '.join(CALIBRATION_GROUPS)}")
    names = check_fit_names(names)
    prompt_tokens = check_prompt_tokens(prompt_tokens, _files(measurements), most=PROMPT_BOUNDS[1])
    problem = _problem(measurements, names, per, prompt_tokens, use)

    def fun(x):
        return np.asarray(_RESIDUALS(x, problem.data, **problem.static))

    def jac(x):
        return np.asarray(_JACOBIAN(x, problem.data, **problem.static))

    sol = least_squares(
        fun,
        problem.start / problem.scale,
        jac=jac,
        bounds=(problem.lower / problem.scale, problem.upper / problem.scale),
        method="trf",
        x_scale="jac",
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
        max_nfev=500,
    )
    result = _result(problem, sol, jac(sol.x), per, prompt_tokens)
    if PROMPT in names and not problem.unknown_prompt:
        result.warnings.append("prompt_tokens: every row gives its prompt length; nothing to fit")
    return result


def _problem(measurements, names: tuple, per: str, prompt_tokens: float, use) -> _Problem:
    """The `_Problem` of fitting `names` per group `per` to the rows `use` (None: all) of `measurements`."""
    fit_prompt = PROMPT in names
    mech_names = tuple(n for n in names if n != PROMPT)
    inputs = row_inputs(measurements)
    rows = measurements.rows
    use = np.ones(len(rows), bool) if use is None else np.asarray(use, bool)
    use = use & measurements.distinct()
    groups = tuple(dict.fromkeys(_group_of(r, per) for r, u in zip(rows, use) if u))
    index = np.array([groups.index(_group_of(r, per)) if u else 0 for r, u in zip(rows, use)])
    unknown = np.isnan(inputs.prompt_tokens) & use
    tasks_of_rows = [r.get("task", REFERENCE_TASK) for r in rows]
    prompt_tasks = tuple(
        t
        for t in dict.fromkeys(t for t, u in zip(tasks_of_rows, unknown) if u)
        if fit_prompt or t != REFERENCE_TASK
    )
    task_index = np.array([prompt_tasks.index(t) if t in prompt_tasks else -1 for t in tasks_of_rows])
    n_prompts = len(prompt_tasks)
    k = len(groups) * len(mech_names) + n_prompts
    itl = measurements.column("itl_s")
    m = 2 * int(use.sum()) + int((np.isfinite(itl) & use).sum())
    if m <= k:
        repeated = " (repeated rows count once)" if not measurements.distinct().all() else ""
        raise SweepInputError(
            f"{_files(measurements)}: {int(use.sum())} rows{repeated} give {m} residuals, not more than the "
            f"{k} parameters to fit; add rows or fit fewer parameters (--fit)"
        )
    lower = np.array(
        [MECHANISMS[n].lower for _ in groups for n in mech_names] + [PROMPT_BOUNDS[0]] * n_prompts
    )
    upper = np.array(
        [MECHANISMS[n].upper for _ in groups for n in mech_names] + [PROMPT_BOUNDS[1]] * n_prompts
    )
    scale = np.maximum(np.abs(upper - lower) * 0.01, 1e-12)
    fixed = {n: MECHANISMS[n].fixed for n in MECHANISMS if n not in mech_names}
    data = (
        scale,
        index,
        fixed,
        float(prompt_tokens),
        np.maximum(task_index, 0),
        task_index >= 0,
        use.astype(np.float64),
        inputs,
        measurements.column("tokens_per_second"),
        measurements.column("power_w"),
        itl,
    )
    return _Problem(
        mech_names=mech_names,
        groups=groups,
        index=index,
        use=use,
        prompt_tasks=prompt_tasks,
        unknown_prompt=bool(unknown.any()),
        lower=lower,
        upper=upper,
        scale=scale,
        start=np.array([_start(n) for _ in groups for n in mech_names] + [prompt_tokens] * n_prompts),
        fixed=fixed,
        data=data,
        static=dict(names=mech_names, n_groups=len(groups), n_prompts=n_prompts),
        m=m,
        k=k,
    )


def _result(problem: _Problem, sol, j: np.ndarray, per: str, prompt_tokens: float) -> Fit:
    """The `Fit` of a solved problem: values, standard errors from s²·(JᵀJ)⁻¹, correlations, warnings.
    `j`: ∂r/∂x at the solution (x = θ / scale: well conditioned)."""
    p, scale = problem, problem.scale
    theta = sol.x * scale
    span = p.upper - p.lower
    theta = np.where(
        theta - p.lower < 1e-9 * span, p.lower, np.where(p.upper - theta < 1e-9 * span, p.upper, theta)
    )
    s2 = 2.0 * sol.cost / max(p.m - p.k, 1)
    cov = s2 * np.linalg.pinv(j.T @ j) * np.outer(scale, scale)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    denom = np.outer(se, se)
    corr = np.where(denom > 0, cov / np.where(denom > 0, denom, 1.0), 0.0)
    labels = tuple(f"{g}.{n}" for g in p.groups for n in p.mech_names) + tuple(
        f"{PROMPT}.{t}" for t in p.prompt_tasks
    )
    values, errors, n_names = {}, {}, len(p.mech_names)
    for gi, g in enumerate(p.groups):
        free = {n: float(theta[gi * n_names + ji]) for ji, n in enumerate(p.mech_names)}
        values[g] = {n: free.get(n, p.fixed.get(n)) for n in MECHANISMS}
        errors[g] = {n: float(se[gi * n_names + ji]) for ji, n in enumerate(p.mech_names)}
    n_mech = len(p.groups) * n_names
    fitted_tasks = {
        t: {"handling": "fitted", "value": float(theta[n_mech + i]), "standard_error": float(se[n_mech + i])}
        for i, t in enumerate(p.prompt_tasks)
    }
    if REFERENCE_TASK in fitted_tasks:
        prompt = dict(fitted_tasks.pop(REFERENCE_TASK))
    elif p.unknown_prompt:
        prompt = {"handling": "assumed", "value": float(prompt_tokens)}
    else:
        prompt = {"handling": "measured"}
    if fitted_tasks:
        prompt["tasks"] = fitted_tasks
    result = Fit(
        per=per,
        fitted=p.mech_names,
        groups=p.groups,
        values=values,
        standard_errors=errors,
        parameters=labels,
        correlation=corr,
        prompt=prompt,
        rows={g: int(((p.index == gi) & p.use).sum()) for gi, g in enumerate(p.groups)},
        cost=float(sol.cost),
        evaluations=int(sol.nfev),
    )
    result.warnings = _identifiability(labels, theta, se, corr, p.lower, p.upper)
    return result


def _residuals(x, data, *, names, n_groups, n_prompts):
    """The weighted log residuals (tokens/s, power, ITL) of every row at scaled parameters x."""
    (
        scale,
        index,
        fixed,
        prompt_tokens,
        task_index,
        task_fitted,
        weight,
        inputs,
        tokens_per_s,
        power_w,
        itl_s,
    ) = data
    theta = x * scale
    n_mech = n_groups * len(names)
    per_group = theta[:n_mech].reshape(n_groups, len(names))
    mech = {**fixed, **{n: per_group[index, j] for j, n in enumerate(names)}}
    prompt = prompt_tokens
    if n_prompts:
        prompt = jnp.where(task_fitted, theta[n_mech:][task_index], prompt_tokens)
    pred = predict(inputs, mech, prompt)
    no_itl = jnp.isnan(itl_s)
    r_itl = jnp.log(pred["itl_s"] / jnp.where(no_itl, 1.0, itl_s))
    safe = weight > 0  # double where: ignored rows may have no measurement at all
    return jnp.concatenate(
        [
            jnp.where(safe, jnp.log(pred["tokens_per_second"] / jnp.where(safe, tokens_per_s, 1.0)), 0.0),
            jnp.where(safe, jnp.log(pred["power_w"] / jnp.where(safe, power_w, 1.0)), 0.0),
            jnp.where(safe & ~no_itl, r_itl, 0.0),
        ]
    )


_STATIC = ("names", "n_groups", "n_prompts")
_RESIDUALS = jax.jit(_residuals, static_argnames=_STATIC)  # compiled once per shape and fit choice
_JACOBIAN = jax.jit(jax.jacfwd(_residuals), static_argnames=_STATIC)


def _files(measurements) -> str:
    return ", ".join(f["path"] for f in measurements.files)


def _identifiability(labels, theta, se, corr, lower, upper) -> list:
    """One line per parameter the data does not identify: at a bound, a large SE, or inseparable pairs."""
    notes = []
    for i, label in enumerate(labels):
        span = upper[i] - lower[i]
        at_bound = min(theta[i] - lower[i], upper[i] - theta[i]) <= 1e-6 * span
        rel = se[i] / max(abs(theta[i]), 0.01 * span)
        if at_bound:
            notes.append(
                f"{label} = {theta[i]:.4g} is at its bound [{lower[i]:g}, {upper[i]:g}]: not identified"
            )
        elif not math.isfinite(rel) or rel > NOT_IDENTIFIED_REL_SE:
            notes.append(
                f"{label} = {theta[i]:.4g} ± {se[i]:.2g}: not identified by the data (standard error "
                f"{100 * rel:.0f} % of its value)"
            )
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            if abs(corr[i, j]) > CORRELATED:
                notes.append(
                    f"{labels[i]} and {labels[j]} are {corr[i, j]:+.2f} correlated: the data cannot separate them"
                )
    return notes


def emit_warnings(result: Fit) -> None:
    """Each identifiability note as one `SweepWarning`."""
    for note in result.warnings:
        warnings.warn(note, SweepWarning, stacklevel=2)
