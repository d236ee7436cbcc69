"""Workload CDFs: loading, validation, exact pool statistics vs brute-force integration."""

import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.errors import SweepInputError
from sweep.fleet.workload import (
    WORKLOAD_DIR,
    available_workloads,
    cdf_at,
    load_cdf,
    load_workload,
    pool_statistics,
    stack_workloads,
    workload_from_cdf,
)

# SHA-256 of the planner's files (inference-fleet-sim, src/fleet-sim/data/*_cdf.json)
PLANNER_SHA256 = {
    "azure": "d00734cd09cf039c89f6d73e21cf964e514776580620b43acf93e3cbb0c195d0",
    "lmsys": "93430d8338e2fe2f932e8d3fb1fcb1c88cfe98fce9dec86ac18e52949d656ff4",
    "agent_heavy": "b5d126806598dfa6edda9dfe2e76b53620cdec6dca4c0decf6f764b8cb839470",
}


def test_builtin_workloads():
    assert available_workloads() == ("agent_heavy", "azure", "lmsys")
    for name in available_workloads():
        wl = load_workload(name)
        assert float(wl.lengths_tokens[0]) == 0 and float(wl.cum_fraction[0]) == 0
        assert float(wl.cum_fraction[-1]) == 1.0
    # both JSON forms: azure is a bare list, agent_heavy an object with "cdf"
    assert isinstance(json.loads((WORKLOAD_DIR / "azure.json").read_text()), list)
    assert "cdf" in json.loads((WORKLOAD_DIR / "agent_heavy.json").read_text())
    assert (WORKLOAD_DIR / "PROVENANCE.md").is_file()


@pytest.mark.parametrize("name", ["azure", "lmsys", "agent_heavy"])
def test_package_data_is_unchanged_copy(name):
    digest = hashlib.sha256((WORKLOAD_DIR / f"{name}.json").read_bytes()).hexdigest()
    assert digest == PLANNER_SHA256[name]


def test_cdf_at_interpolates_from_zero():
    wl = load_workload("azure")
    np.testing.assert_allclose(float(cdf_at(wl, 4096.0)), 0.8982082668085861)
    np.testing.assert_allclose(float(cdf_at(wl, 32.0)), 0.5 * 0.00837324818165691)
    assert float(cdf_at(wl, 1e9)) == 1.0 and float(cdf_at(wl, 0.0)) == 0.0


# ---------------------------------------------------------------- brute-force reference


def brute_force(
    cdf: np.ndarray,
    lo,
    hi,
    window,
    chunk,
    alpha,
    beta,
    f,
    planner_routing=False,
    unclipped=False,
    per_token=64,
):
    """Midpoint rule on a fine grid (`per_token` cells per token) of the piecewise-uniform law."""
    t = np.concatenate([[0.0], cdf[:, 0]])
    big_f = np.concatenate([[0.0], cdf[:, 1]])
    top = t[-1]
    x = (np.arange(int(top * per_token)) + 0.5) / per_token
    seg = np.searchsorted(t, x)  # segment index i: t[i-1] < x <= t[i]
    dens = (np.diff(big_f) / np.diff(t))[seg - 1]
    weight = dens / per_token * ((x > lo) & (x <= hi))
    length = x.copy()
    if planner_routing and lo > 0:
        i = np.searchsorted(t, lo, side="right")  # segment containing lo
        mass = big_f[i] - np.interp(lo, t, big_f)
        in_seg = (x > lo) & (x <= t[i])
        weight = np.where(in_seg, 0.0, weight)
        spread = x <= t[i]
        weight = weight + np.where(spread, mass / t[i] / per_token, 0.0)
    share = weight.sum()
    p = weight / share
    lc = np.minimum(length, window)
    s = (np.ceil((1 - f) * lc / chunk) + f * lc) * (alpha + beta * lc)
    es = (p * s).sum()
    scv = (p * s * s).sum() / es**2 - 1
    out = f * (p * (length if unclipped else lc)).sum()
    chunks = (p * np.ceil((1 - f) * lc / chunk)).sum()
    return share, es, scv, out, chunks


CASES = [  # workload, lo, hi, window, chunk, f
    ("azure", 0.0, np.inf, 65536.0, 1024.0, 0.2),
    ("azure", 0.0, 4096.0, 4096.0, 1024.0, 0.2),
    ("azure", 4096.0, np.inf, 65536.0, 1024.0, 0.2),
    ("azure", 0.0, 8192.0, 4096.0, 2048.0, 0.2),  # FleetOpt short pool: compression
    ("lmsys", 0.0, 3072.0, 1536.0, 1024.0, 0.2),
    ("lmsys", 1000.0, 20000.0, 5000.0, 300.0, 0.35),  # boundaries and window inside segments
    ("agent_heavy", 700.0, np.inf, 65536.0, 512.0, 0.1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("planner", [False, True])
def test_pool_statistics_match_brute_force(case, planner):
    name, lo, hi, window, chunk, f = case
    alpha, beta = 4.0e-3, 0.32e-3 * 16 / 8192
    got = pool_statistics(
        load_workload(name),
        lo,
        hi,
        window,
        chunk,
        alpha,
        beta,
        f,
        planner_routing=planner,
        output_unclipped=planner,
    )
    ref = brute_force(load_cdf(name), lo, hi, window, chunk, alpha, beta, f, planner, planner)
    for value, expected in zip(got[:5], ref):
        np.testing.assert_allclose(float(value), expected, rtol=2e-5)


def test_pool_statistics_transforms():
    wl = load_workload("azure")
    args = dict(chunk_tokens=1024.0, iter_per_token_s=1e-6, output_share=0.2)

    def fn(a, w):
        return pool_statistics(wl, 0.0, 8192.0, w, iter_base_s=a, **args).mean_service_s

    windows = jnp.array([2048.0, 4096.0, 8192.0])
    vals = jax.jit(jax.vmap(fn, in_axes=(None, 0)))(4e-3, windows)
    assert vals.shape == (3,) and bool(jnp.all(jnp.diff(vals) > 0))
    g = jax.grad(fn, argnums=(0, 1))(4e-3, 3000.0)
    h = 1e-3
    fd_w = (fn(4e-3, 3000.0 + h) - fn(4e-3, 3000.0 - h)) / (2 * h)
    np.testing.assert_allclose(float(g[1]), float(fd_w), rtol=1e-6)
    fd_a = (fn(4e-3 * (1 + 1e-6), 3000.0) - fn(4e-3 * (1 - 1e-6), 3000.0)) / (8e-9)
    np.testing.assert_allclose(float(g[0]), float(fd_a), rtol=1e-6)


def test_stacked_workloads_broadcast():
    wls = stack_workloads(
        [load_workload("azure"), load_workload("agent_heavy"), workload_from_cdf([[100, 0.5], [200, 1.0]])]
    )
    stats = pool_statistics(wls, 0.0, jnp.inf, 65536.0, 1024.0, 4e-3, 1e-7)
    for i, name in enumerate(["azure", "agent_heavy"]):
        single = pool_statistics(load_workload(name), 0.0, jnp.inf, 65536.0, 1024.0, 4e-3, 1e-7)
        np.testing.assert_allclose(stats.mean_service_s[i], single.mean_service_s, rtol=1e-12)
    np.testing.assert_allclose(stats.mean_served_tokens[2], 0.5 * 50 + 0.5 * 150)
    np.testing.assert_allclose(stats.traffic_share, 1.0)


def test_empty_pool_is_finite():
    stats = pool_statistics(load_workload("azure"), 0.0, 0.0, 4096.0, 1024.0, 4e-3, 1e-7)
    assert float(stats.traffic_share) == 0.0
    assert all(np.isfinite(float(v)) for v in stats)


# ---------------------------------------------------------------- bad input


def test_unknown_workload_lists_available():
    with pytest.raises(SweepInputError, match="azure.*lmsys") as err:
        load_workload("sharegpt")
    assert "sharegpt" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_missing_file():
    with pytest.raises(SweepInputError, match="not found"):
        load_workload("/nonexistent/dir/cdf.json")


BAD = [
    ("{not json", "invalid JSON"),
    ('{"points": [[1, 1.0]]}', "'cdf'"),
    ("[]", "non-empty"),
    ('{"cdf": 5}', "non-empty"),
    ("[[100, 0.5, 3], [200, 1.0]]", r"cdf\[0\]"),
    ('[[100, 0.5], ["200", 1.0]]', r"cdf\[1\]"),
    ("[[100, 0.5], [true, 1.0]]", r"cdf\[1\]"),
    ("[[0, 0.5], [200, 1.0]]", r"cdf\[0\]\[0\].*not positive"),
    ("[[100, 0.5], [100, 1.0]]", r"cdf\[1\]\[0\].*strictly increasing"),
    ("[[200, 0.5], [100, 1.0]]", r"cdf\[1\]\[0\]"),
    ("[[100, -0.1], [200, 1.0]]", r"cdf\[0\]\[1\].*\[0, 1\]"),
    ("[[100, 0.5], [200, 1.2]]", r"cdf\[1\]\[1\].*\[0, 1\]"),
    ("[[100, 0.6], [200, 0.5], [300, 1.0]]", r"cdf\[1\]\[1\].*non-decreasing"),
    ("[[100, 0.5], [200, 0.9]]", r"cdf\[1\]\[1\].*last fraction of 1"),
    ("[[100, NaN], [200, 1.0]]", r"cdf\[0\].*finite"),
]


@pytest.mark.parametrize("text, pattern", BAD)
def test_malformed_cdf_files(tmp_path, text, pattern):
    path = tmp_path / "bad_cdf.json"
    path.write_text(text)
    with pytest.raises(SweepInputError, match=pattern) as err:
        load_workload(str(path))
    message = str(err.value)
    assert str(path) in message and "allowed" in message and "\n" not in message


def test_valid_user_file_both_forms(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("[[128, 0.1], [512, 0.7], [2048, 1.0]]")
    b.write_text('{"cdf": [[128, 0.1], [512, 0.7], [2048, 1.0]], "source": "internal"}')
    wa, wb = load_workload(str(a)), load_workload(str(b))
    np.testing.assert_array_equal(wa.lengths_tokens, [0, 128, 512, 2048])
    np.testing.assert_array_equal(wa.cum_fraction, wb.cum_fraction)
