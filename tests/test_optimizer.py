"""Optimum routing split (issue 4 item 5): grid search and gradient refinement (sweep.optimizer)."""

import itertools

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import sweep
from sweep.errors import SweepWarning
from sweep.fleet.sizing import FLEETOPT, TOPOLOGIES
from sweep.optimizer import FleetProblem, optimize, refine

B_SHORT = [1024, 2048, 4096, 8192]
GAMMA = [1.0, 1.5, 2.0, 3.0]
TIGHT = 0.02  # s: below the prefill time of the long pools of several splits


def table3_spec(ttft=0.5, workloads=("azure", "lmsys"), **axes):
    """Paper Table 3 setup (H100, Llama-3.1-70B, λ = 1000 req/s) with b_short and γ swept."""
    return {
        "title": "optimum split test",
        "convention": "paper",
        "profile": "calibrated",
        "arrival_rate": 1000.0,
        "ttft_p99_s": ttft,
        "rho_max": 0.85,
        "long_context": 65536,
        "axes": {
            "gpu": ["H100"],
            "model": ["llama-3.1-70b"],
            "workload": list(workloads),
            "topology": ["homogeneous", "pool", "fleetopt"],
            "b_short": B_SHORT,
            "gamma": GAMMA,
            **axes,
        },
    }


@pytest.fixture(scope="module")
def loose():
    return sweep.run(table3_spec(0.5))


@pytest.fixture(scope="module")
def slo_grid(loose):
    """The same grid at a loose and a tight P99 TTFT target, as a `ttft_p99_s` axis."""
    tight = sweep.run(table3_spec(TIGHT))
    return xr.concat([loose, tight], dim=pd.Index([0.5, TIGHT], name="ttft_p99_s"), combine_attrs="override")


@pytest.fixture(scope="module")
def refined(slo_grid):
    return refine(table3_spec(0.5), slo_grid)


def brute_force(ds):
    """Per group: loop over every (topology, b_short, gamma) point in numpy."""
    tpw, ttft = ds.fleet_tokens_per_watt, ds.ttft_p99
    group = [d for d in tpw.dims if d not in ("topology", "b_short", "gamma")]
    rows = {}
    for combo in itertools.product(*(range(ds.sizes[d]) for d in group)):
        sel = dict(zip(group, combo))
        target = (
            float(ds.ttft_p99_s[sel["ttft_p99_s"]]) if "ttft_p99_s" in sel else float(ds.attrs["ttft_p99_s"])
        )
        best, arg = -np.inf, None
        homogeneous = np.nan
        for t, b, g in itertools.product(*(range(ds.sizes[d]) for d in ("topology", "b_short", "gamma"))):
            point = dict(sel, topology=t, b_short=b, gamma=g)
            v, w = float(tpw[point]), float(ttft[point])
            if w > target:
                continue
            if ds.topology.values[t] == "homogeneous":
                homogeneous = v
            if v > best:
                best, arg = v, (t, b, g)
        rows[combo] = (best, arg, homogeneous)
    return group, rows


def check_against_brute_force(ds):
    out = optimize(ds, max_compression=max(GAMMA))  # brute_force knows no γ_max
    group, rows = brute_force(ds)
    assert list(out.best_topology.dims) == group
    for combo, (best, arg, homogeneous) in rows.items():
        o = out.isel(dict(zip(group, combo)))
        if arg is None:
            assert o.best_topology.item() == "none" and np.isnan(o.best_fleet_tokens_per_watt)
            continue
        t, b, g = arg
        topo = ds.topology.values[t]
        assert o.best_topology.item() == topo
        assert float(o.best_fleet_tokens_per_watt) == best
        if topo == "homogeneous":
            assert np.isnan(o.best_b_short) and np.isnan(o.best_gamma)
        else:
            assert float(o.best_b_short) == ds.b_short.values[b]
            assert float(o.best_gamma) == (1.0 if topo == "pool" else ds.gamma.values[g])
        np.testing.assert_equal(float(o.homogeneous_fleet_tokens_per_watt), homogeneous)
        np.testing.assert_allclose(float(o.gain_over_homogeneous), best / homogeneous, rtol=1e-15)
    return out


def test_grid_optimum_equals_brute_force(loose):
    out = check_against_brute_force(loose)
    assert set(out.dims) == {"gpu", "model", "workload", "pool"}
    for name in ("best_fleet_tokens_per_watt", "gain_over_homogeneous", "best_b_short"):
        assert out[name].attrs["units"] and out[name].attrs["long_name"]


def test_table3_optimum_is_routed_with_gain_over_two(loose):
    out = optimize(loose).sel(gpu="H100", model="llama-3.1-70b")
    for workload in ("azure", "lmsys"):
        o = out.sel(workload=workload)
        assert o.best_topology.item() in ("fleetopt", "pool")
        assert float(o.gain_over_homogeneous) > 2.0
        np.testing.assert_equal(
            float(o.homogeneous_fleet_tokens_per_watt),
            float(
                loose.fleet_tokens_per_watt.sel(gpu="H100", workload=workload, topology="homogeneous")
                .isel(b_short=0, gamma=0)
                .squeeze()
            ),
        )
        # the reported instances are those of the optimum
        point = loose.sel(
            gpu="H100",
            workload=workload,
            topology=o.best_topology.item(),
            b_short=int(o.best_b_short),
            gamma=float(o.best_gamma),
        )
        np.testing.assert_array_equal(o.best_instances.values, point.instances.values.squeeze())


def test_slo_exclusion(slo_grid):
    out = check_against_brute_force(slo_grid)  # ttft_p99_s is an axis: per-group targets
    n_points = 3 * len(B_SHORT) * len(GAMMA)
    loose, tight = out.sel(ttft_p99_s=0.5), out.sel(ttft_p99_s=TIGHT)
    assert np.all(loose.feasible_points == n_points)
    assert np.all(tight.feasible_points < n_points)  # the tight target really excludes points
    assert np.all(tight.best_ttft_p99 <= TIGHT)
    # the unconstrained optimum misses the tight target, so the constrained one is worse
    tight_ttft = slo_grid.ttft_p99.sel(ttft_p99_s=TIGHT)
    for w in ("azure", "lmsys"):
        lo = loose.sel(workload=w, gpu="H100", model="llama-3.1-70b")
        at = tight_ttft.sel(
            workload=w,
            gpu="H100",
            topology=lo.best_topology.item(),
            b_short=int(lo.best_b_short),
            gamma=float(lo.best_gamma),
        )
        if float(at.squeeze()) > TIGHT:
            assert float(tight.best_fleet_tokens_per_watt.sel(workload=w).squeeze()) < float(
                lo.best_fleet_tokens_per_watt
            )


def test_no_feasible_point_gives_none_and_nan(loose):
    out = optimize(loose.assign_attrs(ttft_p99_s=1e-4))  # below every pool's prefill time
    assert np.all(out.best_topology == "none")
    for name in (
        "best_fleet_tokens_per_watt",
        "best_b_short",
        "best_gamma",
        "homogeneous_fleet_tokens_per_watt",
        "gain_over_homogeneous",
    ):
        assert np.all(np.isnan(out[name])), name
    assert np.all(out.feasible_points == 0)


def test_fixed_axes_use_the_scalar_value(loose):
    """b_short/gamma absent as dims: the fixed value is reported, search over the rest."""
    sub = loose.sel(gamma=2.0)
    out = optimize(sub)
    assert "gamma" not in out.dims
    sel = out.sel(workload="azure").squeeze()
    expected = float(sub.fleet_tokens_per_watt.sel(workload="azure").max())
    assert float(sel.best_fleet_tokens_per_watt) == expected
    if sel.best_topology.item() == "fleetopt":
        assert float(sel.best_gamma) == 2.0


def test_refined_never_worse_than_grid_and_confirmed_by_engine(refined):
    r = refined
    assert np.all(r.refinement_status.isin([0, 1, 2, 3]))
    assert np.all(r.refined_fleet_tokens_per_watt >= r.best_fleet_tokens_per_watt)
    assert np.all(r.refined_ttft_p99 <= r.ttft_p99_s)
    assert np.all(r.refined_topology.isin(["pool", "fleetopt", "homogeneous"]))
    kept = r.refinement_status != 1
    assert np.all((r.refined_fleet_tokens_per_watt == r.best_fleet_tokens_per_watt).where(kept, True))
    # within the grid's box
    assert np.all((r.refined_b_short >= min(B_SHORT)) & (r.refined_b_short <= max(B_SHORT)))
    assert np.all((r.refined_gamma >= 1.0) & (r.refined_gamma <= max(GAMMA)))
    # independent check: the engine (sweep.run) at the refined points of the loose-SLO groups
    lo = r.sel(ttft_p99_s=0.5, gpu="H100", model="llama-3.1-70b")
    spec = table3_spec(0.5)
    spec["axes"].update(
        topology=["fleetopt"],
        b_short=sorted({int(b) for b in lo.refined_b_short.values}),
        gamma=sorted({float(g) for g in lo.refined_gamma.values}),
    )
    engine = sweep.run(spec)
    for w in ("azure", "lmsys"):
        o = lo.sel(workload=w)
        v = engine.fleet_tokens_per_watt.sel(
            workload=w, b_short=int(o.refined_b_short), gamma=float(o.refined_gamma)
        )
        np.testing.assert_allclose(float(v.squeeze()), float(o.refined_fleet_tokens_per_watt), rtol=1e-12)


def test_refine_table3_azure_improves_on_the_grid(refined):
    o = refined.sel(ttft_p99_s=0.5, workload="azure").squeeze()
    assert o.refined_topology.item() in ("fleetopt", "pool")
    assert float(o.refined_gain_over_homogeneous) >= float(o.gain_over_homogeneous) > 2.0
    # the relaxed optimum is a continuous point inside the box
    assert min(B_SHORT) <= float(o.continuous_b_short) <= max(B_SHORT)
    assert 1.0 <= float(o.continuous_gamma) <= max(GAMMA)


@pytest.fixture(scope="module")
def problem(slo_grid):
    return FleetProblem(table3_spec(0.5), slo_grid)


def test_exact_evaluation_matches_engine(problem, slo_grid):
    """refine's exact re-evaluation is the engine's model: same values at the grid points."""
    b = np.array(B_SHORT, dtype=float)
    ex = problem.exact(TOPOLOGIES["fleetopt"], b[None, :], 3.0)
    ref = (
        slo_grid.fleet_tokens_per_watt.sel(topology="fleetopt", gamma=3.0)
        .transpose(*problem.group_dims, "b_short")
        .values.reshape(problem.n_groups, -1)
    )
    np.testing.assert_allclose(ex["fleet_tokens_per_watt"], ref, rtol=1e-12)


@pytest.mark.parametrize("point", [(3000.0, 2.5), (1500.0, 1.7), (5000.0, 1.1)])
def test_refine_gradient_matches_central_differences(problem, point):
    """∂ ln tokens/W / ∂(ln b_short, ln γ) of the relaxation (SLO slack and binding groups)."""
    u = np.tile(np.log(point), (problem.n_groups, 1))
    f, g = problem.value_grad(u)
    assert np.all(np.abs(g) > 1e-4)  # both directions matter at these points
    h = 1e-6
    for k in range(2):
        up, dn = u.copy(), u.copy()
        up[:, k] += h
        dn[:, k] -= h
        fd = (problem.relaxed(up) - problem.relaxed(dn)) / (2 * h)
        np.testing.assert_allclose(g[:, k], fd, rtol=1e-5)


def test_tight_slo_binds_in_the_relaxation(problem):
    """The tight groups exercise the implicit-derivative branch (SLO-driven instance growth)."""
    u = np.tile(np.log([3000.0, 2.5]), (problem.n_groups, 1))
    ttft = np.asarray(problem.params["ttft_p99_s"])
    f = problem.relaxed(u)
    # a tighter target needs more instances at the same split, so fewer tokens per watt
    loose, tight = f[ttft == 0.5], f[ttft == TIGHT]
    assert np.all(tight <= loose) and np.any(tight < loose)
    assert FLEETOPT == TOPOLOGIES["fleetopt"]


# ---------------------------------------------------------------------------------------------
# γ_max, edge and empty-pool flags, refinement reasons (issue 8)


@pytest.fixture(scope="module")
def wide_gamma():
    """A grid offering γ up to 64: without a bound the optimum ran to γ = 16-64 (a 6x "gain")."""
    return sweep.run(
        table3_spec(0.5, workloads=("azure",), b_short=[2048, 4096], gamma=[1.5, 2.0, 8.0, 64.0])
    )


def test_gamma_never_beyond_max_compression(wide_gamma):
    with pytest.warns(SweepWarning, match=r"of 1 setups, 1 have the optimum on the edge.*= 2 "):
        out = optimize(wide_gamma)
    o = out.squeeze()
    assert o.best_topology.item() == "fleetopt" and float(o.best_gamma) == 2.0
    assert out.attrs["max_compression"] == 2.0
    assert int(o.optimum_flags) & 4 and int(o.optimum_flags) & 2  # at γ_max = the largest γ offered
    assert list(out.optimum_flags.attrs["flag_masks"]) == [1, 2, 4, 8]
    assert float(optimize(wide_gamma, max_compression=8).best_gamma.squeeze()) == 8.0
    with pytest.warns(SweepWarning):
        r = refine(table3_spec(0.5), wide_gamma, steps=8).squeeze()
    assert float(r.refined_gamma) <= 2.0 and float(r.continuous_gamma) <= 2.0
    assert int(r.refinement_status) in (1, 2)  # improved, or stopped at the bound γ = 2
    assert list(r.refinement_status.attrs["flag_values"]) == [-1, 0, 1, 2, 3]


def test_empty_pool_is_flagged(loose):
    with pytest.warns(SweepWarning, match=r"1 an empty pool"):
        out = optimize(loose.sel(workload=["azure"], b_short=[8192], gamma=[2.0]))
    assert int(out.optimum_flags.squeeze()) & 8  # 8192·2 covers ~all azure requests: the long pool is empty


@pytest.mark.parametrize("bad", [0.5, float("nan"), float("inf"), "2", True])
def test_max_compression_is_validated(loose, bad):
    with pytest.raises(sweep.SweepInputError, match=r"^max_compression: must be a finite number >= 1"):
        optimize(loose, max_compression=bad)


def test_cli_max_compression(tmp_path, capsys):
    from sweep.cli import main

    assert main(["optimize", "grids/fleet_split.toml", "--max-compression", "0.5"]) == 2
    assert "sweep: error: max_compression" in capsys.readouterr().err
