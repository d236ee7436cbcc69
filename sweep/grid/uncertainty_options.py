"""The grid's `uncertainty` key (docs/uncertainty.md): `true` (first order) or a table.

    uncertainty = true                                   # first-order band from the elasticities
    [uncertainty]
    method = "monte_carlo"                               # or "first_order"
    samples = 4096                                       # joint draws (>= 2)
    seed = 0                                             # 0 <= seed < 2^63
    sampler = "sobol"                                    # scrambled Sobol' or "lhs" (scipy.stats.qmc)
    quantiles = [0.05, 0.5, 0.95]
    keep_samples = false                                 # true: also the (sample, ...) values
    [uncertainty.parameters]                             # default: every projected catalog value
    hbm_bandwidth_bytes_per_s = { distribution = "uniform", width = 0.2 }      # every GPU, each its own draw
    "B200.tdp_w" = { distribution = "normal", sigma = 0.1 }                    # one GPU
    [uncertainty.correlation]
    parameters = ["B200.tdp_w", "B200.power_nominal_w"]
    matrix = [[1.0, 0.8], [0.8, 1.0]]

Widths and sigmas are relative: uniform and triangular on [1 − width, 1 + width] × the value,
normal 1 + sigma·z, lognormal exp(sigma·z). Parameter names are checked against the grid's
parameters when the table is built (`sweep.uncertainty.draws`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sweep import validate as V
from sweep.errors import SweepInputError

METHODS = ("first_order", "monte_carlo")
SAMPLERS = ("sobol", "lhs")
DISTRIBUTIONS = {"uniform": "width", "triangular": "width", "normal": "sigma", "lognormal": "sigma"}
KEYS = ("method", "samples", "seed", "sampler", "quantiles", "keep_samples", "parameters", "correlation")
SEED_LIMIT = 2**63  # seeds are recorded as int64 attributes and handed to numpy's SeedSequence
SEED_ALLOWED = "integers 0 <= seed < 2^63"


def valid_seed(seed) -> int | None:
    """The seed of a Monte Carlo or sensitivity design as an int, or None if it is not one: an integer
    (a whole float too, as TOML may give; not a bool) with 0 <= seed < 2^63. The one range check of
    `[uncertainty] seed`, `sweep.run(seed=)` and `sweep.sensitivity(seed=)`."""
    value = _whole(seed)
    return value if value is not None and 0 <= value < SEED_LIMIT else None


def valid_count(value, minimum: int) -> int | None:
    """A sample count as an int (an integer, or a whole float; not a bool) >= minimum, or None."""
    n = _whole(value)
    return n if n is not None and n >= minimum else None


def _whole(value) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


@dataclass(frozen=True)
class UncertaintyOptions:
    method: str = "first_order"
    samples: int = 4096
    seed: int = 0
    sampler: str = "sobol"
    quantiles: tuple = (0.05, 0.5, 0.95)
    keep_samples: bool = False
    parameters: dict = field(default_factory=dict)  # name -> (distribution, relative width or sigma)
    correlation: tuple = ()  # (names, matrix as nested tuples) or ()


def parse_uncertainty(where: str, value) -> UncertaintyOptions | None:
    """Validate the `uncertainty` key; None when it is absent or false."""
    key = "uncertainty"
    if value is None or value is False:
        return None
    if value is True:
        return UncertaintyOptions()
    if not isinstance(value, dict):
        V.fail(where, key, f"got {value!r}", "true, false or a table (method, samples, seed, ...)")
    V.keys(f"{where}: {key}", list(value), KEYS, what="key")
    method = value.get("method", "monte_carlo")
    if method not in METHODS:
        V.fail(where, f"{key}.method", f"got {method!r}", ", ".join(METHODS))
    samples = valid_count(value.get("samples", 4096), 2)
    if samples is None:
        V.fail(where, f"{key}.samples", f"got {value['samples']!r}", "integers >= 2")
    seed = valid_seed(value.get("seed", 0))
    if seed is None:
        V.fail(where, f"{key}.seed", f"got {value['seed']!r}", SEED_ALLOWED)
    sampler = value.get("sampler", "sobol")
    if sampler not in SAMPLERS:
        V.fail(where, f"{key}.sampler", f"got {sampler!r}", ", ".join(SAMPLERS))
    quantiles = value.get("quantiles", [0.05, 0.5, 0.95])
    if not isinstance(quantiles, list) or not quantiles:
        V.fail(where, f"{key}.quantiles", f"got {quantiles!r}", "a list of numbers in (0, 1)")
    for q in quantiles:
        V.number(where, f"{key}.quantiles", q, "open_fraction")
    V.distinct(where, f"{key}.quantiles", quantiles)
    keep = value.get("keep_samples", False)
    if not isinstance(keep, bool):
        V.fail(where, f"{key}.keep_samples", f"got {keep!r}", "true or false")
    parameters = _parameters(where, value.get("parameters", {}))
    correlation = _correlation(where, value.get("correlation"), parameters)
    if method == "first_order" and correlation:
        V.fail(where, f"{key}.correlation", "given with method first_order", 'method = "monte_carlo"')
    return UncertaintyOptions(
        method=method,
        samples=samples,
        seed=seed,
        sampler=sampler,
        quantiles=tuple(sorted(float(q) for q in quantiles)),
        keep_samples=keep,
        parameters=parameters,
        correlation=correlation,
    )


def _parameters(where: str, table) -> dict:
    key = "uncertainty.parameters"
    if not isinstance(table, dict):
        V.fail(where, key, f"got {table!r}", "a table of name = { distribution, width | sigma }")
    out = {}
    for name, spec in table.items():
        at = f"{key}.{name}"
        if not isinstance(spec, dict) or "distribution" not in spec:
            V.fail(
                where,
                at,
                f"got {spec!r}",
                "{ distribution = uniform|triangular|normal|lognormal, width|sigma }",
            )
        dist = spec["distribution"]
        if not isinstance(dist, str) or dist not in DISTRIBUTIONS:
            V.fail(where, f"{at}.distribution", f"got {dist!r}", ", ".join(DISTRIBUTIONS))
        size = DISTRIBUTIONS[dist]
        V.keys(f"{where}: {at}", list(spec), ["distribution", size], ["distribution", size], what="key")
        rule = "open_fraction" if dist in ("uniform", "triangular") else "positive"
        out[name] = (dist, float(V.number(where, f"{at}.{size}", spec[size], rule)))
    return out


def _correlation(where: str, table, parameters: dict) -> tuple:
    key = "uncertainty.correlation"
    if table is None:
        return ()
    if not isinstance(table, dict):
        V.fail(where, key, f"got {table!r}", "a table with parameters = [...] and matrix = [[...]]")
    V.keys(f"{where}: {key}", list(table), ["parameters", "matrix"], ["parameters", "matrix"], what="key")
    names = table["parameters"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        V.fail(where, f"{key}.parameters", f"got {names!r}", "a list of at least two parameter names")
    V.distinct(where, f"{key}.parameters", names)
    matrix = table["matrix"]
    n = len(names)
    ok = (
        isinstance(matrix, list)
        and len(matrix) == n
        and all(isinstance(r, list) and len(r) == n for r in matrix)
    )
    if not ok:
        V.fail(where, f"{key}.matrix", f"got {matrix!r}", f"a {n}×{n} list of lists")
    for row in matrix:
        for v in row:
            V.number(where, f"{key}.matrix", v)
    c = np.asarray(matrix, dtype=np.float64)
    if not np.allclose(c, c.T) or not np.allclose(np.diag(c), 1.0) or np.abs(c).max() > 1:
        V.fail(
            where, f"{key}.matrix", "not a correlation matrix", "symmetric, unit diagonal, entries in [-1, 1]"
        )
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        raise SweepInputError(
            f"{where}: {key}.matrix: not positive definite; allowed: a valid correlation matrix"
        ) from None
    return (tuple(names), tuple(tuple(float(v) for v in r) for r in matrix))
