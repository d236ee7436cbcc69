"""Fleet sizing and aggregate (docs/models.md §3): Table 3, conventions, relaxation gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.fleet.queueing import mgc_wait_quantile_s
from sweep.fleet.sizing import FLEETOPT, HOMOGENEOUS, POOL_ROUTING, fleet_metrics
from sweep.fleet.workload import load_workload
from sweep.physics.profile import LOGISTIC_DEFAULTS, Profile


def calibrated(gpu: str) -> Profile:
    """docs/models.md §2 calibrated profiles (Llama-3.1-70B, TP8)."""
    if gpu == "H100":
        d = dict(
            weight_time_s=4.0e-3,
            kv_time_per_seq_s=0.32e-3,
            kv_blocks=65536,
            max_slots=256,
            power_idle_w=300.0,
            power_nominal_w=600.0,
            power_x0=4.2,
            prefill_chunk_tokens=1024,
            price_per_gpu_hour=4.02,
        )
    else:
        w_s, h_s = 2.95491e-3, 0.32e-3 * 3.35 / 8.0
        d = dict(
            weight_time_s=w_s,
            kv_time_per_seq_s=h_s,
            kv_blocks=171936,
            max_slots=671,
            power_idle_w=430.0,
            power_nominal_w=860.0,
            power_x0=math.log2(w_s / h_s),
            prefill_chunk_tokens=2048,
            price_per_gpu_hour=8.00,
        )
    d.update(calibration_context=8192, kv_block_tokens=16, tp=8, power_k=1.0, **LOGISTIC_DEFAULTS)
    return Profile.from_mapping(d)


TOPOLOGIES = jnp.array([HOMOGENEOUS, POOL_ROUTING, FLEETOPT])
B_SHORT = {"azure": 4096, "lmsys": 1536}

# Paper Table 3: (instances, tok/W) for homogeneous, pool routing, FleetOpt.
PAPER_TABLE3 = {
    ("azure", "H100"): [(141, 5.58), (68, 9.16), (40, 14.08)],
    ("azure", "B200"): [(47, 9.74), (25, 15.39), (17, 23.71)],
    ("lmsys", "H100"): [(69, 4.77), (38, 7.91), (29, 10.30)],
    ("lmsys", "B200"): [(24, 7.98), (16, 11.12), (12, 14.82)],
}
# The paper's planner (fleet-sim) re-run with 300 000 samples instead of 3000 (seed 42): its
# converged expectation, free of the sampling noise of the published numbers. (instances, tok/W)
PLANNER_CONVERGED = {
    ("azure", "H100"): [(145, 5.423), (68, 9.163), (41, 13.728)],
    ("azure", "B200"): [(48, 9.536), (25, 15.393), (18, 22.322)],
    ("lmsys", "H100"): [(63, 5.223), (39, 7.715), (30, 9.976)],
    ("lmsys", "B200"): [(21, 9.121), (16, 11.07), (13, 13.86)],
}


def table3(workload: str, gpu: str, lengths: str, convention: str = "paper", relaxed: bool = False):
    fn = jax.jit(
        lambda p, wl: fleet_metrics(
            p,
            wl,
            1000.0,
            TOPOLOGIES,
            B_SHORT[workload],
            2.0,
            65536,
            0.5,
            0.85,
            convention=convention,
            lengths=lengths,
            relaxed=relaxed,
        )
    )
    out = fn(calibrated(gpu), load_workload(workload))
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def results():
    return {
        (w, g, m): table3(w, g, m)
        for w in ("azure", "lmsys")
        for g in ("H100", "B200")
        for m in ("exact", "planner")
    }


@pytest.mark.parametrize("gpu", ["H100", "B200"])
def test_table3_azure_within_8_percent(results, gpu):
    tpw = results["azure", gpu, "planner"]["fleet_tokens_per_watt"]
    paper = np.array([t for _, t in PAPER_TABLE3["azure", gpu]])
    np.testing.assert_array_less(np.abs(tpw / paper - 1.0), 0.08)


def test_table3_headline_ratios(results):
    h100 = results["azure", "H100", "planner"]["fleet_tokens_per_watt"]
    b200 = results["azure", "B200", "planner"]["fleet_tokens_per_watt"]
    assert abs(h100[2] / h100[0] - 2.5) <= 0.1  # topology: FleetOpt / homogeneous
    assert abs(b200[0] / h100[0] - 1.75) <= 0.07  # generation: B200 / H100, homogeneous
    assert abs(b200[2] / h100[0] - 4.2) <= 0.15  # combined


@pytest.mark.parametrize("workload", ["azure", "lmsys"])
@pytest.mark.parametrize("gpu", ["H100", "B200"])
def test_planner_mode_matches_converged_planner(results, workload, gpu):
    """With the planner's conventions, our exact expectation is its sampler's large-n limit."""
    out = results[workload, gpu, "planner"]
    ref = PLANNER_CONVERGED[workload, gpu]
    np.testing.assert_allclose(out["fleet_tokens_per_watt"], [t for _, t in ref], rtol=0.015)
    np.testing.assert_allclose(out["instances"].sum(-1), [n for n, _ in ref], atol=1)


def test_exact_routing_conventions(results):
    """Exact routing differs from the planner only where its conventions act (see module doc)."""
    for w in ("azure", "lmsys"):
        for g in ("H100", "B200"):
            ex, pl = results[w, g, "exact"], results[w, g, "planner"]
            # homogeneous: no sub-CDF, no compression -> identical
            np.testing.assert_allclose(
                ex["fleet_tokens_per_watt"][0], pl["fleet_tokens_per_watt"][0], rtol=1e-12
            )
            # short pools are routed identically in both modes
            np.testing.assert_allclose(ex["instances"][1:, 0], pl["instances"][1:, 0])
            # pool routing: the true long pool (L > b_short) needs at least as many instances
            assert ex["instances"][1, 1] >= pl["instances"][1, 1]
            # FleetOpt: the exact mode counts compressed requests' output at the clipped length
            assert ex["fleet_output_tokens_per_second"][2] < pl["fleet_output_tokens_per_second"][2]


def test_homogeneous_has_no_short_pool_and_meets_slo(results):
    for out in results.values():
        assert out["instances"][0, 0] == 0
        assert np.all(out["instances"][1:] >= 2)  # ceil(λ/μ) + 1 ≥ 2 for every used pool
        assert np.all(out["ttft_p99"] <= 0.5)
        assert np.all((out["utilization"] <= 0.85 + 1e-12) & (out["utilization"] >= 0))


def test_physical_convention_counts_every_gpu():
    paper = table3("azure", "H100", "exact", "paper")
    physical = table3("azure", "H100", "exact", "physical")
    np.testing.assert_allclose(physical["fleet_power"], 8 * paper["fleet_power"])
    np.testing.assert_allclose(physical["fleet_tokens_per_watt"], paper["fleet_tokens_per_watt"] / 8)
    np.testing.assert_allclose(physical["cost_per_mtok"], paper["cost_per_mtok"])
    np.testing.assert_array_equal(physical["instances"], paper["instances"])


def test_broadcasting_and_vmap():
    wl = load_workload("azure")
    p = calibrated("H100")
    rates = jnp.array([10.0, 100.0, 1000.0])[:, None]
    out = fleet_metrics(p, wl, rates, TOPOLOGIES[None, :], 4096.0)
    assert out["instances"].shape == (3, 3, 2)
    assert out["fleet_tokens_per_watt"].shape == (3, 3)
    vm = jax.jit(jax.vmap(lambda t: fleet_metrics(p, wl, 1000.0, t, 4096.0)["fleet_tokens_per_watt"]))(
        TOPOLOGIES
    )
    np.testing.assert_allclose(vm, out["fleet_tokens_per_watt"][2], rtol=1e-12)


def test_slo_growth_integer_is_minimal():
    """A tight TTFT target makes the SLO bind: N is the smallest count meeting it."""
    wl, p = load_workload("azure"), calibrated("H100")
    loose = fleet_metrics(p, wl, 1000.0, HOMOGENEOUS, 4096.0, ttft_p99_s=10.0, rho_max=0.99)
    tight = fleet_metrics(p, wl, 1000.0, HOMOGENEOUS, 4096.0, ttft_p99_s=0.05, rho_max=0.99)
    n = float(tight["instances"][1])
    assert n > float(loose["instances"][1])
    e_s, scv = float(tight["mean_service_time"][1]), float(tight["service_scv"][1])

    def wait(k):
        return float(mgc_wait_quantile_s(k * 16, 1000.0, 1.0 / e_s, scv))  # n_max(64K) = 16

    assert wait(n) <= 0.05 < wait(n - 1)


@pytest.mark.parametrize("ttft, rho_max", [(0.5, 0.85), (0.05, 0.99)])  # SLO slack / binding
@pytest.mark.parametrize("topology", [HOMOGENEOUS, POOL_ROUTING, FLEETOPT])
def test_relaxed_gradient_matches_finite_difference(ttft, rho_max, topology):
    wl = load_workload("azure")
    base = calibrated("H100")
    fields = ("weight_time_s", "kv_time_per_seq_s", "power_nominal_w", "kv_blocks")

    def f(values):
        prof = base._replace(**dict(zip(fields, values)))
        out = fleet_metrics(
            prof, wl, 1000.0, topology, 4096.0, ttft_p99_s=ttft, rho_max=rho_max, relaxed=True
        )
        return out["fleet_tokens_per_watt"]

    x0 = [getattr(base, k) for k in fields]
    grads = jax.jit(jax.grad(f))(x0)
    f_jit = jax.jit(f)
    for i, name in enumerate(fields):
        h = 1e-6 * float(x0[i])
        up, dn = list(x0), list(x0)
        up[i], dn[i] = x0[i] + h, x0[i] - h
        fd = (float(f_jit(up)) - float(f_jit(dn))) / (2 * h)
        assert np.isfinite(float(grads[i])), name
        np.testing.assert_allclose(
            float(grads[i]), fd, rtol=1e-5, atol=1e-12 * abs(float(f_jit(x0))) / h, err_msg=name
        )


def test_relaxed_close_to_integer():
    exact = table3("azure", "H100", "exact")
    relaxed = table3("azure", "H100", "exact", relaxed=True)
    np.testing.assert_allclose(relaxed["fleet_tokens_per_watt"], exact["fleet_tokens_per_watt"], rtol=0.06)
    np.testing.assert_allclose(relaxed["instances"], exact["instances"], atol=1.5)
