"""Fleet grids end to end: bad input through `sweep.run` and the CLI, user CDF files, fleet
elasticities against finite differences of the relaxed fleet model, physical vs paper power."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweep
from sweep.catalogs.profiles import load_catalog
from sweep.cli import main
from sweep.errors import SweepInputError
from sweep.fleet.sizing import TOPOLOGIES, fleet_metrics
from sweep.fleet.workload import WORKLOAD_DIR, load_workload
from sweep.physics.profile import CONTINUOUS_FIELDS, Profile

BASE = """\
convention = "paper"
arrival_rate = 1000.0
{extra}
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
workload = {workload}
topology = ["pool"]
"""


def write_grid(folder, extra="", workload='["azure"]', name="grid.toml"):
    path = folder / name
    path.write_text(BASE.format(extra=extra, workload=workload))
    return path


# ---------------------------------------------------------------------------------------------
# bad input

BAD = {
    # id: (extra top-level lines, workload axis, text the message must name)
    "b_short_ge_long_context": ("b_short = 65536\nlong_context = 65536", '["azure"]', "b_short"),
    "b_short_axis_above_long_context": ("long_context = 32768", '["azure"]', "b_short"),
    "gamma_below_one": ("gamma = 0.5", '["azure"]', "gamma"),
    "rho_max_zero": ("rho_max = 0.0", '["azure"]', "rho_max"),
    "rho_max_one": ("rho_max = 1.0", '["azure"]', "rho_max"),
    "rho_max_above_one": ("rho_max = 1.5", '["azure"]', "rho_max"),
    "arrival_rate_zero": (None, '["azure"]', "arrival_rate"),
    "arrival_rate_negative": (None, '["azure"]', "arrival_rate"),
    "unknown_workload": ("", '["azure", "azur"]', "workload"),
    "malformed_cdf": ("", '["bad_cdf.json"]', "workload"),
    "missing_cdf_file": ("", '["no_such_cdf.json"]', "workload"),
}
ARRIVAL = {"arrival_rate_zero": "0.0", "arrival_rate_negative": "-5.0"}
BAD_CDF = [[512, 0.3], [2048, 0.7], [1024, 1.0]]  # lengths not increasing


def bad_grid(folder, case):
    extra, workload, _ = BAD[case]
    (folder / "bad_cdf.json").write_text(json.dumps(BAD_CDF))
    path = write_grid(folder, extra or "", workload)
    if case in ARRIVAL:
        path.write_text(path.read_text().replace("arrival_rate = 1000.0", f"arrival_rate = {ARRIVAL[case]}"))
    if case.startswith("b_short_axis"):  # an axis: appended to the [axes] table
        path.write_text(path.read_text() + "b_short = [4096, 40960]\n")
    return path


@pytest.mark.parametrize("case", list(BAD))
def test_bad_fleet_input_through_run(tmp_path, case):
    path = bad_grid(tmp_path, case)
    with pytest.raises(SweepInputError) as info:
        sweep.run(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    assert str(path) in message
    assert BAD[case][2] in message
    if case == "malformed_cdf":
        assert "bad_cdf.json" in message and "cdf[2][0]" in message and "increasing" in message
    if case == "unknown_workload":
        assert "azur" in message and "lmsys" in message  # names the allowed workloads


@pytest.mark.parametrize(
    "case",
    [
        "b_short_ge_long_context",
        "gamma_below_one",
        "rho_max_one",
        "arrival_rate_zero",
        "unknown_workload",
        "malformed_cdf",
    ],
)
def test_bad_fleet_input_through_cli(tmp_path, capsys, case):
    path = bad_grid(tmp_path, case)
    out = tmp_path / "out.nc"
    assert main(["run", str(path), "-o", str(out), "-q"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("sweep: error:")
    assert str(path) in lines[0] and BAD[case][2] in lines[0]
    assert not out.exists()
    assert list(tmp_path.glob("*.nc*")) == []  # no temporary file left either


# ---------------------------------------------------------------------------------------------
# user CDF files


def test_user_cdf_file_relative_to_grid(tmp_path, monkeypatch):
    folder = tmp_path / "grids"
    folder.mkdir()
    azure = json.loads((WORKLOAD_DIR / "azure.json").read_text())
    (folder / "mine.json").write_text(json.dumps({"cdf": azure}))  # object form
    short = [[256, 0.5], [1024, 0.9], [4096, 1.0]]
    (folder / "short.json").write_text(json.dumps(short))
    path = write_grid(folder, workload='["azure", "mine.json", "short.json"]')
    path.write_text(path.read_text().replace('topology = ["pool"]', 'topology = ["homogeneous", "pool"]'))
    monkeypatch.chdir(tmp_path)  # the CDF paths resolve against the grid file, not the cwd
    ds = sweep.run(path)
    assert list(ds.workload.values) == ["azure", "mine.json", "short.json"]
    for var in ("fleet_tokens_per_watt", "instances", "fleet_power"):
        np.testing.assert_array_equal(
            ds[var].sel(workload="mine.json").values, ds[var].sel(workload="azure").values
        )
    # every request of `short.json` fits the 4096 short pool: routing sends nothing to the long pool
    pool = ds.sel(workload="short.json", topology="pool")
    assert float(pool.traffic_share.sel(pool="long").squeeze()) == 0.0
    assert float(pool.instances.sel(pool="long").squeeze()) == 0.0
    assert float(pool.instances.sel(pool="short").squeeze()) > 0
    assert np.isfinite(ds.fleet_tokens_per_watt.values).all()


# ---------------------------------------------------------------------------------------------
# fleet elasticities vs finite differences of fleet_metrics(relaxed=True)

ELASTIC_TOPOLOGIES = ["pool", "fleetopt"]
REL_STEP = 1e-6


@pytest.fixture(scope="module")
def fleet_elastic():
    return sweep.run(
        {
            "convention": "paper",
            "elasticities": True,
            "arrival_rate": 1000.0,
            "b_short": 4096,
            "axes": {
                "gpu": ["H100"],
                "model": ["llama-3.1-70b"],
                "workload": ["azure"],
                "topology": ELASTIC_TOPOLOGIES,
            },
        }
    )


def test_fleet_elasticities_match_finite_differences(fleet_elastic):
    ds = fleet_elastic
    assert list(ds.parameter.values) == list(CONTINUOUS_FIELDS)
    values = load_catalog()[("H100", "llama-3.1-70b")].profile_values()
    fields = [f for f in CONTINUOUS_FIELDS if values[f] != 0]
    rows = 2 * len(fields) + 1  # rows 2j, 2j+1: field j up/down; last row: base
    theta = {k: np.full(rows, float(v)) for k, v in values.items()}
    for j, f in enumerate(fields):
        theta[f][2 * j] *= 1 + REL_STEP
        theta[f][2 * j + 1] *= 1 - REL_STEP
    profile = Profile.from_mapping(theta)
    workload = load_workload("azure")

    @jax.jit
    def relaxed(profile, topology):
        return fleet_metrics(
            profile,
            workload,
            1000.0,
            topology,
            4096.0,
            2.0,
            65536.0,
            0.5,
            0.85,
            0.2,
            convention="paper",
            relaxed=True,
            lengths="planner",
        )["fleet_tokens_per_watt"]

    failures = []
    for topology in ELASTIC_TOPOLOGIES:
        y = np.asarray(relaxed(profile, jnp.int32(TOPOLOGIES[topology])))
        got_all = ds.elasticity.sel(gpu="H100", model="llama-3.1-70b", workload="azure", topology=topology)
        for j, f in enumerate(fields):
            fd = (y[2 * j] - y[2 * j + 1]) / (2 * REL_STEP) / y[-1]
            got = float(got_all.sel(parameter=f))
            if abs(got - fd) / max(1.0, abs(fd)) > 1e-6:
                failures.append((topology, f, got, fd))
    assert not failures, failures
    # P is homogeneous of degree 1 in (P_idle, P_nom) and instance counts do not depend on power
    e = ds.elasticity.sel(gpu="H100", model="llama-3.1-70b", workload="azure")
    np.testing.assert_allclose(
        (e.sel(parameter="power_idle_w") + e.sel(parameter="power_nominal_w")).values, -1.0, rtol=1e-9
    )


# ---------------------------------------------------------------------------------------------
# physical vs paper power


def test_physical_fleet_power_is_tp_times_paper():
    spec = {
        "arrival_rate": 1000.0,
        "b_short": 4096,
        "axes": {
            "gpu": ["H100", "B200"],
            "model": ["llama-3.1-70b"],
            "workload": ["azure", "lmsys"],
            "topology": ["homogeneous", "pool", "fleetopt"],
        },
    }
    paper = sweep.run({**spec, "convention": "paper"})
    physical = sweep.run({**spec, "convention": "physical"})
    same = (paper.instances == physical.instances).all("pool") & (
        paper.active_sequences == physical.active_sequences
    ).all("pool")
    assert int(same.sum()) >= 4  # homogeneous at least
    assert bool(same.sel(topology="homogeneous").all())
    tp = 8
    ratio = (physical.fleet_power / paper.fleet_power).where(same)
    np.testing.assert_allclose(ratio.values[same.values], tp, rtol=1e-12)
    tpw_ratio = (paper.fleet_tokens_per_watt / physical.fleet_tokens_per_watt).where(same)
    out_ratio = (paper.fleet_output_tokens_per_second / physical.fleet_output_tokens_per_second).where(same)
    np.testing.assert_allclose((tpw_ratio / out_ratio).values[same.values], tp, rtol=1e-12)
    # per pool as well, wherever a pool's own count and load agree
    pool_same = (
        (paper.instances == physical.instances)
        & (paper.active_sequences == physical.active_sequences)
        & (paper.instances > 0)
    )
    np.testing.assert_allclose(
        (physical.pool_power / paper.pool_power).values[pool_same.values], tp, rtol=1e-12
    )
    assert physical.attrs["convention"] == "physical" and paper.attrs["convention"] == "paper"


def test_roofline_fleet_elasticities_match_finite_differences():
    """Fleet tokens/W elasticities w.r.t. hardware specs (roofline profile, physical convention)."""
    import jax.numpy as jnp
    import numpy as np

    import sweep
    from sweep.api import as_spec
    from sweep.fleet.sizing import POOL_ROUTING, fleet_metrics
    from sweep.fleet.workload import load_workload
    from sweep.grid.tables import roofline_table

    spec_dict = {
        "convention": "physical",
        "profile": "roofline",
        "tp": 8,
        "elasticities": True,
        "axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "workload": ["azure"], "topology": ["pool"]},
    }
    ds = sweep.run(spec_dict)
    table = roofline_table(as_spec(spec_dict))
    workload = load_workload("azure")

    def relaxed(theta):
        profile = table.derive({k: jnp.asarray(v) for k, v in theta.items()}, True)
        out = fleet_metrics(
            profile,
            workload,
            1000.0,
            POOL_ROUTING,
            4096.0,
            2.0,
            65536.0,
            0.5,
            0.85,
            0.2,
            convention="physical",
            relaxed=True,
        )
        return float(np.asarray(out["fleet_tokens_per_watt"]).squeeze())

    base = relaxed(table.theta)
    checked = 0
    for key in ("gpu.hbm_bandwidth_bytes_per_s", "gpu.memory_bytes", "gpu.tdp_w", "gpu.fp16_flops"):
        h = 1e-6
        up = relaxed({**table.theta, key: table.theta[key] * (1 + h)})
        down = relaxed({**table.theta, key: table.theta[key] * (1 - h)})
        fd = (up - down) / (2 * h) / base
        got = float(ds.elasticity.sel(parameter=key.split(".", 1)[1]).squeeze())
        assert abs(got - fd) <= 1e-5 * max(1.0, abs(fd)), (key, got, fd)
        checked += 1
    assert checked == 4
    # bandwidth and memory matter for a fleet of 70B instances
    assert float(ds.elasticity.sel(parameter="hbm_bandwidth_bytes_per_s").squeeze()) > 0.1
    assert float(ds.elasticity.sel(parameter="memory_bytes").squeeze()) > 0.0


def test_zero_fleet_tokens_per_watt_has_nan_elasticity():
    # homogeneous pool at a 4M-token window: no sequence fits, fleet tokens/W = 0, elasticities NaN
    ds = sweep.run(
        {
            "elasticities": True,
            "arrival_rate": 100.0,
            "axes": {
                "gpu": ["H100"],
                "model": ["llama-3.1-70b"],
                "workload": ["azure"],
                "topology": ["homogeneous", "pool"],
                "long_context": [65536, 1 << 22],
            },
        }
    )
    zero = ds.fleet_tokens_per_watt == 0
    assert bool(zero.sel(topology="homogeneous", long_context=1 << 22).squeeze()) and int(zero.sum()) == 1
    assert np.isnan(ds.elasticity.where(zero)).sum() == ds.elasticity.where(zero).size
    assert np.isfinite(ds.elasticity.where(~zero, 0.0)).all()


def test_meets_slo_flags_missed_targets(tmp_path, capsys):
    # ttft_p99_s = 1e-9 cannot be met (P99 TTFT 0.008-0.05 s) and nothing said so
    axes = {
        "gpu": ["H100"],
        "model": ["llama-3.1-70b"],
        "workload": ["azure"],
        "topology": ["homogeneous", "pool"],
        "ttft_p99_s": [1e-9, 0.5],
    }
    ds = sweep.run({"axes": axes})
    assert ds.meets_slo.dtype == np.int8 and ds.meets_slo.attrs["flag_meanings"] == "misses_slo meets_slo"
    np.testing.assert_array_equal(
        ds.meets_slo.values,
        (ds.ttft_p99 <= ds.ttft_p99_s).astype(np.int8).transpose(*ds.meets_slo.dims).values,
    )
    assert (
        int(ds.meets_slo.sel(ttft_p99_s=1e-9).sum()) == 0 and int(ds.meets_slo.sel(ttft_p99_s=0.5).sum()) == 2
    )
    grid = tmp_path / "slo.toml"
    grid.write_text(
        'ttft_p99_s = 1e-9\n[axes]\ngpu = ["H100"]\nmodel = ["llama-3.1-70b"]\nworkload = ["azure"]\n'
        'topology = ["pool"]\n'
    )
    assert main(["run", str(grid), "-q"]) == 0
    assert "sweep: warning: 1 of 1 fleet points miss their P99 TTFT target" in capsys.readouterr().err


def test_fleet_instance_counts_do_not_depend_on_dtype():
    """Integer outputs of fleet grids are evaluated in float64 whatever `dtype` stores (issue #8 case 7)."""
    spec = {
        "convention": "paper",
        "axes": {
            "gpu": ["H100", "B200"],
            "model": ["llama-3.1-70b"],
            "workload": ["azure", "lmsys"],
            "topology": ["homogeneous", "pool", "fleetopt"],
            "b_short": [1536, 4096],
            "arrival_rate": [10.0, 333.0, 1000.0, 7777.0],
        },
    }
    ds64, ds32 = sweep.run(spec), sweep.run({**spec, "dtype": "float32"})
    assert ds32.fleet_tokens_per_watt.dtype == np.float32
    np.testing.assert_array_equal(ds32.instances.values, ds64.instances.values.astype(np.float32))
    np.testing.assert_array_equal(ds32.meets_slo.values, ds64.meets_slo.values)
