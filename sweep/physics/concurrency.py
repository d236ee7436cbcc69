"""KV-cache concurrency model (docs/models.md §1).

    n_max(C) = max(min_concurrency,
                   min( floor(kv_blocks / ceil(C / blk)),  floor(max_slots · C_cal / C) ))

The second term is the compute cap of calibrated profiles (omitted where max_slots <= 0).
`min_concurrency` reproduces the paper planner's clamp of non-fitting models to one sequence
(0 = no clamp). Because n_max·C is constant, throughput at full concurrency falls as 1/C.
"""

import jax.numpy as jnp

from sweep.physics import intmath as _intmath
from sweep.physics.profile import Profile


def max_concurrency(profile: Profile, context_tokens, *, relaxed: bool = False):
    """Sequences of `context_tokens` tokens that fit at once (integer-valued float array)."""
    p = profile
    blocks_per_seq = _intmath.ceil_div(context_tokens, p.kv_block_tokens, relaxed=relaxed)
    by_kv = _intmath.floor_div(p.kv_blocks, blocks_per_seq, relaxed=relaxed)
    by_kv = jnp.maximum(by_kv, 0.0)
    slot_tokens = p.max_slots * p.calibration_context
    by_slots = _intmath.floor_div(slot_tokens, context_tokens, relaxed=relaxed)
    n_max = jnp.where(p.max_slots > 0, jnp.minimum(by_kv, by_slots), by_kv)
    return jnp.maximum(n_max, p.min_concurrency)


def exceeds_model_context(profile: Profile, context_tokens):
    """True where the context window is beyond the model's maximum (`max_context_tokens`; 0 = unknown)."""
    limit = profile.max_context_tokens
    return (limit > 0) & (context_tokens > limit)
