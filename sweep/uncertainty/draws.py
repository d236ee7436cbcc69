"""Which parameters are uncertain, and their joint draws (docs/uncertainty.md §1).

A *parameter* is one continuous value of one catalog entry: the B200's HBM bandwidth is one, the
H100's another; every grid row (model, TP, …) of the same GPU shares its draw, so a ratio between
grid points draws a shared parameter once. Draws are unit-cube points from scipy.stats.qmc
(scrambled Sobol' or Latin hypercube, seeded), optionally correlated through a Gaussian copula,
mapped to multipliers of the nominal value by each parameter's distribution:

    uniform     1 + w·(2u − 1)                    triangular  symmetric on [1 − w, 1 + w]
    normal      max(1 + σ·Φ⁻¹(u), 1e-6)           lognormal   exp(σ·Φ⁻¹(u))
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.stats import qmc

from sweep.errors import SweepInputError
from sweep.physics.mechanisms import MECHANISMS


@dataclass(frozen=True)
class Parameter:
    """One uncertain parameter: its name, θ key, the grid rows it moves, its distribution."""

    name: str  # "B200.hbm_bandwidth_bytes_per_s"
    key: str  # θ key, "gpu.hbm_bandwidth_bytes_per_s"
    rows: tuple  # indices of the profile-table rows it multiplies
    distribution: str
    size: float  # relative half-width (uniform, triangular) or sigma (normal, lognormal)

    @property
    def sigma(self) -> float:
        """Standard deviation of the multiplier (the value's, relative to its nominal value; the
        lognormal's multiplier has median 1 and mean exp(σ²/2), so its std is exp(σ²/2)·√(exp(σ²) − 1))."""
        w = self.size
        return {
            "uniform": w / math.sqrt(3),
            "triangular": w / math.sqrt(6),
            "normal": w,
            "lognormal": math.exp(w * w / 2) * math.sqrt(math.expm1(w * w)),
        }[self.distribution]


def _field(key: str) -> str:
    return key.split(".", 1)[-1]


def _entity(key: str, labels: dict) -> str:
    """Whose value θ key is in one row: the GPU's (specs, calibrated mechanisms), the model's, the
    calibrated profile's, or the grid's ("")."""
    group = key.split(".", 1)[0] if "." in key else None
    if group == "gpu" or (group == "serving" and _field(key) in MECHANISMS and "gpu" in labels):
        return str(labels["gpu"])
    if group == "model":
        return str(labels["model"])
    if group is None:  # a calibrated profile's own field
        return f"{labels['gpu']}/{labels['model']}"
    return ""


def _row_labels(table) -> list:
    names = list(table.categorical)
    return [dict(zip(names, combo)) for combo in itertools.product(*table.categorical.values())]


def parameters(table, options, where: str = "<grid>") -> list:
    """The uncertain parameters of a profile table under `options` (UncertaintyOptions).

    Default (no `parameters` given): every value whose catalog quality is projected, uniform with its
    catalog half-width; calibrated mechanisms lognormal with σ = sqrt(ln(1 + r²)), r = SE/|value|. Given names
    select a field (every entity, each drawn apart) or `<entity>.<field>` (one).
    """
    labels = _row_labels(table)
    groups = {}  # (θ key, entity) -> rows
    for key in table.elasticity_params:
        for row, lab in enumerate(labels):
            groups.setdefault((key, _entity(key, lab)), []).append(row)

    def name_of(key, entity):
        return f"{entity}.{_field(key)}" if entity else _field(key)

    if not options.parameters:
        out = []
        for (key, entity), rows in groups.items():
            u = float(
                np.max(np.asarray(table.uncertainty.get(key, np.zeros(len(labels))))[rows], initial=0.0)
            )
            if u > 0:
                normal = key in getattr(table, "normal", ())
                # fitted standard errors: lognormal with that relative spread (positive however large)
                fitted = ("lognormal", math.sqrt(math.log1p((u / math.sqrt(3)) ** 2)))
                dist, size = fitted if normal else ("uniform", u)
                out.append(Parameter(name_of(key, entity), key, tuple(rows), dist, size))
        return out
    chosen, specific = {}, set()  # (θ key, entity) -> Parameter, in the order given
    by_name = {name_of(k, e): (k, e) for k, e in groups}
    fields = sorted({_field(k) for k, _ in groups})
    for name, (dist, size) in options.parameters.items():
        own = name in by_name and not any(_field(k) == name for k, _ in groups)
        matched = [by_name[name]] if own else [(k, e) for (k, e) in groups if _field(k) == name]
        if not matched:
            example = next(iter(by_name), "")
            raise SweepInputError(
                f"{where}: uncertainty.parameters: unknown parameter '{name}'; allowed: a field "
                f"({', '.join(fields)}) or <entity>.<field> such as '{example}'"
            )
        for g in matched:
            if own or g not in specific:  # an entry's own name overrides a bare field name
                chosen[g] = Parameter(name_of(*g), g[0], tuple(groups[g]), dist, size)
            if own:
                specific.add(g)
    return list(chosen.values())


def index_map(table, params: list) -> dict:
    """θ key -> (K,) column of each row's parameter in the multiplier matrix (len(params): certain)."""
    k_rows = len(next(iter(table.theta.values())))
    index = {}
    for j, p in enumerate(params):
        column = index.setdefault(p.key, np.full(k_rows, len(params), dtype=np.int32))
        column[list(p.rows)] = j
    return index


def unit_draws(d: int, samples: int, seed: int, sampler: str = "sobol") -> np.ndarray:
    """(samples, d) points in the open unit cube from scipy.stats.qmc, seeded (deterministic)."""
    if sampler == "sobol":
        engine = qmc.Sobol(d=d, scramble=True, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # balance properties need 2^m points
            u = engine.random(samples)
    else:
        u = qmc.LatinHypercube(d=d, seed=seed).random(samples)
    return np.clip(u, 1e-12, 1 - 1e-12)


def correlate(u: np.ndarray, params: list, correlation: tuple, where: str = "<grid>") -> np.ndarray:
    """Impose `correlation` (names, matrix) on the unit draws through a Gaussian copula."""
    if not correlation:
        return u
    names, matrix = correlation
    known = {p.name: j for j, p in enumerate(params)}
    missing = [c for c in names if c not in known]
    if missing:
        raise SweepInputError(
            f"{where}: uncertainty.correlation.parameters: {missing} are not uncertain parameters of this "
            f"grid; allowed: {', '.join(known)}"
        )
    cols = [known[c] for c in names]
    u = u.copy()
    z = stats.norm.ppf(u[:, cols]) @ np.linalg.cholesky(np.asarray(matrix)).T
    u[:, cols] = np.clip(stats.norm.cdf(z), 1e-12, 1 - 1e-12)
    return u


def multipliers_of(u: np.ndarray, params: list) -> np.ndarray:
    """(samples, len(params) + 1) multipliers from unit draws; the last column is all ones."""
    m = np.empty((u.shape[0], len(params) + 1))
    for j, p in enumerate(params):
        m[:, j] = transform(u[:, j], p.distribution, p.size)
    m[:, -1] = 1.0
    return m


def multipliers(params: list, options, where: str = "<grid>") -> np.ndarray:
    """The joint draws of `options` (samples, seed, sampler, correlation) as multipliers."""
    if not params:
        return np.ones((options.samples, 1))
    u = unit_draws(len(params), options.samples, options.seed, options.sampler)
    return multipliers_of(correlate(u, params, options.correlation, where), params)


def transform(u: np.ndarray, distribution: str, size: float) -> np.ndarray:
    """Unit-cube values → multipliers of the nominal value (see the module docstring)."""
    if distribution == "uniform":
        return 1.0 + size * (2.0 * u - 1.0)
    if distribution == "triangular":
        return stats.triang.ppf(u, c=0.5, loc=1.0 - size, scale=2.0 * size)
    if distribution == "normal":
        return np.maximum(1.0 + size * stats.norm.ppf(u), 1e-6)
    return np.exp(size * stats.norm.ppf(u))
