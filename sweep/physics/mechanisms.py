"""The decode-step mechanisms real deployments show, as named, bounded parameters (docs/calibration.md §1).

Each is a serving key of the `physical` first-principles model. The `neutral` value keeps the
uncalibrated model exactly as it was (the mechanism is off or at the planner's value); a
calibration (`sweep calibrate`) fits some of them per GPU and fixes the others at `fixed`, its
documented prior. The `paper` convention never reads them.

    τ = t_step + n·t_seq + 2L·[t_ar + N·2(TP−1)/TP·h·2 B / (η_link·B_link)] + L·t_attn·L̄_eff
        + max(W/(η_bw) + L·t_layer + n·L̄·k/(η_bw·BW),  N·F_tok / (η_f·F_peak))        (s)
    N = n·(1 + r)  tokens through the linear layers (r: prefill tokens per output token)
    P_gpu = TDP·[p_idle + (1 − p_idle)·clip(a·u_mem + b·u_cmp, 0, 1)]  (power_model "utilization")
"""

from __future__ import annotations

from typing import NamedTuple


class Mechanism(NamedTuple):
    """One parameter: neutral value (today's model), calibration prior, bounds, unit, meaning."""

    neutral: float
    fixed: float
    lower: float
    upper: float
    unit: str
    meaning: str


MECHANISMS = {
    "bandwidth_efficiency": Mechanism(
        0.80, 0.80, 0.05, 1.0, "1", "η_bw: achieved fraction of peak HBM bandwidth (weights and KV reads)"
    ),
    "layer_overhead_s": Mechanism(
        3e-6, 0.0, 0.0, 1e-3, "s", "t_layer: launch overhead per layer per step (CUDA graphs: ≈ 0)"
    ),
    "flops_efficiency": Mechanism(
        1.0, 0.6, 0.05, 1.0, "1", "η_f: achieved fraction of the dense tensor FLOP/s in the linear layers"
    ),
    "step_overhead_s": Mechanism(
        0.0, 0.0, 0.0, 0.1, "s", "t_step: fixed time per decode step (scheduler, sampling, host work)"
    ),
    "sequence_overhead_s": Mechanism(
        0.0, 0.0, 0.0, 1e-3, "s", "t_seq: time per running sequence per step (batch bookkeeping, sampling)"
    ),
    "allreduce_latency_s": Mechanism(
        0.0, 15e-6, 0.0, 1e-3, "s", "t_ar: latency of one tensor-parallel all-reduce (2 per layer, TP > 1)"
    ),
    "interconnect_efficiency": Mechanism(
        0.0,
        0.7,
        0.0,
        1.0,
        "1",
        "η_link: achieved fraction of the GPU interconnect bandwidth in all-reduces (0 = transfer term off)",
    ),
    "attention_latency_s": Mechanism(
        0.0,
        0.0,
        0.0,
        1e-6,
        "s",
        "t_attn: latency-bound decode attention, step time per layer per token of mean context",
    ),
    "power_idle_fraction": Mechanism(
        0.43, 0.43, 0.0, 1.0, "1", "p_idle: power floor of a serving GPU, as a fraction of TDP"
    ),
    "power_memory_coefficient": Mechanism(
        0.0, 0.6, 0.0, 10.0, "1", "a: dynamic power (share of TDP − floor) per unit of memory activity u_mem"
    ),
    "power_compute_coefficient": Mechanism(
        0.0, 0.6, 0.0, 10.0, "1", "b: dynamic power (share of TDP − floor) per unit of compute activity u_cmp"
    ),
}
"""name -> Mechanism. `neutral` is the default of `sweep.physics.derive.SERVING_DEFAULTS`."""

DEFAULT_FIT = (
    "bandwidth_efficiency",
    "step_overhead_s",
    "sequence_overhead_s",
    "attention_latency_s",
    "power_idle_fraction",
    "power_memory_coefficient",
    "power_compute_coefficient",
)
"""What `sweep calibrate` fits by default: the mechanisms the ML.ENERGY v3 data identifies (docs/calibration.md §3);
besides them, one prompt length per task other than chat (sweep.calibration.fit)."""

ASSUMED_PROMPT_TOKENS = 100.0
"""Mean prompt tokens assumed where measurements leave the prompt length blank (docs/calibration.md §4):
the largest round value at which every shipped ML.ENERGY run fits its modelled KV cache."""
