"""Ratios between grid points under the same joint draws (sweep.compare): a parameter both sides share
is drawn once and cancels; one they do not share does not.

Grid: H100 and B200 (roofline, physical, Llama-3.1-70B TP8) at two contexts. The H100's specs are
measured (certain), the B200's projected ±20 % (the default uncertain parameters). Sampling error: a
relative standard deviation estimated from N draws is off by about 1/√(2N) of itself (9 % at N = 64);
the margins below are several times that.
"""

import numpy as np
import pytest

import sweep
from sweep.errors import SweepInputError

N = 64
BASE = {
    "profile": "roofline",
    "convention": "physical",
    "tp": 8,
    "axes": {"gpu": ["H100", "B200"], "model": ["llama-3.1-70b"], "context": [8192, 32768]},
}
Y = "tokens_per_watt"


def rel_std(da, dim="sample"):
    return (da.std(dim) / da.mean(dim)).squeeze()


@pytest.fixture(scope="module")
def default():
    """Default parameters: the five projected B200 specs, each one draw shared by both contexts."""
    return sweep.run({**BASE, "uncertainty": {"method": "monte_carlo", "samples": N, "keep_samples": True}})


@pytest.fixture(scope="module")
def shared():
    """Only gpu_memory_utilization: a grid-wide serving value, ONE parameter shared by both GPUs."""
    return sweep.run(
        {
            **BASE,
            "uncertainty": {
                "method": "monte_carlo",
                "samples": N,
                "keep_samples": True,
                "parameters": {"gpu_memory_utilization": {"distribution": "normal", "sigma": 0.02}},
            },
        }
    )


def test_ratio_statistics_are_those_of_the_sample_ratios(default):
    out = sweep.compare(default, dim="gpu", numerator="B200", denominator="H100")
    assert set(out.data_vars) == {"ratio", "ratio_mean", "ratio_std", "ratio_quantile"}
    assert "gpu" not in out.dims and out.ratio.dims == ("model", "context", "batch")
    r = (default[f"{Y}_samples"].sel(gpu="B200") / default[f"{Y}_samples"].sel(gpu="H100")).transpose(
        "sample", "model", "context", "batch"
    )
    r = r.values
    np.testing.assert_allclose(out.ratio_mean.values, r.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(out.ratio_std.values, r.std(axis=0), rtol=1e-12)
    q = default["quantile"].values
    np.testing.assert_allclose(
        out.ratio_quantile.transpose("quantile", ...).values, np.quantile(r, q, axis=0), rtol=1e-14
    )
    nominal = default[Y].sel(gpu="B200") / default[Y].sel(gpu="H100")
    np.testing.assert_allclose(out.ratio.values, nominal.values, rtol=1e-15)
    assert "tokens_per_watt(gpu=B200) / tokens_per_watt(gpu=H100)" in out.attrs["comparison"]
    # the nominal ratio lies inside its own 5–95 % band here (B200 ≈ 2× H100 per watt)
    assert (out.ratio_quantile.sel(quantile=0.05) < out.ratio).all()
    assert (out.ratio < out.ratio_quantile.sel(quantile=0.95)).all()


def test_unshared_parameters_do_not_cancel(default):
    """H100 certain, B200 drawn: the ratio's relative spread is exactly the B200's."""
    out = sweep.compare(default, "gpu", "B200", "H100")
    samples = default[f"{Y}_samples"]
    assert float(rel_std(samples.sel(gpu="H100")).max()) < 1e-12
    b200 = rel_std(samples.sel(gpu="B200"))
    assert (b200 > 0.1).all()
    np.testing.assert_allclose((out.ratio_std / out.ratio_mean).squeeze(), b200, rtol=1e-12)


def test_shared_parameters_cancel_along_context(default):
    """Every B200 parameter is one draw for both contexts: TDP cancels exactly, bandwidth nearly, so the
    4K/32K ratio spreads far less (< 1/5) than either side."""
    out = sweep.compare(default, "context", 8192, 32768)
    ratio = float((out.ratio_std / out.ratio_mean).sel(gpu="B200").squeeze())
    sides = rel_std(default[f"{Y}_samples"].sel(gpu="B200"))
    assert ratio < 0.2 * float(sides.min()), (ratio, sides.values)


def test_shared_grid_wide_parameter_cancels_between_gpus(shared):
    assert list(shared.uncertain_parameter.values) == ["gpu_memory_utilization"]
    out = sweep.compare(shared, "gpu", "B200", "H100")
    samples = shared[f"{Y}_samples"]
    h100, b200 = rel_std(samples.sel(gpu="H100")), rel_std(samples.sel(gpu="B200"))
    ratio = (out.ratio_std / out.ratio_mean).squeeze()
    # the same ratio if the two GPUs were drawn apart: pair each B200 draw with a random other draw's
    # H100 value (a random permutation: neighbouring Sobol' points, or points N/2 apart, are alike)
    pairing = np.random.default_rng(0).permutation(N)
    apart = samples.sel(gpu="B200") / samples.sel(gpu="H100").isel(sample=pairing).values
    independent = rel_std(apart)
    assert (ratio < 0.8 * independent).all(), (ratio.values, independent.values)
    # at 8K the KV capacity of both moves almost in proportion: the ratio spreads < 1/2 of either side
    at = {"context": 8192}
    assert float(ratio.sel(at)) < 0.5 * min(float(h100.sel(at)), float(b200.sel(at)))


def test_missing_samples_is_an_error(default):
    with pytest.raises(SweepInputError, match=r"no 'tokens_per_watt_samples'.*keep_samples = true"):
        sweep.compare(default.drop_vars(f"{Y}_samples"), "gpu", "B200", "H100")


@pytest.mark.parametrize(
    ("dim", "num", "den", "match"),
    [
        ("gpu", "B300", "H100", r"compare: gpu = 'B300' is not in the grid; allowed: H100, B200"),
        ("gpu", "B200", "A100", r"compare: gpu = 'A100' is not in the grid"),
        ("context", 8192, 4096, r"compare: context = 4096 is not in the grid; allowed: 8192, 32768"),
        ("colour", "B200", "H100", r"compare: dim 'colour' is not a dimension; allowed: gpu, model"),
        ("quantile", 0.05, 0.95, r"compare: dim 'quantile' is not a dimension"),
        ("sample", 0, 1, r"compare: dim 'sample' is not a dimension"),
    ],
)
def test_unknown_coordinate_or_dim_is_an_error(default, dim, num, den, match):
    with pytest.raises(SweepInputError, match=match) as err:
        sweep.compare(default, dim, num, den)
    assert "\n" not in str(err.value)
