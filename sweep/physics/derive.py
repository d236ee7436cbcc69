"""First-principles ("roofline") serving profiles: GPU spec × model architecture × serving config.

`derive_profile(gpu, model, serving, convention=...)` is a pure JAX function of three dicts of
arrays (any broadcastable shapes) returning a `sweep.physics.profile.Profile`; gradients flow to every
continuous hardware spec (bandwidth, memory, FLOPS, TDP, logistic power parameters).

Conventions (docs/models.md §2 and §5):

`paper` — the paper's planner, exactly:
    W_s  = (P_paper·w / TP) / (0.80·BW) + 3 µs·L                          (dense)
    W_s  = A_nominal·w / TP / BW                                          (MoE, throughput)
    W_pow = t_kernel·(BW_ref/BW)^0.7·L + A_attn·w·L/TP / (0.80·BW) + 3 µs·L   (MoE, power only)
           A_attn = (heads + 2·kv_heads)·hd·hidden + hidden², hd = hidden/heads
    H_s  = C_cal·kv_tok / (0.80·BW) / TP,  C_cal = 4096,  kv_tok unsharded, hd = hidden/heads
    kv_blocks = (floor(u·M) − P_paper·w/TP − nccl(TP)) // (kv_tok·blk)     (FULL kv_tok)
    nccl = 392 MiB (TP ≥ 4), 342 MiB (TP 2, 3), 0 (TP 1); no slot cap; min_concurrency = 1
    power: TDP·(0.43 + 0.43·min(1, kv_frac + compute_frac)), compute_frac with 2·active/TP FLOPs
           per token at fp16 FLOPS (the planner's choice even for fp8 weights).

`physical` (default for new grids) — what vLLM allocates and what a decode step reads:
    W_s = W_pow = S / (η·BW) + t_layer·L + t_dispatch·L_moe
          S = bytes per GPU streamed per step besides the routed experts (sharded /TP): attention, dense
          layers, shared experts, router, norms + LM head; quantised linears at the weight dtype, embeddings/head/norms/
          router at 16 bit; k/v projections replicated when TP > kv_heads and MLA down-projections
          replicated on every rank (vLLM ReplicatedLinear). η = 0.80, t_layer = 3 µs
          by default (same achievable-bandwidth assumptions as the planner, but serving keys).
    kv_tok/GPU = kv_tok / min(TP, kv_heads)  (GQA: heads sharded, replicated once TP > kv_heads, as
          vLLM does; MLA: the latent cache has one 'head' and is replicated on every TP rank)
    H_s = C_cal·kv_tok/GPU / (η·BW)
    kv_blocks = (floor(u·M) − weights/GPU − reserve) // (kv_tok/GPU·blk)    [vLLM: u·total −
          weights − peak activation − non-torch memory; KV tokens = kv_blocks·blk]
    reserve (default 4 GiB/GPU): vLLM's profiled peak activation (≈1–5 GiB at
          max_num_batched_tokens 8192) plus non-torch memory (NCCL/custom all-reduce buffers,
          cuBLAS workspace, ≈0.1–3 GiB); CUDA graphs are captured after KV sizing in vLLM ≤ 0.10
          and come out of the (1 − u) headroom. Set `reserve_bytes` per grid to match a vLLM log.
    min_concurrency = 0: a model that does not fit has kv_blocks = 0 (the engine marks it infeasible).
    compute peak: fp8 FLOPS when weights are fp8, else fp16 (int4 weights run W4A16 kernels).
    decode-step mechanisms (docs/calibration.md §1; `sweep.physics.mechanisms`, neutral by default):
          peak × flops_efficiency; t_step, t_seq; comm_time = 2L·t_ar and comm_time_per_token =
          2L·2(TP−1)/TP·h·2 B/(η_link·B_link) when TP > 1; r = prefill_tokens_per_output;
          utilization power coefficients a, b (power_model 2).
    power: TDP fraction (power_model 1) by default, with the SAME weight time as throughput. The
          logistic curve (power_model 0) is available only where a SKU has measured parameters
          (H100), and those were fitted to one model/TP (70B TP8), so it does not transfer across
          models; the TDP-fraction model follows each setup's roofline activity consistently.
    FLOPs per token per GPU = 2·(streamed − routed active)/(TP·DP) + 2·routed active/(TP·DP).
    mixture of experts, expert and data parallelism, MXFP4, local attention (docs/models.md §6):
          W_s streams the dense part only; W_E = routed-expert bytes per GPU / (η·BW) and q = k/E go to
          the Profile, and `sweep.physics.roofline` streams W_E·(1 − (1 − q)^n) per step of n tokens (the
          batch-1 bound W_s + W_E·q at n = 1). An instance is DP attention ranks of TP GPUs (Profile `tp` =
          TP·DP GPUs): attention, dense and shared weights /TP on every rank, routed experts /(TP·DP)
          (EP shards whole experts, TP splits each), KV blocks DP × a rank's, H_s /DP (each rank reads
          its own sequences), all-to-all dispatch/combine per MoE layer when DP > 1. MXFP4 experts
          (`expert_weight_dtype_bytes` 4.25/8) beside 16-bit attention. Local-attention layers: their
          share s of the KV bytes, window w (capacity) and w or w/2 (read: sliding or chunked).
          The `paper` convention sets every one of these fields to 0 (its planner's rules above).

Integer floors are done in int64 (float budget → floor → int64 → integer //); `relaxed=True`
removes every floor (continuous relaxation for gradients).
"""

from __future__ import annotations

import jax.numpy as jnp

from sweep.errors import InvalidValueError
from sweep.physics import intmath
from sweep.physics.architecture import kv_bytes_per_token, kv_cache_heads, param_counts
from sweep.physics.mechanisms import MECHANISMS
from sweep.physics.profile import LOGISTIC_FIELDS, MECHANISM_FIELDS, TDP_FRACTION_POWER, Profile
from sweep.vocabulary import CONVENTIONS

GIB = 2**30
MIB = 2**20

# The paper planner's model constants (docs/models.md §2): equations, not results.
CALIBRATION_CONTEXT = 4096  # C_cal = mean_ctx of roofline profiles
PAPER_BW_EFFICIENCY = 0.80  # effective / peak HBM bandwidth
PAPER_LAYER_OVERHEAD_S = 3e-6  # per-layer launch overhead
PAPER_NCCL_BYTES_TP2 = 342 * MIB  # NCCL buffers at TP 2
PAPER_NCCL_BYTES_TP4 = 392 * MIB  # NCCL buffers at TP 4 and 8 (411 041 792 B)
PAPER_POWER_IDLE_FRACTION = 0.43
PAPER_POWER_DYNAMIC_FRACTION = 0.43

DEFAULT_RESERVE_BYTES = 4 * GIB
ACTIVATION_BYTES = 2.0  # bf16 activations in the tensor-parallel all-reduces

SERVING_DEFAULTS = {
    "tp": 1.0,
    "weight_dtype_bytes": 2.0,
    "kv_dtype_bytes": 2.0,
    "kv_block_tokens": 16.0,
    "gpu_memory_utilization": 0.90,
    "reserve_bytes": float(DEFAULT_RESERVE_BYTES),  # physical only (paper: nccl(TP))
    "bandwidth_efficiency": PAPER_BW_EFFICIENCY,  # physical only
    "layer_overhead_s": PAPER_LAYER_OVERHEAD_S,  # physical only
    "moe_dispatch_overhead_s": 0.0,  # physical only, per MoE layer per decode step
    "expert_parallel": 1.0,  # physical only: GPUs the routed experts are spread over (divides tp·dp)
    "data_parallel": 1.0,  # physical only: attention ranks, each tp GPUs with its own sequences and KV
    "expert_weight_dtype_bytes": 0.0,  # physical only: routed experts' bytes per weight; 0 = weight dtype
    "max_slots": 0.0,  # compute cap (sequences at C_cal); 0 = none
    "power_model": float(TDP_FRACTION_POWER),  # physical only (paper: TDP fraction)
    "power_idle_fraction": PAPER_POWER_IDLE_FRACTION,  # physical only
    "power_dynamic_fraction": PAPER_POWER_DYNAMIC_FRACTION,  # physical only
    "prefill_tokens_per_output": 0.0,  # physical only: r, prompt tokens interleaved per output token
    # physical only: the decode-step mechanisms at their neutral values (sweep.physics.mechanisms)
    **{k: m.neutral for k, m in MECHANISMS.items() if k not in ("bandwidth_efficiency", "layer_overhead_s")},
}
# prefill_chunk_tokens: optional serving key; default = the GPU's catalog value.


def _a(d, k, default=None):
    if k not in d and default is None:
        raise KeyError(f"derive_profile: input dict lacks required key '{k}'")
    return jnp.asarray(d[k] if k in d else default, dtype=jnp.float64)


def _paper_terms(gpu: dict, model: dict, s: dict, c_cal) -> dict:
    """The paper planner's weight/KV times, per-GPU bytes, KV divisor, reserve, compute and power terms."""
    tp, wb, kb = s["tp"], s["weight_dtype_bytes"], s["kv_dtype_bytes"]
    bw, L, moe = _a(gpu, "hbm_bandwidth_bytes_per_s"), _a(model, "n_layers"), _a(model, "n_experts") > 0
    c = param_counts(model, "paper")
    eff, ovh = PAPER_BW_EFFICIENCY, PAPER_LAYER_OVERHEAD_S
    weights_per_gpu = c["total"] * wb / tp
    dense_ws = weights_per_gpu / (eff * bw) + ovh * L
    active_nominal = jnp.where(
        _a(model, "paper_active_params", 0.0) > 0, _a(model, "paper_active_params", 0.0), c["active"]
    )
    ws = jnp.where(moe, active_nominal * wb / tp / bw, dense_ws)
    h, H, kvh = _a(model, "hidden_size"), _a(model, "n_heads"), _a(model, "n_kv_heads")
    attn_bytes_per_gpu = ((H + 2 * kvh) * (h / H) * h + h**2) * wb * L / tp
    kernel = (
        _a(model, "paper_moe_kernel_s_per_layer", 0.0)
        * (_a(model, "paper_moe_kernel_reference_bw", 1.0) / bw)
        ** _a(model, "paper_moe_kernel_bw_exponent", 0.0)
        * L
    )
    pws = jnp.where(moe, kernel + attn_bytes_per_gpu / (eff * bw) + ovh * L, ws)
    kv_tok = kv_bytes_per_token(model, kb, "paper")
    return dict(
        c=c,
        weights_per_gpu=weights_per_gpu,
        ws=ws,
        pws=pws,
        kv_tok=kv_tok,
        kv_tok_gpu=kv_tok / tp,  # what H_s reads per GPU
        kv_divisor=kv_tok,  # the planner's unsharded budget divisor
        hs=c_cal * kv_tok / (eff * bw) / tp,
        reserve=jnp.where(
            tp >= 4, float(PAPER_NCCL_BYTES_TP4), jnp.where(tp >= 2, float(PAPER_NCCL_BYTES_TP2), 0.0)
        ),
        flops_tok=2 * c["active"] / tp,
        peak=_a(gpu, "fp16_flops"),
        min_conc=1.0,
        power_model=jnp.asarray(float(TDP_FRACTION_POWER)),
        idle_frac=PAPER_POWER_IDLE_FRACTION,
        dyn_frac=PAPER_POWER_DYNAMIC_FRACTION,
        mechanisms=dict.fromkeys(MECHANISM_FIELDS, 0.0),
        gpus=tp,
        kv_ranks=1.0,
        expert_bytes=0.0,
        moe_fields=_NO_MOE_WINDOW,
    )


def _physical_terms(gpu: dict, model: dict, s: dict, c_cal) -> dict:
    """The physical convention's streamed-bytes weight time, sharded KV time, reserve, compute, power."""
    tp, dp, wb, kb = s["tp"], s["data_parallel"], s["weight_dtype_bytes"], s["kv_dtype_bytes"]
    gpus = tp * dp  # one instance: dp attention ranks of tp GPUs; the routed experts over all of them
    bw, L, moe = _a(gpu, "hbm_bandwidth_bytes_per_s"), _a(model, "n_layers"), _a(model, "n_experts") > 0
    c = param_counts(model, "physical")
    eff, ovh = s["bandwidth_efficiency"], s["layer_overhead_s"]
    lp = jnp.maximum(wb, 2.0)  # embeddings, head, norms, router stay 16-bit
    ewb = jnp.where(s["expert_weight_dtype_bytes"] > 0, s["expert_weight_dtype_bytes"], wb)
    exempt = c["low_precision_exempt"]
    h, V = _a(model, "hidden_size"), _a(model, "vocab_size")
    tied = _a(model, "tie_word_embeddings", 0.0) > 0
    emb_not_read = jnp.where(tied, 0.0, V * h)  # untied: only looked-up rows are read
    kv_proj_shards = jnp.minimum(tp, _a(model, "n_kv_heads"))
    replicated = (c["kv_proj"] * (1 / kv_proj_shards - 1 / tp) + c["mla_replicated"] * (1 - 1 / tp)) * wb
    experts, experts_active = c["routed_experts"], c["routed_experts_active"]
    expert_bytes_per_gpu = experts * ewb / gpus  # EP shards whole experts, TP splits each: 1/gpus either way
    weights_per_gpu = (
        ((c["total"] - experts - exempt) * wb + exempt * lp) / tp + replicated + expert_bytes_per_gpu
    )
    dense_streamed_per_gpu = (
        (c["streamed"] - experts_active - (exempt - emb_not_read)) * wb + (exempt - emb_not_read) * lp
    ) / tp + replicated
    n_moe_layers = jnp.where(moe, L - _a(model, "n_dense_layers", 0.0), 0.0)
    ws = dense_streamed_per_gpu / (eff * bw) + ovh * L + s["moe_dispatch_overhead_s"] * n_moe_layers
    kv_tok = kv_bytes_per_token(model, kb, "physical")
    kv_tok_gpu = kv_tok / jnp.minimum(tp, kv_cache_heads(model))
    flops_tok = 2 * (c["streamed"] - experts_active) / (tp * dp) + 2 * experts_active / gpus
    return dict(
        c=c,
        weights_per_gpu=weights_per_gpu,
        ws=ws,
        pws=ws,
        kv_tok=kv_tok,
        kv_tok_gpu=kv_tok_gpu,
        kv_divisor=kv_tok_gpu,
        hs=c_cal * kv_tok_gpu / (eff * bw) / dp,  # each rank reads its own 1/dp of the sequences
        reserve=s["reserve_bytes"],
        flops_tok=flops_tok,
        peak=s["flops_efficiency"]
        * jnp.where(wb == 1.0, _a(gpu, "fp8_flops", jnp.nan), _a(gpu, "fp16_flops")),
        min_conc=0.0,
        power_model=s["power_model"],
        idle_frac=s["power_idle_fraction"],
        dyn_frac=s["power_dynamic_fraction"],
        mechanisms=_mechanism_fields(gpu, model, s),
        gpus=gpus,
        kv_ranks=dp,
        expert_bytes=expert_bytes_per_gpu,
        moe_fields=_moe_window_fields(model, expert_bytes_per_gpu / (eff * bw)),
    )


def _moe_window_fields(model: dict, expert_time_s) -> dict:
    """The Profile's routed-expert and local-attention fields (docs/models.md §6)."""
    E, k = _a(model, "n_experts"), _a(model, "experts_per_token")
    L, w = _a(model, "n_layers"), _a(model, "attention_window_tokens", 0.0)
    windowed = (_a(model, "n_window_layers", 0.0) > 0) & (w > 0)
    chunked = _a(model, "chunked_attention", 0.0) > 0
    return {
        "expert_weight_time_s": expert_time_s,
        "expert_touch_probability": jnp.where(E > 0, k / jnp.where(E > 0, E, 1.0), 0.0),
        "kv_window_tokens": jnp.where(windowed, w, 0.0),
        "kv_window_share": jnp.where(windowed, _a(model, "n_window_layers", 0.0) / L, 0.0),
        # a sliding window reads its last w tokens; a chunk reads the tokens since its start (w/2 on average)
        "kv_window_read_tokens": jnp.where(windowed, jnp.where(chunked, 0.5 * w, w), 0.0),
    }


_NO_MOE_WINDOW = dict.fromkeys(
    (
        "expert_weight_time_s",
        "expert_touch_probability",
        "kv_window_tokens",
        "kv_window_share",
        "kv_window_read_tokens",
    ),
    0.0,
)


def _mechanism_fields(gpu: dict, model: dict, s: dict) -> dict:
    """The Profile's decode-step mechanism fields (docs/calibration.md §1); all zero at neutral values."""
    tp, h = s["tp"], _a(model, "hidden_size")
    allreduces = jnp.where(tp > 1, 2.0 * _a(model, "n_layers"), 0.0)  # after attention and after the MLP
    link_bytes_per_s = s["interconnect_efficiency"] * _a(gpu, "interconnect_bytes_per_s", jnp.nan)
    on = jnp.isfinite(link_bytes_per_s) & (link_bytes_per_s > 0)
    safe_link = jnp.where(on, link_bytes_per_s, 1.0)  # double where: no NaN where the term is off
    ring_bytes_per_token = 2.0 * (tp - 1.0) / tp * h * ACTIVATION_BYTES
    # attention data parallelism: each rank's GPUs carry their 1/dp of the tokens; the MoE layers then
    # dispatch each token to its k experts and combine them back over the instance (all-to-all)
    dp, ep = s["data_parallel"], s["expert_parallel"]
    L, k = _a(model, "n_layers"), _a(model, "experts_per_token")
    n_moe = jnp.where(_a(model, "n_experts") > 0, L - _a(model, "n_dense_layers", 0.0), 0.0)
    a2a_bytes_per_token = jnp.where(
        dp > 1, n_moe * 2.0 * k * h * ACTIVATION_BYTES * (ep - 1.0) / ep / (tp * dp), 0.0
    )
    link_bytes_per_token = allreduces * ring_bytes_per_token / dp + a2a_bytes_per_token
    return {
        "step_overhead_s": s["step_overhead_s"],
        "sequence_overhead_s": s["sequence_overhead_s"],
        "comm_time_s": allreduces * s["allreduce_latency_s"],
        "comm_time_per_token_s": jnp.where(on, link_bytes_per_token / safe_link, 0.0),
        "attention_latency_s": s["attention_latency_s"] * L,
        "prefill_tokens_per_output": s["prefill_tokens_per_output"],
        "power_memory_coefficient": s["power_memory_coefficient"],
        "power_compute_coefficient": s["power_compute_coefficient"],
    }


def _kv_budget(gpu: dict, s: dict, t: dict, relaxed: bool):
    """KV budget bytes per GPU and KV blocks (floor(u·M) − weights − reserve) // (divisor·blk) ≥ 0."""
    util, mem, blk = s["gpu_memory_utilization"], _a(gpu, "memory_bytes"), s["kv_block_tokens"]
    budget = intmath.floor(util * mem, relaxed=relaxed) - t["weights_per_gpu"] - t["reserve"]
    kv_blocks = jnp.maximum(
        intmath.floor_div(intmath.floor(budget, relaxed=relaxed), t["kv_divisor"] * blk, relaxed=relaxed), 0.0
    )
    return budget, kv_blocks * t["kv_ranks"]  # every data-parallel rank has its own cache


def _power_fields(gpu: dict, t: dict) -> dict:
    """The Profile's power fields (model, logistic parameters with finite placeholders, TDP, fractions)."""
    logistic = {}
    for k, safe in zip(LOGISTIC_FIELDS, (0.0, 0.0, 1.0, 0.0)):
        v = _a(gpu, k, jnp.nan)
        logistic[k] = jnp.where(jnp.isnan(v), safe, v)  # absent → finite placeholder (no NaN grads)
    return {
        "power_model": t["power_model"],
        **logistic,
        "tdp_w": _a(gpu, "tdp_w"),
        "power_idle_fraction": jnp.asarray(t["idle_frac"]),
        "power_dynamic_fraction": jnp.asarray(t["dyn_frac"]),
    }


def _assemble(gpu: dict, serving: dict, s: dict, t: dict, c_cal, budget, kv_blocks) -> dict:
    """Every Profile field, then the intermediate quantities, broadcast to one shape as float64 arrays."""
    tp, blk = s["tp"], s["kv_block_tokens"]
    fields = {
        "weight_time_s": t["ws"],
        "kv_time_per_seq_s": t["hs"],
        "calibration_context": c_cal,
        "kv_block_tokens": blk,
        "kv_blocks": kv_blocks,
        "max_slots": s["max_slots"],
        "tp": t["gpus"],
        **_power_fields(gpu, t),
        "power_weight_time_s": t["pws"],
        "flops_per_token": t["flops_tok"],
        "peak_flops": t["peak"],
        "prefill_chunk_tokens": _a(serving, "prefill_chunk_tokens")
        if "prefill_chunk_tokens" in serving
        else _a(gpu, "prefill_chunk_tokens"),
        "price_per_gpu_hour": _a(gpu, "price_per_gpu_hour"),
        "min_concurrency": jnp.asarray(t["min_conc"]),
        "max_context_tokens": t["max_context_tokens"],
        **t["moe_fields"],
        **t["mechanisms"],
    }
    c = t["c"]
    q = dict(
        params_total=c["total"],
        params_active=c["active"],
        params_streamed=c["streamed"],
        weight_bytes_per_gpu=t["weights_per_gpu"],
        kv_bytes_per_token=t["kv_tok"],
        kv_bytes_per_token_per_gpu=t["kv_tok_gpu"],
        kv_budget_bytes_per_gpu=budget,
        kv_tokens=kv_blocks * blk,
        reserve_bytes=t["reserve"] + 0 * tp,
        expert_weight_bytes_per_gpu=t["expert_bytes"] + 0 * tp,
    )
    arrays = jnp.broadcast_arrays(*[jnp.asarray(v, jnp.float64) for v in (*fields.values(), *q.values())])
    keys = (*fields, *q)
    return dict(zip(keys, arrays))


def derive_quantities(
    gpu: dict, model: dict, serving: dict, *, convention: str, relaxed: bool = False
) -> dict:
    """All Profile fields plus the intermediate quantities (params, bytes, KV tokens) as arrays."""
    if convention not in CONVENTIONS:
        raise InvalidValueError(f"convention '{convention}': allowed values: {', '.join(CONVENTIONS)}")
    s = {k: _a(serving, k, v) for k, v in SERVING_DEFAULTS.items()}
    c_cal = jnp.asarray(float(CALIBRATION_CONTEXT))
    terms = _paper_terms if convention == "paper" else _physical_terms
    t = {**terms(gpu, model, s, c_cal), "max_context_tokens": _a(model, "max_context_tokens", 0.0)}
    budget, kv_blocks = _kv_budget(gpu, s, t, relaxed)
    return _assemble(gpu, serving, s, t, c_cal, budget, kv_blocks)


def derive_profile(
    gpu: dict, model: dict, serving: dict, *, convention: str, relaxed: bool = False
) -> Profile:
    """Profile of (gpu, model, serving) dicts of arrays under `convention` ("paper" | "physical").

    Pure JAX, broadcasts over any shapes; see the module docstring for every equation.
    """
    q = derive_quantities(gpu, model, serving, convention=convention, relaxed=relaxed)
    return Profile(**{f: q[f] for f in Profile._fields})


def stack(dicts) -> dict:
    """Stack same-keyed dicts of scalars into one dict of (K,) arrays (a table of K setups)."""
    dicts = list(dicts)
    return {k: jnp.stack([jnp.asarray(d[k], jnp.float64) for d in dicts]) for k in dicts[0]}
