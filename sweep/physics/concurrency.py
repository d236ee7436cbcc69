"""KV-cache concurrency model (docs/models.md §1).

    n_max(C) = max(min_concurrency,
                   min( floor(kv_blocks / ceil(C / blk)),  floor(max_slots · C_cal / C) ))

With local-attention layers (sliding window or chunked; docs/models.md §6) a sequence holds its
global layers' blocks for all C tokens and its local layers' blocks for at most the window w
(vLLM's hybrid KV cache frees the blocks that leave the window), so in units of whole-model blocks

    blocks per sequence = (1 − s)·ceil(C / blk) + s·min(ceil(C / blk), ceil(w / blk) + 1)

with s the local layers' share of the KV bytes per token (ceil(C / blk) when s = 0).
The second term is the compute cap of calibrated profiles (omitted where max_slots <= 0).
`min_concurrency` reproduces the paper planner's clamp of non-fitting models to one sequence
(0 = no clamp). Because n_max·C is constant, throughput at full concurrency falls as 1/C.
A point is feasible where at least one sequence fits before that clamp (`fitting_concurrency` >= 1):
the weights leave KV blocks, and one sequence of C tokens fits in them.
"""

import jax.numpy as jnp

from sweep.physics import intmath as _intmath
from sweep.physics.profile import Profile


def max_concurrency(profile: Profile, context_tokens, *, relaxed: bool = False):
    """Sequences of `context_tokens` tokens that fit at once (integer-valued float array), at least
    the profile's `min_concurrency`."""
    return concurrency_limits(profile, context_tokens, relaxed=relaxed)[0]


def concurrency_limits(profile: Profile, context_tokens, *, relaxed: bool = False) -> tuple:
    """(n_max, feasible): `max_concurrency` and where a sequence really fits (`fits`), from one
    `fitting_concurrency`."""
    n_fit = fitting_concurrency(profile, context_tokens, relaxed=relaxed)
    return jnp.maximum(n_fit, profile.min_concurrency), fits(n_fit)


def fits(n_fit):
    """Where at least one sequence fits (`fitting_concurrency` >= 1), whatever `min_concurrency` says."""
    return n_fit >= 1


def fitting_concurrency(profile: Profile, context_tokens, *, relaxed: bool = False):
    """Sequences of `context_tokens` tokens that really fit at once: n_max before the `min_concurrency`
    clamp (0 where the weights leave no KV blocks or one sequence needs more blocks than there are)."""
    p = profile
    full_blocks = _intmath.ceil_div(context_tokens, p.kv_block_tokens, relaxed=relaxed)
    hybrid_blocks = blocks_per_sequence(p, context_tokens, relaxed=relaxed)
    hybrid = p.kv_window_share > 0  # fractional blocks per sequence: a real quotient, floored
    safe_hybrid_blocks = jnp.where(hybrid & (hybrid_blocks > 0), hybrid_blocks, 1.0)
    by_kv = jnp.where(
        hybrid,
        _intmath.floor(p.kv_blocks / safe_hybrid_blocks, relaxed=relaxed),
        _intmath.floor_div(p.kv_blocks, full_blocks, relaxed=relaxed),
    )
    by_kv = jnp.maximum(by_kv, 0.0)
    slot_tokens = p.max_slots * p.calibration_context
    by_slots = _intmath.floor_div(slot_tokens, context_tokens, relaxed=relaxed)
    return jnp.where(p.max_slots > 0, jnp.minimum(by_kv, by_slots), by_kv)


def exceeds_model_context(profile: Profile, context_tokens):
    """True where the context window is beyond the model's maximum (`max_context_tokens`; 0 = unknown)."""
    limit = profile.max_context_tokens
    return (limit > 0) & (context_tokens > limit)


def blocks_per_sequence(profile: Profile, context_tokens, *, relaxed: bool = False):
    """Whole-model KV blocks one sequence of `context_tokens` tokens holds (see the module docstring)."""
    p = profile
    full = _intmath.ceil_div(context_tokens, p.kv_block_tokens, relaxed=relaxed)
    window = _intmath.ceil_div(p.kv_window_tokens, p.kv_block_tokens, relaxed=relaxed) + 1.0
    s = p.kv_window_share
    return jnp.where(s > 0, (1.0 - s) * full + s * jnp.minimum(full, window), full)
