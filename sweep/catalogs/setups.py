"""Serving setups from the catalogs: names → serving dict, the checks a setup must pass (dtype
support, TP divisibility, power model), and `profile_for` (GPU and model names → a first-principles
Profile, via `sweep.physics.derive`)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from sweep.catalogs.gpus import GpuEntry, get_gpu
from sweep.catalogs.llms import ModelEntry, get_model
from sweep.errors import (
    InvalidParallelismError,
    InvalidValueError,
    UnsupportedDtypeError,
)
from sweep.physics.derive import (
    DEFAULT_RESERVE_BYTES,
    PAPER_BW_EFFICIENCY,
    PAPER_LAYER_OVERHEAD_S,
    PAPER_POWER_DYNAMIC_FRACTION,
    PAPER_POWER_IDLE_FRACTION,
    SERVING_DEFAULTS,
    derive_quantities,
)
from sweep.physics.mechanisms import MECHANISMS
from sweep.physics.profile import LOGISTIC_POWER, TDP_FRACTION_POWER, Profile
from sweep.vocabulary import KV_DTYPE_BYTES, POWER_MODELS, WEIGHT_DTYPE_BYTES


def weight_dtype_bytes(name: str) -> float:
    """Bytes per weight for a dtype name: bf16/fp16 2, fp8 1, mxfp4 4.25/8, int4 0.5."""
    key = str(name).lower()
    if key not in WEIGHT_DTYPE_BYTES:
        raise InvalidValueError(f"weight_dtype '{name}': allowed values: {', '.join(WEIGHT_DTYPE_BYTES)}")
    return WEIGHT_DTYPE_BYTES[key]


def kv_dtype_bytes(name: str) -> float:
    """Bytes per KV-cache element for a dtype name: bf16/fp16 2, fp8 1."""
    key = str(name).lower()
    if key not in KV_DTYPE_BYTES:
        raise InvalidValueError(f"kv_dtype '{name}': allowed values: {', '.join(KV_DTYPE_BYTES)}")
    return KV_DTYPE_BYTES[key]


def serving_config(*args, **kwargs) -> dict:
    """Serving dict of float64 scalar arrays, as `derive_profile` takes: `serving_values` (the checked
    floats; same arguments) as `jax.numpy` arrays."""
    return {k: jnp.asarray(v, jnp.float64) for k, v in serving_values(*args, **kwargs).items()}


def serving_values(
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
    prefill_tokens_per_output=0.0,
    expert_parallel=1,
    data_parallel=1,
    **mechanisms,
) -> dict:
    """Serving dict (Python floats, each checked) from names; kv_dtype defaults to the weight dtype
    (int4, mxfp4 → bf16). An instance is `data_parallel` attention ranks of `tp` GPUs each; its routed
    experts are spread over `expert_parallel` of those GPUs (`check_setup` checks the layout).
    `weight_dtype = "mxfp4"` stores the routed experts at 4.25 bits and the rest at 16 bit, as the
    checkpoints that ship MXFP4 experts do (model field `mxfp4_experts`).

    `mechanisms` are the decode-step mechanism parameters of `sweep.physics.mechanisms.MECHANISMS`
    (flops_efficiency, step_overhead_s, …), each checked against its bounds; absent ones are neutral.
    """
    wb = weight_dtype_bytes(weight_dtype)
    mxfp4 = str(weight_dtype).lower() == "mxfp4"
    if kv_dtype is None:
        kv_dtype = "bf16" if str(weight_dtype).lower() in ("int4", "mxfp4") else weight_dtype
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

    def _mechanism(key, v):
        m = MECHANISMS[key]
        return _range(key, v, m.lower, m.upper)

    s = {
        "tp": _int("tp", tp),
        "expert_parallel": _int("expert_parallel", expert_parallel),
        "data_parallel": _int("data_parallel", data_parallel),
        "weight_dtype_bytes": WEIGHT_DTYPE_BYTES["bf16"] if mxfp4 else wb,
        "expert_weight_dtype_bytes": wb if mxfp4 else 0.0,
        "kv_dtype_bytes": kb,
        "kv_block_tokens": _int("kv_block_tokens", kv_block_tokens),
        "gpu_memory_utilization": _range(
            "gpu_memory_utilization", gpu_memory_utilization, 0.0, 1.0, lo_open=True
        ),
        "reserve_bytes": _range("reserve_bytes", reserve_bytes, 0.0, math.inf),
        "bandwidth_efficiency": _mechanism("bandwidth_efficiency", bandwidth_efficiency),
        "layer_overhead_s": _mechanism("layer_overhead_s", layer_overhead_s),
        "moe_dispatch_overhead_s": _range("moe_dispatch_overhead_s", moe_dispatch_overhead_s, 0.0, math.inf),
        "max_slots": _int("max_slots", max_slots, lo=0),
        "power_model": float(POWER_MODELS[str(power_model).lower()]),
        "power_idle_fraction": _mechanism("power_idle_fraction", power_idle_fraction),
        "power_dynamic_fraction": _range("power_dynamic_fraction", power_dynamic_fraction, 0.0, 1.0),
    }
    s["prefill_tokens_per_output"] = _range("prefill_tokens_per_output", prefill_tokens_per_output, 0.0, 1e6)
    for key, v in mechanisms.items():
        if key not in MECHANISMS:
            raise InvalidValueError(f"serving key '{key}': allowed: {', '.join(MECHANISMS)}")
        s[key] = _mechanism(key, v)
    if prefill_chunk_tokens is not None:
        s["prefill_chunk_tokens"] = _int("prefill_chunk_tokens", prefill_chunk_tokens)
    return s


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
        allowed = [k for k, v in WEIGHT_DTYPE_BYTES.items() if v != 1.0]
        raise UnsupportedDtypeError(
            f"weight_dtype 'fp8' is not supported on {gpu.name} (no fp8 tensor cores); allowed: {', '.join(allowed)}"
        )
    tp = float(serving.get("tp", 1.0))
    ok = allowed_tp(model, max_tp=int(model.value("n_heads")))  # tp divides the heads: never above them
    if tp != int(tp) or int(tp) not in ok:
        kv = (
            ""
            if model.is_mla
            else f" and divide or be a multiple of n_kv_heads={int(model.value('n_kv_heads'))}"
        )
        raise InvalidParallelismError(
            f"tp={tp:g} for {model.name}: must divide n_heads={int(model.value('n_heads'))}{kv}; "
            f"allowed tp: {', '.join(map(str, ok))}"
        )
    _check_layout(model, serving)
    if float(serving.get("power_model", TDP_FRACTION_POWER)) == LOGISTIC_POWER and not gpu.has_logistic_power:
        raise InvalidValueError(
            f"power_model 'logistic' needs measured logistic parameters, which {gpu.name} lacks; allowed: tdp_fraction"
        )


def _check_layout(model: ModelEntry, serving: dict) -> None:
    """Expert and data parallelism: EP divides the experts and the instance's tp·dp GPUs; MXFP4 experts
    need a checkpoint that stores them so (docs/models.md §6)."""
    tp = int(float(serving.get("tp", 1.0)))
    ep = int(float(serving.get("expert_parallel", 1.0)))
    dp = int(float(serving.get("data_parallel", 1.0)))
    gpus, experts = tp * dp, int(model.value("n_experts"))

    def allowed_ep():  # listed for a plausible instance only: never a loop as long as a huge value
        ok = [d for d in range(1, min(gpus, 4096) + 1) if gpus % d == 0 and (not experts or experts % d == 0)]
        return ", ".join(map(str, ok)) if gpus <= 4096 else "divisors of both"

    if ep > 1 and not model.is_moe:
        raise InvalidParallelismError(
            f"expert_parallel={ep} for {model.name}: a dense model has no experts; allowed: 1"
        )
    if ep > gpus or gpus % ep:
        raise InvalidParallelismError(
            f"expert_parallel={ep} for {model.name}: must divide the instance's tp·data_parallel = {gpus} GPUs; "
            f"allowed: {allowed_ep()}"
        )
    if ep > 1 and experts % ep:
        raise InvalidParallelismError(
            f"expert_parallel={ep} for {model.name}: must divide n_experts={experts}; allowed: {allowed_ep()}"
        )
    if float(serving.get("expert_weight_dtype_bytes", 0.0)) > 0 and not model.value("mxfp4_experts"):
        raise UnsupportedDtypeError(
            f"weight_dtype 'mxfp4' for {model.name}: its checkpoint does not store MXFP4 experts "
            f"(config.json quantization_config); allowed: {', '.join(k for k in WEIGHT_DTYPE_BYTES if k != 'mxfp4')}"
        )


def profile_for(
    gpu,
    model,
    *,
    convention: str,
    relaxed: bool = False,
    gpu_catalog=None,
    model_catalog=None,
    **serving_kwargs,
):
    """A first-principles `Profile` from GPU and model names (or catalog entries), checked.

    `convention` is "paper" or "physical"; `serving_kwargs` (tp, weight_dtype, kv_dtype,
    kv_block_tokens, gpu_memory_utilization, reserve_bytes, …) go to `serving_config`.

    >>> int(sweep.profile_for("H100", "llama-3.1-8b", convention="physical").kv_blocks)
    27157
    """
    q = quantities_for(
        gpu,
        model,
        convention=convention,
        relaxed=relaxed,
        gpu_catalog=gpu_catalog,
        model_catalog=model_catalog,
        **serving_kwargs,
    )
    return Profile(**{f: q[f] for f in Profile._fields})


def quantities_for(
    gpu,
    model,
    *,
    convention: str,
    relaxed: bool = False,
    gpu_catalog=None,
    model_catalog=None,
    **serving_kwargs,
) -> dict:
    """`derive_quantities` (the Profile fields and the intermediates: parameters, bytes, KV tokens) for
    GPU and model names (or catalog entries), after `check_setup`; `profile_for` keeps the Profile."""
    g = gpu if isinstance(gpu, GpuEntry) else get_gpu(gpu, gpu_catalog)
    m = model if isinstance(model, ModelEntry) else get_model(model, model_catalog)
    s = serving_config(**serving_kwargs)
    check_setup(g, m, s)
    return derive_quantities(g.arrays(), m.arrays(), s, convention=convention, relaxed=relaxed)
