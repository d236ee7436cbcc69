"""Paper Table 1 (arXiv 2603.17280 §4): calibrated profiles, n = n_max(C), L̄ = C/2."""

from pathlib import Path

import pytest

import sweep

GRID = Path(__file__).resolve().parents[1] / "grids" / "table1.toml"

# context: (H100 n_max, P W, tok/W), (B200 n_max, P W, tok/W) — as printed in the paper.
TABLE1 = {
    2048: ((512, 598, "35.0"), (1343, 859, "61.4")),
    4096: ((256, 593, "17.6"), (671, 857, "30.8")),
    8192: ((128, 583, "8.97"), (335, 852, "15.5")),
    16384: ((64, 557, "4.69"), (167, 838, "7.87")),
    32768: ((32, 507, "2.58"), (83, 805, "4.09")),
    65536: ((16, 435, "1.50"), (41, 735, "2.24")),
    131072: ((8, 369, "0.88"), (20, 630, "1.30")),
}


@pytest.fixture(scope="module")
def table1():
    return sweep.run(GRID).squeeze()


def printed(value: float, like: str) -> str:
    """Format `value` with as many decimals as the paper printed in `like`."""
    decimals = len(like.split(".")[1]) if "." in like else 0
    return f"{value:.{decimals}f}"


@pytest.mark.parametrize("context", sorted(TABLE1))
@pytest.mark.parametrize("gpu_index, gpu", [(0, "H100"), (1, "B200")])
def test_every_cell(table1, context, gpu_index, gpu):
    n_max, power_w, tpw = TABLE1[context][gpu_index]
    row = table1.sel(gpu=gpu, context=context)
    assert int(row.max_concurrency) == n_max
    assert int(row.concurrency) == n_max
    assert abs(float(row.gpu_power) - power_w) <= 0.5 + 1e-9  # to 1 W
    assert printed(float(row.tokens_per_watt), tpw) == tpw


def test_throughput_follows_the_1_over_w_law(table1):
    # n_max·C is constant (H100 powers of two), so tokens/s falls exactly 2× per doubling of C,
    # while tokens/W falls by less (power drops at small n; docs/models.md §5.6).
    h100 = table1.sel(gpu="H100")
    tps, tpw = h100.tokens_per_second.values, h100.tokens_per_watt.values
    assert tps[:-1] / tps[1:] == pytest.approx(2.0, rel=1e-12)
    assert all(1.6 < r < 1.995 for r in tpw[:-1] / tpw[1:])
