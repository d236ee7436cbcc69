"""The sweep engine: one compiled kernel over the Cartesian product of a grid's axes.

The grid is never materialised point by point. Profile axes (gpu, model, tp, …) select rows of
a struct-of-arrays parameter table `theta` (K rows, gathered by index) from which a pure JAX
function derives the `Profile`; the other axes (context, batch, workload, …) are small 1-D
arrays that broadcast against it. The full grid, of shape (K, n_axis1, n_axis2, …), is cut
along one dimension into blocks of one fixed shape of at most `chunk_points` points, so the
kernel is compiled once per grid, memory stays bounded, and each block is copied into
pre-allocated NumPy output arrays.

Elasticities ∂ln y/∂ln θ of the model's target output y are forward-mode derivatives (one
`jvp` per parameter, tangent θ) of the model's continuous relaxation, in the same blocks.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np



@dataclass
class ProfileTable:
    """K serving setups: the profile axes and the parameters θ that derive their profiles."""

    categorical: dict  # axis name -> list of labels, in dim order; K = product of lengths
    theta: dict  # parameter name -> np.ndarray of shape (K,), C order over `categorical`
    derive: Callable  # hashable, pure JAX: derive(θ arrays, relaxed) -> Profile
    elasticity_params: tuple  # θ keys that get elasticities
    uncertainty: dict = field(default_factory=dict)  # θ key -> (K,) relative half-width (projected values)
    provenance: dict = field(default_factory=dict)  # free-form, recorded in the output


class Model:
    """What the kernel evaluates: `model(profile, value, relaxed, extras) -> {name: array}`.

    `value(name)` returns the named axis (broadcast to its grid dimension) or scalar parameter;
    `extras` are arrays the model needs (e.g. workload tables), passed traced. A model may name a
    `pre` model evaluated first, in its own compiled call, on the (profile, first axis) sub-grid;
    its outputs reach the model as `pre` (a dict; empty in the relaxed elasticity pass).
    Computing small sub-grid quantities apart keeps XLA from fusing (and so repeating) them in
    every per-point loop. `outputs` maps
    each output to (dtype or None for the grid's float dtype, trailing shape); `target` is the
    output whose elasticities are reported. Subclasses are frozen dataclasses: hashable by value,
    so a compiled kernel is reused by every grid of the same structure.
    """

    outputs: dict = {}
    target: str = ""
    pre = None

    def __call__(self, profile, value, relaxed, extras, pre):  # pragma: no cover - interface
        raise NotImplementedError


def _reshape_for(values, dim: int, ndim: int):
    shape = [1] * ndim
    shape[dim] = -1
    return jnp.reshape(values, shape)


@dataclass
class Plan:
    """How a grid of shape `dims` is cut: split dim `split`, blocks of `block` along it."""

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
                idx.append(np.minimum(np.arange(start, start + self.block), self.dims[self.split] - 1))
                idx += [np.arange(d) for d in self.dims[self.split + 1 :]]
                where = tuple(slice(h, h + 1) for h in head) + (slice(start, stop),)
                yield idx, where, stop - start

    @property
    def n_blocks(self) -> int:
        return math.prod(self.dims[: self.split]) * math.ceil(self.dims[self.split] / self.block)


def _evaluate(model, derive, names, theta, axis_values, params, extras, relaxed, pre=None):
    ndim = 1 + len(names)
    profile = derive({k: _reshape_for(v, 0, ndim) for k, v in theta.items()}, relaxed)
    by_name = {n: _reshape_for(axis_values[i], 1 + i, ndim) for i, n in enumerate(names)}
    # outputs of the model's `pre` pass live on the (profile, first axis) sub-grid
    pre = {k: jnp.reshape(v, v.shape + (1,) * (ndim - v.ndim)) for k, v in (pre or {}).items()}
    return model(profile, lambda name: by_name[name] if name in by_name else params[name], relaxed, extras, pre)


def _block_shape(theta, axis_values):
    return (len(next(iter(theta.values()))),) + tuple(len(a) for a in axis_values)


@partial(jax.jit, static_argnames=("model", "derive", "names", "keep"))
def _kernel(theta, axis_values, params, extras, pre=None, *, model, derive, names, keep=None):
    out = _evaluate(model, derive, names, theta, axis_values, params, extras, False, pre)
    shape = _block_shape(theta, axis_values)
    return {k: jnp.broadcast_to(out[k], shape + model.outputs[k][1]) for k in (keep or model.outputs)}


@partial(jax.jit, static_argnames=("model", "derive", "names", "keys"))
def _elasticity_kernel(theta, axis_values, params, extras, *, model, derive, names, keys):
    shape = _block_shape(theta, axis_values) + model.outputs[model.target][1]

    def target(th):
        return _evaluate(model, derive, names, th, axis_values, params, extras, True)[model.target]

    value = target(theta)
    safe = jnp.where(value != 0, value, 1.0)
    rows = []
    for key in keys:
        # direction θ_key (0 where the value is absent/NaN): the jvp is θ·∂y/∂θ
        tangent = {k: (jnp.where(jnp.isfinite(v), v, 0.0) if k == key else jnp.zeros_like(v)) for k, v in theta.items()}
        d = jax.jvp(target, (theta,), (tangent,))[1]
        rows.append(jnp.broadcast_to(jnp.where(value != 0, d / safe, jnp.nan), shape))
    return jnp.stack(rows)


def run_grid(table: ProfileTable, axes: dict, params: dict, model: Model, *, dtype="float64",
             chunk_points=1 << 20, elasticities=False, progress=None, extras=(), keep=None) -> dict:
    """Evaluate `model` on the grid (K, *axes). Returns name -> np.ndarray of shape dims + trailing.

    `axes` maps axis names (in dim order) to 1-D numeric arrays; `params` holds the scalar
    parameters; `keep` (a tuple of output names, default all) limits what is computed and stored.
    `progress(done_blocks, n_blocks, elapsed_s)` is called after each block.
    """
    keep = tuple(keep) if keep else tuple(model.outputs)
    np_dtype = np.dtype(dtype)
    names = tuple(axes)
    dims = (len(next(iter(table.theta.values()))),) + tuple(len(v) for v in axes.values())
    theta_np = {k: np.asarray(v, dtype=np_dtype) for k, v in table.theta.items()}
    axes_np = {k: np.asarray(v, dtype=np_dtype) for k, v in axes.items()}
    params_c = {k: np.asarray(v, dtype=np_dtype) for k, v in params.items()}
    static = dict(model=model, derive=table.derive, names=names)

    results = {k: np.empty(dims + model.outputs[k][1], dtype=model.outputs[k][0] or np_dtype) for k in keep}
    if elasticities:
        trailing = model.outputs[model.target][1]
        results["elasticity"] = np.empty((len(table.elasticity_params),) + dims + trailing, dtype=np_dtype)

    plan = Plan.make(dims, chunk_points)
    start_time = time.perf_counter()

    def dispatch(idx):  # asynchronous: XLA computes while the previous block is copied out
        theta_b = {k: v[idx[0]] for k, v in theta_np.items()}
        axis_b = tuple(axes_np[n][idx[1 + j]] for j, n in enumerate(names))
        pre = None
        if model.pre is not None:
            pre = _kernel(theta_b, axis_b[:1], params_c, extras, model=model.pre, derive=table.derive, names=names[:1])
        block = _kernel(theta_b, axis_b, params_c, extras, pre, keep=keep, **static)
        if elasticities:
            block["elasticity"] = _elasticity_kernel(theta_b, axis_b, params_c, extras,
                                                     keys=tuple(table.elasticity_params), **static)
        return block

    def store(block, where, valid):
        trim = (slice(None),) * plan.split + (slice(0, valid),)
        for k in keep:
            results[k][where] = np.asarray(block[k])[trim]
        if elasticities:
            results["elasticity"][(slice(None),) + where] = np.asarray(block["elasticity"])[(slice(None),) + trim]

    pending = None
    for i, (idx, where, valid) in enumerate(plan.blocks()):
        block = dispatch(idx)
        if pending is not None:
            store(*pending)
        pending = (block, where, valid)
        if progress is not None:
            progress(i, plan.n_blocks, time.perf_counter() - start_time)
    store(*pending)
    if progress is not None:
        progress(plan.n_blocks, plan.n_blocks, time.perf_counter() - start_time)
    return results
