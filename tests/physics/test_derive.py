"""First-principles profiles: docs/models.md Tables 2 and 5 (paper convention), the physical convention
checked by hand against vLLM's KV sizing, gradients vs finite differences, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.catalogs.gpus import get_gpu, gpu_arrays
from sweep.catalogs.llms import get_model, model_arrays
from sweep.catalogs.setups import (
    allowed_tp,
    check_setup,
    kv_dtype_bytes,
    profile_for,
    quantities_for,
    serving_config,
    weight_dtype_bytes,
)
from sweep.errors import (
    InvalidParallelismError,
    InvalidValueError,
    SweepInputError,
    UnsupportedDtypeError,
)
from sweep.physics.derive import DEFAULT_RESERVE_BYTES, derive_profile, stack
from sweep.physics.instance import evaluate

GIB = 2**30
C = 8192.0  # context of Tables 2 and 5; L̄ = C/2 at full concurrency


def metrics(profile, convention="paper", relaxed=False, context=C):
    out = evaluate(profile, context, 0.0, 0.5, convention=convention, relaxed=relaxed)
    return {k: np.asarray(v) for k, v in out.items()}


def paper(gpu, model, tp, **kw):
    return profile_for(gpu, model, convention="paper", tp=tp, **kw)


# ---------------------------------------------------------------------------------------------
# Paper convention: docs/models.md §4 Tables 2 and 5, cell by cell

# (gpu, model, tp): n_max, tok/s (or None), tok/W, W_s in ms as printed (or None), P in W as printed (or None)
TABLE2 = [
    ("H100", "llama-3.1-8b", 1, 58, 3350, 6.46, None, None),
    ("H100", "llama-3.1-70b", 8, 22, 2716, 7.41, None, None),
    ("H100", "qwen3-235b-a22b", 8, 24, 11521, 37.82, None, None),
    ("B200", "llama-3.1-8b", 1, 148, None, 12.18, None, None),
    ("B200", "llama-3.1-70b", 8, 58, None, 20.93, None, None),
    ("B200", "qwen3-235b-a22b", 8, 146, None, 177.73, None, None),
]
TABLE5 = [
    ("H100", "llama-3.1-70b", 8, 22, None, 7.41, 6.72, 367),
    ("H200", "llama-3.1-70b", 8, 44, None, 15.58, 4.76, 422),
    ("B200", "llama-3.1-70b", 8, 58, None, 20.93, 2.95, 619),
    ("GB200", "llama-3.1-70b", 8, 65, None, 18.49, 2.95, 755),
]


@pytest.mark.parametrize("gpu, model, tp, n, tps, tpw, ws_ms, power", TABLE2 + TABLE5)
def test_paper_tables_2_and_5(gpu, model, tp, n, tps, tpw, ws_ms, power):
    p = paper(gpu, model, tp)
    m = metrics(p)
    assert m["max_concurrency"] == n  # exact
    assert m["tokens_per_watt"] == pytest.approx(tpw, rel=0.005)
    if tps is not None:
        assert abs(m["tokens_per_second"] - tps) <= 1.0
    if ws_ms is not None:
        assert abs(float(p.weight_time_s) * 1e3 - ws_ms) <= 0.005  # as printed (2 decimals)
    if power is not None:
        assert abs(m["gpu_power"] - power) <= 0.5  # as printed (whole watts)


def test_paper_qwen3_moe_override_and_power_weight_time():
    h100, b200 = paper("H100", "qwen3-235b-a22b", 8), paper("B200", "qwen3-235b-a22b", 8)
    # throughput: 22e9 · 2 B / 8 / 3.35e12 (raw bandwidth, no 0.8, no per-layer term) = 1.642 ms
    assert float(h100.weight_time_s) == pytest.approx(22e9 * 2 / 8 / 3.35e12, rel=1e-12)
    assert round(float(h100.weight_time_s) * 1e3, 3) == 1.642
    # power: kernel table 0.48 ms·94 + attention streaming at 0.8·BW + 3 µs·94 (docs/models.md §2 end)
    assert round(float(h100.power_weight_time_s) * 1e3, 3) == 45.715
    assert round(float(b200.power_weight_time_s) * 1e3, 3) == 24.945
    m = metrics(h100)
    assert round(float(m["gpu_power"])) == 305
    ratio = m["tokens_per_watt"] / metrics(paper("H100", "llama-3.1-70b", 8))["tokens_per_watt"]
    assert round(float(ratio), 1) == 5.1
    # with the consistent weight time the paper quotes 381 W and 30.26 tok/W
    consistent = h100._replace(power_weight_time_s=h100.weight_time_s)
    mc = metrics(consistent)
    assert round(float(mc["gpu_power"])) == 381 and mc["tokens_per_watt"] == pytest.approx(30.26, rel=0.005)


def test_paper_profile_fields():
    p = paper("H100", "llama-3.1-70b", 8)
    assert float(p.kv_blocks) == 11353  # (floor(0.9·80 GiB) − 139.0 GB/8 − 392 MiB) // (327680·16)
    assert float(p.kv_blocks) == (int(0.9 * 80 * GIB) - 69_501_714_432 * 2 / 8 - 411_041_792) // (
        327_680 * 16
    )
    assert float(p.calibration_context) == 4096 and float(p.max_slots) == 0
    assert float(p.min_concurrency) == 1 and float(p.power_model) == 1
    assert float(p.power_idle_fraction) == float(p.power_dynamic_fraction) == 0.43
    assert float(p.power_weight_time_s) == float(p.weight_time_s)
    assert float(p.flops_per_token) == 2 * 69_501_714_432 / 8 and float(p.peak_flops) == 989e12
    assert float(p.prefill_chunk_tokens) == 1024 and float(p.price_per_gpu_hour) == 4.02
    assert float(paper("B200", "llama-3.1-70b", 8).kv_blocks) == 29785  # docs/models.md: ratio 29785/11353
    # nccl reserve: 342 MiB at TP 2, 0 at TP 1
    q2 = quantities_for("H100", "llama-3.1-8b", convention="paper", tp=2)
    q1 = quantities_for("H100", "llama-3.1-8b", convention="paper", tp=1)
    assert float(q2["reserve_bytes"]) == 342 * 2**20 and float(q1["reserve_bytes"]) == 0


def test_paper_clamps_non_fitting_models_to_one_sequence():
    ds = paper("H100", "deepseek-v3", 8, weight_dtype="fp8")
    assert float(ds.kv_blocks) == 0
    assert metrics(ds)["max_concurrency"] == 1
    big = paper("H100", "llama-3.1-405b", 8)
    assert float(big.kv_blocks) == 0 and metrics(big)["max_concurrency"] == 1
    assert float(ds.peak_flops) == 989e12  # the planner's compute_frac uses fp16 FLOPS


def test_integer_floor_is_exact_under_jit():
    """A budget that is exactly 1024 blocks must give 1024, never 1023 (a/b → a·(1/b) in XLA)."""
    m = get_model("llama-3.1-70b")
    s = serving_config(tp=8, gpu_memory_utilization=1.0)
    weights = 69_501_714_432 * 2 / 8
    block = 327_680 * 16
    gpu = get_gpu("H100").arrays()
    for blocks in (1024, 999, 77_777):
        mem = weights + 411_041_792 + blocks * block
        g = {**gpu, "memory_bytes": jnp.asarray(mem)}
        f = jax.jit(lambda g: derive_profile(g, m.arrays(), s, convention="paper").kv_blocks)
        assert float(f(g)) == blocks
        g1 = {**gpu, "memory_bytes": jnp.asarray(mem - 1.0)}
        assert float(f(g1)) == blocks - 1


# ---------------------------------------------------------------------------------------------
# Physical convention


def test_physical_b200_llama70b_kv_tokens_by_hand():
    """vLLM: KV bytes = util · total − weights − peak activation − non-torch (our `reserve_bytes`);
    blocks = that // (block_size · KV bytes per token per GPU); KV sharded over TP (8 KV heads / TP 8)."""
    q = quantities_for("B200", "llama-3.1-70b", convention="physical", tp=8, gpu_memory_utilization=0.90)
    total = 180 * GIB  # 193_273_528_320
    usable = 173_946_175_488  # floor(0.90 · total)
    weights = 70_553_706_496 * 2 // 8  # 17_638_426_624 bytes per GPU (real parameter count, bf16)
    reserve = 4 * GIB  # 4_294_967_296, default activation + non-torch reserve
    kv_per_token_per_gpu = 2 * 80 * (8 // 8) * 128 * 2  # 40_960
    available = usable - weights - reserve  # 152_012_781_568
    blocks = available // (16 * kv_per_token_per_gpu)  # 152_012_781_568 // 655_360 = 231_953
    assert int(0.90 * total) == usable and available == 152_012_781_568 and blocks == 231_953
    assert float(q["weight_bytes_per_gpu"]) == weights
    assert float(q["kv_bytes_per_token_per_gpu"]) == kv_per_token_per_gpu
    assert float(q["reserve_bytes"]) == reserve == DEFAULT_RESERVE_BYTES
    assert float(q["kv_blocks"]) == blocks
    assert float(q["kv_tokens"]) == blocks * 16 == 3_711_248
    m = metrics(profile_for("B200", "llama-3.1-70b", convention="physical", tp=8), convention="physical")
    assert m["max_concurrency"] == 3_711_248 // 8192 == 453  # vLLM "maximum concurrency" at 8K
    assert m["feasible"] == 1


def test_physical_405b_fp16_on_8xh100_is_infeasible():
    p = profile_for("H100", "llama-3.1-405b", convention="physical", tp=8, weight_dtype="fp16")
    assert float(p.kv_blocks) == 0 and float(p.min_concurrency) == 0
    m = metrics(p, convention="physical")
    assert m["feasible"] == 0 and np.isnan(m["tokens_per_watt"])
    # fp8 weights fit
    assert (
        metrics(
            profile_for("H100", "llama-3.1-405b", convention="physical", tp=8, weight_dtype="fp8"),
            convention="physical",
        )["feasible"]
        == 1
    )


def test_physical_qwen3_uses_head_dim_128_and_replicates_kv_heads():
    q = quantities_for("H100", "qwen3-235b-a22b", convention="physical", tp=8)
    assert float(q["kv_bytes_per_token"]) == 2 * 94 * 4 * 128 * 2
    # 4 KV heads on 8 GPUs: each KV head replicated twice (vLLM), one head per GPU
    assert float(q["kv_bytes_per_token_per_gpu"]) == 2 * 94 * 1 * 128 * 2
    qp = quantities_for("H100", "qwen3-235b-a22b", convention="paper", tp=8)
    assert float(qp["kv_bytes_per_token"]) == 2 * 94 * 4 * 64 * 2


def test_physical_mla_latent_cache_is_replicated():
    q = quantities_for(
        "B200", "deepseek-v3", convention="physical", tp=8, weight_dtype="fp8", kv_dtype="bf16"
    )
    assert float(q["kv_bytes_per_token"]) == float(q["kv_bytes_per_token_per_gpu"]) == 61 * 576 * 2
    p = profile_for("B200", "deepseek-v3", convention="physical", tp=8, weight_dtype="fp8")
    assert float(p.peak_flops) == 4500e12  # fp8 weights → fp8 FLOPS
    # weights per GPU: fp8 linears, 16-bit embeddings/head/norms/router, all /TP, plus vLLM's replicated
    # MLA down-projections (q_a_proj 7168·1536, kv_a_proj_with_mqa 7168·576 per layer) on every rank
    total = float(q["params_total"])
    exempt = 2 * 129280 * 7168 + 61 * 2 * 7168 + 7168 + 58 * 7168 * 256  # emb, head, norms, router
    replicated = 61 * (7168 * 1536 + 7168 * 576)
    assert float(q["weight_bytes_per_gpu"]) == pytest.approx(
        ((total - exempt) * 1 + exempt * 2) / 8 + replicated * 1 * (1 - 1 / 8), rel=1e-15
    )


def test_physical_consistent_moe_weight_time_and_dispatch_overhead():
    base = quantities_for("H100", "qwen3-235b-a22b", convention="physical", tp=8)
    assert float(base["power_weight_time_s"]) == float(base["weight_time_s"])
    # streamed: active experts + attention + router + norms + LM head, /TP, + replicated k/v weights
    streamed = float(base["params_streamed"])
    kv_proj_extra = 94 * 2 * 4096 * 4 * 128 * 2 * (1 / 4 - 1 / 8)
    want = (streamed * 2 / 8 + kv_proj_extra) / (0.8 * 3.35e12) + 3e-6 * 94
    # at one token the batch-dependent law gives the top-k experts: W_s + W_E·q = the batch-1 weight time
    q_touch = float(base["expert_touch_probability"])
    assert q_touch == 8 / 128
    batch1 = float(base["weight_time_s"] + base["expert_weight_time_s"] * q_touch)
    assert batch1 == pytest.approx(want, rel=1e-12)
    # W_E: every routed expert of the GPU's 1/8 share, 94 layers × 128 experts × 3·4096·1536 at 2 B
    assert float(base["expert_weight_time_s"]) == pytest.approx(
        94 * 128 * 3 * 4096 * 1536 * 2 / 8 / (0.8 * 3.35e12), rel=1e-12
    )
    extra = quantities_for(
        "H100", "qwen3-235b-a22b", convention="physical", tp=8, moe_dispatch_overhead_s=10e-6
    )
    assert float(extra["weight_time_s"] - base["weight_time_s"]) == pytest.approx(94 * 10e-6, rel=1e-9)
    ds = quantities_for(
        "B200", "deepseek-v3", convention="physical", tp=8, weight_dtype="fp8", moe_dispatch_overhead_s=10e-6
    )
    ds0 = quantities_for("B200", "deepseek-v3", convention="physical", tp=8, weight_dtype="fp8")
    assert float(ds["weight_time_s"] - ds0["weight_time_s"]) == pytest.approx(
        58 * 10e-6, rel=1e-9
    )  # 61 − 3 dense


def test_physical_fp8_keeps_embeddings_at_16_bit():
    q8 = quantities_for("H100", "llama-3.1-70b", convention="physical", tp=8, weight_dtype="fp8")
    exempt = 2 * 128256 * 8192 + 80 * 2 * 8192 + 8192  # embeddings, head, norms
    assert float(q8["weight_bytes_per_gpu"]) == ((70_553_706_496 - exempt) * 1 + exempt * 2) / 8


def test_physical_logistic_power_option():
    p = profile_for("H100", "llama-3.1-70b", convention="physical", tp=8, power_model="logistic")
    assert float(p.power_model) == 0 and float(p.power_x0) == 4.2
    with pytest.raises(InvalidValueError, match="logistic"):
        profile_for("B200", "llama-3.1-70b", convention="physical", tp=8, power_model="logistic")


def test_roofline_compute_bound_uses_the_weight_dtype_flops():
    p = profile_for("H100", "llama-3.1-8b", convention="physical", tp=1)
    assert float(p.flops_per_token) == 2 * (8_030_261_248 - 128256 * 4096)
    assert float(p.peak_flops) == 989e12
    out = evaluate(p, 64.0, 100000.0, 0.5, convention="physical")  # tiny context, huge batch
    n = float(out["concurrency"])
    assert float(out["iteration_time"]) == pytest.approx(n * float(p.flops_per_token) / 989e12, rel=1e-12)
    assert int(out["bound"]) == 1


def test_jit_and_vmap():
    g, m, s = get_gpu("H100").arrays(), get_model("qwen3-235b-a22b").arrays(), serving_config(tp=8)
    f = jax.jit(derive_profile, static_argnames=("convention", "relaxed"))
    for conv in ("paper", "physical"):
        a, b = f(g, m, s, convention=conv), derive_profile(g, m, s, convention=conv)
        assert all(float(x) == float(y) for x, y in zip(a, b))
    bws = jnp.array([2e12, 3.35e12, 8e12])
    v = jax.vmap(lambda bw: derive_profile({**g, "hbm_bandwidth_bytes_per_s": bw}, m, s, convention="paper"))(
        bws
    )
    assert v.weight_time_s.shape == (3,)
    assert float(v.weight_time_s[1]) == float(derive_profile(g, m, s, convention="paper").weight_time_s)


def test_vectorised_table_matches_rows():
    rows = [
        ("A100", "llama-3.1-8b", 1),
        ("H100", "llama-3.1-70b", 8),
        ("B200", "qwen3-235b-a22b", 8),
        ("GB200", "deepseek-v3", 8),
    ]
    gpus = gpu_arrays([get_gpu(g) for g, _, _ in rows])
    models = model_arrays([get_model(m) for _, m, _ in rows])
    servs = stack([serving_config(tp=tp) for _, _, tp in rows])
    for conv in ("paper", "physical"):
        table = derive_profile(gpus, models, servs, convention=conv)
        for i, (g, m, tp) in enumerate(rows):
            one = profile_for(g, m, convention=conv, tp=tp)
            for f in one._fields:
                assert float(getattr(table, f)[i]) == float(getattr(one, f)), (conv, f, i)


# ---------------------------------------------------------------------------------------------
# Gradients of relaxed tokens per watt vs central finite differences (float64, 1e-6 relative)

SPECS = ("hbm_bandwidth_bytes_per_s", "memory_bytes", "fp16_flops", "tdp_w")


def _tpw(gpu_name, model_name, convention, **serving):
    g0, m = get_gpu(gpu_name).arrays(), get_model(model_name).arrays()
    s = serving_config(**serving)

    def f(key, x):
        p = derive_profile({**g0, key: x}, m, s, convention=convention, relaxed=True)
        return evaluate(p, C, 0.0, 0.5, convention=convention, relaxed=True)["tokens_per_watt"]

    return g0, f


def _fd(f, x, rel=1e-5):
    h = rel * x
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize(
    "gpu, model, convention, serving, keys",
    [
        ("H100", "llama-3.1-70b", "paper", dict(tp=8), SPECS),
        ("H100", "qwen3-235b-a22b", "paper", dict(tp=8), SPECS),
        ("B200", "llama-3.1-8b", "physical", dict(tp=1), SPECS),
        (
            "B200",
            "deepseek-v3",
            "physical",
            dict(tp=8, weight_dtype="fp8"),
            SPECS[:2] + ("fp8_flops", "tdp_w"),
        ),
        (
            "H100",
            "llama-3.1-70b",
            "physical",
            dict(tp=8, power_model="logistic"),
            (
                "hbm_bandwidth_bytes_per_s",
                "memory_bytes",
                "power_idle_w",
                "power_nominal_w",
                "power_k",
                "power_x0",
            ),
        ),
    ],
)
def test_gradients_match_finite_differences(gpu, model, convention, serving, keys):
    g0, f = _tpw(gpu, model, convention, **serving)
    for key in keys:
        x = g0[key]

        def f_key(v, key=key):
            return f(key, v)

        grad = float(jax.grad(f_key)(x))
        _, tangent = jax.jvp(f_key, (x,), (jnp.ones_like(x),))
        fd = float(_fd(f_key, x))
        assert grad != 0.0, key
        assert grad == pytest.approx(fd, rel=1e-6), key
        assert float(tangent) == pytest.approx(grad, rel=1e-12), key


# ---------------------------------------------------------------------------------------------
# Bad input


def test_fp8_on_a100_is_an_error():
    with pytest.raises(UnsupportedDtypeError) as e:
        profile_for("A100", "llama-3.1-8b", convention="physical", weight_dtype="fp8")
    msg = str(e.value)
    assert isinstance(e.value, SweepInputError) and isinstance(e.value, ValueError)
    assert "weight_dtype" in msg and "A100" in msg and "bf16" in msg and "\n" not in msg
    # an fp8 KV cache is a storage format: allowed on A100
    profile_for("A100", "llama-3.1-8b", convention="physical", kv_dtype="fp8")


def test_tp_must_divide_heads():
    with pytest.raises(InvalidParallelismError) as e:
        profile_for("H100", "llama-3.1-70b", convention="paper", tp=3)
    msg = str(e.value)
    assert "tp=3" in msg and "n_heads=64" in msg and "allowed tp: 1, 2, 4, 8, 16, 32, 64" in msg
    assert isinstance(e.value, SweepInputError)
    # KV heads: shard when kv_heads % tp == 0, replicate when tp % kv_heads == 0 (vLLM)
    assert allowed_tp(get_model("qwen3-235b-a22b")) == [1, 2, 4, 8, 16, 32, 64]
    assert 16 in allowed_tp(get_model("llama-3.1-70b"))
    with pytest.raises(InvalidParallelismError, match="n_kv_heads=8"):
        check_setup(get_gpu("H100"), get_model("llama-3.1-70b"), serving_config(tp=12))


def test_dtype_and_serving_validation():
    assert (weight_dtype_bytes("BF16"), weight_dtype_bytes("fp8"), weight_dtype_bytes("int4")) == (
        2.0,
        1.0,
        0.5,
    )
    assert kv_dtype_bytes("fp16") == 2.0
    with pytest.raises(InvalidValueError, match="weight_dtype 'fp4': allowed values: bf16, fp16, fp8, int4"):
        weight_dtype_bytes("fp4")
    with pytest.raises(InvalidValueError, match="kv_dtype 'int4'"):
        kv_dtype_bytes("int4")
    assert float(serving_config(weight_dtype="int4")["kv_dtype_bytes"]) == 2.0
    with pytest.raises(InvalidValueError, match="gpu_memory_utilization"):
        serving_config(gpu_memory_utilization=1.5)
    with pytest.raises(InvalidValueError, match="tp"):
        serving_config(tp=0)
    with pytest.raises(InvalidValueError, match="convention 'exact'"):
        derive_profile(
            get_gpu("H100").arrays(), get_model("llama-3.1-8b").arrays(), serving_config(), convention="exact"
        )
