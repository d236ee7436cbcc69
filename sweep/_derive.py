"""First-principles ("roofline") serving profiles: GPU spec × model architecture × serving config.

`derive_profile(gpu, model, serving, convention=...)` is a pure JAX function of three dicts of
arrays (any broadcastable shapes) returning a `sweep._profile.Profile`; gradients flow to every
continuous hardware spec (bandwidth, memory, FLOPS, TDP, logistic power parameters).

Conventions (PAPER.md §2 and §5):

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
          S = bytes per GPU streamed per step (sharded /TP): active weights (MoE: top-k experts + shared + attention +
          dense layers) + LM head; quantised linears at the weight dtype, embeddings/head/norms/
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
    power: TDP fraction (power_model 1) by default, with the SAME weight time as throughput. The
          logistic curve (power_model 0) is available only where a SKU has measured parameters
          (H100), and those were fitted to one model/TP (70B TP8), so it does not transfer across
          models; the TDP-fraction model follows each setup's roofline activity consistently.
    FLOPs per token per GPU = 2·streamed_params/TP. KNOWN LIMIT: an MoE batch of n tokens touches
          ~E·(1 − (1 − k/E)^n) distinct experts, not k; a Profile's W_s cannot depend on n, so the
          physical MoE W_s is the batch-1 (lower) bound unless `moe_dispatch_overhead_s` is set.

Integer floors are done in int64 (float budget → floor → int64 → integer //); `relaxed=True`
removes every floor (continuous relaxation for gradients).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from sweep._catalog_io import InvalidValueError, SweepInputError
from sweep._hardware import GpuEntry, LOGISTIC_FIELDS, get_gpu
from sweep._models import ModelEntry, get_model, kv_bytes_per_token, kv_cache_heads, param_counts
from sweep._profile import LOGISTIC_POWER, TDP_FRACTION_POWER, Profile

CONVENTIONS = ("paper", "physical")
GIB = 2**30
MIB = 2**20

# The paper planner's model constants (PAPER.md §2): equations, not results.
CALIBRATION_CONTEXT = 4096  # C_cal = mean_ctx of roofline profiles
PAPER_BW_EFFICIENCY = 0.80  # effective / peak HBM bandwidth
PAPER_LAYER_OVERHEAD_S = 3e-6  # per-layer launch overhead
PAPER_NCCL_BYTES_TP2 = 342 * MIB  # NCCL buffers at TP 2
PAPER_NCCL_BYTES_TP4 = 392 * MIB  # NCCL buffers at TP 4 and 8 (411 041 792 B)
PAPER_POWER_IDLE_FRACTION = 0.43
PAPER_POWER_DYNAMIC_FRACTION = 0.43

WEIGHT_DTYPES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int4": 0.5}
KV_DTYPES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}
POWER_MODELS = {"logistic": LOGISTIC_POWER, "tdp_fraction": TDP_FRACTION_POWER}
DEFAULT_RESERVE_BYTES = 4 * GIB

class UnsupportedDtypeError(SweepInputError):
    """A dtype the GPU cannot run (fp8 weights on A100)."""


class InvalidParallelismError(SweepInputError):
    """A TP degree that does not divide the model's heads."""


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
    "max_slots": 0.0,  # compute cap (sequences at C_cal); 0 = none
    "power_model": float(TDP_FRACTION_POWER),  # physical only (paper: TDP fraction)
    "power_idle_fraction": PAPER_POWER_IDLE_FRACTION,  # physical only
    "power_dynamic_fraction": PAPER_POWER_DYNAMIC_FRACTION,  # physical only
}
# prefill_chunk_tokens: optional serving key; default = the GPU's catalog value.


def weight_dtype_bytes(name: str) -> float:
    """Bytes per weight for a dtype name: bf16/fp16 2, fp8 1, int4 0.5."""
    key = str(name).lower()
    if key not in WEIGHT_DTYPES:
        raise InvalidValueError(f"weight_dtype '{name}': allowed values: {', '.join(WEIGHT_DTYPES)}")
    return WEIGHT_DTYPES[key]


def kv_dtype_bytes(name: str) -> float:
    """Bytes per KV-cache element for a dtype name: bf16/fp16 2, fp8 1."""
    key = str(name).lower()
    if key not in KV_DTYPES:
        raise InvalidValueError(f"kv_dtype '{name}': allowed values: {', '.join(KV_DTYPES)}")
    return KV_DTYPES[key]


def _dtype_name(nbytes: float, table: dict) -> str:
    return next((k for k, v in table.items() if v == nbytes), f"{nbytes}-byte")


def serving_config(
    tp=1,
    weight_dtype="bf16",
    kv_dtype=None,
    *,
    kv_block_tokens=16,
    gpu_memory_utilization=0.90,
    reserve_bytes=DEFAULT_RESERVE_BYTES,
    prefill_chunk_tokens=None,
    bandwidth_efficiency=PAPER_BW_EFFICIENCY,
    layer_overhead_s=PAPER_LAYER_OVERHEAD_S,
    moe_dispatch_overhead_s=0.0,
    max_slots=0,
    power_model="tdp_fraction",
    power_idle_fraction=PAPER_POWER_IDLE_FRACTION,
    power_dynamic_fraction=PAPER_POWER_DYNAMIC_FRACTION,
) -> dict:
    """Serving dict (float64 scalars) from names; kv_dtype defaults to the weight dtype (int4 → bf16)."""
    wb = weight_dtype_bytes(weight_dtype)
    if kv_dtype is None:
        kv_dtype = "bf16" if str(weight_dtype).lower() == "int4" else weight_dtype
    kb = kv_dtype_bytes(kv_dtype)
    if str(power_model).lower() not in POWER_MODELS:
        raise InvalidValueError(f"power_model '{power_model}': allowed values: {', '.join(POWER_MODELS)}")

    def _int(key, v, lo=1):
        if not (float(v) == int(v) and int(v) >= lo):
            raise InvalidValueError(f"{key} = {v}: must be an integer >= {lo}")
        return float(v)

    def _range(key, v, lo, hi, lo_open=False):
        v = float(v)
        if not ((lo < v if lo_open else lo <= v) and v <= hi):
            raise InvalidValueError(f"{key} = {v}: must be in {'(' if lo_open else '['}{lo}, {hi}]")
        return v

    s = {
        "tp": _int("tp", tp),
        "weight_dtype_bytes": wb,
        "kv_dtype_bytes": kb,
        "kv_block_tokens": _int("kv_block_tokens", kv_block_tokens),
        "gpu_memory_utilization": _range("gpu_memory_utilization", gpu_memory_utilization, 0.0, 1.0, lo_open=True),
        "reserve_bytes": _range("reserve_bytes", reserve_bytes, 0.0, math.inf),
        "bandwidth_efficiency": _range("bandwidth_efficiency", bandwidth_efficiency, 0.0, 1.0, lo_open=True),
        "layer_overhead_s": _range("layer_overhead_s", layer_overhead_s, 0.0, math.inf),
        "moe_dispatch_overhead_s": _range("moe_dispatch_overhead_s", moe_dispatch_overhead_s, 0.0, math.inf),
        "max_slots": _int("max_slots", max_slots, lo=0),
        "power_model": float(POWER_MODELS[str(power_model).lower()]),
        "power_idle_fraction": _range("power_idle_fraction", power_idle_fraction, 0.0, 1.0),
        "power_dynamic_fraction": _range("power_dynamic_fraction", power_dynamic_fraction, 0.0, 1.0),
    }
    if prefill_chunk_tokens is not None:
        s["prefill_chunk_tokens"] = _int("prefill_chunk_tokens", prefill_chunk_tokens)
    return {k: jnp.asarray(v, jnp.float64) for k, v in s.items()}


def allowed_tp(model: ModelEntry, max_tp: int = 64) -> list:
    """TP degrees vLLM accepts: divide the attention heads; for GQA also divide the KV heads or be a
    multiple of them (KV heads are then replicated TP/kv_heads times). MLA: heads only."""
    H, kvh = int(model.value("n_heads")), int(model.value("n_kv_heads"))
    out = []
    for tp in range(1, max_tp + 1):
        if H % tp:
            continue
        if not model.is_mla and kvh % tp and tp % kvh:
            continue
        out.append(tp)
    return out


def check_setup(gpu: GpuEntry, model: ModelEntry, serving: dict) -> None:
    """Validate one (GPU, model, serving) setup; raises a `SweepInputError` subclass.

    fp8 weights need fp8 tensor cores (A100 has none); an fp8 KV cache is a storage format and
    is allowed on every GPU (vLLM supports it on Ampere). TP rule: see `allowed_tp`.
    """
    wb = float(serving.get("weight_dtype_bytes", SERVING_DEFAULTS["weight_dtype_bytes"]))
    if wb == 1.0 and not gpu.supports_fp8:
        allowed = [k for k, v in WEIGHT_DTYPES.items() if v != 1.0]
        raise UnsupportedDtypeError(
            f"weight_dtype 'fp8' is not supported on {gpu.name} (no fp8 tensor cores); allowed: {', '.join(allowed)}"
        )
    tp = float(serving.get("tp", 1.0))
    ok = allowed_tp(model, max_tp=max(64, int(tp)))
    if tp != int(tp) or int(tp) not in ok:
        kv = "" if model.is_mla else f" and divide or be a multiple of n_kv_heads={int(model.value('n_kv_heads'))}"
        raise InvalidParallelismError(
            f"tp={tp:g} for {model.name}: must divide n_heads={int(model.value('n_heads'))}{kv}; "
            f"allowed tp: {', '.join(map(str, ok))}"
        )
    if float(serving.get("power_model", TDP_FRACTION_POWER)) == LOGISTIC_POWER and not gpu.has_logistic_power:
        raise InvalidValueError(
            f"power_model 'logistic' needs measured logistic parameters, which {gpu.name} lacks; allowed: tdp_fraction"
        )


def _a(d, k, default=None):
    if k not in d and default is None:
        raise KeyError(f"derive_profile: input dict lacks required key '{k}'")
    return jnp.asarray(d[k] if k in d else default, dtype=jnp.float64)


def _floor_div_int(numer, denom):
    """floor(numer) // round(denom) in int64 (exact; XLA cannot turn it into a*(1/b))."""
    n = jnp.floor(numer).astype(jnp.int64)
    d = jnp.maximum(jnp.round(denom).astype(jnp.int64), 1)
    return (n // d).astype(jnp.float64)


def derive_quantities(gpu: dict, model: dict, serving: dict, *, convention: str, relaxed: bool = False) -> dict:
    """All Profile fields plus the intermediate quantities (params, bytes, KV tokens) as arrays."""
    if convention not in CONVENTIONS:
        raise InvalidValueError(f"convention '{convention}': allowed values: {', '.join(CONVENTIONS)}")
    s = {k: _a(serving, k, v) for k, v in SERVING_DEFAULTS.items()}
    tp, wb, kb, blk, util = s["tp"], s["weight_dtype_bytes"], s["kv_dtype_bytes"], s["kv_block_tokens"], s["gpu_memory_utilization"]
    bw, mem = _a(gpu, "hbm_bandwidth_bytes_per_s"), _a(gpu, "memory_bytes")
    f16, f8 = _a(gpu, "fp16_flops"), _a(gpu, "fp8_flops", jnp.nan)
    L = _a(model, "n_layers")
    moe = _a(model, "n_experts") > 0
    c_cal = jnp.asarray(float(CALIBRATION_CONTEXT))

    if convention == "paper":
        c = param_counts(model, "paper")
        eff, ovh = PAPER_BW_EFFICIENCY, PAPER_LAYER_OVERHEAD_S
        weights_per_gpu = c["total"] * wb / tp
        dense_ws = weights_per_gpu / (eff * bw) + ovh * L
        active_nominal = jnp.where(_a(model, "paper_active_params", 0.0) > 0, _a(model, "paper_active_params", 0.0), c["active"])
        ws = jnp.where(moe, active_nominal * wb / tp / bw, dense_ws)
        h, H, kvh = _a(model, "hidden_size"), _a(model, "n_heads"), _a(model, "n_kv_heads")
        attn_bytes_per_gpu = ((H + 2 * kvh) * (h / H) * h + h**2) * wb * L / tp
        kernel = _a(model, "paper_moe_kernel_s_per_layer", 0.0) * (
            _a(model, "paper_moe_kernel_reference_bw", 1.0) / bw
        ) ** _a(model, "paper_moe_kernel_bw_exponent", 0.0) * L
        pws = jnp.where(moe, kernel + attn_bytes_per_gpu / (eff * bw) + ovh * L, ws)
        kv_tok = kv_bytes_per_token(model, kb, "paper")
        kv_tok_gpu = kv_tok / tp  # what H_s reads per GPU
        kv_divisor = kv_tok  # the planner's unsharded budget divisor
        hs = c_cal * kv_tok / (eff * bw) / tp
        reserve = jnp.where(tp >= 4, float(PAPER_NCCL_BYTES_TP4), jnp.where(tp >= 2, float(PAPER_NCCL_BYTES_TP2), 0.0))
        flops_tok = 2 * c["active"] / tp
        peak = f16
        min_conc, power_model = 1.0, jnp.asarray(float(TDP_FRACTION_POWER))
        idle_frac, dyn_frac = PAPER_POWER_IDLE_FRACTION, PAPER_POWER_DYNAMIC_FRACTION
    else:
        c = param_counts(model, "physical")
        eff, ovh = s["bandwidth_efficiency"], s["layer_overhead_s"]
        lp = jnp.maximum(wb, 2.0)  # embeddings, head, norms, router stay 16-bit
        exempt = c["low_precision_exempt"]
        h, V = _a(model, "hidden_size"), _a(model, "vocab_size")
        tied = _a(model, "tie_word_embeddings", 0.0) > 0
        emb_not_read = jnp.where(tied, 0.0, V * h)  # untied: only looked-up rows are read
        kv_proj_shards = jnp.minimum(tp, _a(model, "n_kv_heads"))
        replicated = (c["kv_proj"] * (1 / kv_proj_shards - 1 / tp) + c["mla_replicated"] * (1 - 1 / tp)) * wb
        weights_per_gpu = ((c["total"] - exempt) * wb + exempt * lp) / tp + replicated
        streamed_per_gpu = ((c["streamed"] - (exempt - emb_not_read)) * wb + (exempt - emb_not_read) * lp) / tp + replicated
        n_moe_layers = jnp.where(moe, L - _a(model, "n_dense_layers", 0.0), 0.0)
        ws = streamed_per_gpu / (eff * bw) + ovh * L + s["moe_dispatch_overhead_s"] * n_moe_layers
        pws = ws
        kv_tok = kv_bytes_per_token(model, kb, "physical")
        kv_tok_gpu = kv_tok / jnp.minimum(tp, kv_cache_heads(model))
        kv_divisor = kv_tok_gpu
        hs = c_cal * kv_tok_gpu / (eff * bw)
        reserve = s["reserve_bytes"]
        flops_tok = 2 * c["streamed"] / tp
        peak = jnp.where(wb == 1.0, f8, f16)
        min_conc, power_model = 0.0, s["power_model"]
        idle_frac, dyn_frac = s["power_idle_fraction"], s["power_dynamic_fraction"]

    if relaxed:
        budget = util * mem - weights_per_gpu - reserve
        kv_blocks = jnp.maximum(budget / (kv_divisor * blk), 0.0)
    else:
        budget = jnp.floor(util * mem) - weights_per_gpu - reserve
        kv_blocks = jnp.maximum(_floor_div_int(budget, kv_divisor * blk), 0.0)

    logistic = {}
    for k, safe in zip(LOGISTIC_FIELDS, (0.0, 0.0, 1.0, 0.0)):
        v = _a(gpu, k, jnp.nan)
        logistic[k] = jnp.where(jnp.isnan(v), safe, v)  # absent → finite placeholder (no NaN grads)

    fields = {
        "weight_time_s": ws,
        "kv_time_per_seq_s": hs,
        "calibration_context": c_cal,
        "kv_block_tokens": blk,
        "kv_blocks": kv_blocks,
        "max_slots": s["max_slots"],
        "tp": tp,
        "power_model": power_model,
        **logistic,
        "tdp_w": _a(gpu, "tdp_w"),
        "power_idle_fraction": jnp.asarray(idle_frac),
        "power_dynamic_fraction": jnp.asarray(dyn_frac),
        "power_weight_time_s": pws,
        "flops_per_token": flops_tok,
        "peak_flops": peak,
        "prefill_chunk_tokens": _a(serving, "prefill_chunk_tokens") if "prefill_chunk_tokens" in serving else _a(gpu, "prefill_chunk_tokens"),
        "price_per_gpu_hour": _a(gpu, "price_per_gpu_hour"),
        "min_concurrency": jnp.asarray(min_conc),
    }
    q = dict(
        params_total=c["total"],
        params_active=c["active"],
        params_streamed=c["streamed"],
        weight_bytes_per_gpu=weights_per_gpu,
        kv_bytes_per_token=kv_tok,
        kv_bytes_per_token_per_gpu=kv_tok_gpu,
        kv_budget_bytes_per_gpu=budget,
        kv_tokens=kv_blocks * blk,
        reserve_bytes=reserve + 0 * tp,
    )
    arrays = jnp.broadcast_arrays(*[jnp.asarray(v, jnp.float64) for v in (*fields.values(), *q.values())])
    keys = (*fields, *q)
    return dict(zip(keys, arrays))


def derive_profile(gpu: dict, model: dict, serving: dict, *, convention: str, relaxed: bool = False) -> Profile:
    """Profile of (gpu, model, serving) dicts of arrays under `convention` ("paper" | "physical").

    Pure JAX, broadcasts over any shapes; see the module docstring for every equation.
    """
    q = derive_quantities(gpu, model, serving, convention=convention, relaxed=relaxed)
    return Profile(**{f: q[f] for f in Profile._fields})


def profile_for(gpu, model, *, convention: str, relaxed: bool = False, gpu_catalog=None, model_catalog=None, **serving_kwargs):
    """Convenience: names (or entries) → validated Profile. `serving_kwargs` go to `serving_config`."""
    g = gpu if isinstance(gpu, GpuEntry) else get_gpu(gpu, gpu_catalog)
    m = model if isinstance(model, ModelEntry) else get_model(model, model_catalog)
    s = serving_config(**serving_kwargs)
    check_setup(g, m, s)
    return derive_profile(g.arrays(), m.arrays(), s, convention=convention, relaxed=relaxed)


def quantities_for(gpu, model, *, convention: str, relaxed: bool = False, gpu_catalog=None, model_catalog=None, **serving_kwargs) -> dict:
    """Like `profile_for` but returns `derive_quantities` (Profile fields + intermediates)."""
    g = gpu if isinstance(gpu, GpuEntry) else get_gpu(gpu, gpu_catalog)
    m = model if isinstance(model, ModelEntry) else get_model(model, model_catalog)
    s = serving_config(**serving_kwargs)
    check_setup(g, m, s)
    return derive_quantities(g.arrays(), m.arrays(), s, convention=convention, relaxed=relaxed)


def stack(dicts) -> dict:
    """Stack same-keyed dicts of scalars into one dict of (K,) arrays (a table of K setups)."""
    dicts = list(dicts)
    return {k: jnp.stack([jnp.asarray(d[k], jnp.float64) for d in dicts]) for k in dicts[0]}
