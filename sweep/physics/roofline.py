"""Roofline decode throughput (docs/models.md §1; the overhead terms: docs/calibration.md §1).

One decode iteration of a continuous batch of n sequences of mean length L̄ takes

    τ(n, L̄) = overheads(n) + max( W_s + H_s · (L̄ / C_cal) · n ,  flops_per_token · N / peak_flops )
    overheads(n) = t_step + n·t_seq + comm_time + N·comm_time_per_token,   N = n·(1 + r)

(memory time: weights streamed once plus each sequence's KV cache; compute time: the FLOP
roofline over the N tokens through the linear layers, r prefill tokens interleaved per output
token; zero for calibrated profiles). Output tokens per second = n / τ. The overheads are zero
unless a calibration switches them on, so τ is then exactly the paper's roofline.
"""

import jax.numpy as jnp

from sweep.physics.profile import Profile


def kv_time_s(profile: Profile, concurrency, mean_length_tokens):
    """H_eff · n: KV-cache read time of one iteration (s)."""
    return profile.kv_time_per_seq_s * (mean_length_tokens / profile.calibration_context) * concurrency


def memory_time_s(profile: Profile, concurrency, mean_length_tokens):
    """W_s + H_s·(L̄/C_cal)·n: HBM-bound iteration time (s)."""
    return profile.weight_time_s + kv_time_s(profile, concurrency, mean_length_tokens)


def linear_tokens(profile: Profile, concurrency):
    """N = n·(1 + r): tokens through the linear layers per iteration (decode plus interleaved prefill)."""
    return concurrency * (1.0 + profile.prefill_tokens_per_output)


def compute_time_s(profile: Profile, concurrency):
    """flops_per_token · N / peak_flops: FLOP-bound iteration time (s)."""
    return linear_tokens(profile, concurrency) * (profile.flops_per_token / profile.peak_flops)


def overhead_time_s(profile: Profile, concurrency):
    """t_step + n·t_seq + comm_time + N·comm_time_per_token: time outside the roofline (s)."""
    return (
        profile.step_overhead_s
        + concurrency * profile.sequence_overhead_s
        + profile.comm_time_s
        + linear_tokens(profile, concurrency) * profile.comm_time_per_token_s
    )


def iteration_time_s(profile: Profile, concurrency, mean_length_tokens):
    """τ(n, L̄) = overheads + max(memory time, compute time) in seconds."""
    return overhead_time_s(profile, concurrency) + jnp.maximum(
        memory_time_s(profile, concurrency, mean_length_tokens), compute_time_s(profile, concurrency)
    )


def compute_bound(profile: Profile, concurrency, mean_length_tokens):
    """1 where the FLOP roofline sets the iteration time, else 0 (memory bound)."""
    return (
        compute_time_s(profile, concurrency) > memory_time_s(profile, concurrency, mean_length_tokens)
    ).astype(jnp.int8)
