import dataclasses

import numpy as np
import pytest

import sweep
from sweep.grid import engine as _engine
from sweep.grid import spec as _grid
from sweep.grid.engine import Plan
from tests import reference
from tests.utils import assert_allclose

SPEC = {
    "convention": "paper",
    "axes": {
        "gpu": ["H100", "B200"],
        "model": ["llama-3.1-70b"],
        "context": [1000, 2048, 5000, 8192, 100000],
        "batch": [1, 7, 64, 300, "max"],
        "mean_length_fraction": [0.3, 0.5],
    },
}


def with_chunk(spec: dict, chunk_points: int) -> _grid.GridSpec:
    """The spec with a chunk size below the grid-file minimum (to exercise many blocks)."""
    return dataclasses.replace(_grid.parse(spec), chunk_points=chunk_points)


@pytest.mark.parametrize("chunk_points", [1, 7, 20, 64, 1000, 1 << 22])
def test_chunking_does_not_change_results(chunk_points):
    # integer outputs exactly; floats to the dtype tolerance (XLA may order a block's arithmetic differently)
    whole = sweep.run(SPEC)
    chunked = sweep.run(with_chunk(SPEC, chunk_points))
    for name in whole.data_vars:
        want, got = whole[name].values, chunked[name].values
        if np.issubdtype(want.dtype, np.integer):
            np.testing.assert_array_equal(got, want)
        else:
            assert_allclose(got, want, factor=4.0)


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
    for starts, where, valid in plan.blocks():
        assert tuple(s.start for s in where) == tuple(starts[: len(where)])
        assert where[-1].stop - where[-1].start == valid <= plan.block
        hits[where] += 1
    assert (hits == 1).all()


def test_one_compilation_for_many_chunks_and_reuse_across_runs():
    spec = {**SPEC, "axes": {**SPEC["axes"], "context": [1001, 2002, 3003, 4004, 5005, 6006, 7007]}}
    before = _engine._kernel._cache_size()
    sweep.run(with_chunk(spec, 10))
    assert Plan.make((2, 7, 5, 2), 10).n_blocks > 5
    compiled = _engine._kernel._cache_size() - before
    assert compiled == 1  # many blocks: one compiled kernel
    sweep.run(with_chunk({**spec, "axes": {**spec["axes"], "context": [11, 22, 33, 44, 55, 66, 77]}}, 10))
    assert _engine._kernel._cache_size() == before + compiled  # same structure, new values: no recompile


def test_float32_option():
    ds32 = sweep.run({**SPEC, "dtype": "float32"})
    ds64 = sweep.run(SPEC)
    assert ds32.tokens_per_watt.dtype == np.float32
    np.testing.assert_allclose(ds32.tokens_per_watt.values, ds64.tokens_per_watt.values, rtol=2e-5)


def test_outputs_subset_is_the_same_numbers():
    whole = sweep.run(SPEC)
    only = sweep.run({**SPEC, "outputs": ["gpu_power"]})
    pre = {"max_concurrency", "feasible", "exceeds_model_context"}  # the (profile, context) pass: always
    assert set(only.data_vars) == {"gpu_power", "tokens_per_watt", *pre}
    for name in only.data_vars:
        np.testing.assert_array_equal(only[name].values, whole[name].values)
    with pytest.raises(
        sweep.SweepInputError, match=r"outputs: unknown output\(s\) \['watts'\]; allowed: concurrency"
    ):
        sweep.run({**SPEC, "outputs": ["watts"]})


def test_integer_outputs_do_not_depend_on_dtype():
    # float32 inputs gave n_max 3,782,122 instead of 3,782,123 (H200, tp 2) and floor(load·n_max) off by one
    spec = {
        "profile": "roofline",
        "axes": {
            "gpu": ["B200", "H200"],
            "model": ["llama-3.1-8b"],
            "tp": [1, 2],
            "kv_dtype": ["bf16", "fp8"],
            "kv_block_tokens": [1],
            "context": [1, 3, 5, 7],
            "batch": ["max"],
            "load": [0.33, 0.7, 0.9],
        },
    }
    ds64, ds32 = sweep.run(spec), sweep.run({**spec, "dtype": "float32"})
    assert ds32.tokens_per_watt.dtype == np.float32
    np.testing.assert_array_equal(ds32.max_concurrency.values, ds64.max_concurrency.values)
    np.testing.assert_array_equal(ds32.feasible.values, ds64.feasible.values)
    np.testing.assert_array_equal(ds32.concurrency.values, ds64.concurrency.values.astype(np.float32))
