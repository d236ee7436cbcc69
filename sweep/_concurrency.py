"""KV-cache concurrency model (PAPER.md §1).

    n_max(C) = max(min_concurrency,
                   min( floor(kv_blocks / ceil(C / blk)),  floor(max_slots · C_cal / C) ))

The second term is the compute cap of calibrated profiles (omitted where max_slots <= 0).
`min_concurrency` reproduces the paper planner's clamp of non-fitting models to one sequence
(0 = no clamp). Because n_max·C is constant, throughput at full concurrency falls as 1/C.
"""

import jax.numpy as jnp

from sweep import _intmath
from sweep._profile import Profile


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


def concurrency(max_concurrency_seqs, batch, load=1.0, *, relaxed: bool = False):
    """Sequences in flight: min(batch, n_max); batch <= 0 means "max", i.e. floor(load · n_max).

    `load` (default 1) is the utilisation ρ at which an instance runs when batch is "max";
    the paper's Table 4 uses ρ = 0.85 with n_act = int(0.85 · n_max).
    """
    at_load = _intmath.floor(load * max_concurrency_seqs, relaxed=relaxed)
    return jnp.where(batch <= 0, at_load, jnp.minimum(batch, max_concurrency_seqs))
