"""Tokens per watt of one serving instance: the three models chained (docs/models.md §1).

    n_max = max_concurrency(C);  n = min(batch, n_max)  (batch "max" → floor(load · n_max))
    L̄ = mean_length_fraction · C  (paper: C/2);  τ = iteration_time(n, L̄);  tok/s = n / τ
    tokens per watt = tok/s ÷ power   [tokens per joule]

Conventions (static):
- "paper": power = ONE GPU's power, even for a TP-way instance (the paper's normalisation);
  where no sequence fits (n_max = 0) the point has concurrency 0 and zero throughput/tok/W. Its
  first-principles profiles clamp n_max to at least 1 (the planner's rule) and keep those numbers,
  but `feasible = 0` there all the same: feasible means a sequence really fits (weights and KV).
- "physical": power = TP × per-GPU power (the whole instance); points where no sequence fits are
  infeasible (`feasible = 0`) and their throughput, power and tokens/W are NaN; so are every float
  output where the context is beyond the model's maximum (`exceeds_model_context = 1`; the paper
  convention keeps its numbers there).
"""

import jax.numpy as jnp

from sweep.physics import intmath as _intmath
from sweep.physics.concurrency import concurrency_limits, exceeds_model_context
from sweep.physics.power import gpu_power_w, logistic_power_w
from sweep.physics.profile import Profile
from sweep.physics.roofline import compute_bound, expert_time_s, iteration_time_s
from sweep.vocabulary import CONVENTIONS


def evaluate(
    profile: Profile,
    context_tokens,
    batch,
    mean_length_fraction=0.5,
    load=1.0,
    *,
    convention: str = "paper",
    relaxed: bool = False,
    n_max=None,
    feasible=None,
) -> dict:
    """All single-instance metrics at every broadcast point; see module docstring.

    `n_max` may be passed in when already computed (the engine computes it on the small
    (profile, context) sub-grid in a separate call, so its integer divisions are not repeated
    in every per-point loop); it must equal `max_concurrency(profile, context_tokens)`, and
    `feasible` (passed with it) the second value of `concurrency_limits(profile, context_tokens)`.

    Args:
        profile: a `Profile` (arrays of any broadcastable shape).
        context_tokens: context window C; batch: sequences in flight (0 or less: "max", n = load·n_max).
        mean_length_fraction: L̄ / C; load: utilisation ρ when batch is "max".
        convention: "paper" or "physical" (docs/models.md §5); relaxed: the continuous relaxation.

    Returns a dict of arrays: max_concurrency, feasible, exceeds_model_context (1 where the context is
    beyond the profile's `max_context_tokens`), concurrency, iteration_time, tokens_per_second,
    gpu_power, tokens_per_watt, bound (1 compute-bound) and, physical, instance_power.

    >>> p = sweep.profile_for("H100", "llama-3.1-8b", convention="physical")
    >>> round(float(sweep.evaluate(p, 8192, 16, convention="physical")["tokens_per_watt"]), 2)
    4.3
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if n_max is None or feasible is None:
        n_max, feasible = concurrency_limits(profile, context_tokens, relaxed=relaxed)
    n_at_load = _intmath.floor(load * n_max, relaxed=relaxed)

    def by_concurrency(f):
        # n = floor(load·n_max) where batch is "max" (<= 0), else min(batch, n_max). A function
        # of n alone is evaluated on each candidate's own (small) sub-grid and then selected, so
        # transcendental work (log2, exp of the logistic power) is not repeated per grid point.
        return jnp.where(batch <= 0, f(n_at_load), jnp.where(batch < n_max, f(batch), f(n_max)))

    n = by_concurrency(lambda x: x)
    mean_length_tokens = mean_length_fraction * context_tokens
    expert_s = by_concurrency(lambda x: expert_time_s(profile, x))
    tau_s = iteration_time_s(profile, n, mean_length_tokens, expert_s=expert_s)
    tokens_per_s = n / tau_s
    logistic_w = by_concurrency(lambda x: logistic_power_w(profile, x, relaxed=relaxed))
    power_w = gpu_power_w(
        profile, n, mean_length_tokens, relaxed=relaxed, logistic_w=logistic_w, expert_s=expert_s
    )
    instance_power_w = profile.tp * power_w
    beyond = exceeds_model_context(profile, context_tokens)
    bound = compute_bound(profile, n, mean_length_tokens, expert_s=expert_s)
    if convention == "paper":
        divisor_w = power_w
    else:
        divisor_w = instance_power_w
        nan = jnp.nan
        valid = feasible & ~beyond
        n = jnp.where(beyond, nan, n)
        tokens_per_s = jnp.where(valid, tokens_per_s, nan)
        tau_s = jnp.where(valid, tau_s, nan)
        power_w = jnp.where(valid, power_w, nan)
        instance_power_w = jnp.where(valid, instance_power_w, nan)
        divisor_w = jnp.where(valid, divisor_w, nan)
    return {
        "max_concurrency": n_max,
        "concurrency": n,
        "iteration_time": tau_s,
        "tokens_per_second": tokens_per_s,
        "gpu_power": power_w,
        "instance_power": instance_power_w,
        "tokens_per_watt": tokens_per_s / divisor_w,
        "feasible": feasible.astype(jnp.int8),
        "exceeds_model_context": beyond.astype(jnp.int8),
        "bound": bound,
    }
