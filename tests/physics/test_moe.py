"""Mixture-of-experts, expert/data parallelism, MXFP4 and local attention (docs/models.md §6)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweep
from sweep.catalogs import setups
from sweep.catalogs.gpus import get_gpu
from sweep.catalogs.llms import get_model
from sweep.catalogs.setups import quantities_for
from sweep.errors import InvalidParallelismError, SweepInputError, UnsupportedDtypeError
from sweep.physics.architecture import param_counts
from sweep.physics.concurrency import max_concurrency
from sweep.physics.derive import derive_profile
from sweep.physics.profile import FIELD_DEFAULTS, Profile
from sweep.physics.roofline import expert_share, memory_time_s
from tests.utils import central_difference


def _profile(**fields):
    base = {f: 0.0 for f in Profile._fields}
    base.update(calibration_context=4096.0, kv_block_tokens=16.0, peak_flops=1.0, tp=1.0)
    base.update(fields)
    return Profile.from_mapping(base)


@pytest.mark.parametrize("experts, top_k", [(128, 8), (16, 1), (32, 4)])
@pytest.mark.parametrize("tokens", [1, 3, 16, 64])
def test_expert_share_matches_random_routing(experts, top_k, tokens):
    """E·(1 − (1 − k/E)^n) distinct experts: the mean of a brute-force simulation of uniform routing."""
    rng = np.random.default_rng(7)
    trials = 4000
    # each token picks k distinct experts uniformly: the first k of a random permutation
    picks = np.argsort(rng.random((trials, tokens, experts)), axis=-1)[..., :top_k]
    touched = np.zeros((trials, experts), bool)
    np.put_along_axis(touched, picks.reshape(trials, -1), True, axis=-1)
    distinct = touched.sum(axis=-1) / experts
    law = float(expert_share(_profile(expert_touch_probability=top_k / experts), float(tokens)))
    se = distinct.std(ddof=1) / math.sqrt(trials)
    assert abs(distinct.mean() - law) <= 4 * se + 1e-12


def test_expert_share_limits_and_gradient():
    dense = _profile()
    assert float(expert_share(dense, 64.0)) == 0.0
    every = _profile(expert_touch_probability=1.0)
    assert float(expert_share(every, 5.0)) == 1.0
    p = _profile(expert_touch_probability=8 / 128)
    grad = jax.grad(lambda n: expert_share(p, n))(12.0)
    fd = central_difference(lambda n: float(expert_share(p, n)), 12.0)  # x·df/dx
    assert 12.0 * float(grad) == pytest.approx(fd, rel=1e-7)
    assert np.isfinite(float(jax.grad(lambda n: expert_share(every, n))(0.5)))


def test_weight_traffic_grows_with_batch_to_all_experts():
    """Physical MoE step: batch 1 streams the top-k experts, a large batch every expert the GPU holds."""
    q = quantities_for("H100", "qwen3-30b-a3b", convention="physical")
    p = Profile(**{f: q[f] for f in Profile._fields})
    w1, w_big = (float(memory_time_s(p, n, 0.0)) for n in (1.0, 4096.0))
    we = float(q["expert_weight_time_s"])
    assert w1 == pytest.approx(float(q["weight_time_s"]) + we * 8 / 128, rel=1e-12)
    assert w_big == pytest.approx(float(q["weight_time_s"]) + we, rel=1e-9)
    # the routed experts are almost all of Qwen3-30B-A3B's bytes: 48 layers · 128 · 3·2048·768 at 2 B
    assert float(q["expert_weight_bytes_per_gpu"]) == 48 * 128 * 3 * 2048 * 768 * 2


def _bytes(model, **serving):
    return float(quantities_for("H100", model, convention="physical", **serving)["weight_bytes_per_gpu"])


def test_expert_and_data_parallel_memory_per_gpu():
    """Non-expert weights over the attention TP group, routed experts over all tp·dp GPUs (hand layout)."""
    m = get_model("qwen3-30b-a3b").arrays()
    c = {k: float(v) for k, v in param_counts(m, "physical").items()}
    experts = c["routed_experts"] * 2
    rest = (c["total"] - c["routed_experts"]) * 2
    replicated_kv = c["kv_proj"] * 2  # 4 KV heads: k/v weights shard over min(tp, 4)
    assert _bytes("qwen3-30b-a3b") == pytest.approx(rest + experts, rel=1e-15)
    # EP2 over tp 2: attention and the rest halved, each GPU holds 64 of the 128 experts
    assert _bytes("qwen3-30b-a3b", tp=2, expert_parallel=2) == pytest.approx(
        rest / 2 + experts / 2, rel=1e-15
    )
    # attention DP2 (tp 1 per rank), EP2: the rest replicated on both ranks, experts halved
    assert _bytes("qwen3-30b-a3b", data_parallel=2, expert_parallel=2) == pytest.approx(
        rest + experts / 2, rel=1e-15
    )
    # tp 8 > 4 KV heads: k/v projections replicated twice (vLLM), experts over 8 GPUs
    assert _bytes("qwen3-30b-a3b", tp=8, expert_parallel=8) == pytest.approx(
        rest / 8 + replicated_kv * (1 / 4 - 1 / 8) + experts / 8, rel=1e-12
    )


def test_data_parallel_instance_counts_every_rank():
    one = quantities_for("H100", "qwen3-30b-a3b", convention="physical")
    two = quantities_for("H100", "qwen3-30b-a3b", convention="physical", data_parallel=2, expert_parallel=2)
    assert float(two["tp"]) == 2.0  # GPUs per instance
    assert float(two["kv_time_per_seq_s"]) == pytest.approx(float(one["kv_time_per_seq_s"]) / 2, rel=1e-15)
    # each rank has its own KV cache: the instance holds both ranks' blocks
    per_rank = (
        math.floor(0.9 * 80 * 2**30) - _bytes("qwen3-30b-a3b", data_parallel=2, expert_parallel=2) - 4 * 2**30
    ) // (48 * 2 * 4 * 128 * 2 * 16)
    assert float(two["kv_blocks"]) == 2 * per_rank


def test_mxfp4_expert_bytes_match_the_published_checkpoint():
    """gpt-oss-120b: 36 layers · 128 experts · 3·2880² MXFP4 weights at 4.25 bits ≈ 61 GB of experts."""
    q = quantities_for("H100", "gpt-oss-120b", convention="physical", weight_dtype="mxfp4")
    experts = float(q["expert_weight_bytes_per_gpu"])
    assert experts == pytest.approx(36 * 128 * 3 * 2880 * 2880 * 4.25 / 8, rel=1e-12)
    assert 60e9 < experts < 62e9
    # the rest (attention, router, embeddings, head) stays 16-bit: the 65 GB checkpoint in all
    assert 63e9 < float(q["weight_bytes_per_gpu"]) < 67e9
    small = quantities_for("H100", "gpt-oss-20b", convention="physical", weight_dtype="mxfp4")
    assert 12e9 < float(small["weight_bytes_per_gpu"]) < 14e9  # the 13 GB gpt-oss-20b checkpoint


def test_sliding_window_kv_capacity_matches_vllm_hybrid_cache():
    """gpt-oss-20b: 12 full layers and 12 sliding (128) layers share one block pool (vLLM hybrid cache):
    a sequence holds ceil(C/16) blocks in each full layer and at most ceil(128/16) + 1 in a sliding one."""
    q = quantities_for("H100", "gpt-oss-20b", convention="physical", weight_dtype="mxfp4")
    p = Profile(**{f: q[f] for f in Profile._fields})
    layer_block_bytes = 2 * 8 * 64 * 2 * 16  # one layer's K and V for 16 tokens, bf16
    budget = math.floor(0.9 * 80 * 2**30) - float(q["weight_bytes_per_gpu"]) - 4 * 2**30
    for context in (100, 128, 4096, 131072):
        blocks = math.ceil(context / 16)
        per_seq = 12 * layer_block_bytes * blocks + 12 * layer_block_bytes * min(blocks, 128 // 16 + 1)
        want = budget // (24 * layer_block_bytes) * 24 * layer_block_bytes // per_seq
        assert float(max_concurrency(p, float(context))) == pytest.approx(want, abs=1)
    assert float(q["kv_window_share"]) == 0.5 and float(q["kv_window_read_tokens"]) == 128.0


def test_chunked_attention_reads_half_a_chunk():
    q = quantities_for("H100", "llama-4-scout", convention="physical", tp=4, expert_parallel=4)
    assert float(q["kv_window_tokens"]) == 8192.0 and float(q["kv_window_read_tokens"]) == 4096.0
    assert float(q["kv_window_share"]) == pytest.approx(36 / 48)


def test_dense_profiles_keep_the_old_law_bit_for_bit():
    q = quantities_for("H100", "llama-3.1-8b", convention="physical")
    for f, default in FIELD_DEFAULTS.items():
        if f != "max_context_tokens":
            assert float(q[f]) == default


def test_moe_gradients_finite_and_match_finite_differences():
    gpu = get_gpu("H100").arrays()
    model = get_model("qwen3-235b-a22b").arrays()
    serving = setups.serving_config(tp=8, expert_parallel=8)

    def tpw(bw):
        p = derive_profile({**gpu, "hbm_bandwidth_bytes_per_s": bw}, model, serving, convention="physical")
        return sweep.evaluate(p, 8192.0, 32.0, convention="physical")["tokens_per_watt"]

    bw = jnp.asarray(3.35e12)
    g = float(jax.grad(tpw)(bw))
    fd = central_difference(lambda x: float(tpw(x)), 3.35e12, rel_step=1e-5)
    assert np.isfinite(g) and 3.35e12 * g == pytest.approx(fd, rel=1e-5)


@pytest.mark.parametrize(
    "model, serving, error, text",
    [
        (
            "qwen3-30b-a3b",
            dict(data_parallel=3, expert_parallel=3),
            InvalidParallelismError,
            "divide n_experts=128",
        ),
        ("qwen3-30b-a3b", dict(tp=2, expert_parallel=4), InvalidParallelismError, "tp·data_parallel = 2"),
        ("qwen3-30b-a3b", dict(tp=4, expert_parallel=3), InvalidParallelismError, "must divide"),
        ("llama-3.1-8b", dict(tp=2, expert_parallel=2), InvalidParallelismError, "dense model"),
        ("qwen3-30b-a3b", dict(weight_dtype="mxfp4"), UnsupportedDtypeError, "does not store MXFP4"),
    ],
)
def test_impossible_layouts_are_one_line_errors(model, serving, error, text):
    with pytest.raises(error, match=text) as info:
        quantities_for("H100", model, convention="physical", **serving)
    assert "\n" not in str(info.value)


def test_grid_with_expert_parallel_axis_and_bad_layout():
    spec = {
        "convention": "physical",
        "profile": "roofline",
        "axes": {
            "gpu": ["H100"],
            "model": ["qwen3-235b-a22b"],
            "tp": [8],
            "expert_parallel": [1, 8],
            "context": [8192],
            "batch": [1, 64],
        },
    }
    r = sweep.run(spec)
    assert r["tokens_per_watt"].dims[:4] == ("gpu", "model", "tp", "expert_parallel")
    # same mean expert bytes per GPU: EP and TP experts give the same expected traffic
    np.testing.assert_allclose(
        r["iteration_time"].isel(expert_parallel=0).values, r["iteration_time"].isel(expert_parallel=1).values
    )
    spec["axes"]["expert_parallel"] = [3]
    with pytest.raises(SweepInputError, match="expert_parallel=3"):
        sweep.run(spec)
