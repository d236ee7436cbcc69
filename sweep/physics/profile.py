"""The serving-profile parameter pytree: everything the three models need, as a struct of arrays.

One `Profile` describes one (GPU, model, serving config) setup — or, with array-valued fields,
a whole table of them: every field broadcasts, so a profile table of K setups is a `Profile`
whose fields have shape (K,) (or any shape that broadcasts against the grid).

Two kinds of profile produce this same pytree:
- *calibrated* profiles (docs/models.md §2, catalog `sweep/data/profiles.toml`): fields given directly;
- *roofline* (first-principles) profiles: fields derived from a hardware spec and a model
  architecture by pure JAX functions, so gradients flow back to the hardware specs.

Power model (`power_model` field, 0, 1 or 2, selected with `jnp.where`, never Python branching):
- 0 = logistic in batch (docs/models.md §1): uses `power_idle_w`, `power_nominal_w`, `power_k`, `power_x0`;
- 1 = TDP fraction (docs/models.md §2): P = tdp_w·(power_idle_fraction + power_dynamic_fraction·
  min(1, kv_frac + compute_frac)), with `power_weight_time_s`, `flops_per_token`, `peak_flops`;
- 2 = utilization (docs/calibration.md §1): P = tdp_w·(p_idle + (1 − p_idle)·clip(a·u_mem + b·u_cmp, 0, 1)).

Batch-dependent weight traffic (docs/models.md §6): an MoE step streams the dense part `weight_time_s`
plus the expected share 1 − (1 − q)^N of the routed experts a GPU holds (`expert_weight_time_s`), N the
tokens of the step; local-attention layers (`kv_window_*`) hold and read at most their window.

The last eight fields are the calibrated decode-step mechanisms (docs/calibration.md §1); their
defaults (zero) leave the iteration time and power exactly as the paper's equations give them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sweep.vocabulary import POWER_MODELS

LOGISTIC_POWER = POWER_MODELS["logistic"]
TDP_FRACTION_POWER = POWER_MODELS["tdp_fraction"]
UTILIZATION_POWER = POWER_MODELS["utilization"]
LOGISTIC_FIELDS = (
    "power_idle_w",
    "power_nominal_w",
    "power_k",
    "power_x0",
)  # the logistic curve's parameters


class Profile(NamedTuple):
    """Struct-of-arrays serving profile: every field an array, all of one broadcastable shape.

    Units are in the names; counts are in tokens, blocks or GPUs. A JAX pytree (a NamedTuple), so
    it goes through `jit`, `vmap` and `grad`. Build one with `sweep.profile_for` (first
    principles) or from `sweep.profile_catalog()` entries; the engine stacks one row per setup.

    >>> sweep.Profile._fields[:2]
    ('weight_time_s', 'kv_time_per_seq_s')
    """

    weight_time_s: jax.Array  # W_s: weight-streaming time per decode iteration (s)
    kv_time_per_seq_s: jax.Array  # H_s: KV-read time per sequence at calibration_context tokens (s)
    calibration_context: jax.Array  # C_cal (tokens); integer-valued
    kv_block_tokens: jax.Array  # KV block size blk (tokens); integer-valued
    kv_blocks: jax.Array  # KV-cache budget in blocks; integer-valued
    max_slots: jax.Array  # compute cap: sequences at C_cal; <= 0 means no cap; integer-valued
    tp: jax.Array  # GPUs per instance (tensor × data parallel; the paper: TP); integer-valued
    power_model: jax.Array  # LOGISTIC_POWER or TDP_FRACTION_POWER
    power_idle_w: jax.Array  # logistic P_idle per GPU (W)
    power_nominal_w: jax.Array  # logistic P_nom per GPU (W)
    power_k: jax.Array  # logistic steepness (1 / log2-batch unit)
    power_x0: jax.Array  # logistic midpoint (log2 batch)
    tdp_w: jax.Array  # TDP per GPU (W), TDP-fraction power model
    power_idle_fraction: jax.Array  # idle share of TDP (paper planner: 0.43)
    power_dynamic_fraction: jax.Array  # dynamic share of TDP at full activity (paper planner: 0.43)
    power_weight_time_s: jax.Array  # weight time used by the power model's activity fractions (s)
    flops_per_token: jax.Array  # decode FLOPs per output token per GPU (2·active_params/TP)
    peak_flops: jax.Array  # dense tensor FLOP/s per GPU at the compute dtype
    prefill_chunk_tokens: jax.Array  # chunked-prefill size (tokens per iteration); integer-valued
    price_per_gpu_hour: jax.Array  # $ per GPU-hour
    min_concurrency: jax.Array  # floor on n_max (paper planner clamps roofline profiles to 1); 0 = none
    max_context_tokens: jax.Array  # the model's maximum context (tokens); 0 = unknown (no limit applied)
    expert_weight_time_s: jax.Array  # time to stream every routed expert one GPU holds, all MoE layers (s)
    expert_touch_probability: jax.Array  # q = k/E: chance one token routes to a given expert; 0 = dense
    kv_window_tokens: jax.Array  # tokens a local-attention layer keeps (window or chunk); 0 = none
    kv_window_share: jax.Array  # share of the KV bytes per token in local-attention layers
    kv_window_read_tokens: jax.Array  # mean tokens a local-attention layer reads per step, at most
    step_overhead_s: jax.Array  # t_step: fixed time per decode step (s)
    sequence_overhead_s: jax.Array  # t_seq: time per running sequence per step (s)
    comm_time_s: jax.Array  # tensor-parallel all-reduce latency per step, 2L·t_ar (s)
    comm_time_per_token_s: jax.Array  # all-reduce transfer time per token through the linears (s)
    attention_latency_s: (
        jax.Array
    )  # latency-bound attention: step time per token of mean context, all layers (s)
    prefill_tokens_per_output: jax.Array  # r: prompt tokens prefilled per output token (interleaved)
    power_memory_coefficient: jax.Array  # a: utilization power per unit memory activity
    power_compute_coefficient: jax.Array  # b: utilization power per unit compute activity

    @classmethod
    def from_mapping(cls, values: dict, dtype=None) -> Profile:
        """Build a profile from a mapping with every field (those of FIELD_DEFAULTS may be left out);
        values become arrays of `dtype`."""
        dtype = dtype or jnp.result_type(float)
        values = {**FIELD_DEFAULTS, **values}
        return cls(**{f: jnp.asarray(values[f], dtype=dtype) for f in cls._fields})


FIELD_DEFAULTS = {  # fields a mapping may leave out: no model context limit, no experts, global attention
    "max_context_tokens": 0.0,
    "expert_weight_time_s": 0.0,
    "expert_touch_probability": 0.0,
    "kv_window_tokens": 0.0,
    "kv_window_share": 0.0,
    "kv_window_read_tokens": 0.0,
}


# Fields that are continuous physical parameters (elasticities are reported for these when a
# profile is given directly, i.e. calibrated or inline profiles).
CONTINUOUS_FIELDS = (
    "weight_time_s",
    "kv_time_per_seq_s",
    "calibration_context",
    "kv_block_tokens",
    "kv_blocks",
    "max_slots",
    "power_idle_w",
    "power_nominal_w",
    "power_k",
    "power_x0",
)

MECHANISM_FIELDS = Profile._fields[-8:]  # the calibrated decode-step mechanisms; 0 = off

# Defaults for fields a calibrated (logistic-power) profile does not need.
LOGISTIC_DEFAULTS = {
    "power_model": LOGISTIC_POWER,
    "tdp_w": 0.0,
    "power_idle_fraction": 0.0,
    "power_dynamic_fraction": 0.0,
    "power_weight_time_s": 0.0,
    "flops_per_token": 0.0,
    "peak_flops": 1.0,
    "min_concurrency": 0,
    **FIELD_DEFAULTS,
    **dict.fromkeys(MECHANISM_FIELDS, 0.0),
}
