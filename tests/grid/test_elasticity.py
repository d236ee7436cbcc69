"""Elasticities d ln(tokens_per_watt) / d ln θ against central finite differences (float64)."""

import jax.numpy as jnp
import numpy as np
import pytest

import sweep
from sweep.catalogs.profiles import load_catalog
from sweep.physics.instance import evaluate
from sweep.physics.profile import CONTINUOUS_FIELDS, Profile

SPEC = {
    "convention": "paper",
    "elasticities": True,
    "axes": {
        "gpu": ["H100", "B200"],
        "model": ["llama-3.1-70b"],
        "context": [3000, 8192, 50000],
        "batch": [5, 77, "max"],
        "load": [1.0, 0.7],
    },
}


@pytest.fixture(scope="module")
def result():
    return sweep.run(SPEC)


def relaxed_tpw(values: dict, context, batch, load, convention="paper"):
    profile = Profile.from_mapping(values)
    out = evaluate(
        profile,
        jnp.float64(context),
        jnp.float64(batch),
        0.5,
        jnp.float64(load),
        convention=convention,
        relaxed=True,
    )
    return float(out["tokens_per_watt"])


def test_parameters_and_method_are_labelled(result):
    assert list(result.parameter.values) == list(CONTINUOUS_FIELDS)
    assert "relaxation" in result.attrs["elasticity_method"]
    assert result.elasticity.dims[0] == "parameter"


@pytest.mark.parametrize("gpu", ["H100", "B200"])
def test_every_elasticity_matches_central_differences(result, gpu):
    values = load_catalog()[(gpu, "llama-3.1-70b")].profile_values()
    worst = 0.0
    for context in SPEC["axes"]["context"]:
        for batch in (5, 77, 0):
            for load in (1.0, 0.7):
                for key in CONTINUOUS_FIELDS:
                    theta = values[key]
                    h = 1e-6
                    up = relaxed_tpw({**values, key: theta * (1 + h)}, context, batch, load)
                    down = relaxed_tpw({**values, key: theta * (1 - h)}, context, batch, load)
                    base = relaxed_tpw(values, context, batch, load)
                    fd = (up - down) / (2 * h) / base
                    got = float(
                        result.elasticity.sel(
                            parameter=key,
                            gpu=gpu,
                            model="llama-3.1-70b",
                            context=context,
                            batch=batch,
                            load=load,
                        )
                    )
                    err = abs(got - fd) / max(1.0, abs(fd))
                    worst = max(worst, err)
                    assert err < 1e-6, (key, context, batch, load, got, fd)
    assert worst < 1e-6


def test_known_closed_forms(result):
    # At batch "max" with KV-bound n_max, tok/W ∝ 1/(W_s + H_s·L̄/C_cal·n) ... the weight-time and
    # KV-time elasticities add up to -1 (τ is homogeneous of degree 1 in (W_s, H_s)).
    e = result.elasticity.sel(gpu="H100", model="llama-3.1-70b", batch=0, load=1.0)
    total = e.sel(parameter="weight_time_s") + e.sel(parameter="kv_time_per_seq_s")
    np.testing.assert_allclose(total.values, -1.0, rtol=1e-12)
    # Idle and nominal power elasticities add up to -1 (P is homogeneous of degree 1 in them).
    total_p = e.sel(parameter="power_idle_w") + e.sel(parameter="power_nominal_w")
    np.testing.assert_allclose(total_p.values, -1.0, rtol=1e-12)


def test_infeasible_points_have_nan_elasticity():
    ds = sweep.run(
        {
            "elasticities": True,
            "axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [8192, 1 << 22]},
        }
    )
    assert np.isfinite(ds.elasticity.sel(context=8192)).all()
    assert np.isnan(ds.elasticity.sel(context=1 << 22)).all()


def test_zero_tokens_per_watt_has_nan_elasticity():
    # load·n_max < 1 at batch "max": floor(load·n_max) = 0 sequences, tokens/W = 0, ln 0 undefined
    # (the relaxed model gave finite elasticities there)
    ds = sweep.run(
        {
            "elasticities": True,
            "axes": {
                "gpu": ["H100"],
                "model": ["llama-3.1-70b"],
                "context": [3000, 100000],
                "batch": ["max", 5],
                "load": [0.01, 0.7],
            },
        }
    )
    zero = ds.tokens_per_watt == 0
    assert int(zero.sum()) == 1 and bool(zero.sel(context=100000, batch=0, load=0.01).squeeze())
    assert np.isnan(ds.elasticity.where(zero)).sum() == ds.elasticity.where(zero).size
    assert np.isfinite(ds.elasticity.where(~zero, 0.0)).all()
