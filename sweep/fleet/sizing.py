"""Pool sizing and fleet aggregate for context-length routing topologies (docs/models.md §3).

Topologies (`topology`, a traced integer array, selected with `jnp.where`):
    0 HOMOGENEOUS  one pool at `long_context` serves every request (short pool: 0 instances);
    1 POOL         L ≤ b_short → short pool configured at b_short, the rest → long pool;
    2 FLEETOPT     L ≤ γ·b_short → short pool at b_short, requests longer than b_short
                   compressed (clipped) to b_short; the rest → long pool.
Per pool i (requests with L in (lo, hi], lengths clipped to the window W_i):
    n_max = max_concurrency(W_i);  τ(L) = W_s + H_s·(L/C_cal)·n_max
    E[S], cv² exact (sweep.fleet.workload.pool_statistics);  λ_i = λ·share_i
    μ = n_max / E[S]  (requests/s per instance; per KV slot μ_s = 1/E[S])
    N = max(ceil(λ_i/μ) + 1, ceil(λ_i/(μ·ρ_max))), grown to the smallest N whose Kimura
        M/G/c P99 wait with c = N·n_max slots meets the TTFT target (fleet-sim sizing);
    ρ = λ_i/(N·μ);  n_act = ρ·n_max;  pool power = N·P(n_act)   (P at max(1, int(n_act)))
Fleet:  tokens/W = Σ λ_i·E[L_out,i] / Σ N_i·P_i;  $/Mtok = Σ N_i·tp·price / 3600 / Σ λ_i·E[L_out,i] · 1e6;
        P99 TTFT = max over pools with traffic of (P99 wait + E[ceil(L_in/chunk)]·τ(1, C_cal)).

Conventions (static): `convention="physical"` counts every GPU of an instance (P_instance =
tp·P_gpu); `"paper"` counts one GPU's power per instance, the paper's normalisation.
`lengths="exact"` routes (lo, hi] exactly and counts the output tokens actually generated (of
the clipped lengths); `lengths="planner"` reproduces two fleet-sim conventions the paper's
Table 3 carries (see `pool_statistics`): the long pool's first CDF segment spread from 0, and
output tokens of compressed requests counted at their original length.

`relaxed=True` is a continuous relaxation for gradients: no ceil/int on n_max, instance counts or
the power curve (the prefill chunk count ceil(L_in/chunk) is part of the service-time model and
stays: its expectation over a length segment is smooth, but the point mass of requests clipped
to a window jumps slightly where the window crosses a multiple of chunk/(1 − f)) (N_rate =
max(λ/μ + 1, λ/(μ·ρ_max)), continuous n_max, power at n_act itself, Erlang C at real c through
the incomplete gamma function). The SLO growth is the real root N* of
h(N) = log(C(N·n_max)/0.01) − 2·t_SLO·(N·n_max·μ_s − λ)/(1 + cv²) (h ≤ 0 ⇔ P99 wait ≤ t_SLO),
found by bisection and differentiated implicitly (dN*/dθ = −∂h/∂θ / ∂h/∂N); N = max(N_rate, N*).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sweep.fleet.queueing import mgc_wait_quantile_s, wait_tail_exponent
from sweep.fleet.workload import Workload, pool_statistics
from sweep.physics.concurrency import max_concurrency
from sweep.physics.cost import cost_per_mtok
from sweep.physics.power import gpu_power_w
from sweep.physics.profile import Profile
from sweep.physics.roofline import iteration_time_s, kv_time_s, memory_time_s
from sweep.vocabulary import CONVENTIONS, TOPOLOGIES

HOMOGENEOUS, POOL_ROUTING, FLEETOPT = (TOPOLOGIES[t] for t in ("homogeneous", "pool", "fleetopt"))
_WAIT_QUANTILE = 0.99


def _gallop_then_bisect(h, start, *, integer: bool, max_doublings: int = 64, max_bisections: int = 200):
    """Smallest x ≥ start with h(x) ≤ 0 for h decreasing in x (elementwise; no gradient).

    Integer mode returns an integer-valued x; continuous mode the root to ~1e-13 relative.
    Whole-array while loops: points already satisfied stop moving; vmap/jit-safe.
    """
    start = jax.lax.stop_gradient(start)
    start = jnp.broadcast_to(start, jnp.broadcast_shapes(jnp.shape(start), jnp.shape(h(start))))
    ok = h(start) <= 0
    lo = jnp.where(ok, start - 1.0 if integer else start, start)
    step = jnp.ones_like(start) if integer else jnp.maximum(1.0, 0.5 * start)

    def gallop_cond(state):
        _, _, _, ok, it = state
        return jnp.any(~ok) & (it < max_doublings)

    def gallop_body(state):
        lo, hi, step, ok, it = state
        lo = jnp.where(ok, lo, hi)
        hi = jnp.where(ok, hi, hi + step)
        step = jnp.where(ok, step, 2.0 * step)
        return lo, hi, step, h(hi) <= 0, it + 1

    lo, hi, _, _, _ = jax.lax.while_loop(gallop_cond, gallop_body, (lo, start, step, ok, 0))

    def unresolved(lo, hi):
        if integer:
            return hi - lo > 1.0
        return hi - lo > 1e-13 * jnp.maximum(1.0, hi)

    def bisect_cond(state):
        lo, hi, it = state
        return jnp.any(unresolved(lo, hi)) & (it < max_bisections)

    def bisect_body(state):
        lo, hi, it = state
        active = unresolved(lo, hi)
        mid = jnp.floor(0.5 * (lo + hi)) if integer else 0.5 * (lo + hi)
        mid = jnp.where(active, mid, hi)
        ok_mid = h(mid) <= 0
        lo = jnp.where(active & ~ok_mid, mid, lo)
        hi = jnp.where(active & ok_mid, mid, hi)
        return lo, hi, it + 1

    _, hi, _ = jax.lax.while_loop(bisect_cond, bisect_body, (lo, hi, 0))
    return hi


def _pool_tree(tree):
    """Append a trailing pool axis (size 1, broadcasts against the pool-stacked arrays)."""
    return jax.tree.map(lambda x: jnp.asarray(x)[..., None], tree)


class _PoolSizing(NamedTuple):
    """Per-pool sizing: arrival rates, double-where safe inputs and the instance count."""

    lam: jax.Array  # λ_i (requests/s) routed to the pool
    active: jax.Array  # pool has traffic, slots and a positive service time
    lam_s: jax.Array  # λ_i (requests/s), 1 where inactive
    n_slots: jax.Array  # n_max (sequences per instance), 1 where inactive
    mu: jax.Array  # μ (requests/s per instance)
    mu_slot: jax.Array  # μ_s (requests/s per KV slot)
    instances: jax.Array  # N (instances), 0 where inactive


def _pool_boundaries(topology, b_short, gamma, long_ctx):
    """Routing bounds lo, hi (requests with L in (lo, hi], tokens) and serving window (tokens) per pool."""
    split = jnp.where(
        topology == HOMOGENEOUS, 0.0, jnp.where(topology == POOL_ROUTING, b_short, gamma * b_short)
    )
    split, b_short, long_ctx = jnp.broadcast_arrays(split, b_short, long_ctx)
    lo = jnp.stack([jnp.zeros_like(split), split], axis=-1)
    hi = jnp.stack([split, jnp.full_like(split, jnp.inf)], axis=-1)
    window = jnp.stack([b_short, long_ctx], axis=-1)
    return lo, hi, window


def _service_statistics(p, wl, lo, hi, window, output_share, *, relaxed: bool, lengths: str):
    """Slots per instance n_max (sequences) and each pool's exact service statistics (PoolStats)."""
    n_max = max_concurrency(p, window, relaxed=relaxed)
    iter_base_s = memory_time_s(p, n_max, 0.0)
    iter_per_token_s = kv_time_s(p, n_max, 1.0)
    stats = pool_statistics(
        wl,
        lo,
        hi,
        window,
        p.prefill_chunk_tokens,
        iter_base_s,
        iter_per_token_s,
        output_share,
        planner_routing=lengths == "planner",
        output_unclipped=lengths == "planner",
    )
    return n_max, stats


def _rate_instances(lam_s, mu, rho_max, *, relaxed: bool):
    """Rate-driven instance count N_rate = max(λ/μ + 1, λ/(μ·ρ_max)) (ceil'd unless relaxed)."""
    if relaxed:
        return jnp.maximum(lam_s / mu + 1.0, lam_s / (mu * rho_max))
    return jnp.maximum(jnp.ceil(lam_s / mu) + 1.0, jnp.ceil(lam_s / (mu * rho_max)))


def _slo_excess(n, lam_, mu_slot_, n_slots_, scv_, target_):
    """h(N) = log P99-wait excess − tail rate·target (dimensionless; ≤ 0 ⇔ P99 wait ≤ target_ s)."""
    log_excess, rate = wait_tail_exponent(n * n_slots_, lam_, mu_slot_, scv_, _WAIT_QUANTILE)
    return log_excess - rate * target_


def _slo_instances(n_rate, args, *, relaxed: bool):
    """Instances N ≥ N_rate grown until the P99 wait meets the TTFT target (implicit root when relaxed)."""
    frozen = [jax.lax.stop_gradient(a) for a in args]
    n_found = _gallop_then_bisect(lambda n: _slo_excess(n, *frozen), n_rate, integer=not relaxed)
    if not relaxed:
        return n_found
    binding = n_found > jax.lax.stop_gradient(n_rate)
    n_root = jnp.where(binding, n_found, jax.lax.stop_gradient(n_rate) + 1.0)
    _, h_slope = jax.jvp(lambda n: _slo_excess(n, *frozen), (n_root,), (jnp.ones_like(n_root),))
    h_live = _slo_excess(n_root, *args)
    safe_slope = jnp.where(binding & (h_slope < 0), h_slope, -1.0)
    n_implicit = n_root - (h_live - jax.lax.stop_gradient(h_live)) / safe_slope
    return jnp.where(binding, n_implicit, n_rate)


def _size_pools(lam_total, stats, n_max, rho_max, target_s, *, relaxed: bool) -> _PoolSizing:
    """Per-pool arrival rate (requests/s) and instance count N (double-where: inactive pools → 0)."""
    lam = lam_total * stats.traffic_share
    active = (lam > 0) & (n_max > 0) & (stats.mean_service_s > 0)
    lam_s = jnp.where(active, lam, 1.0)
    e_s = jnp.where(active, stats.mean_service_s, 1.0)
    n_slots = jnp.where(active, n_max, 1.0)
    mu = n_slots / e_s  # requests/s per instance
    mu_slot = 1.0 / e_s
    n_rate = _rate_instances(lam_s, mu, rho_max, relaxed=relaxed)
    args = (lam_s, mu_slot, n_slots, stats.service_scv, target_s)
    instances = _slo_instances(n_rate, args, relaxed=relaxed)
    instances = jnp.where(active, instances, 0.0)
    return _PoolSizing(lam, active, lam_s, n_slots, mu, mu_slot, instances)


def _operating_point(p, sizing: _PoolSizing, n_max, stats, *, convention: str, relaxed: bool):
    """Per-pool safe N, utilisation ρ, active sequences n_act, pool power (W) and output tokens/s."""
    n_inst_safe = jnp.where(sizing.active, sizing.instances, 1.0)
    rho = jnp.where(sizing.active, sizing.lam_s / (n_inst_safe * sizing.mu), 0.0)
    n_act = rho * n_max
    gpu_w = gpu_power_w(p, n_act, stats.mean_served_tokens, relaxed=relaxed)
    gpus_per_instance = p.tp if convention == "physical" else jnp.ones_like(p.tp)
    pool_power_w = jnp.where(sizing.active, sizing.instances * gpus_per_instance * gpu_w, 0.0)
    pool_tokens_per_s = jnp.where(sizing.active, sizing.lam * stats.mean_output_tokens, 0.0)
    return n_inst_safe, rho, n_act, pool_power_w, pool_tokens_per_s


def _pool_ttft_p99_s(p, sizing: _PoolSizing, n_inst_safe, stats):
    """Per-pool P99 TTFT (s): Kimura M/G/c P99 wait plus mean prefill chunks × single-sequence iteration."""
    wait_s = mgc_wait_quantile_s(
        n_inst_safe * sizing.n_slots, sizing.lam_s, sizing.mu_slot, stats.service_scv, _WAIT_QUANTILE
    )
    prefill_s = stats.mean_prefill_chunks * iteration_time_s(p, 1.0, p.calibration_context)
    return jnp.where(sizing.active, wait_s + prefill_s, 0.0)


def _fleet_aggregates(p, instances, pool_power_w, pool_tokens_per_s, ttft_pool_s, ttft_p99_s) -> dict:
    """Fleet tokens/J, power (W), output tokens/s, $ per Mtok, worst-pool P99 TTFT (s), SLO flag."""
    fleet_power_w = jnp.sum(pool_power_w, axis=-1)
    fleet_tokens_per_s = jnp.sum(pool_tokens_per_s, axis=-1)
    safe_power = jnp.where(fleet_power_w > 0, fleet_power_w, 1.0)
    dollars_per_hour = jnp.sum(instances * p.tp * p.price_per_gpu_hour, axis=-1)
    return {
        "fleet_tokens_per_watt": jnp.where(fleet_power_w > 0, fleet_tokens_per_s / safe_power, 0.0),
        "fleet_power": fleet_power_w,
        "fleet_output_tokens_per_second": fleet_tokens_per_s,
        "cost_per_mtok": cost_per_mtok(dollars_per_hour, fleet_tokens_per_s),
        "ttft_p99": jnp.max(ttft_pool_s, axis=-1),
        "meets_slo": (jnp.max(ttft_pool_s, axis=-1) <= ttft_p99_s).astype(jnp.int8),
    }


def fleet_metrics(
    profile: Profile,
    workload: Workload,
    arrival_rate_per_s,
    topology,
    b_short_tokens,
    gamma=2.0,
    long_context_tokens=65536,
    ttft_p99_s=0.5,
    rho_max=0.85,
    output_share=0.2,
    *,
    convention: str = "physical",
    relaxed: bool = False,
    lengths: str = "exact",
) -> dict:
    """Fleet tokens per watt and its breakdown for one or many (broadcast) configurations.

    Returns a dict of arrays named as the output Dataset's variables: fleet_tokens_per_watt
    (tokens/J), fleet_power (W), fleet_output_tokens_per_second, cost_per_mtok ($ per million
    output tokens), ttft_p99 (s, worst pool), meets_slo (int8: 1 where ttft_p99 <= ttft_p99_s),
    and per pool (trailing `pool` axis: short, long): instances, traffic_share, utilization (rho),
    active_sequences (n_act), pool_power (W), mean_service_time (s), service_scv,
    mean_output_tokens, pool_ttft_p99 (s).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if lengths not in ("exact", "planner"):
        raise ValueError(f"lengths must be 'exact' or 'planner', got {lengths!r}")
    dtype = jnp.result_type(float)
    topology = jnp.asarray(topology)
    b_short = jnp.asarray(b_short_tokens, dtype=dtype)
    gamma = jnp.asarray(gamma, dtype=dtype)
    long_ctx = jnp.asarray(long_context_tokens, dtype=dtype)
    lam_total = jnp.asarray(arrival_rate_per_s, dtype=dtype)
    target_s = jnp.maximum(jnp.asarray(ttft_p99_s, dtype=dtype), 0.0)
    rho_max = jnp.asarray(rho_max, dtype=dtype)

    # --- routing: pool axis last (0 = short, 1 = long)
    lo, hi, window = _pool_boundaries(topology, b_short, gamma, long_ctx)

    p = _pool_tree(profile)
    wl = Workload(workload.lengths_tokens[..., None, :], workload.cum_fraction[..., None, :])
    lam_total = lam_total[..., None]
    target_s = target_s[..., None]
    rho_max = rho_max[..., None]
    output_share = jnp.asarray(output_share, dtype=dtype)[..., None]

    n_max, stats = _service_statistics(p, wl, lo, hi, window, output_share, relaxed=relaxed, lengths=lengths)
    sizing = _size_pools(lam_total, stats, n_max, rho_max, target_s, relaxed=relaxed)
    n_inst_safe, rho, n_act, pool_power_w, pool_tokens_per_s = _operating_point(
        p, sizing, n_max, stats, convention=convention, relaxed=relaxed
    )
    ttft_pool_s = _pool_ttft_p99_s(p, sizing, n_inst_safe, stats)
    fleet = _fleet_aggregates(p, sizing.instances, pool_power_w, pool_tokens_per_s, ttft_pool_s, ttft_p99_s)
    return {
        **fleet,
        "instances": sizing.instances,
        "traffic_share": stats.traffic_share,
        "utilization": rho,
        "active_sequences": n_act,
        "pool_power": pool_power_w,
        "mean_service_time": stats.mean_service_s,
        "service_scv": stats.service_scv,
        "mean_output_tokens": stats.mean_output_tokens,
        "pool_ttft_p99": ttft_pool_s,
    }
