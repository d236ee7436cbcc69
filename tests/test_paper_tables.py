"""End-to-end reproduction of the paper's Tables 2, 3, 4 and 5 through `sweep.run` on grid files.

Expected values are the paper's printed numbers (docs/models.md §4); the model code computes ours.
"""

from pathlib import Path

import numpy as np
import pytest

import sweep
from sweep.catalogs import setups

GRIDS = Path(__file__).resolve().parent.parent / "grids"
REL_TPW = 0.005  # Tables 2 and 5: tokens/W within 0.5 %


def one(da) -> float:
    """The single value of a (squeezed) selection."""
    values = np.asarray(da).ravel()
    assert values.size == 1, values.shape
    return float(values[0])


def printed(x: float, digits: int) -> float:
    return round(x, digits)


# ---------------------------------------------------------------------------------------------
# Table 2: first-principles profiles at 8K, full concurrency, paper convention

TABLE2 = {
    # (gpu, model, tp): (n_max, tok/s or None, tok/W)
    ("H100", "llama-3.1-8b", 1): (58, 3350.0, 6.46),
    ("H100", "llama-3.1-70b", 8): (22, 2716.0, 7.41),
    ("H100", "qwen3-235b-a22b", 8): (24, 11521.0, 37.82),
    ("B200", "llama-3.1-8b", 1): (148, None, 12.18),
    ("B200", "llama-3.1-70b", 8): (58, None, 20.93),
    ("B200", "qwen3-235b-a22b", 8): (146, None, 177.73),
}


@pytest.fixture(scope="module")
def table2():
    return sweep.run(GRIDS / "table2.toml")


def test_table2_grid_is_paper_convention(table2):
    assert table2.attrs["convention"] == "paper"
    assert list(table2.context.values) == [8192]
    assert list(table2.batch.values) == [0]  # "max"


@pytest.mark.parametrize("key", list(TABLE2), ids=lambda k: "-".join(map(str, k)))
def test_table2_cells(table2, key):
    gpu, model, tp = key
    n_max, tok_s, tpw = TABLE2[key]
    cell = table2.sel(gpu=gpu, model=model, tp=tp, context=8192)
    assert int(one(cell.max_concurrency)) == n_max
    assert int(one(cell.concurrency)) == n_max  # full concurrency
    assert one(cell.feasible) == 1
    np.testing.assert_allclose(one(cell.tokens_per_watt), tpw, rtol=REL_TPW)
    if tok_s is not None:
        np.testing.assert_allclose(one(cell.tokens_per_second), tok_s, rtol=REL_TPW)
    # paper convention: instance tok/s divided by ONE GPU's power
    np.testing.assert_allclose(
        one(cell.tokens_per_watt), one(cell.tokens_per_second) / one(cell.gpu_power), rtol=1e-12
    )


def test_table2_moe_ratio(table2):
    """Qwen3-235B-A22B gives 5.1x the tokens/W of Llama-3.1-70B on H100 TP8 (paper text)."""
    h100 = table2.sel(gpu="H100", tp=8, context=8192)
    ratio = one(h100.tokens_per_watt.sel(model="qwen3-235b-a22b")) / one(
        h100.tokens_per_watt.sel(model="llama-3.1-70b")
    )
    assert printed(ratio, 1) == 5.1


def test_table2_moe_power_uses_kernel_weight_time(table2):
    """docs/models.md §2: P = 305 W at n = 24 for Qwen3-235B on H100 TP8 (kernel-table W_s for power)."""
    cell = table2.sel(gpu="H100", model="qwen3-235b-a22b", tp=8, context=8192)
    assert abs(one(cell.gpu_power) - 305.0) <= 0.5


# ---------------------------------------------------------------------------------------------
# Table 5: Llama-3.1-70B TP8 at 8K across GPU generations

TABLE5 = {
    # gpu: (W_s ms, n_max, P W, tok/W)
    "H100": (6.72, 22, 367.0, 7.41),
    "H200": (4.76, 44, 422.0, 15.58),
    "B200": (2.95, 58, 619.0, 20.93),
    "GB200": (2.95, 65, 755.0, 18.49),
}


@pytest.fixture(scope="module")
def table5():
    return sweep.run(GRIDS / "table5.toml")


@pytest.mark.parametrize("gpu", list(TABLE5))
def test_table5_cells(table5, gpu):
    ws_ms, n_max, power_w, tpw = TABLE5[gpu]
    cell = table5.sel(gpu=gpu, model="llama-3.1-70b", context=8192)
    n = one(cell.max_concurrency)
    assert int(n) == n_max
    assert int(one(cell.concurrency)) == n_max
    assert abs(one(cell.gpu_power) - power_w) <= 0.5  # power to 1 W
    np.testing.assert_allclose(one(cell.tokens_per_watt), tpw, rtol=REL_TPW)
    # W_s: from the derived profile, and independently as iteration time minus the KV-read time
    profile = setups.profile_for(gpu, "llama-3.1-70b", convention="paper", tp=8)
    ws_s = float(profile.weight_time_s)
    assert printed(ws_s * 1e3, 2) == ws_ms
    kv_s = float(profile.kv_time_per_seq_s) * (0.5 * 8192 / float(profile.calibration_context)) * n
    np.testing.assert_allclose(one(cell.iteration_time) - kv_s, ws_s, rtol=1e-9)


def test_table5_generation_ordering(table5):
    tpw = table5.tokens_per_watt.sel(model="llama-3.1-70b", context=8192).squeeze()
    # H200 > H100, B200 best, GB200 below B200 (more power for similar bandwidth)
    assert tpw.sel(gpu="H200") > tpw.sel(gpu="H100")
    assert tpw.sel(gpu="B200") > tpw.sel(gpu="GB200") > tpw.sel(gpu="H200")


# ---------------------------------------------------------------------------------------------
# Table 4: H100 at rho = 0.85


def test_table4_calibrated_rows():
    ds = sweep.run(GRIDS / "table4.toml")
    assert ds.attrs["convention"] == "paper"
    for context, n_max, tpw, power_w in ((8192, 128, 8.77, 578.0), (65536, 16, 1.52, 413.0)):
        cell = ds.sel(gpu="H100", model="llama-3.1-70b", context=context)
        assert int(one(cell.max_concurrency)) == n_max
        assert int(one(cell.concurrency)) == int(0.85 * n_max)  # n_act = int(0.85 · n_max)
        assert printed(one(cell.tokens_per_watt), 2) == tpw
        assert printed(one(cell.gpu_power), 0) == power_w


def test_table4_first_principles_row():
    ds = sweep.run(
        {
            "convention": "paper",
            "profile": "roofline",
            "load": 0.85,
            "tp": 1,
            "axes": {"gpu": ["H100"], "model": ["llama-3.1-8b"], "context": [8192], "batch": ["max"]},
        }
    )
    cell = ds.sel(gpu="H100", model="llama-3.1-8b", context=8192)
    assert int(one(cell.max_concurrency)) == 58
    assert int(one(cell.concurrency)) == int(0.85 * 58)
    assert printed(one(cell.tokens_per_watt), 2) == 6.24
    assert printed(one(cell.gpu_power), 0) == 506.0


# ---------------------------------------------------------------------------------------------
# Table 3: fleet tokens/W by routing topology (Azure rows, B_short = 4096)

TABLE3_AZURE = {
    "H100": {"homogeneous": 5.58, "pool": 9.16, "fleetopt": 14.08},
    "B200": {"homogeneous": 9.74, "pool": 15.39, "fleetopt": 23.71},
}
TABLE3_REL = 0.08


@pytest.fixture(scope="module")
def table3():
    return sweep.run(GRIDS / "table3.toml")


def azure(ds, gpu, topology) -> float:
    return one(
        ds.fleet_tokens_per_watt.sel(
            gpu=gpu, model="llama-3.1-70b", workload="azure", topology=topology, b_short=4096
        )
    )


def test_table3_grid_setup(table3):
    assert table3.attrs["convention"] == "paper"
    assert float(table3.attrs["arrival_rate"]) == 1000.0
    assert set(table3.topology.values) == {"homogeneous", "pool", "fleetopt"}
    assert list(table3.pool.values) == ["short", "long"]


@pytest.mark.parametrize("gpu", ["H100", "B200"])
def test_table3_azure_rows(table3, gpu):
    for topology, paper in TABLE3_AZURE[gpu].items():
        ours = azure(table3, gpu, topology)
        assert abs(ours / paper - 1) < TABLE3_REL, (gpu, topology, ours, paper)


def test_table3_headline_ratios(table3):
    h_homog = azure(table3, "H100", "homogeneous")
    topology = azure(table3, "H100", "fleetopt") / h_homog
    generation = azure(table3, "B200", "homogeneous") / h_homog
    combined = azure(table3, "B200", "fleetopt") / h_homog
    assert abs(topology - 2.5) <= 0.1, topology
    assert abs(generation - 1.75) <= 0.07, generation
    assert abs(combined - 4.2) <= 0.15, combined


def test_table3_fleet_consistency(table3):
    """Fleet tok/W = Σ λ_i·E[L_out,i] / Σ pool power; homogeneous has an empty short pool."""
    tpw = table3.fleet_tokens_per_watt
    ratio = table3.fleet_output_tokens_per_second / table3.fleet_power
    np.testing.assert_allclose(tpw.values, ratio.values, rtol=1e-12)
    np.testing.assert_allclose(table3.fleet_power.values, table3.pool_power.sum("pool").values, rtol=1e-12)
    homog = table3.sel(topology="homogeneous")
    assert (homog.instances.sel(pool="short") == 0).all()
    assert (table3.instances >= 0).all()
    assert np.all(table3.instances.values == np.round(table3.instances.values))
    assert np.isfinite(tpw.values).all() and (tpw > 0).all()
