"""First-order uncertainty (`uncertainty = true`) against a brute-force Monte Carlo of the exact model.

Definition (sweep.api.UNCERTAINTY_NOTE): each parameter with a catalog uncertainty u_i has an
independent uniform relative error on [-u_i, u_i]; rel_uncertainty = sqrt(Σ (e_i·u_i)²/3) is the
relative standard deviation of tokens/W (of ln tokens/W, to first order); low/high =
value·exp(∓2·rel_uncertainty), value·(1 ∓ 2·rel_uncertainty) to first order.
The Monte Carlo samples those errors, evaluates the exact (non-relaxed) model on every sample at
once and compares the relative standard deviation with the linear estimate.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import sweep
from sweep.catalogs import setups
from sweep.catalogs.gpus import default_gpu_catalog
from sweep.catalogs.llms import default_model_catalog
from sweep.catalogs.profiles import load_catalog
from sweep.physics import derive as _derive
from sweep.physics.instance import evaluate
from sweep.physics.profile import CONTINUOUS_FIELDS, Profile

CONTEXTS = [8192, 32768]
BATCHES = [64, "max"]
N_SAMPLES = 100_000
N_SAMPLES_ONE = 20_000
MC_REL = 0.15  # MC relative std within 15 % of the linear estimate
SEED = 20260317


def _points():
    context = jnp.asarray(CONTEXTS, jnp.float64).reshape(1, -1, 1)
    batch = jnp.asarray([0.0 if b == "max" else float(b) for b in BATCHES]).reshape(1, 1, -1)
    return context, batch


def _rel_std(y: np.ndarray) -> np.ndarray:
    return y.std(axis=0) / y.mean(axis=0)


def _check_mc(mc, linear, what):
    assert np.all(np.abs(mc - linear) <= MC_REL * linear), (
        f"{what}: MC {mc.tolist()} vs linear {linear.tolist()}"
    )


def _check_band(ds, target="tokens_per_watt"):
    rel = ds[f"{target}_rel_uncertainty"]
    np.testing.assert_allclose(ds[f"{target}_low"].values, (ds[target] * np.exp(-2 * rel)).values, rtol=1e-12)
    np.testing.assert_allclose(ds[f"{target}_high"].values, (ds[target] * np.exp(2 * rel)).values, rtol=1e-12)
    assert "uniform" in ds.attrs["uncertainty_method"]
    linear = np.sqrt(((ds.elasticity * ds.uncertainty) ** 2).sum("parameter") / 3.0)
    np.testing.assert_allclose(rel.values, linear.values, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# calibrated profiles: B200 projected (±20 %), H100 measured


@pytest.fixture(scope="module")
def calibrated():
    return sweep.run(
        {
            "convention": "paper",
            "uncertainty": True,
            "axes": {
                "gpu": ["H100", "B200"],
                "model": ["llama-3.1-70b"],
                "context": CONTEXTS,
                "batch": BATCHES,
            },
        }
    )


def _calibrated_mc(gpu, perturb, n_samples, seed):
    entry = load_catalog()[(gpu, "llama-3.1-70b")]
    values = entry.profile_values()
    rng = np.random.default_rng(seed)
    theta = {k: np.full(n_samples, float(v)) for k, v in values.items()}
    for key, u in perturb.items():
        theta[key] = theta[key] * (1 + rng.uniform(-u, u, n_samples))
    profile = Profile.from_mapping({k: v.reshape(-1, 1, 1) for k, v in theta.items()})
    context, batch = _points()
    out = evaluate(profile, context, batch, 0.5, 1.0, convention="paper", relaxed=False)
    return np.asarray(out["tokens_per_watt"])


def _catalog_uncertainty(gpu) -> dict:
    prov = load_catalog()[(gpu, "llama-3.1-70b")].provenance
    return {
        k: prov[k].uncertainty
        for k in CONTINUOUS_FIELDS
        if k in prov and prov[k].quality == "projected" and prov[k].uncertainty > 0
    }


def test_calibrated_outputs_and_band(calibrated):
    for name in (
        "tokens_per_watt_rel_uncertainty",
        "tokens_per_watt_low",
        "tokens_per_watt_high",
        "uncertainty",
    ):
        assert name in calibrated
    _check_band(calibrated)
    # the grid's per-parameter uncertainties are the catalog's projected values
    for gpu in ("H100", "B200"):
        u = calibrated.uncertainty.sel(gpu=gpu, model="llama-3.1-70b")
        expected = _catalog_uncertainty(gpu)
        for p in calibrated.parameter.values:
            assert float(u.sel(parameter=p)) == expected.get(str(p), 0.0), (gpu, p)


def test_calibrated_b200_band_matches_monte_carlo(calibrated):
    perturb = _catalog_uncertainty("B200")
    assert len(perturb) >= 6 and all(u == 0.20 for u in perturb.values())
    y = _calibrated_mc("B200", perturb, N_SAMPLES, SEED)
    linear = calibrated.tokens_per_watt_rel_uncertainty.sel(gpu="B200", model="llama-3.1-70b").values
    assert np.all(linear > 0.05)
    _check_mc(_rel_std(y), linear, "calibrated B200")


def test_calibrated_b200_each_parameter_matches_monte_carlo(calibrated):
    """One parameter at a time: MC std of tok/W vs |e_i|·u_i/√3 (detects a wrong or missing term)."""
    e = calibrated.elasticity.sel(gpu="B200", model="llama-3.1-70b")
    for i, (key, u) in enumerate(_catalog_uncertainty("B200").items()):
        mc = _rel_std(_calibrated_mc("B200", {key: u}, N_SAMPLES_ONE, SEED + i))
        linear = np.abs(e.sel(parameter=key).values) * u / np.sqrt(3)
        assert np.all(np.abs(mc - linear) <= MC_REL * linear + 2e-3), (key, mc.tolist(), linear.tolist())


def test_h100_measured_profile_has_no_uncertainty(calibrated):
    cell = calibrated.sel(gpu="H100", model="llama-3.1-70b")
    assert (cell.tokens_per_watt_rel_uncertainty == 0).all()
    np.testing.assert_array_equal(cell.tokens_per_watt_low.values, cell.tokens_per_watt.values)
    np.testing.assert_array_equal(cell.tokens_per_watt_high.values, cell.tokens_per_watt.values)
    # ...and the Monte Carlo agrees: nothing projected, nothing moves
    assert _catalog_uncertainty("H100") == {}
    y = _calibrated_mc("H100", {}, 16, SEED)
    assert np.all(_rel_std(y) < 1e-12)


# ---------------------------------------------------------------------------------------------
# roofline profiles: B200 specs projected (±20 %), H100 specs measured


ROOFLINE_CASES = {"physical": ("llama-3.1-70b", 8), "paper": ("llama-3.1-8b", 1)}


@pytest.fixture(scope="module", params=list(ROOFLINE_CASES))
def roofline(request):
    convention = request.param
    model, tp = ROOFLINE_CASES[convention]
    ds = sweep.run(
        {
            "convention": convention,
            "profile": "roofline",
            "uncertainty": True,
            "tp": tp,
            "axes": {"gpu": ["H100", "B200"], "model": [model], "context": CONTEXTS, "batch": BATCHES},
        }
    )
    return convention, model, tp, ds


def _gpu_uncertainty(gpu) -> dict:
    entry = default_gpu_catalog().get(gpu)
    return {
        k: v.uncertainty for k, v in entry.specs.items() if v.quality == "projected" and v.uncertainty > 0
    }


def _roofline_mc(convention, gpu, model, tp, perturb, n_samples, seed):
    rng = np.random.default_rng(seed)
    specs = {k: np.full(n_samples, float(v)) for k, v in default_gpu_catalog().get(gpu).arrays().items()}
    for key, u in perturb.items():
        specs[key] = specs[key] * (1 + rng.uniform(-u, u, n_samples))
    gpu_arrays = {k: jnp.asarray(v).reshape(-1, 1, 1) for k, v in specs.items()}
    profile = _derive.derive_profile(
        gpu_arrays,
        default_model_catalog().get(model).arrays(),
        setups.serving_config(tp=tp),
        convention=convention,
        relaxed=False,
    )
    context, batch = _points()
    out = evaluate(profile, context, batch, 0.5, 1.0, convention=convention, relaxed=False)
    return np.asarray(out["tokens_per_watt"])


def test_roofline_outputs_and_uncertainties(roofline):
    convention, model, tp, ds = roofline
    _check_band(ds)
    for gpu in ("H100", "B200"):
        u = ds.uncertainty.sel(gpu=gpu, model=model)
        expected = _gpu_uncertainty(gpu)
        for p in ds.parameter.values:
            assert float(u.sel(parameter=p)) == expected.get(str(p), 0.0), (gpu, p)
    assert _gpu_uncertainty("B200")["hbm_bandwidth_bytes_per_s"] == 0.20


def test_roofline_b200_band_matches_monte_carlo(roofline):
    convention, model, tp, ds = roofline
    y = _roofline_mc(convention, "B200", model, tp, _gpu_uncertainty("B200"), N_SAMPLES, SEED)
    assert np.isfinite(y).all()
    linear = ds.tokens_per_watt_rel_uncertainty.sel(gpu="B200", model=model).values
    assert np.all(linear > 0.05)
    _check_mc(_rel_std(y), linear, f"roofline B200 {convention}")


def test_roofline_b200_each_parameter_matches_monte_carlo(roofline):
    convention, model, tp, ds = roofline
    e = ds.elasticity.sel(gpu="B200", model=model)
    reported = set(map(str, ds.parameter.values))
    for i, (key, u) in enumerate(sorted(_gpu_uncertainty("B200").items())):
        mc = _rel_std(_roofline_mc(convention, "B200", model, tp, {key: u}, N_SAMPLES_ONE, SEED + i))
        if key not in reported:  # price, prefill chunk: no effect on a single instance's tokens/W
            assert np.all(mc < 1e-12), (key, mc.tolist())
            continue
        linear = np.abs(e.sel(parameter=key).values) * u / np.sqrt(3)
        assert np.all(np.abs(mc - linear) <= MC_REL * linear + 2e-3), (
            convention,
            key,
            mc.tolist(),
            linear.tolist(),
        )


def test_roofline_h100_measured_specs_have_no_uncertainty(roofline):
    convention, model, tp, ds = roofline
    cell = ds.sel(gpu="H100", model=model)
    assert (cell.tokens_per_watt_rel_uncertainty == 0).all()
    np.testing.assert_array_equal(cell.tokens_per_watt_low.values, cell.tokens_per_watt.values)
    assert set(_gpu_uncertainty("H100")) == {"price_per_gpu_hour"}  # projected, but no effect on tokens/W
