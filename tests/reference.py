"""Plain scalar Python reference of the instance model (docs/models.md §1–2), for comparisons.

Written independently of sweep's JAX code: one point at a time, `math` only.
"""

import math

H100 = dict(
    weight_time_s=4.0e-3,
    kv_time_per_seq_s=0.32e-3,
    calibration_context=8192,
    kv_block_tokens=16,
    kv_blocks=65536,
    max_slots=256,
    tp=8,
    power_idle_w=300.0,
    power_nominal_w=600.0,
    power_k=1.0,
    power_x0=4.2,
)


def n_max(p, context):
    blocks_per_seq = -(-context // p["kv_block_tokens"])
    by_kv = p["kv_blocks"] // blocks_per_seq
    if p["max_slots"] > 0:
        by_kv = min(by_kv, (p["max_slots"] * p["calibration_context"]) // context)
    return max(by_kv, p.get("min_concurrency", 0))


def logistic_power(p, n):
    b = max(1, int(n))
    span = p["power_nominal_w"] - p["power_idle_w"]
    return p["power_idle_w"] + span / (1 + math.exp(-p["power_k"] * (math.log2(b) - p["power_x0"])))


def point(p, context, batch=0, mean_length_fraction=0.5, load=1.0, convention="paper"):
    """All metrics at one point; batch 0 means "max"."""
    nm = n_max(p, context)
    n = math.floor(load * nm) if batch <= 0 else min(batch, nm)
    mean_len = mean_length_fraction * context
    tau = p["weight_time_s"] + p["kv_time_per_seq_s"] * (mean_len / p["calibration_context"]) * n
    tps = n / tau
    power = logistic_power(p, n)
    divisor = power if convention == "paper" else p["tp"] * power
    return dict(
        max_concurrency=nm,
        concurrency=n,
        iteration_time=tau,
        tokens_per_second=tps,
        gpu_power=power,
        tokens_per_watt=tps / divisor,
    )
