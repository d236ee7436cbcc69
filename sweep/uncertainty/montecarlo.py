"""Monte Carlo uncertainty in the compiled kernel (docs/uncertainty.md §2).

Every grid point is evaluated under the same S joint draws of the uncertain parameters
(`sweep.uncertainty.draws`), inside the engine's chunked kernel (`sweep.grid.engine.run_samples`):
the sample dimension is reduced to the mean, standard deviation and quantiles block by block and
is kept for the whole grid only when asked (`keep_samples`).
"""

from __future__ import annotations

import json

from sweep.grid.engine import run_samples
from sweep.uncertainty.draws import index_map, multipliers, parameters


def mc_outputs(evaluator, asked: tuple) -> tuple:
    """The outputs that get Monte Carlo statistics: those asked (scalar float ones), else the target."""
    scalar = [k for k, (dt, trailing) in evaluator.outputs.items() if dt is None and trailing == ()]
    chosen = [k for k in asked if k in scalar] if asked else []
    return tuple(dict.fromkeys([evaluator.target, *chosen]))


def monte_carlo(
    table, axes, params, evaluator, options, *, asked=(), extras=(), chunk_points, where, progress=None
):
    """({name: array}, the parameters, their multipliers) of Monte Carlo over the grid; see the module docstring.

    Returns `<out>_mean`, `<out>_std`, `<out>_quantile` (leading quantile dim) and, with
    `options.keep_samples`, `<out>_samples` (leading sample dim).
    """
    params_list = parameters(table, options, where)
    m = multipliers(params_list, options, where)
    index = index_map(table, params_list)
    outputs = mc_outputs(evaluator, asked)
    common = dict(outputs=outputs, extras=extras, chunk_points=chunk_points)
    results = run_samples(
        table, axes, params, evaluator, m, index, quantiles=options.quantiles, progress=progress, **common
    )
    if options.keep_samples:
        kept = run_samples(table, axes, params, evaluator, m, index, reduce=False, **common)
        results.update({f"{k}_samples": v for k, v in kept.items()})
    return results, params_list, m


def describe(params_list, options) -> str:
    """The `uncertainty_parameters` attribute: JSON list of name, distribution, relative size."""
    return json.dumps(
        [{"name": p.name, "distribution": p.distribution, "size": p.size} for p in params_list]
        + (
            [{"correlation": {"parameters": list(options.correlation[0]), "matrix": options.correlation[1]}}]
            if options.correlation
            else []
        )
    )
