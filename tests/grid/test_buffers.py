import gc

import numpy as np

import sweep
from sweep.grid.buffers import POOL, BufferPool

MIB = 1 << 20


def test_empty_is_a_plain_writable_array():
    pool = BufferPool(limit_bytes=64 * MIB)
    a = pool.empty((3, MIB), np.float64)
    assert a.shape == (3, MIB) and a.dtype == np.float64
    assert a.flags.writeable and a.flags.c_contiguous and a.ctypes.data % 64 == 0
    a[...] = 2.5
    assert float(a.sum()) == 2.5 * 3 * MIB


def test_memory_is_reused_only_once_every_view_is_gone():
    pool = BufferPool(limit_bytes=64 * MIB)
    a = pool.empty((MIB,), np.float64)
    address = a.ctypes.data
    view = a[10:20]
    del a
    gc.collect()
    assert pool.idle_bytes == 0  # the view still holds the memory
    other = pool.empty((MIB,), np.float64)
    assert other.ctypes.data != address
    del view
    gc.collect()
    assert pool.idle_bytes == 8 * MIB
    again = pool.empty((MIB,), np.float64)
    assert again.ctypes.data == address and pool.idle_bytes == 0
    del other, again


def test_limit_keeps_only_the_newest_idle_slabs_and_zero_disables():
    pool = BufferPool(limit_bytes=20 * MIB)
    arrays = [pool.empty((MIB,), np.float64) for _ in range(3)]  # 8 MiB each
    del arrays
    gc.collect()
    assert pool.idle_bytes == 16 * MIB
    pool.clear()
    assert pool.idle_bytes == 0

    off = BufferPool(limit_bytes=0)
    a = off.empty((MIB,), np.float64)
    assert a.base is None  # a plain np.empty array
    del a
    assert off.idle_bytes == 0


def test_small_arrays_bypass_the_pool():
    pool = BufferPool(limit_bytes=64 * MIB)
    a = pool.empty((1000,), np.float64)
    assert a.base is None


def test_a_new_run_never_overwrites_an_earlier_result():
    spec = {
        "convention": "paper",
        "axes": {
            "gpu": ["H100", "B200"],
            "model": ["llama-3.1-70b"],
            "context": list(range(1024, 1024 + 64 * 200, 64)),
            "batch": list(range(1, 1001)),
        },
    }
    first = sweep.run(spec)
    kept = first.tokens_per_watt.values.copy()
    assert first.tokens_per_watt.values.nbytes > 2 * MIB  # large enough to come from the pool
    second = sweep.run({**spec, "mean_length_fraction": 0.25})
    assert not np.array_equal(second.tokens_per_watt.values, kept)
    np.testing.assert_array_equal(first.tokens_per_watt.values, kept)
    del first, second
    gc.collect()
    assert POOL.idle_bytes > 0
    sweep.release_memory()
    assert POOL.idle_bytes == 0


def test_reuse_of_a_slab_behind_idle_slabs_of_other_sizes():
    """Regression: `list.remove` compared slabs element-wise (ValueError on the third run)."""
    pool = BufferPool(limit_bytes=256 * MIB)
    small, large = pool.empty((MIB,), np.float64), pool.empty((4 * MIB,), np.float64)
    address = large.ctypes.data
    del small, large
    gc.collect()
    again = pool.empty((4 * MIB,), np.float64)  # the second idle slab, behind an 8 MiB one
    assert again.ctypes.data == address and pool.idle_bytes == 8 * MIB
    same = pool.empty((MIB,), np.float64)  # the remaining slab, equal in size to none other
    assert pool.idle_bytes == 0
    del again, same


def test_three_runs_of_different_sizes_in_one_process():
    """The issue's snippet: a third `sweep.run` after a grid of another size raised ValueError."""

    def grid(n):
        return {
            "axes": {
                "gpu": ["H100"],
                "model": ["llama-3.1-70b"],
                "context": [4096, 8192],
                "batch": {"start": 1, "stop": n, "step": 1},
            }
        }

    sweep.run(grid(200_000))  # results dropped at once: their buffers go back to the pool
    sweep.run(grid(2_000_000))
    ds = sweep.run(grid(2_000_000))
    assert np.isfinite(ds.tokens_per_watt.values).all()
