"""Roofline decode throughput (docs/models.md §1).

One decode iteration of a continuous batch of n sequences of mean length L̄ takes

    τ(n, L̄) = max( W_s + H_s · (L̄ / C_cal) · n ,  flops_per_token · n / peak_flops )

(memory time: weights streamed once plus each sequence's KV cache; compute time: the FLOP
roofline, zero for calibrated profiles). Output tokens per second = n / τ.
"""

import jax.numpy as jnp

from sweep.physics.profile import Profile


def kv_time_s(profile: Profile, concurrency, mean_length_tokens):
    """H_eff · n: KV-cache read time of one iteration (s)."""
    return profile.kv_time_per_seq_s * (mean_length_tokens / profile.calibration_context) * concurrency


def memory_time_s(profile: Profile, concurrency, mean_length_tokens):
    """W_s + H_s·(L̄/C_cal)·n: HBM-bound iteration time (s)."""
    return profile.weight_time_s + kv_time_s(profile, concurrency, mean_length_tokens)


def compute_time_s(profile: Profile, concurrency):
    """flops_per_token · n / peak_flops: FLOP-bound iteration time (s)."""
    return concurrency * (profile.flops_per_token / profile.peak_flops)


def iteration_time_s(profile: Profile, concurrency, mean_length_tokens):
    """τ(n, L̄) = max(memory time, compute time) in seconds."""
    return jnp.maximum(
        memory_time_s(profile, concurrency, mean_length_tokens), compute_time_s(profile, concurrency)
    )


def compute_bound(profile: Profile, concurrency, mean_length_tokens):
    """1 where the FLOP roofline sets the iteration time, else 0 (memory bound)."""
    return (
        compute_time_s(profile, concurrency) > memory_time_s(profile, concurrency, mean_length_tokens)
    ).astype(jnp.int8)
