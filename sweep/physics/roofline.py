"""Roofline decode throughput (docs/models.md §1; the overhead terms: docs/calibration.md §1).

One decode iteration of a continuous batch of n sequences of mean length L̄ takes

    τ(n, L̄) = overheads(n) + max( W(n) + H_s · (L̄_eff / C_cal) · n ,  flops_per_token · n / peak_flops )
              + flops_per_token · n·r / peak_flops
    overheads(n) = t_step + n·t_seq + comm_time + N·comm_time_per_token + t_attn·L̄_eff,   N = n·(1 + r)
    W(n) = W_s + W_E · (1 − (1 − q)^n)                       (docs/models.md §6)
    L̄_eff = (1 − s)·L̄ + s·min(L̄, w_read)                  (s: KV share of local-attention layers)

This module is the one place the step-time law lives: the instance chain, the fleet sizing, the
calibration's row model, Monte Carlo and Sobol all call it. W(N) is the batch-dependent weight
traffic of a mixture-of-experts step: the dense part W_s (attention, dense and shared layers, head)
plus the expected share of the W_E routed-expert bytes one GPU holds that the step's n tokens touch
under uniform routing (each token picks k of E experts, q = k/E; 1 − (1 − q)^n is continuous in n,
so gradients, roots and streaming keep working). Dense profiles have W_E = 0 and calibrated and
`paper` profiles leave every new field at 0, so τ is then exactly the paper's law.

(memory time: weights streamed once plus each sequence's KV cache; compute time: the FLOP
roofline over the n decode tokens through the linear layers; the r prefill tokens interleaved per
output token run as compute-bound chunks beside the decode steps, so they add to the mean step time
τ but not to the median inter-token latency, the decode step alone (`decode_time_s`); zero for
calibrated profiles). Output tokens per second = n / τ. The overheads are zero
unless a calibration switches them on, so τ is then exactly the paper's roofline.
"""

import jax.numpy as jnp

from sweep.physics.profile import Profile


def windowed_tokens(profile: Profile, tokens, window_tokens):
    """(1 − s)·tokens + s·min(tokens, window): tokens per sequence, local-attention layers capped at the
    window (s: their share of the KV bytes; `tokens` itself where s = 0)."""
    s = profile.kv_window_share
    capped = jnp.minimum(tokens, window_tokens)
    return jnp.where(s > 0, (1.0 - s) * tokens + s * capped, tokens)


def read_length_tokens(profile: Profile, mean_length_tokens):
    """L̄_eff = (1 − s)·L̄ + s·min(L̄, w_read): mean tokens a step reads per sequence per layer (L̄ if s = 0)."""
    return windowed_tokens(profile, mean_length_tokens, profile.kv_window_read_tokens)


def kv_time_s(profile: Profile, concurrency, mean_length_tokens):
    """H_eff · n: KV-cache read time of one iteration (s)."""
    read_tokens = read_length_tokens(profile, mean_length_tokens)
    return profile.kv_time_per_seq_s * (read_tokens / profile.calibration_context) * concurrency


def expert_share(profile: Profile, concurrency):
    """1 − (1 − q)^n: expected share of a GPU's routed experts that a decode step of n tokens touches.

    Uniform routing, each token to k of E experts (q = k/E); 0 for dense profiles (q = 0), min(N, 1)
    where q = 1. Computed as −expm1(N·log1p(−q)) with a double where, so gradients stay finite.
    """
    q = profile.expert_touch_probability
    tokens = concurrency  # the decode step's tokens; prefill chunks are compute-bound steps of their own
    inside = (q > 0) & (q < 1)
    safe_q = jnp.where(inside, q, 0.5)
    share = -jnp.expm1(tokens * jnp.log1p(-safe_q))
    return jnp.where(inside, share, jnp.where(q >= 1, jnp.clip(tokens, 0.0, 1.0), 0.0))


def expert_time_s(profile: Profile, concurrency):
    """W_E · (1 − (1 − q)^N): routed-expert streaming time of one step (s); 0 for dense profiles."""
    return profile.expert_weight_time_s * expert_share(profile, concurrency)


def memory_time_s(profile: Profile, concurrency, mean_length_tokens, *, expert_s=None):
    """W(n) + H_s·(L̄_eff/C_cal)·n: HBM-bound decode step time (s).

    `expert_s` may give `expert_time_s(profile, concurrency)` already evaluated (the instance chain
    evaluates it on small sub-grids, as it does the logistic power; `sweep.physics.instance`).
    """
    if expert_s is None:
        expert_s = expert_time_s(profile, concurrency)
    return profile.weight_time_s + expert_s + kv_time_s(profile, concurrency, mean_length_tokens)


def linear_tokens(profile: Profile, concurrency):
    """N = n·(1 + r): tokens through the linear layers per iteration (decode plus interleaved prefill)."""
    return concurrency * (1.0 + profile.prefill_tokens_per_output)


def compute_time_s(profile: Profile, concurrency):
    """flops_per_token · N / peak_flops: FLOP-bound iteration time (s)."""
    return linear_tokens(profile, concurrency) * (profile.flops_per_token / profile.peak_flops)


def overhead_time_s(profile: Profile, concurrency, mean_length_tokens):
    """t_step + n·t_seq + comm_time + N·comm_time_per_token + t_attn·L̄_eff: time outside the roofline (s).

    t_attn·L̄_eff is latency-bound decode attention (docs/calibration.md §1): a step's attention kernels
    walk each sequence's context at a rate that does not improve with the batch (0 unless calibrated).
    """
    return (
        profile.step_overhead_s
        + concurrency * profile.sequence_overhead_s
        + profile.comm_time_s
        + linear_tokens(profile, concurrency) * profile.comm_time_per_token_s
        + profile.attention_latency_s * read_length_tokens(profile, mean_length_tokens)
    )


def decode_compute_time_s(profile: Profile, concurrency):
    """flops_per_token · n / peak_flops: FLOP-bound time of the step's n decode tokens (s)."""
    return concurrency * (profile.flops_per_token / profile.peak_flops)


def prefill_time_s(profile: Profile, concurrency):
    """flops_per_token · n·r / peak_flops: the interleaved prefill chunks, compute-bound (s); 0 when r = 0."""
    return concurrency * profile.prefill_tokens_per_output * (profile.flops_per_token / profile.peak_flops)


def decode_time_s(profile: Profile, concurrency, mean_length_tokens, *, expert_s=None):
    """overheads + max(memory time, decode compute time): one decode step, the median ITL (s)."""
    memory_s = memory_time_s(profile, concurrency, mean_length_tokens, expert_s=expert_s)
    return overhead_time_s(profile, concurrency, mean_length_tokens) + jnp.maximum(
        memory_s, decode_compute_time_s(profile, concurrency)
    )


def iteration_time_s(profile: Profile, concurrency, mean_length_tokens, *, expert_s=None):
    """τ(n, L̄): the decode step plus its share of interleaved prefill, the mean step time (s)."""
    decode_s = decode_time_s(profile, concurrency, mean_length_tokens, expert_s=expert_s)
    return decode_s + prefill_time_s(profile, concurrency)


def compute_bound(profile: Profile, concurrency, mean_length_tokens, *, expert_s=None):
    """1 where the FLOP roofline sets the decode step time, else 0 (memory bound)."""
    memory_s = memory_time_s(profile, concurrency, mean_length_tokens, expert_s=expert_s)
    return (decode_compute_time_s(profile, concurrency) > memory_s).astype(jnp.int8)
