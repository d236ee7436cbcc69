"""Profile tables (sweep.grid.tables): the vectorised first-principles table against a plain per-row
scalar reference."""

import functools

import jax
import numpy as np

from sweep.calibration.store import load_calibration
from sweep.catalogs import setups
from sweep.catalogs.gpus import get_gpu
from sweep.catalogs.llms import ModelEntry, get_model
from sweep.catalogs.provenance import Value
from sweep.grid import tables
from sweep.grid.spec import parse
from sweep.physics.architecture import ARCH_FIELDS, dense_family
from sweep.physics.derive import derive_profile
from sweep.physics.profile import Profile

DENSE = {"dense-7b": 7e9, "dense-70b": 70e9}


@functools.cache
def _scalar_model(name: str) -> ModelEntry:
    """A catalog model, or a dense-family one from its own scalar `dense_family` call."""
    if name not in DENSE:
        return get_model(name)
    arch = dense_family(DENSE[name], integer=True)
    return ModelEntry(name, {k: Value(float(arch[k]), "test", "projected", 0.0) for k in ARCH_FIELDS})


@functools.cache
def _derive(convention: str):
    return jax.jit(lambda gpu, model, serving: derive_profile(gpu, model, serving, convention=convention))


def test_vectorised_roofline_table_equals_per_row_scalar_derivation():
    """Every profile row of a calibrated dense-family grid, derived from the vectorised table, equals
    `derive_profile` on that row's own GPU, model (scalar dense_family) and serving dicts, bit for bit."""
    axes = {
        "gpu": ["H100", "A100"],  # H100 has its own calibration group, A100 gets the projected mean
        "model": ["dense-7b", "llama-3.1-8b", "dense-70b"],
        "tp": [1, 2],
        "weight_dtype": ["bf16", "int4"],  # the KV dtype follows: bf16 for both
    }
    spec = parse(
        {
            "convention": "physical",
            "profile": "roofline",
            "calibration": "mlenergy-v3",
            "axes": {**axes, "context": [4096]},
        }
    )
    tables._DENSE_ENTRIES.clear()  # the vectorised dense-family call runs here
    table = tables.roofline_table(spec)
    vectorised = jax.jit(table.derive)(table.theta)
    calibration = load_calibration("mlenergy-v3")
    rows = [
        (gpu, model, tp, dtype)
        for gpu in axes["gpu"]
        for model in axes["model"]
        for tp in axes["tp"]
        for dtype in axes["weight_dtype"]
    ]
    assert len(table.theta["gpu.tdp_w"]) == len(rows)
    for k, (gpu, model, tp, dtype) in enumerate(rows):
        g, m = get_gpu(gpu), _scalar_model(model)
        values, _, _ = calibration.for_setup(gpu, model)
        serving = setups.serving_config(tp=tp, weight_dtype=dtype, power_model=spec.power_model, **values)
        setups.check_setup(g, m, serving)
        reference = _derive("physical")(g.arrays(), m.arrays(), serving)
        for field in Profile._fields:
            got, want = np.asarray(getattr(vectorised, field))[k], np.asarray(getattr(reference, field))
            assert np.array_equal(got, want, equal_nan=True), (gpu, model, tp, dtype, field, got, want)


# ---------------------------------------------------------------------------------------------
# Catalog facts a row carries as θ entries (issue #13): the model's maximum context, the price


def test_calibrated_rows_carry_their_models_maximum_context_and_a_price():
    import pytest

    from sweep.api import model_size_coords
    from tests.test_validate import PROFILE

    profiles = [
        {**PROFILE, "gpu": "A100", "model": "m1"},
        {**PROFILE, "gpu": "H100", "price_per_gpu_hour": 9.5},
    ]
    spec = parse({"profiles": profiles, "axes": {"gpu": ["A100"], "model": ["m1"], "context": [8192]}})
    table = tables.profile_table(spec)
    assert table.theta["max_context_tokens"].tolist() == [0.0]  # an unknown model: no limit
    # an inline profile without a price takes its GPU's catalog price, with that provenance
    assert table.theta["price_per_gpu_hour"].tolist() == [2.21]
    price = table.provenance["A100/m1"]["price_per_gpu_hour"]
    assert price["quality"] == "projected" and "assumed rental price" in price["source"]
    assert np.isnan(model_size_coords(table, spec)["parameters"][1]).all()
    axes = {"gpu": ["H100"], "model": ["llama-3.1-70b", "m1"], "context": [8192]}
    spec = parse({"profiles": profiles, "axes": axes})
    table = tables.profile_table(spec)
    assert table.theta["max_context_tokens"].tolist() == [131072.0, 0.0]  # from the model catalog
    assert table.theta["price_per_gpu_hour"].tolist() == [4.02, 9.5]  # the profiles' own prices
    sizes = model_size_coords(table, spec)["parameters"][1]
    assert sizes[0] == pytest.approx(70.55e9, rel=1e-3) and np.isnan(sizes[1])


def test_first_principles_rows_carry_the_models_maximum_context():
    from sweep.api import model_size_coords

    axes = {"gpu": ["H100"], "model": ["qwen3-8b", "llama-3.1-8b"], "context": [8192]}
    spec = parse({"profile": "roofline", "axes": axes})
    table = tables.profile_table(spec)
    assert table.theta["model.max_context_tokens"].tolist() == [40960.0, 131072.0]
    np.testing.assert_allclose(model_size_coords(table, spec)["parameters"][1], [8.19e9, 8.03e9], rtol=1e-3)
