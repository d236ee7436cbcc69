"""LLM architectures as physics: the fields that describe one, and what follows from them.

The field schema every catalog fills in, and pure `jax.numpy` functions of a dict of arrays (one model,
or a stacked table): parameter counts, KV bytes per token, FLOPs per token, and the dense family.
They broadcast over model tables and stay differentiable.

Two counting rules (docs/models.md §2):
- `paper`: the paper planner's rule (reproduces its W_s and n_max to the digit):
      head_dim = hidden / heads (config head_dim ignored)
      params = vocab·hidden (embeddings once, no LM head, no norms)
             + L·(2·hidden² + 2·hidden·kv_heads·head_dim)
             + L·3·hidden·intermediate                                   (dense)
             | L·(E·3·hidden·moe_inter + shared·3·hidden·intermediate)   (MoE; active: top-k for E)
      kv_bytes_per_token = 2·L·kv_heads·head_dim·kv_dtype_bytes (not sharded, no MLA)
- `physical`: what the checkpoint stores and what a decode step reads:
      attention with the real head_dim (q: hidden·heads·hd, k,v: hidden·kv_heads·hd, o: heads·hd·hidden,
      optional qkv bias and q/k RMSNorm), MLA projections for DeepSeek-V3, untied LM head, RMSNorm
      weights, MoE router, DeepSeek's dense first layers and shared experts;
      kv_bytes_per_token = 2·L·kv_heads·head_dim·b (GQA) or L·(kv_lora_rank + qk_rope_head_dim)·b (MLA latent).
FLOPs per token (decode, matmuls only) = 2 × parameters used per token (paper: 2·active; physical:
2·(active non-embedding parameters + the LM head), i.e. 2·`streamed_params`).
"""

from __future__ import annotations

import jax.numpy as jnp

from sweep.errors import InvalidValueError

REQUIRED_ARCH = ("n_layers", "hidden_size", "n_heads", "intermediate_size", "vocab_size")
# None = derived from other fields (see `_complete`).
ARCH_DEFAULTS = {
    "n_kv_heads": None,  # = n_heads
    "head_dim": None,  # = hidden_size / n_heads
    "tie_word_embeddings": 0.0,
    "n_experts": 0.0,
    "experts_per_token": 0.0,
    "n_shared_experts": 0.0,
    "moe_intermediate_size": 0.0,
    "shared_intermediate_size": None,  # = n_shared_experts · moe_intermediate_size
    "n_dense_layers": 0.0,
    "mla": 0.0,
    "q_lora_rank": 0.0,
    "kv_lora_rank": 0.0,
    "qk_rope_head_dim": 0.0,
    "qk_nope_head_dim": 0.0,
    "v_head_dim": 0.0,
    "qk_norm": 0.0,
    "attention_bias": 0.0,
    "max_context_tokens": 0.0,  # 0 = unknown
    "n_window_layers": 0.0,  # layers with local attention (sliding window or chunked); 0 = all global
    "attention_window_tokens": 0.0,  # their window (sliding) or chunk (chunked) in tokens; 0 = none
    "chunked_attention": 0.0,  # 1: local layers attend within fixed chunks (Llama-4), 0: a sliding window
    "mxfp4_experts": 0.0,  # 1: the checkpoint stores the routed experts in MXFP4 (gpt-oss)
}
PAPER_FIELDS = ("paper_active_params",)
FLAG_FIELDS = (
    "tie_word_embeddings",
    "mla",
    "qk_norm",
    "attention_bias",
    "chunked_attention",
    "mxfp4_experts",
)  # 0/1; other fields are counts
POSITIVE_FIELDS = REQUIRED_ARCH + ("n_kv_heads", "head_dim")
ARCH_FIELDS = REQUIRED_ARCH + tuple(ARCH_DEFAULTS)
# Fields of the dict `derive_profile` takes (architecture + paper-convention data).
MODEL_FIELDS = ARCH_FIELDS + (
    "paper_active_params",  # 0 = use the paper-rule active count
    "paper_moe_kernel_s_per_layer",  # planner MoE kernel latency at the reference bandwidth
    "paper_moe_kernel_reference_bw",
    "paper_moe_kernel_bw_exponent",
)


# ---------------------------------------------------------------------------------------------
# Counting (pure jnp on a dict of arrays; every function broadcasts)


def _f(m, k):
    return jnp.asarray(m[k], dtype=jnp.float64)


def param_counts(m: dict, rule: str) -> dict:
    """Parameter counts of a model dict under `rule` ("paper" | "physical").

    Returns total, active (per token), streamed (read from HBM per decode step at batch 1: active minus
    the input embedding table, plus the LM head / tied table), routed_experts and routed_experts_active
    (the routed experts' parameters, all and top-k per token; paper rule: 0), kv_proj (k and v projection weights,
    replicated when TP > kv heads), mla_replicated (MLA down-projections, replicated on every TP
    rank by vLLM), and low_precision_exempt (embeddings, head, norms, router:
    kept at 16 bit when weights are quantised). Paper rule: streamed = active, no exempt part.
    """
    L, h, H, kvh = _f(m, "n_layers"), _f(m, "hidden_size"), _f(m, "n_heads"), _f(m, "n_kv_heads")
    V, inter = _f(m, "vocab_size"), _f(m, "intermediate_size")
    E, k, S = _f(m, "n_experts"), _f(m, "experts_per_token"), _f(m, "n_shared_experts")
    moe_i = _f(m, "moe_intermediate_size")
    moe = E > 0
    if rule == "paper":
        hd = h / H
        emb = V * h
        attn = L * (2 * h**2 + 2 * h * kvh * hd)
        dense = L * 3 * h * inter
        total = emb + attn + jnp.where(moe, L * (E * 3 * h * moe_i + S * 3 * h * inter), dense)
        active = emb + attn + jnp.where(moe, L * (k * 3 * h * moe_i + S * 3 * h * inter), dense)
        zero = jnp.zeros_like(total)
        return {
            "total": total,
            "active": active,
            "streamed": active,
            "routed_experts": zero,
            "routed_experts_active": zero,
            "kv_proj": L * 2 * h * kvh * hd,
            "mla_replicated": zero,
            "low_precision_exempt": zero,
        }
    if rule != "physical":
        raise InvalidValueError(f"rule '{rule}': allowed: paper, physical")
    hd = _f(m, "head_dim")
    mla = _f(m, "mla") > 0
    q_r, kv_r = _f(m, "q_lora_rank"), _f(m, "kv_lora_rank")
    rope, nope, vd = _f(m, "qk_rope_head_dim"), _f(m, "qk_nope_head_dim"), _f(m, "v_head_dim")
    # MLA (DeepSeek-V2/V3 modeling code): q_a/q_b (or q_proj), kv_a_proj_with_mqa, kv_b, o, norms.
    q_mla = jnp.where(q_r > 0, h * q_r + q_r + q_r * H * (nope + rope), h * H * (nope + rope))
    attn_mla = q_mla + h * (kv_r + rope) + kv_r + kv_r * H * (nope + vd) + H * vd * h
    kv_proj_gqa = 2 * h * kvh * hd
    attn_gqa = (
        2 * h * H * hd
        + kv_proj_gqa
        + _f(m, "attention_bias") * (H + 2 * kvh) * hd
        + _f(m, "qk_norm") * 2 * hd
    )
    attn = jnp.where(mla, attn_mla, attn_gqa)
    kv_proj = jnp.where(mla, 0.0, kv_proj_gqa) * L
    n_moe = jnp.where(moe, L - _f(m, "n_dense_layers"), 0.0)
    n_dense = L - n_moe
    expert = 3 * h * moe_i
    shared = 3 * h * _f(m, "shared_intermediate_size")
    router = h * E
    norms = L * 2 * h + h
    emb = V * h
    head = jnp.where(_f(m, "tie_word_embeddings") > 0, 0.0, V * h)
    common = emb + head + L * attn + norms + n_dense * 3 * h * inter + n_moe * (shared + router)
    total = common + n_moe * E * expert
    active = common + n_moe * k * expert
    streamed = active - emb - head + V * h
    # vLLM keeps MLA's down-projections (q_a_proj, kv_a_proj_with_mqa) as ReplicatedLinear
    mla_replicated = jnp.where(mla, L * (h * q_r + h * (kv_r + rope)), 0.0)
    return {
        "total": total,
        "active": active,
        "streamed": streamed,
        "routed_experts": n_moe * E * expert,
        "routed_experts_active": n_moe * k * expert,
        "kv_proj": kv_proj,
        "mla_replicated": mla_replicated,
        "low_precision_exempt": emb + head + norms + n_moe * router,
    }


def kv_bytes_per_token(m: dict, kv_dtype_bytes, rule: str):
    """KV-cache bytes per token for the whole model (all layers, all KV heads; not per GPU).

    paper: 2·L·kv_heads·(hidden/heads)·b. physical: GQA 2·L·kv_heads·head_dim·b; MLA L·(kv_lora_rank +
    qk_rope_head_dim)·b (vLLM caches the compressed latent and the rope key once per token and layer).
    """
    L, kvh, b = _f(m, "n_layers"), _f(m, "n_kv_heads"), jnp.asarray(kv_dtype_bytes, jnp.float64)
    if rule == "paper":
        return 2 * L * kvh * (_f(m, "hidden_size") / _f(m, "n_heads")) * b
    gqa = 2 * L * kvh * _f(m, "head_dim") * b
    mla = L * (_f(m, "kv_lora_rank") + _f(m, "qk_rope_head_dim")) * b
    return jnp.where(_f(m, "mla") > 0, mla, gqa)


def kv_cache_heads(m: dict):
    """Number of distinct KV 'heads' the cache can be sharded over: kv_heads (GQA), 1 (MLA latent)."""
    return jnp.where(_f(m, "mla") > 0, 1.0, _f(m, "n_kv_heads"))


def flops_per_token(m: dict, rule: str):
    """Decode matmul FLOPs per output token, whole model: 2·active (paper) or 2·streamed (physical)."""
    c = param_counts(m, rule)
    return 2 * (c["active"] if rule == "paper" else c["streamed"])


# ---------------------------------------------------------------------------------------------
# Dense family parameterised by parameter count (issue 3 item 6)


def dense_family(
    n_params,
    *,
    aspect_ratio=128.0,
    ffn_ratio=3.5,
    head_dim=128.0,
    n_kv_heads=8.0,
    vocab_size=128256.0,
    tie_word_embeddings=False,
    integer=False,
) -> dict:
    """Llama-3-like dense architecture with `n_params` physical parameters (jnp; broadcasts).

    Scaling rule (documented choice): hidden h is the unknown; n_layers = h / aspect_ratio
    (Llama-3.1-8B and -405B have hidden/layers = 128 and 130; 70B has 102), n_heads = h / head_dim,
    intermediate = ffn_ratio·h (Llama-3.1-8B/70B: 3.5), n_kv_heads = 8, vocab 128256, untied head.
    Then  N(h) = (2 or 1)·V·h + (h/a)·((2 + 3·r)·h² + 2·h·kvh·hd + 2·h) + h, solved for h by Newton
    (monotone cubic; 40 unrolled iterations, differentiable). `integer=True` rounds h to a multiple
    of 8·head_dim (so heads divide TP 8) and n_layers to the nearest integer (count then only near
    n_params). Returns a model dict usable by `derive_profile` (continuous values unless integer).

    >>> {k: float(v) for k, v in sweep.dense_family(13e9, integer=True).items() if k in ("n_layers", "hidden_size")}
    {'n_layers': 38.0, 'hidden_size': 5120.0}
    """
    N = jnp.asarray(n_params, jnp.float64)
    a, r, hd, kvh, V = (
        jnp.asarray(x, jnp.float64) for x in (aspect_ratio, ffn_ratio, head_dim, n_kv_heads, vocab_size)
    )
    n_emb = 1.0 if tie_word_embeddings else 2.0

    def count(h):
        return n_emb * V * h + (h / a) * ((2 + 3 * r) * h**2 + 2 * h * kvh * hd + 2 * h) + h

    def dcount(h):
        return n_emb * V + (3 * (2 + 3 * r) * h**2 + 2 * 2 * h * kvh * hd + 2 * 2 * h) / a + 1

    h = (N * a / (2 + 3 * r)) ** (1.0 / 3.0)  # cubic term only: an upper bound, Newton descends
    for _ in range(40):
        h = h - (count(h) - N) / dcount(h)
    L = h / a
    if integer:
        step = 8 * hd
        h = jnp.maximum(step, jnp.round(h / step) * step)
        L = jnp.maximum(1.0, jnp.round(L))
    m = {k: jnp.zeros_like(N) for k in MODEL_FIELDS}
    m.update(
        n_layers=L + 0 * N,
        hidden_size=h,
        n_heads=h / hd,
        n_kv_heads=kvh + 0 * N,
        head_dim=hd + 0 * N,
        intermediate_size=r * h,
        vocab_size=V + 0 * N,
        tie_word_embeddings=jnp.full_like(N, 1.0 if tie_word_embeddings else 0.0),
        paper_moe_kernel_reference_bw=jnp.ones_like(N),
    )
    return m
