"""The measured-run model (sweep/calibration/model.py): predictions against a plain-Python reference built
from `sweep.profile_for`, the paged KV-capacity check, and exact Jacobians in every mechanism."""

import dataclasses
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweep
from sweep.calibration.measurements import read_measurements
from sweep.calibration.model import RowInputs, neutral_mechanisms, predict, row_inputs, sequence_lengths
from sweep.calibration.store import load_calibration
from sweep.catalogs import gpu_catalog
from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS, MECHANISMS

SHIPPED = Path(__file__).resolve().parents[2] / "sweep" / "data" / "measurements" / "mlenergy-v3-chat.csv"
HEADER = "gpu,model,tp,num_gpus,concurrency,prompt_tokens,output_tokens,mean_context_tokens"


def write(tmp_path, *rows, header=HEADER, name="rows.csv") -> str:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def shipped():
    return read_measurements(SHIPPED)


def run_predict(inputs: RowInputs, mechanisms: dict, prompt, calibrated: bool = True) -> dict:
    """`predict` (compiled) as NumPy arrays."""
    return {k: np.asarray(v) for k, v in predict(inputs, mechanisms, prompt, calibrated=calibrated).items()}


def subset(measurements, keep):
    return dataclasses.replace(measurements, rows=tuple(r for r in measurements.rows if keep(r)))


def reference(row: dict, mechanisms: dict, prompt: float, calibrated: bool = True) -> dict:
    """One row's prediction in Python floats: the profile from `sweep.profile_for`, then the equations."""
    p = prompt if math.isnan(row["prompt_tokens"]) else row["prompt_tokens"]
    o = row["output_tokens"]
    mean_len = row["mean_context_tokens"] if not math.isnan(row["mean_context_tokens"]) else p + o / 2
    r = 0.0 if math.isnan(o) else p / o
    tp, n, replicas = int(row["tp"]), row["concurrency"], row["num_gpus"] / row["tp"]
    prof = sweep.profile_for(
        row["gpu"],
        row["model"],
        convention="physical",
        tp=tp,
        weight_dtype=row["weight_dtype"],
        kv_dtype=row["kv_dtype"],
        power_model="utilization" if calibrated else "tdp_fraction",
        prefill_tokens_per_output=r,
        **mechanisms,
    )
    f = {k: float(v) for k, v in prof._asdict().items()}
    N = n * (1 + r)
    share = f["kv_window_share"]  # local-attention layers hold and read at most their window
    read_len = (1 - share) * mean_len + share * min(mean_len, f["kv_window_read_tokens"])
    held = (1 - share) * mean_len + share * min(mean_len, f["kv_window_tokens"])
    q = f["expert_touch_probability"]  # routed experts a step of n tokens touches, uniform routing
    touched = 0.0 if q == 0 else (min(n, 1.0) if q >= 1 else 1 - (1 - q) ** n)
    expert_s = f["expert_weight_time_s"] * touched
    kv_s = f["kv_time_per_seq_s"] * n * read_len / f["calibration_context"]
    memory_s = f["weight_time_s"] + expert_s + kv_s
    seconds_per_token = f["flops_per_token"] / f["peak_flops"]
    decode_compute_s = n * seconds_per_token  # the decode step's n tokens
    prefill_s = n * r * seconds_per_token  # interleaved prefill: beside the decode step, not in max()
    compute_s = N * seconds_per_token  # all N tokens through the linears (power activity)
    decode_s = (
        f["step_overhead_s"]
        + n * f["sequence_overhead_s"]
        + f["comm_time_s"]
        + N * f["comm_time_per_token_s"]
        + f["attention_latency_s"] * read_len
        + max(memory_s, decode_compute_s)
    )
    tau = decode_s + prefill_s
    tdp = gpu_catalog().get(row["gpu"]).value("tdp_w")
    if calibrated:
        a, b, idle = (
            mechanisms[k]
            for k in ("power_memory_coefficient", "power_compute_coefficient", "power_idle_fraction")
        )
        activity = min(max(a * memory_s / tau + b * compute_s / tau, 0.0), 1.0)
        gpu_w = tdp * (idle + (1 - idle) * activity)
    else:  # the planner's TDP fraction: 0.43 + 0.43·min(1, (kv + compute) / (W + W_E·share + kv))
        busy_s = f["power_weight_time_s"] + expert_s + kv_s
        gpu_w = tdp * (0.43 + 0.43 * min(1.0, (kv_s + compute_s) / busy_s))
    tokens_per_s = replicas * n / tau
    power = replicas * tp * gpu_w
    return {
        "tokens_per_second": tokens_per_s,
        "power_w": power,
        "itl_s": decode_s,  # the median ITL: the decode step alone
        "tokens_per_joule": tokens_per_s / power,
        "mean_context_tokens": mean_len,
        "kv_tokens": f["kv_blocks"] * f["kv_block_tokens"],
        "fits": n * held <= f["kv_blocks"] * f["kv_block_tokens"],
        "_compute_bound": decode_compute_s > memory_s,
    }


def check_against_reference(measurements, mechanisms_of, prompt, calibrated=True):
    inputs = row_inputs(measurements)
    per_row = [mechanisms_of(r) for r in measurements.rows]
    stacked = {k: jnp.asarray([m[k] for m in per_row]) for k in MECHANISMS}
    got = run_predict(inputs, stacked, prompt, calibrated)
    for i, row in enumerate(measurements.rows):
        want = reference(row, per_row[i], prompt, calibrated)
        for k, v in want.items():
            if k.startswith("_"):
                continue
            if k == "fits":
                assert bool(got[k][i]) == v, (row["where"], k)
            else:
                assert got[k][i] == pytest.approx(v, rel=1e-12), (row["where"], k)
    return got


def test_shipped_rows_match_reference(shipped):
    """Calibrated: a TP-2 row (all-reduce terms on) and TP-1 rows of both GPUs, at the mlenergy-v3 values."""
    cal = load_calibration("mlenergy-v3")
    rows = subset(shipped, lambda r: r["concurrency"] < 9 or r["concurrency"] > 2000 or r["tp"] == 2)
    assert {r["tp"] for r in rows.rows} == {1.0, 2.0} and {r["gpu"] for r in rows.rows} == {"H100", "B200"}
    got = check_against_reference(
        rows, lambda r: cal.for_setup(r["gpu"], r["model"])[0], ASSUMED_PROMPT_TOKENS
    )
    assert got["fits"].all()  # every shipped run fits at the assumed prompt length (docs/calibration.md §4)
    at_500 = check_against_reference(rows, lambda r: cal.for_setup(r["gpu"], r["model"])[0], 500.0)
    assert (
        not at_500["fits"].all() and at_500["fits"].any()
    )  # longer prompts: the 2000-sequence B200 runs do not


def test_uncalibrated_rows_match_reference(shipped):
    rows = subset(shipped, lambda r: r["concurrency"] < 9 or r["tp"] == 2)
    check_against_reference(rows, lambda r: neutral_mechanisms(), 300.0, calibrated=False)


def test_replicas_prompt_and_mean_context(tmp_path):
    rows = read_measurements(
        write(
            tmp_path,
            "H100,llama-3.1-8b,1,4,32,,400,",  # 4 replicas: tokens/s and power are totals
            "B200,qwen3-14b,1,1,64,1200,300,",  # prompt given: r = 4
            "H100,qwen3-32b,2,2,16,,,2500",  # mean context given, no output length: r = 0
            "H100,llama-3.1-8b,1,1,16,800,200,1000",  # mean context wins over p + o/2
        ),
        measured=False,
    )
    inputs = row_inputs(rows)
    mean_len, ratio = (np.asarray(x) for x in sequence_lengths(inputs, 500.0))
    np.testing.assert_array_equal(mean_len, [700.0, 1350.0, 2500.0, 1000.0])
    np.testing.assert_array_equal(ratio, [500 / 400, 4.0, 0.0, 4.0])
    values = {k: m.fixed for k, m in MECHANISMS.items()}
    # the row model reads the derived `replicas` (num_gpus / tp), not num_gpus
    assert [r["replicas"] for r in rows.rows] == [4.0, 1.0, 1.0, 1.0]
    got = check_against_reference(rows, lambda r: values, 500.0)
    one = check_against_reference(
        dataclasses.replace(rows, rows=({**rows.rows[0], "num_gpus": 1.0, "replicas": 1.0},)),
        lambda r: values,
        500.0,
    )
    assert got["tokens_per_second"][0] == pytest.approx(4 * one["tokens_per_second"][0], rel=1e-14)
    assert got["power_w"][0] == pytest.approx(4 * one["power_w"][0], rel=1e-14)
    assert got["itl_s"][0] == pytest.approx(one["itl_s"][0], rel=1e-14)


def test_fits_is_false_beyond_kv_capacity(tmp_path):
    rows = read_measurements(
        write(tmp_path, "H100,llama-3.1-70b,2,2,256,,8000,", "H100,llama-3.1-70b,2,2,1,,100,"), measured=False
    )
    pred = run_predict(row_inputs(rows), neutral_mechanisms(), ASSUMED_PROMPT_TOKENS)
    kv_tokens = float(pred["kv_tokens"][0])
    held = ASSUMED_PROMPT_TOKENS + 8000 / 2  # L̄ = p + o/2
    assert 0 < kv_tokens < 256 * held  # 70B in bf16 leaves little KV room on two H100s
    assert np.asarray(pred["fits"]).tolist() == [False, True]
    assert float(pred["mean_context_tokens"][0]) == held


# ------------------------------------------------------------------------------------------------
# exact Jacobians


BASE = {  # interior values: no bound, no kink of max(memory, compute) or of the power clip
    "bandwidth_efficiency": 0.7,
    "layer_overhead_s": 2e-6,
    "flops_efficiency": 0.4,  # the 2000-sequence B200 decode steps compute bound (≥ 9 % from the kink)
    "step_overhead_s": 1e-3,
    "sequence_overhead_s": 3e-5,
    "allreduce_latency_s": 1.5e-5,
    "interconnect_efficiency": 0.7,
    "attention_latency_s": 1e-7,
    "power_idle_fraction": 0.4,
    "power_memory_coefficient": 0.5,
    "power_compute_coefficient": 0.4,
}
OUTPUTS = ("tokens_per_second", "power_w", "itl_s")


@pytest.fixture(scope="module")
def jacobian_rows(shipped):
    """TP-2 H100 rows (communication terms), a compute-bound B200 row and memory-bound TP-1 rows."""
    return subset(
        shipped,
        lambda r: (r["tp"] == 2 and r["concurrency"] < 70) or r["concurrency"] > 2000 or r["concurrency"] < 9,
    )


def test_jacobian_matches_central_differences(jacobian_rows):
    inputs = row_inputs(jacobian_rows)
    names = (*MECHANISMS, "prompt")

    @jax.jit
    def outputs(x):
        mech = dict(zip(MECHANISMS, x[:-1]))
        pred = predict(inputs, mech, x[-1])
        return jnp.stack([pred[k] for k in OUTPUTS])

    x0 = jnp.asarray([*(BASE[k] for k in MECHANISMS), 400.0])
    y0 = np.asarray(outputs(x0))
    jac = np.asarray(jax.jacfwd(outputs)(x0))  # (output, row, parameter)
    bound = {reference(r, BASE, 400.0)["_compute_bound"] for r in jacobian_rows.rows}
    assert bound == {True, False}  # both roofline branches
    for j, name in enumerate(names):
        h = 1e-6 * float(x0[j])
        up, down = (np.asarray(outputs(x0.at[j].add(s * h))) for s in (1, -1))
        fd = (up - down) / (2 * h)
        # compare elasticities (dimensionless): d ln y / d ln x
        got, want = jac[..., j] * float(x0[j]) / y0, fd * float(x0[j]) / y0
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=name)
        assert np.abs(got).max() > 1e-4, name  # every parameter moves some output
    # tokens/s ignores the power mechanisms exactly; every time mechanism slows the decode step
    t = OUTPUTS.index("tokens_per_second")
    for j, name in enumerate(names):
        if name.startswith("power_"):
            assert not jac[t, :, j].any(), name
        elif name.endswith("_s"):
            assert (jac[t, :, j] <= 0).all(), name
