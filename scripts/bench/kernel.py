"""Kernel section: the compiled kernel of sweep.run alone, without writing grid-sized outputs."""

from __future__ import annotations

import math
import time

import numpy as np

from bench.harness import grid_axes


def bench_kernel(args):
    """The compiled kernel alone, block after block (outputs stay in XLA's buffers): the part of
    sweep.run that is not writing the grid-sized output arrays."""
    import jax
    import jax.numpy as jnp

    from sweep.grid import engine as _engine
    from sweep.grid.evaluators import InstanceEvaluator
    from sweep.grid.spec import parse
    from sweep.grid.tables import CalibratedDerive, calibrated_table

    contexts, batches = grid_axes(args.contexts, args.batches)
    spec = parse(
        {
            "convention": "paper",
            "axes": {"gpu": ["H100", "B200"], "model": ["llama-3.1-70b"], "context": [1024], "batch": [1]},
        }
    )
    theta = {
        k: jnp.asarray(_engine._pad(np.asarray(v, dtype=np.float64)))
        for k, v in calibrated_table(spec).theta.items()
    }
    axes = tuple(jnp.asarray(_engine._pad(a.astype(np.float64))) for a in (contexts, batches))
    params = {"mean_length_fraction": jnp.asarray(0.5), "load": jnp.asarray(1.0)}
    dims = (2, contexts.size, batches.size)
    sizes = jnp.asarray(np.array(dims, dtype=np.int64))
    model, derive = InstanceEvaluator("paper"), CalibratedDerive()
    pre = _engine._pre_kernel(
        theta, axes[:1], params, (), evaluator=model.pre, derive=derive, names=("context",)
    )
    plan = _engine.Plan.make(dims, args.chunk_points)
    lengths = plan.lengths
    keep = tuple(model.outputs)
    static = (
        ("evaluator", model),
        ("derive", derive),
        ("names", ("context", "batch")),
        ("keep", keep),
        ("lengths", lengths),
        ("n_cat", 1),
        ("dtype", "float64"),
    )
    spare = [{k: jnp.zeros(lengths, model.outputs[k][0] or np.float64) for k in keep} for _ in range(2)]

    def once():  # as in sweep.run, two sets of block buffers are recycled (donated)
        for starts, _, _ in plan.blocks():
            starts = np.array(starts, dtype=np.int64)
            out = _engine._kernel(spare.pop(0), starts, sizes, theta, axes, params, (), pre, static=static)
            spare.append(out)
        jax.block_until_ready(out)

    once()
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return {"points": math.prod(dims), "seconds": min(times)}
