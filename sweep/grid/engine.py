"""The sweep engine: one compiled kernel over the Cartesian product of a grid's axes.

The grid is never materialised point by point. Profile axes (gpu, model, tp, …) select rows of
a struct-of-arrays parameter table `theta` (K rows, gathered by index) from which a pure JAX
function derives the `Profile`; the other axes (context, batch, workload, …) are small 1-D
arrays that broadcast against it. The full grid, of shape (n_profile_axis1, …, n_axis1, …), is
cut along one dimension into blocks of one fixed shape of at most `chunk_points` points, so the
kernel is compiled once per grid (and device) and its working memory stays bounded. The table and
the axes are placed on each device once; a block's only new input is its start index per dim, from
which the kernel gathers its slice (the profile rows by their flattened index). Each block is copied
into the NumPy outputs, or handed to a sink that streams it to disk (`sweep.io.stream`), while XLA
computes the next ones; blocks are dealt round-robin to the local devices.

Elasticities ∂ln y/∂ln θ of the model's target output y are forward-mode derivatives (one
`jvp` per parameter, tangent θ) of the model's continuous relaxation, in the same blocks.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sweep.grid.buffers import POOL


@dataclass
class ProfileTable:
    """K serving setups: the profile axes and the parameters θ that derive their profiles."""

    categorical: dict  # axis name -> list of labels, in dim order; K = product of lengths
    theta: dict  # parameter name -> np.ndarray of shape (K,), C order over `categorical`
    derive: Callable  # hashable, pure JAX: derive(θ arrays, relaxed) -> Profile
    elasticity_params: tuple  # θ keys that get elasticities
    uncertainty: dict = field(default_factory=dict)  # θ key -> (K,) relative half-width (projected values)
    normal: tuple = ()  # θ keys whose uncertainty is a normal error (σ = half-width/√3: fitted SEs)
    provenance: dict = field(default_factory=dict)  # free-form, recorded in the output


class Evaluator:
    """What the kernel evaluates: `evaluator(profile, value, relaxed, extras, pre) -> {name: array}`.

    `value(name)` returns the named axis (broadcast to its grid dimension) or scalar parameter;
    `extras` are arrays the evaluator needs (e.g. workload tables), passed traced. An evaluator may name a
    `pre` evaluator run first, in its own compiled call, on the (profile, first axis) sub-grid;
    its outputs reach the evaluator as `pre` (a dict; empty in the relaxed elasticity pass).
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
    """How a grid of shape `dims` is cut: split dim `split`, blocks of `block` along it.

    Blocks are numbered in C order (`blocks()`); a block is also the chunk of a streamed output file."""

    dims: tuple
    split: int
    block: int

    @classmethod
    def make(cls, dims, chunk_points: int) -> Plan:
        split = len(dims) - 1
        while split > 0 and math.prod(dims[split:]) <= chunk_points:
            split -= 1
        inner = math.prod(dims[split + 1 :])
        block = max(1, min(dims[split], chunk_points // max(inner, 1)))
        return cls(tuple(dims), split, block)

    def blocks(self):
        """Yield each block's start index per dim, its slice of the grid and its valid length
        along the split dim (the last block is padded to the fixed block shape)."""
        outer = [range(d) for d in self.dims[: self.split]]
        for head in itertools.product(*outer):
            for start in range(0, self.dims[self.split], self.block):
                stop = min(start + self.block, self.dims[self.split])
                starts = tuple(head) + (start,) + (0,) * (len(self.dims) - self.split - 1)
                where = tuple(slice(h, h + 1) for h in head) + (slice(start, stop),)
                yield starts, where, stop - start

    @property
    def n_blocks(self) -> int:
        return math.prod(self.dims[: self.split]) * math.ceil(self.dims[self.split] / self.block)

    @property
    def lengths(self) -> tuple:
        """The fixed shape of every block (the chunk shape of a streamed file)."""
        return (1,) * self.split + (self.block,) + tuple(self.dims[self.split + 1 :])


def _bucket(n: int) -> int:
    """Padded length of a full axis or table: the next power of two. The kernel's input shapes
    then change only at powers of two, so grids that differ a little in their number of
    profiles or in the length of the split axis share a compiled kernel (the block shape,
    which holds the other axes whole, is part of the compiled signature anyway)."""
    return 1 << max(0, (n - 1).bit_length())


def _pad(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values, np.repeat(values[-1:], _bucket(len(values)) - len(values))])


def _block_indices(starts, sizes, lengths, n_cat: int = 1):
    """Gather indices of one block: the flattened profile-row indices of its first `n_cat` (profile) dims,
    then one index array per point dim; each runs start, start+1, … clamped to the last valid index."""
    per_dim = [jnp.minimum(starts[d] + jnp.arange(n), sizes[d] - 1) for d, n in enumerate(lengths)]
    rows = jnp.zeros((), dtype=per_dim[0].dtype if per_dim else jnp.int64)
    for d in range(n_cat):  # C-order ravel of the profile dims: row = ((i0·n1 + i1)·n2 + i2)…
        rows = rows[..., None] * sizes[d] + per_dim[d]
    return [rows.reshape(-1)] + per_dim[n_cat:]


def _evaluate(evaluator, derive, names, theta, axis_values, params, extras, relaxed, pre=None):
    ndim = 1 + len(names)
    profile = derive({k: _reshape_for(v, 0, ndim) for k, v in theta.items()}, relaxed)
    by_name = {n: _reshape_for(axis_values[i], 1 + i, ndim) for i, n in enumerate(names)}
    # outputs of the evaluator's `pre` pass live on the (profile, first axis) sub-grid
    pre = {k: jnp.reshape(v, v.shape + (1,) * (ndim - v.ndim)) for k, v in (pre or {}).items()}
    return evaluator(
        profile, lambda name: by_name[name] if name in by_name else params[name], relaxed, extras, pre
    )


def _gather(theta, axis_values, pre, starts, sizes, lengths, n_cat: int = 1):
    """The block's slice of the full (padded) inputs, gathered inside the compiled kernel."""
    idx = _block_indices(starts, sizes, lengths, n_cat)
    theta_b = {k: v[idx[0]] for k, v in theta.items()}
    axis_b = tuple(a[i] for a, i in zip(axis_values, idx[1:]))
    pre_b = {k: v[idx[0]][:, idx[1]] for k, v in (pre or {}).items()}
    return theta_b, axis_b, pre_b


@partial(jax.jit, static_argnames=("evaluator", "derive", "names"))
def _pre_kernel(theta, axis_values, params, extras, *, evaluator, derive, names):
    """An evaluator's `pre` pass on the whole (padded) (profile, first axis) sub-grid."""
    out = _evaluate(evaluator, derive, names, theta, axis_values, params, extras, False)
    shape = (len(next(iter(theta.values()))), len(axis_values[0]))
    return {k: jnp.broadcast_to(v, shape) for k, v in out.items()}


def _evaluated_shape(lengths, n_cat: int) -> tuple:
    """The shape a block is evaluated in: (profile rows, *point lengths)."""
    return (math.prod(lengths[:n_cat]),) + tuple(lengths[n_cat:])


def _one_block(starts, sizes, theta, axis_values, params, extras, pre, *, static):
    """One block's outputs `keep`, in the block's full-dims shape."""
    evaluator, derive, names = static["evaluator"], static["derive"], static["names"]
    lengths, n_cat, dtype = static["lengths"], static["n_cat"], static["dtype"]
    shape = _evaluated_shape(lengths, n_cat)
    theta_b, axis_b, pre_b = _gather(theta, axis_values, pre, starts, sizes, lengths, n_cat)
    out = _evaluate(evaluator, derive, names, theta_b, axis_b, params, extras, False, pre_b)
    block = {}
    for k in static["keep"]:
        kind, trailing = evaluator.outputs[k]
        value = jnp.broadcast_to(out[k], shape + trailing).astype(kind or dtype)
        block[k] = jnp.reshape(value, tuple(lengths) + trailing)
    return block


@partial(jax.jit, static_argnames=("static",), donate_argnums=0, keep_unused=True)
def _elasticity_kernel(recycled, starts, sizes, theta, axis_values, params, extras, *, static):
    """∂ln y/∂ln θ_key of the target output y on one block, one forward-mode jvp per key: (keys, *block).

    A kernel of its own (`recycled`: as for `_kernel`): compiled together with the outputs, XLA's
    optimisation of the fleet model took minutes."""
    del recycled
    static = dict(static)
    theta_b, axis_b, _ = _gather(theta, axis_values, None, starts, sizes, static["lengths"], static["n_cat"])
    evaluator, derive, names = static["evaluator"], static["derive"], static["names"]
    trailing = evaluator.outputs[evaluator.target][1]
    shape = _evaluated_shape(static["lengths"], static["n_cat"]) + trailing

    def target(th):
        return _evaluate(evaluator, derive, names, th, axis_b, params, extras, True)[evaluator.target]

    value = target(theta_b)
    safe = jnp.where(value != 0, value, 1.0)
    rows = []
    for key in static["keys"]:
        # direction θ_key (0 where the value is absent/NaN): the jvp is θ·∂y/∂θ
        tangent = {
            k: (jnp.where(jnp.isfinite(v), v, 0.0) if k == key else jnp.zeros_like(v))
            for k, v in theta_b.items()
        }
        d = jax.jvp(target, (theta_b,), (tangent,))[1]
        rows.append(jnp.broadcast_to(jnp.where(value != 0, d / safe, jnp.nan), shape))
    stacked = jnp.stack(rows).astype(static["dtype"])
    return jnp.reshape(stacked, (len(rows),) + tuple(static["lengths"]) + trailing)


@partial(jax.jit, static_argnames=("static",), donate_argnums=0, keep_unused=True)
def _kernel(recycled, starts, sizes, theta, axis_values, params, extras, pre, *, static):
    """One block of the grid (`starts`: its first index per dim). `static` (hashable pairs) holds the
    evaluator, derive, axis names, kept outputs, elasticity keys, block lengths, number of profile dims
    and float dtype.

    `recycled` is an earlier block's outputs, already copied out and donated: XLA writes this
    block's outputs into the same memory instead of allocating (and page-faulting) new buffers.
    """
    del recycled
    return _one_block(starts, sizes, theta, axis_values, params, extras, pre, static=dict(static))


PIPELINE_DEPTH = 2  # blocks per device dispatched ahead: XLA computes them while the oldest is copied out
_SPARE_BLOCKS: dict = {}  # block-buffer signature -> the spare block buffers of the last run_grid


def _device_inputs(table: ProfileTable, axes: dict, params: dict, extras, device=None) -> tuple:
    """The padded θ table and axes, the scalar parameters and the extras, placed on `device` once."""
    # the model is always evaluated in float64: integer outputs (n_max, instance counts, …) must
    # not depend on `dtype`, which only sets how float outputs are stored
    theta = {k: _pad(np.asarray(v, dtype=np.float64)) for k, v in table.theta.items()}
    axis_values = tuple(_pad(np.asarray(v, dtype=np.float64)) for v in axes.values())
    params_c = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    return jax.device_put((theta, axis_values, params_c, tuple(np.asarray(e) for e in extras)), device)


def _pre_pass(evaluator, table, inputs, names, dims, np_dtype, results):
    """Run the evaluator's `pre` pass (if any), store its (K, first axis) outputs, return them on the device."""
    if evaluator.pre is None:
        return None
    theta, axis_values, params_c, extras = inputs
    pre = _pre_kernel(
        theta,
        axis_values[:1],
        params_c,
        extras,
        evaluator=evaluator.pre,
        derive=table.derive,
        names=names[:1],
    )
    for k, v in pre.items():
        results[k] = np.asarray(v)[: dims[0], : dims[1]].astype(evaluator.pre.outputs[k][0] or np_dtype)
    return pre


@dataclass
class Layout:
    """A grid's shape and what it stores: full dims (profile dims, then point dims), how it is cut into
    blocks, and each stored output's (block shape incl. leading/trailing dims, dtype)."""

    dims: tuple  # profile dims (categorical), then the point axes
    n_cat: int
    plan: Plan
    outputs: dict  # name -> (leading dims, trailing dims, np.dtype); leading = (P,) for the elasticities
    pre: dict  # the `pre` pass outputs on (K, first axis): name -> np.dtype

    def nbytes(self) -> int:
        """Bytes of every stored output over the whole grid (the in-memory size of a run's results)."""
        grid = math.prod(self.dims)
        stored = sum(
            math.prod(lead) * grid * math.prod(trail) * dt.itemsize
            for lead, trail, dt in self.outputs.values()
        )
        pre = math.prod(self.dims[: self.n_cat]) * (
            self.dims[self.n_cat] if len(self.dims) > self.n_cat else 1
        )
        return stored + pre * sum(dt.itemsize for dt in self.pre.values())


def grid_layout(
    table, axes, evaluator, *, keep=None, elasticities=False, dtype="float64", chunk_points=1 << 18
):
    """The `Layout` of `run_grid` with these arguments (no computing)."""
    keep = tuple(keep) if keep else tuple(evaluator.outputs)
    np_dtype = np.dtype(dtype)
    cat = tuple(len(v) for v in table.categorical.values())
    dims = cat + tuple(len(v) for v in axes.values())
    n_cat = len(cat)
    if not cat:  # no profile axis: one profile row as a dim of length 1
        dims, n_cat = (1,) + dims, 1
    outputs = {k: ((), evaluator.outputs[k][1], np.dtype(evaluator.outputs[k][0] or np_dtype)) for k in keep}
    if elasticities and table.elasticity_params:
        outputs["elasticity"] = (
            (len(table.elasticity_params),),
            evaluator.outputs[evaluator.target][1],
            np_dtype,
        )
    pre = {k: np.dtype(v[0] or np_dtype) for k, v in (evaluator.pre.outputs if evaluator.pre else {}).items()}
    return Layout(dims, n_cat, Plan.make(dims, chunk_points), outputs, pre)


def _block_buffers(layout: Layout, devices: list):
    """Per device, PIPELINE_DEPTH + 1 sets of block buffers to donate, and their signature."""
    lengths = layout.plan.lengths
    shapes = {k: (lead + lengths + trail, dt) for k, (lead, trail, dt) in layout.outputs.items()}
    signature = (tuple(devices),) + tuple((k, s, dt.str) for k, (s, dt) in shapes.items())
    # DEPTH + 1 sets of block buffers cycle per device: computed, copied out, donated to a later call
    spare = _SPARE_BLOCKS.pop(signature, None) or {
        d: [
            {k: jax.device_put(jnp.zeros(s, dt), d) for k, (s, dt) in shapes.items()}
            for _ in range(PIPELINE_DEPTH + 1)
        ]
        for d in devices
    }
    return signature, spare


def run_grid(
    table: ProfileTable,
    axes: dict,
    params: dict,
    evaluator: Evaluator,
    *,
    dtype="float64",
    chunk_points=1 << 18,
    elasticities=False,
    progress=None,
    extras=(),
    keep=None,
    sink=None,
    wanted=None,
    devices=None,
) -> dict:
    """Evaluate `evaluator` on the grid (K, *axes). Returns name -> np.ndarray of shape (K, *axes) + trailing.

    `axes` maps axis names (in dim order) to 1-D numeric arrays; `params` holds the scalar
    parameters; `keep` (a tuple of output names, default all) limits what is computed and stored.
    `dtype` is the storage type of float outputs; the model is evaluated in float64 whatever it is.
    The outputs of the evaluator's `pre` pass are returned too, on their (K, first axis) sub-grid.
    `progress(done_blocks, n_blocks, elapsed_s)` is called after each block.

    The grid is cut into the blocks of `grid_layout(...).plan`, over the full dims (each profile axis,
    then each point axis). With `sink`, nothing grid-sized is kept: the `pre` outputs go to
    `sink.pre(results)`, each computed block to `sink.block(block_id, where, {name: values})` (values in
    the block's full-dims shape, `where` its slices of the full dims), and only the `pre` outputs are
    returned; `wanted(block_id)` (default: all) selects
    the blocks to compute (a resumed run, one process's share).

    The full axes and the parameter table go to every local device (`devices`, default all) once;
    blocks are dealt round-robin to the devices, each block one call of the compiled kernel whose only
    new input is its start indices (compiled once per device: every device runs the same program as
    one device alone, so the results do not depend on the number of devices). Calls are asynchronous:
    while XLA computes the next PIPELINE_DEPTH blocks per device, a thread pool copies the oldest out
    (into recycled memory, `sweep.grid.buffers`), and its XLA buffers are then donated to a later call.
    """
    layout = grid_layout(
        table, axes, evaluator, keep=keep, elasticities=elasticities, dtype=dtype, chunk_points=chunk_points
    )
    keep = tuple(k for k in layout.outputs if k != "elasticity")
    keys = tuple(table.elasticity_params) if "elasticity" in layout.outputs else ()
    np_dtype = np.dtype(dtype)
    names = tuple(axes)
    n_rows = len(next(iter(table.theta.values())))
    devices = list(devices or jax.local_devices())
    dims, plan = layout.dims, layout.plan
    on = {d: _device_inputs(table, axes, params, extras, d) for d in devices}
    sizes = {d: jax.device_put(np.array(dims, dtype=np.int64), d) for d in devices}

    results = {}
    pre_dims = (n_rows,) + dims[layout.n_cat :]
    first = devices[0]
    pre = _pre_pass(evaluator, table, on[first], names, pre_dims, np_dtype, results)
    pre_on = {d: pre if d == first or pre is None else jax.device_put(pre, d) for d in devices}
    if sink is None:
        for k, (lead, trail, dt) in layout.outputs.items():
            results[k] = POOL.empty(lead + dims + trail, dt)
    else:
        sink.pre(results)

    static = (
        ("evaluator", evaluator),
        ("derive", table.derive),
        ("names", names),
        ("keep", keep),
        ("lengths", plan.lengths),
        ("n_cat", layout.n_cat),
        ("dtype", np_dtype.name),
    )
    signature, spare = _block_buffers(layout, devices)

    def dispatch(device, starts):
        starts = jax.device_put(np.array(starts, dtype=np.int64), device)
        recycled = spare[device].pop()
        elasticity = recycled.pop("elasticity", None)
        block = _kernel(recycled, starts, sizes[device], *on[device], pre_on[device], static=static)
        if keys:
            block["elasticity"] = _elasticity_kernel(
                elasticity, starts, sizes[device], *on[device], static=static + (("keys", keys),)
            )
        return block

    def trimmed(name, host, valid):
        return host[(slice(None),) * (len(layout.outputs[name][0]) + plan.split) + (slice(0, valid),)]

    def deliver(pool, block_id, where, valid, host):
        if sink is not None:
            sink.block(block_id, where, {name: trimmed(name, host[name], valid) for name in host})
            return
        lead = {name: (slice(None),) * len(layout.outputs[name][0]) for name in host}

        def copy(name):  # into the in-memory results
            results[name][lead[name] + where] = trimmed(name, host[name], valid)

        for copying in [pool.submit(copy, name) for name in host]:
            copying.result()

    workers = min(len(layout.outputs), os.cpu_count() or 1)
    _pipeline(plan, devices, dispatch, deliver, spare, wanted or (lambda _: True), progress, workers)
    _SPARE_BLOCKS.clear()  # keep the last grid's block buffers (a few MB) for the next run
    _SPARE_BLOCKS[signature] = spare
    if sink is None:  # profile dims flattened to the K rows of the table
        for k, (lead, trail, _) in layout.outputs.items():
            results[k] = results[k].reshape(lead + (n_rows,) + dims[layout.n_cat :] + trail)
    return results


def _pipeline(plan, devices, dispatch, deliver, spare, wanted, progress, workers) -> None:
    """Compute the wanted blocks of `plan`, PIPELINE_DEPTH ahead per device, and `deliver` each in order.

    `dispatch(device, starts)` starts a block's computation (asynchronous); the oldest block is copied to
    the host by a pool of `workers` threads and handed to `deliver(pool, block_id, where, valid, host)`;
    its XLA buffers then go back to `spare[device]` to be donated to a later call.
    """
    start_time = time.perf_counter()
    todo = ((i, b) for i, b in enumerate(plan.blocks()) if wanted(i))
    total = sum(1 for i in range(plan.n_blocks) if wanted(i))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = collections.deque()
        for done in range(1, total + 1):
            while len(pending) < PIPELINE_DEPTH * len(devices):  # XLA computes these meanwhile
                block_id, (starts, where, valid) = next(todo, (None, (None, None, None)))
                if block_id is None:
                    break
                device = devices[block_id % len(devices)]
                pending.append((device, dispatch(device, starts), block_id, where, valid))
            device, block, block_id, where, valid = pending.popleft()
            host = dict(zip(block, pool.map(np.asarray, block.values())))
            deliver(pool, block_id, where, valid, host)
            spare[device].append(block)
            if progress is not None:
                progress(done, total, time.perf_counter() - start_time)


# ---------------------------------------------------------------------------------------------
# Evaluations under joint draws of the uncertain parameters (Monte Carlo, sensitivity designs)


@partial(
    jax.jit,
    static_argnames=("evaluator", "derive", "names", "outputs", "lengths", "gradient"),
)
def _sample_kernel(
    starts,
    sizes,
    theta,
    axis_values,
    params,
    extras,
    multipliers,
    index,
    *,
    evaluator,
    derive,
    names,
    outputs,
    lengths,
    gradient=False,
):
    """One block of the grid under every draw: θ_key of row k is multiplied by multipliers[s, index[key][k]]
    (the last column is 1: a certain value): the (S, *block) values, or with `gradient` their derivatives
    with respect to each multiplier column, (S, P + 1, *block)."""
    idx = _block_indices(starts, sizes, lengths)
    theta_b, axis_b, _ = _gather(theta, axis_values, None, starts, sizes, lengths)
    index_b = {k: v[idx[0]] for k, v in index.items()}

    def one(m):
        th = {k: v * m[index_b[k]] if k in index_b else v for k, v in theta_b.items()}
        pre = None
        if evaluator.pre is not None and not gradient:  # n_max on the block's (profile, first axis) sub-grid
            pre = _evaluate(evaluator.pre, derive, names[:1], th, axis_b[:1], params, extras, False)
        # gradients: of the continuous relaxation (every floor removed), as the elasticities
        out = _evaluate(evaluator, derive, names, th, axis_b, params, extras, gradient, pre)
        return {k: jnp.broadcast_to(out[k], tuple(lengths)).astype(jnp.float64) for k in outputs}

    if gradient:  # ∂out/∂multiplier of every column, per draw: (S, P + 1, *block)
        jac = jax.vmap(jax.jacfwd(one))(multipliers)  # {out: (S, *block, P + 1)}
        return {k: jnp.moveaxis(v, -1, 1) for k, v in jac.items()}
    return jax.vmap(one)(multipliers)


def sample_statistics(y: np.ndarray, quantiles) -> tuple:
    """NaN-aware mean, standard deviation and quantiles (linear interpolation, numpy's default) over
    axis 0, on the host: NumPy sorts the draws of a block far faster than XLA's CPU sort."""
    finite = np.isfinite(y)
    n = finite.sum(axis=0)
    safe_n = np.maximum(n, 1)
    mean = np.where(finite, y, 0.0).sum(axis=0) / safe_n
    std = np.sqrt(np.where(finite, (y - mean) ** 2, 0.0).sum(axis=0) / safe_n)
    ordered = np.sort(np.where(finite, y, np.inf), axis=0)  # NaN draws last
    pos = np.asarray(quantiles).reshape((-1,) + (1,) * (y.ndim - 1)) * (safe_n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, safe_n - 1)
    frac = pos - lo
    low, high = np.take_along_axis(ordered, lo, axis=0), np.take_along_axis(ordered, hi, axis=0)
    q = low + np.where(frac > 0, (high - low) * frac, 0.0)
    empty = n == 0
    return np.where(empty, np.nan, mean), np.where(empty, np.nan, std), np.where(empty, np.nan, q)


def run_samples(
    table: ProfileTable,
    axes: dict,
    params: dict,
    evaluator: Evaluator,
    multipliers: np.ndarray,
    index: dict,
    *,
    outputs: tuple,
    quantiles=(0.05, 0.5, 0.95),
    reduce: bool = True,
    gradient: bool = False,
    chunk_points=1 << 18,
    extras=(),
    progress=None,
) -> dict:
    """Evaluate `outputs` on the grid (K, *axes) under each row of `multipliers` (S draws × P+1 columns).

    `index` maps θ keys to (K,) column indices into `multipliers` (P: the all-ones column). With
    `reduce`, returns `<out>_mean`, `<out>_std` (dims) and `<out>_quantile` ((Q,) + dims), the
    sample dimension never materialised for the whole grid; else `<out>` with shape (S,) + dims
    (with `gradient`, (S, P + 1) + dims: the derivatives with respect to the multipliers).
    A block holds about chunk_points / S grid points (each evaluated S times); the results do not
    depend on `chunk_points`.
    """
    names = tuple(axes)
    dims = (len(next(iter(table.theta.values()))),) + tuple(len(v) for v in axes.values())
    theta, axis_values, params_c, extras_c = _device_inputs(table, axes, params, extras)
    sizes = jnp.asarray(np.array(dims, dtype=np.int64))
    m = jnp.asarray(np.asarray(multipliers, dtype=np.float64))
    index_c = {k: jnp.asarray(_pad(np.asarray(v, dtype=np.int32))) for k, v in index.items()}
    n_samples = m.shape[0]
    per_point = n_samples * (m.shape[1] if gradient else 1)  # evaluations held per grid point
    plan = Plan.make(dims, max(1, chunk_points // per_point))
    lengths = (1,) * plan.split + (plan.block,) + tuple(dims[plan.split + 1 :])
    static = dict(
        evaluator=evaluator, derive=table.derive, names=names, outputs=tuple(outputs), lengths=lengths
    )
    inputs = (sizes, theta, axis_values, params_c, extras_c, m, index_c)

    def dispatch(starts):
        return _sample_kernel(np.array(starts, dtype=np.int64), *inputs, gradient=gradient, **static)

    def store(name, values, where, valid):
        lead = values.ndim - len(dims)  # the quantile, sample (and parameter) dims
        if name not in results:
            results[name] = np.empty(values.shape[:lead] + dims, dtype=np.float64)
        trim = (slice(None),) * (lead + plan.split) + (slice(0, valid),)
        results[name][(slice(None),) * lead + where] = values[trim]

    results = {}
    start_time = time.perf_counter()
    blocks = list(plan.blocks())
    pending = dispatch(blocks[0][0]) if blocks else None
    for done, (_, where, valid) in enumerate(blocks):
        block = pending
        if done + 1 < len(blocks):  # XLA computes the next block while NumPy reduces this one
            pending = dispatch(blocks[done + 1][0])
        for name, values in block.items():
            values = np.asarray(values)
            if reduce and not gradient:
                mean, std, q = sample_statistics(values, quantiles)
                store(f"{name}_mean", mean, where, valid)
                store(f"{name}_std", std, where, valid)
                store(f"{name}_quantile", q, where, valid)
            else:
                store(name, values, where, valid)
        if progress is not None:
            progress(done + 1, plan.n_blocks, time.perf_counter() - start_time)
    return results
