"""The decode-step mechanisms (sweep/physics/mechanisms.py, docs/calibration.md §1): neutral values keep
the uncalibrated model bit for bit, the step time and utilization power follow their equations (plain
Python reference), the tensor-parallel terms switch on only at TP > 1, and bad values are one-line errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweep
from sweep.catalogs import gpu_catalog, model_catalog, setups
from sweep.errors import InvalidValueError
from sweep.physics import derive
from sweep.physics.mechanisms import DEFAULT_FIT, MECHANISMS
from sweep.physics.power import gpu_power_w
from sweep.physics.profile import MECHANISM_FIELDS, Profile
from sweep.physics.roofline import decode_time_s, iteration_time_s
from tests.utils import assert_allclose

NEUTRAL = {k: m.neutral for k, m in MECHANISMS.items()}
SETUPS = [  # (gpu, model, serving kwargs): dense and MoE, TP 1 to 8, bf16 and fp8
    ("H100", "llama-3.1-8b", {"tp": 1}),
    ("H100", "llama-3.1-70b", {"tp": 4}),
    ("B200", "qwen3-32b", {"tp": 2}),
    ("A100", "mixtral-8x7b", {"tp": 2}),
    ("H200", "qwen3-30b-a3b", {"tp": 1, "weight_dtype": "fp8"}),
    ("GB200", "llama-3.1-405b", {"tp": 8, "weight_dtype": "fp8"}),
]
# every mechanism away from its neutral value (and the prefill ratio r), inside the bounds
ACTIVE = {
    "bandwidth_efficiency": 0.75,
    "layer_overhead_s": 1e-6,
    "flops_efficiency": 0.3,
    "step_overhead_s": 2e-3,
    "sequence_overhead_s": 4e-5,
    "allreduce_latency_s": 1.5e-5,
    "interconnect_efficiency": 0.7,
    "attention_latency_s": 1e-8,
    "power_idle_fraction": 0.3,
    "power_memory_coefficient": 1.2,
    "power_compute_coefficient": 1.5,
}
R = 1.5  # prefill tokens per output token


def _evaluate(profile, convention):
    context = jnp.asarray([4096.0, 32768.0])[:, None]
    batch = jnp.asarray([1.0, 16.0, 0.0])[None, :]  # 0: "max"
    return sweep.evaluate(profile, context, batch, convention=convention)


def test_mechanism_table_is_consistent():
    assert set(DEFAULT_FIT) <= set(MECHANISMS)
    for name, m in MECHANISMS.items():
        assert m.lower <= m.neutral <= m.upper and m.lower <= m.fixed <= m.upper, name
        assert m.lower < m.upper and m.unit and m.meaning, name
        assert derive.SERVING_DEFAULTS[name] == m.neutral, name
    assert len(MECHANISM_FIELDS) == 8 and MECHANISM_FIELDS == Profile._fields[-8:]


@pytest.mark.parametrize(("gpu", "model", "serving"), SETUPS)
def test_neutral_mechanisms_change_nothing(gpu, model, serving):
    plain = sweep.profile_for(gpu, model, convention="physical", **serving)
    neutral = sweep.profile_for(gpu, model, convention="physical", **serving, **NEUTRAL)
    for field, a, b in zip(Profile._fields, plain, neutral):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=field)
    for field in MECHANISM_FIELDS:
        assert float(getattr(plain, field)) == 0.0, field
    got, want = _evaluate(neutral, "physical"), _evaluate(plain, "physical")
    assert float(want["max_concurrency"].min()) >= 1  # the comparison covers feasible points
    for k in want:
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)


@pytest.mark.parametrize(("gpu", "model", "serving"), SETUPS[:3])
def test_paper_convention_ignores_mechanisms(gpu, model, serving):
    plain = sweep.profile_for(gpu, model, convention="paper", **serving)
    active = sweep.profile_for(
        gpu,
        model,
        convention="paper",
        **serving,
        **ACTIVE,
        prefill_tokens_per_output=R,
        power_model="utilization",
    )
    for field, a, b in zip(Profile._fields, plain, active):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=field)
    got, want = _evaluate(active, "paper"), _evaluate(plain, "paper")
    for k in want:
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)
    # the same settings do change the physical profile
    physical = sweep.profile_for(gpu, model, convention="physical", **serving, **ACTIVE)
    assert float(physical.step_overhead_s) == ACTIVE["step_overhead_s"]


# ------------------------------------------------------------------------------------------------
# plain-Python reference of τ and the utilization power


def _reference(gpu: str, model: str, tp: int, profile, n: float, mean_len: float) -> dict:
    """τ and P_gpu from the equations of sweep/physics/mechanisms.py and roofline.py, in Python floats.

    The roofline inputs W, H, F come from the profile (checked against the neutral profile below);
    every mechanism term is rebuilt here from the catalog and the ACTIVE values. Dense models with
    global attention only (no routed-expert term, L̄_eff = L̄; checked below)."""
    g, m = gpu_catalog().get(gpu), model_catalog().get(model)
    L, h = m.value("n_layers"), m.value("hidden_size")
    link = ACTIVE["interconnect_efficiency"] * g.value("interconnect_bytes_per_s")
    allreduces = 2 * L if tp > 1 else 0.0
    comm_s = allreduces * ACTIVE["allreduce_latency_s"]
    comm_per_token_s = allreduces * 2 * (tp - 1) / tp * h * 2.0 / link
    N = n * (1 + R)
    W, H, C = float(profile.weight_time_s), float(profile.kv_time_per_seq_s), 4096.0
    memory_s = W + H * n * mean_len / C
    seconds_per_token = float(profile.flops_per_token) / (ACTIVE["flops_efficiency"] * g.value("fp16_flops"))
    decode_compute_s = n * seconds_per_token  # the decode step's n tokens: the roofline's FLOP side
    prefill_s = n * R * seconds_per_token  # interleaved prefill chunks: beside the decode step, not in max()
    compute_s = N * seconds_per_token  # all N tokens through the linears: the power model's u_cmp
    decode_s = (
        ACTIVE["step_overhead_s"]
        + n * ACTIVE["sequence_overhead_s"]
        + comm_s
        + N * comm_per_token_s
        + L * ACTIVE["attention_latency_s"] * mean_len
        + max(memory_s, decode_compute_s)
    )
    tau = decode_s + prefill_s
    activity = (
        ACTIVE["power_memory_coefficient"] * memory_s / tau
        + ACTIVE["power_compute_coefficient"] * compute_s / tau
    )
    p_idle = ACTIVE["power_idle_fraction"]
    power = g.value("tdp_w") * (p_idle + (1 - p_idle) * min(max(activity, 0.0), 1.0))
    return {
        "tau": tau,
        "decode": decode_s,
        "power": power,
        "compute_bound": decode_compute_s > memory_s,
        "clipped": activity > 1,
    }


@pytest.mark.parametrize(("gpu", "model", "tp"), [("H100", "llama-3.1-70b", 4), ("B200", "qwen3-8b", 1)])
def test_step_time_and_utilization_power_match_scalar_reference(gpu, model, tp):
    kwargs = dict(tp=tp, power_model="utilization", prefill_tokens_per_output=R)
    profile = sweep.profile_for(gpu, model, convention="physical", **kwargs, **ACTIVE)
    neutral = sweep.profile_for(gpu, model, convention="physical", tp=tp)
    L = model_catalog().get(model).value("n_layers")
    # W = S/(η_bw·BW) + t_layer·L, H ∝ 1/η_bw, peak = η_f·peak (bf16 weights: fp16 FLOPS)
    streamed_s = (float(neutral.weight_time_s) - 3e-6 * L) * 0.8 / ACTIVE["bandwidth_efficiency"]
    assert float(profile.weight_time_s) == pytest.approx(streamed_s + 1e-6 * L, rel=1e-13)
    assert float(profile.kv_time_per_seq_s) == pytest.approx(
        float(neutral.kv_time_per_seq_s) * 0.8 / ACTIVE["bandwidth_efficiency"], rel=1e-13
    )
    assert float(profile.peak_flops) == pytest.approx(0.3 * float(neutral.peak_flops), rel=1e-15)
    assert float(profile.power_model) == 2 and float(profile.prefill_tokens_per_output) == R
    assert float(profile.attention_latency_s) == pytest.approx(ACTIVE["attention_latency_s"] * L, rel=1e-15)
    # dense, global attention: no routed-expert traffic, every layer reads the whole context
    assert float(profile.expert_weight_time_s) == 0.0 and float(profile.kv_window_share) == 0.0

    points = [(n, mean_len) for n in (1.0, 7.5, 64.0, 300.0, 2000.0) for mean_len in (512.0, 3000.0)]
    refs = [_reference(gpu, model, tp, profile, n, mean_len) for n, mean_len in points]
    n = jnp.asarray([p[0] for p in points])
    mean_len = jnp.asarray([p[1] for p in points])
    assert_allclose(iteration_time_s(profile, n, mean_len), [r["tau"] for r in refs])
    assert_allclose(decode_time_s(profile, n, mean_len), [r["decode"] for r in refs])
    assert_allclose(gpu_power_w(profile, n, mean_len), [r["power"] for r in refs])
    # both roofline branches and both sides of the clip are exercised
    assert {r["compute_bound"] for r in refs} == {True, False}
    assert {r["clipped"] for r in refs} == {True, False}

    # evaluate: tok/s = n/τ and the instance draws TP × P_gpu (n below n_max: batch = n)
    out = sweep.evaluate(profile, 8192.0, 16.0, mean_length_fraction=0.25, convention="physical")
    ref = _reference(gpu, model, tp, profile, 16.0, 2048.0)
    assert float(out["tokens_per_second"]) == pytest.approx(16.0 / ref["tau"], rel=1e-12)
    assert float(out["instance_power"]) == pytest.approx(tp * ref["power"], rel=1e-12)
    assert float(out["tokens_per_watt"]) == pytest.approx(16.0 / ref["tau"] / (tp * ref["power"]), rel=1e-12)


# ------------------------------------------------------------------------------------------------
# tensor-parallel communication


COMM = {"allreduce_latency_s": 1e-5, "interconnect_efficiency": 0.7}


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_comm_terms_only_with_tensor_parallelism(tp):
    p = sweep.profile_for("H100", "llama-3.1-8b", convention="physical", tp=tp, **COMM)
    m = model_catalog().get("llama-3.1-8b")
    L, h = m.value("n_layers"), m.value("hidden_size")
    if tp == 1:
        assert float(p.comm_time_s) == 0.0 and float(p.comm_time_per_token_s) == 0.0
    else:
        link = 0.7 * gpu_catalog().get("H100").value("interconnect_bytes_per_s")
        assert float(p.comm_time_s) == pytest.approx(2 * L * 1e-5, rel=1e-15)
        want = 2 * L * 2 * (tp - 1) / tp * h * 2.0 / link
        assert float(p.comm_time_per_token_s) == pytest.approx(want, rel=1e-14)
    plain = sweep.profile_for("H100", "llama-3.1-8b", convention="physical", tp=tp)
    tau, tau_plain = (float(iteration_time_s(q, 16.0, 2048.0)) for q in (p, plain))
    assert (tau > tau_plain) == (tp > 1) and (tau == tau_plain) == (tp == 1)


def _tokens_per_watt(name: str, tp: int):
    """tok/W of H100 / llama-3.1-8b at TP `tp` as a function of one serving key (JAX, differentiable)."""
    g, m = gpu_catalog().get("H100"), model_catalog().get("llama-3.1-8b")
    serving = setups.serving_config(
        tp=tp, power_model="utilization", power_memory_coefficient=0.5, power_compute_coefficient=0.4, **COMM
    )

    def f(x):
        profile = derive.derive_profile(g.arrays(), m.arrays(), {**serving, name: x}, convention="physical")
        return sweep.evaluate(profile, 8192.0, 16.0, convention="physical")["tokens_per_watt"]

    return f


def test_interconnect_efficiency_zero_switches_the_transfer_term_off():
    p = sweep.profile_for("H100", "llama-3.1-8b", convention="physical", tp=2, interconnect_efficiency=0.0)
    assert float(p.comm_time_per_token_s) == 0.0
    assert all(np.isfinite(np.asarray(v)).all() for v in p)
    f = _tokens_per_watt("interconnect_efficiency", 2)
    value, grad = jax.value_and_grad(f)(jnp.float64(0.0))
    assert np.isfinite(float(value)) and float(grad) == 0.0  # finite: no NaN through the switched-off branch
    # on: the gradient is the central difference (more link efficiency, more tokens per joule)
    x, h = 0.7, 1e-6
    fd = (float(f(x + h)) - float(f(x - h))) / (2 * h)
    assert float(jax.grad(f)(jnp.float64(x))) == pytest.approx(fd, rel=1e-6)
    assert fd > 0


@pytest.mark.parametrize("tp", [1, 2])
def test_allreduce_latency_gradient(tp):
    f = _tokens_per_watt("allreduce_latency_s", tp)
    x, h = 1e-5, 1e-11
    fd = (float(f(x + h)) - float(f(x - h))) / (2 * h)
    grad = float(jax.grad(f)(jnp.float64(x)))
    if tp == 1:
        assert grad == 0.0 and fd == 0.0
    else:
        assert grad < 0 and grad == pytest.approx(fd, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# bad values


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("step_overhead_s", -1e-3),
        ("step_overhead_s", 0.2),
        ("sequence_overhead_s", 2e-3),
        ("allreduce_latency_s", -1.0),
        ("interconnect_efficiency", 1.5),
        ("flops_efficiency", 0.01),
        ("flops_efficiency", 1.1),
        ("power_idle_fraction", 1.2),
        ("power_memory_coefficient", 11.0),
        ("power_compute_coefficient", -0.1),
        ("power_compute_coefficient", math.nan),
        ("bandwidth_efficiency", 1.5),
        ("layer_overhead_s", -1e-6),
        ("prefill_tokens_per_output", -1.0),
    ],
)
def test_out_of_bounds_mechanism_is_an_error(key, value):
    with pytest.raises(InvalidValueError, match=rf"^{key} = ") as info:
        sweep.profile_for("H100", "llama-3.1-8b", convention="physical", **{key: value})
    assert "\n" not in str(info.value) and "must be in" in str(info.value)


def test_unknown_mechanism_is_an_error():
    with pytest.raises(
        InvalidValueError, match=r"serving key 'kernel_overhead_s': allowed: bandwidth_efficiency"
    ):
        sweep.profile_for("H100", "llama-3.1-8b", convention="physical", kernel_overhead_s=1e-3)
