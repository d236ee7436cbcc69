"""The sweep engine: one compiled kernel over the Cartesian product of a grid's axes.

The grid is never materialised point by point. Categorical axes (gpu, model, …) select rows of
a struct-of-arrays parameter table `theta` (K rows, gathered by index); the continuous axes
(context, batch, …) are small 1-D arrays that broadcast against it. The full grid, of shape
(K, n_context, n_batch, …), is cut along one dimension into blocks of a fixed shape of at most
`chunk_points` points, so the kernel is compiled once per grid, memory stays bounded, and each
block is copied into pre-allocated NumPy output arrays.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sweep._concurrency import max_concurrency
from sweep._efficiency import evaluate
from sweep._profile import Profile


@dataclass
class ProfileTable:
    """K serving setups: the categorical axes and the parameters θ that derive their profiles."""

    categorical: dict  # axis name -> list of labels, in dim order; K = product of lengths
    theta: dict  # parameter name -> np.ndarray of shape (K,), C order over `categorical`
    derive: Callable[[dict], Profile]  # pure JAX: θ (broadcastable arrays) -> Profile
    elasticity_params: tuple  # θ keys that get elasticities
    provenance: dict = field(default_factory=dict)  # free-form, recorded in the output


# Per-point outputs of the main kernel (full grid) and of the per-context pass.
POINT_OUTPUTS = ("concurrency", "iteration_time", "tokens_per_second", "gpu_power", "tokens_per_watt", "bound")
CONTEXT_OUTPUTS = ("max_concurrency", "feasible")


def _reshape_for(values, dim: int, ndim: int):
    shape = [1] * ndim
    shape[dim] = -1
    return jnp.reshape(values, shape)


def _point_metrics(table: ProfileTable, convention, relaxed, theta, axes: dict, params: dict, ndim):
    """Evaluate the instance model on one block; `axes` maps name -> (dim, 1-D values)."""
    theta_b = {k: _reshape_for(v, 0, ndim) for k, v in theta.items()}
    profile = table.derive(theta_b)

    def value(name):
        if name in axes:
            dim, values = axes[name]
            return _reshape_for(values, dim, ndim)
        return params[name]

    out = evaluate(
        profile,
        value("context"),
        value("batch"),
        value("mean_length_fraction"),
        value("load"),
        convention=convention,
        relaxed=relaxed,
    )
    out["bound"] = out.pop("compute_bound")
    return out


@dataclass
class Plan:
    """How the grid of shape `dims` is cut: split dim `split`, blocks of `block` along it."""

    dims: tuple
    split: int
    block: int

    @classmethod
    def make(cls, dims, chunk_points: int) -> "Plan":
        split = len(dims) - 1
        while split > 0 and math.prod(dims[split:]) <= chunk_points:
            split -= 1
        inner = math.prod(dims[split + 1 :])
        block = max(1, min(dims[split], chunk_points // max(inner, 1)))
        return cls(tuple(dims), split, block)

    def blocks(self):
        """Yield per-dim index arrays (fixed lengths, padded) and the valid slice of each block."""
        outer = [range(d) for d in self.dims[: self.split]]
        for head in itertools.product(*outer):
            for start in range(0, self.dims[self.split], self.block):
                stop = min(start + self.block, self.dims[self.split])
                idx = [np.array([h]) for h in head]
                split_idx = np.minimum(np.arange(start, start + self.block), self.dims[self.split] - 1)
                idx.append(split_idx)
                idx += [np.arange(d) for d in self.dims[self.split + 1 :]]
                where = tuple(slice(h, h + 1) for h in head) + (slice(start, stop),)
                yield idx, where, stop - start

    @property
    def n_blocks(self) -> int:
        return math.prod(self.dims[: self.split]) * math.ceil(self.dims[self.split] / self.block)


def run_grid(table: ProfileTable, cont_axes: dict, params: dict, *, convention="paper", dtype="float64",
             chunk_points=1 << 22, elasticities=False, progress=None) -> dict:
    """Evaluate every output on the grid (K, *cont_axes). Returns name -> np.ndarray.

    `cont_axes` maps the continuous axis names (in dim order) to 1-D arrays; `params` holds the
    scalar parameters. `progress(done_blocks, n_blocks, elapsed_s)` is called after each block.
    """
    np_dtype = np.dtype(dtype)
    names = list(cont_axes)
    dims = (len(next(iter(table.theta.values()))),) + tuple(len(v) for v in cont_axes.values())
    ndim = len(dims)
    theta_np = {k: np.asarray(v, dtype=np_dtype) for k, v in table.theta.items()}
    axes_np = {k: np.asarray(v, dtype=np_dtype) for k, v in cont_axes.items()}
    params_j = {k: np_dtype.type(v) for k, v in params.items()}

    # n_max and feasibility depend on (profile, context) only: one small pass.
    if names[0] != "context":
        raise ValueError("the first continuous axis must be 'context'")

    @jax.jit
    def context_kernel(theta, context):
        profile = table.derive({k: v[:, None] for k, v in theta.items()})
        n_max = max_concurrency(profile, context[None, :])
        return n_max, (n_max >= 1).astype(jnp.int8)

    n_max, feasible = context_kernel(theta_np, axes_np["context"])
    results = {"max_concurrency": np.asarray(n_max), "feasible": np.asarray(feasible)}

    def kernel(theta, axis_values):
        axes = {n: (1 + i, axis_values[i]) for i, n in enumerate(names)}
        out = _point_metrics(table, convention, False, theta, axes, params_j, ndim)
        return {k: jnp.broadcast_to(out[k], _block_shape(theta, axis_values)) for k in POINT_OUTPUTS}

    def elasticity_kernel(theta, axis_values):
        axes = {n: (1 + i, axis_values[i]) for i, n in enumerate(names)}
        shape = _block_shape(theta, axis_values)

        def tpw(th):
            return _point_metrics(table, convention, True, th, axes, params_j, ndim)["tokens_per_watt"]

        value = tpw(theta)
        safe = jnp.where(value != 0, value, 1.0)
        rows = []
        for key in table.elasticity_params:
            tangent = {k: (v if k == key else jnp.zeros_like(v)) for k, v in theta.items()}
            d = jax.jvp(tpw, (theta,), (tangent,))[1]
            rows.append(jnp.broadcast_to(jnp.where(value != 0, d / safe, jnp.nan), shape))
        return jnp.stack(rows)

    kernel_j = jax.jit(kernel)
    elasticity_j = jax.jit(elasticity_kernel) if elasticities else None

    out_dtypes = {k: (np.int8 if k == "bound" else np_dtype) for k in POINT_OUTPUTS}
    for k in POINT_OUTPUTS:
        results[k] = np.empty(dims, dtype=out_dtypes[k])
    if elasticities:
        results["elasticity"] = np.empty((len(table.elasticity_params),) + dims, dtype=np_dtype)

    plan = Plan.make(dims, chunk_points)
    start_time = time.perf_counter()
    for i, (idx, where, valid) in enumerate(plan.blocks()):
        theta_b = {k: v[idx[0]] for k, v in theta_np.items()}
        axis_b = tuple(axes_np[n][idx[1 + j]] for j, n in enumerate(names))
        block = kernel_j(theta_b, axis_b)
        trim = (slice(None),) * plan.split + (slice(0, valid),)
        for k in POINT_OUTPUTS:
            results[k][where] = np.asarray(block[k])[trim]
        if elasticities:
            e = np.asarray(elasticity_j(theta_b, axis_b))
            results["elasticity"][(slice(None),) + where] = e[(slice(None),) + trim]
        if progress is not None:
            progress(i + 1, plan.n_blocks, time.perf_counter() - start_time)
    if elasticities:
        # The relaxed model has no n_max = 0; report elasticities only where the point is feasible.
        mask = np.expand_dims(results["feasible"], tuple(range(2, ndim))) == 0
        results["elasticity"][:, np.broadcast_to(mask, dims)] = np.nan
    return results


def _block_shape(theta, axis_values):
    return (len(next(iter(theta.values()))),) + tuple(len(a) for a in axis_values)
