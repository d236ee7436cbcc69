import numpy as np
import pytest

import sweep
from sweep import _engine
from sweep._engine import Plan
from tests import reference

SPEC = {
    "convention": "paper",
    "axes": {
        "gpu": ["H100", "B200"],
        "model": ["llama-3.1-70b"],
        "context": [1000, 2048, 5000, 8192, 100000],
        "batch": [1, 7, 64, 300, "max"],
        "mean_length_fraction": [0.3, 0.5],
    }
}


@pytest.mark.parametrize("chunk_points", [1, 7, 20, 64, 1000, 1 << 22])
def test_chunking_does_not_change_results(chunk_points):
    whole = sweep.run(SPEC)
    chunked = sweep.run({**SPEC, "chunk_points": chunk_points})
    for name in whole.data_vars:
        np.testing.assert_array_equal(whole[name].values, chunked[name].values)


def test_grid_matches_scalar_reference_pointwise():
    ds = sweep.run(SPEC)
    h100 = ds.sel(gpu="H100", model="llama-3.1-70b")
    for c in SPEC["axes"]["context"]:
        for b in (1, 7, 64, 300, 0):
            for f in (0.3, 0.5):
                want = reference.point(reference.H100, c, b, f)
                got = h100.sel(context=c, batch=b, mean_length_fraction=f)
                for key, value in want.items():
                    np.testing.assert_allclose(float(got[key]), value, rtol=1e-12)


@pytest.mark.parametrize("dims, chunk", [((2, 5, 5, 2), 7), ((3, 4), 100), ((1, 9, 2), 4), ((4, 1), 1)])
def test_plan_covers_every_point_once(dims, chunk):
    plan = Plan.make(dims, chunk)
    hits = np.zeros(dims, dtype=int)
    shapes = set()
    for idx, where, valid in plan.blocks():
        shapes.add(tuple(len(i) for i in idx))
        hits[where] += 1
    assert (hits == 1).all()
    assert len(shapes) == 1  # one block shape: one compilation


def test_one_compilation_for_many_chunks(monkeypatch):
    calls = []
    real_jit = _engine.jax.jit

    def counting_jit(f, *a, **k):
        jitted = real_jit(f, *a, **k)

        def wrapper(*args):
            calls.append(f.__name__)
            return jitted(*args)

        wrapper.jitted = jitted
        calls_by_fn.append(jitted)
        return wrapper

    calls_by_fn = []
    monkeypatch.setattr(_engine.jax, "jit", counting_jit)
    sweep.run({**SPEC, "chunk_points": 10})
    kernel = [j for j in calls_by_fn if j.__wrapped__.__name__ == "kernel"][0]
    assert calls.count("kernel") > 5
    assert kernel._cache_size() == 1


def test_float32_option():
    ds32 = sweep.run({**SPEC, "dtype": "float32"})
    ds64 = sweep.run(SPEC)
    assert ds32.tokens_per_watt.dtype == np.float32
    np.testing.assert_allclose(ds32.tokens_per_watt.values, ds64.tokens_per_watt.values, rtol=2e-5)
