"""GPU power models (docs/models.md §1 and §2), selected per profile by `power_model`.

Logistic (calibrated profiles), per GPU, against in-flight sequences b:
    P(b) = P_idle + (P_nom − P_idle) / (1 + exp(−k · (log2 max(1, int(b)) − x0)))
TDP fraction (first-principles profiles, the paper planner):
    P(n) = TDP · (idle_frac + dyn_frac · min(1, kv_frac + compute_frac)),
    kv_frac = H_eff·n / (W_p + H_eff·n),
    compute_frac = flops_per_token·n / ((W_p + H_eff·n) · peak_flops),
with W_p = power_weight_time_s plus the step's routed-expert time (sweep.physics.roofline) and H_eff·n
the step's KV-read time.
Utilization (calibrated first-principles profiles, docs/calibration.md §1), per GPU:
    P(n) = TDP · (p_idle + (1 − p_idle) · clip(a·u_mem + b·u_cmp, 0, 1)),
    u_mem = memory_time / τ,  u_cmp = compute_time / τ   (the shares of the step the roofline terms fill),
with p_idle = power_idle_fraction, a = power_memory_coefficient, b = power_compute_coefficient.
"""

import jax.numpy as jnp

from sweep.physics import intmath as _intmath
from sweep.physics.profile import LOGISTIC_POWER, UTILIZATION_POWER, Profile
from sweep.physics.roofline import compute_time_s, expert_time_s, iteration_time_s, kv_time_s, memory_time_s


def logistic_power_w(profile: Profile, concurrency, *, relaxed: bool = False):
    """Logistic per-GPU power (W); `int(b)` is dropped when relaxed."""
    p = profile
    b = jnp.maximum(1.0, _intmath.floor(concurrency, relaxed=relaxed))
    span_w = p.power_nominal_w - p.power_idle_w
    return p.power_idle_w + span_w / (1.0 + jnp.exp(-p.power_k * (jnp.log2(b) - p.power_x0)))


def _tdp_fraction_activity(p: Profile, concurrency, mean_length_tokens, expert_s):
    """min(1, kv_frac + compute_frac) of the TDP-fraction model."""
    kv_s = kv_time_s(p, concurrency, mean_length_tokens)
    busy_s = p.power_weight_time_s + expert_s + kv_s
    compute_s = compute_time_s(p, concurrency)
    safe_busy_s = jnp.where(busy_s > 0, busy_s, 1.0)
    return jnp.where(busy_s > 0, jnp.minimum(1.0, (kv_s + compute_s) / safe_busy_s), 0.0)


def _utilization_activity(p: Profile, concurrency, mean_length_tokens, expert_s):
    """clip(a·u_mem + b·u_cmp, 0, 1) of the utilization model."""
    tau_s = iteration_time_s(p, concurrency, mean_length_tokens, expert_s=expert_s)
    safe_tau_s = jnp.where(tau_s > 0, tau_s, 1.0)  # double where: finite gradients where τ = 0
    memory_s = memory_time_s(p, concurrency, mean_length_tokens, expert_s=expert_s)
    u_mem = jnp.where(tau_s > 0, memory_s / safe_tau_s, 0.0)
    u_cmp = jnp.where(tau_s > 0, compute_time_s(p, concurrency) / safe_tau_s, 0.0)
    return jnp.clip(p.power_memory_coefficient * u_mem + p.power_compute_coefficient * u_cmp, 0.0, 1.0)


def tdp_fraction_power_w(profile: Profile, concurrency, mean_length_tokens):
    """TDP-fraction per-GPU power (W) of the paper planner's first-principles profiles."""
    p = profile
    return p.tdp_w * (
        p.power_idle_fraction
        + p.power_dynamic_fraction
        * _tdp_fraction_activity(p, concurrency, mean_length_tokens, expert_time_s(p, concurrency))
    )


def utilization_power_w(profile: Profile, concurrency, mean_length_tokens):
    """Utilization-driven per-GPU power (W): the floor plus memory and compute activity, clipped at TDP."""
    p = profile
    activity = _utilization_activity(p, concurrency, mean_length_tokens, expert_time_s(p, concurrency))
    return p.tdp_w * (p.power_idle_fraction + (1.0 - p.power_idle_fraction) * activity)


def gpu_power_w(
    profile: Profile,
    concurrency,
    mean_length_tokens,
    *,
    relaxed: bool = False,
    logistic_w=None,
    expert_s=None,
):
    """Per-GPU power (W) under the profile's power model: the one switch between the two.

    `logistic_w` and `expert_s` may give the logistic curve's value and the routed-expert time
    already evaluated at `concurrency` (the instance chain evaluates them on small sub-grids; see
    `sweep.physics.instance.evaluate`).
    """
    if logistic_w is None:
        logistic_w = logistic_power_w(profile, concurrency, relaxed=relaxed)
    if expert_s is None:
        expert_s = expert_time_s(profile, concurrency)
    p = profile
    utilization = p.power_model == UTILIZATION_POWER
    activity = jnp.where(
        utilization,
        _utilization_activity(p, concurrency, mean_length_tokens, expert_s),
        _tdp_fraction_activity(p, concurrency, mean_length_tokens, expert_s),
    )
    dynamic = jnp.where(utilization, 1.0 - p.power_idle_fraction, p.power_dynamic_fraction)
    first_principles_w = p.tdp_w * (p.power_idle_fraction + dynamic * activity)
    return jnp.where(p.power_model == LOGISTIC_POWER, logistic_w, first_principles_w)
