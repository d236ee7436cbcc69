"""A pool of output buffers, recycled once no array refers to them any more.

Writing a grid's outputs into fresh memory costs more than computing them on most machines: the
operating system zeroes and maps every new page on first touch, at a few GB/s (PERFORMANCE.md).
Sweeps come in series (sensitivity studies, refinements, repeated runs of a grid), so `empty`
hands out arrays carved from the memory of earlier results that nothing refers to any more.

Each array's memory is owned by a small `_Lease` object (the `.base` that the array and every
view of it share). When the last of them is garbage-collected, the lease returns its slab to
the pool, so memory is only ever reused once no array can see it. The pool keeps at most
`limit_bytes` of idle slabs (`SWEEP_POOL_BYTES`, default an eighth of physical memory; 0
disables it) and frees the oldest beyond that; `sweep.release_memory()` frees them all.
"""

from __future__ import annotations

import os
import threading

import numpy as np

_STEP = 1 << 21  # slab sizes are multiples of 2 MiB (the huge-page size)


def _default_limit() -> int:
    env = os.environ.get("SWEEP_POOL_BYTES")
    if env is not None:
        return max(0, int(float(env)))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 30


class _Lease:
    """Owner of one array's memory; returns the slab to the pool when garbage-collected."""

    def __init__(self, pool: BufferPool, slab: np.ndarray, shape: tuple, dtype: np.dtype):
        self._pool, self._slab = pool, slab
        self.__array_interface__ = {
            "data": (slab.ctypes.data, False),
            "shape": tuple(shape),
            "typestr": dtype.str,
            "version": 3,
        }

    def __del__(self):
        self._pool._release(self._slab)


class BufferPool:
    """Uninitialised NumPy arrays whose memory is recycled once no array or view uses it."""

    def __init__(self, limit_bytes: int | None = None):
        self.limit_bytes = _default_limit() if limit_bytes is None else limit_bytes
        self._idle: list[np.ndarray] = []  # oldest first
        self._lock = threading.Lock()

    @property
    def idle_bytes(self) -> int:
        return sum(s.nbytes for s in self._idle)

    def empty(self, shape, dtype) -> np.ndarray:
        """Like `np.empty(shape, dtype)`: writable, C-contiguous, 64-byte aligned, uninitialised."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if self.limit_bytes <= 0 or nbytes < _STEP:
            return np.empty(shape, dtype)
        size = -(-nbytes // _STEP) * _STEP
        with self._lock:  # the smallest idle slab that fits and wastes at most 1/8
            fits = [i for i, s in enumerate(self._idle) if size <= s.nbytes <= size + size // 8]
            # by position, not `list.remove`: that compares arrays element-wise
            slab = self._idle.pop(min(fits, key=lambda i: self._idle[i].nbytes)) if fits else None
        if slab is None:
            raw = np.empty(size + 64, np.uint8)
            offset = -raw.ctypes.data % 64
            slab = raw[offset : offset + size]
        return np.asarray(_Lease(self, slab, tuple(shape), dtype))

    def _release(self, slab: np.ndarray) -> None:
        if self.limit_bytes <= 0:
            return
        with self._lock:
            self._idle.append(slab)
            while self._idle and self.idle_bytes > self.limit_bytes:
                self._idle.pop(0)

    def clear(self) -> None:
        """Free every idle slab."""
        with self._lock:
            self._idle.clear()


POOL = BufferPool()


def release_memory() -> None:
    """Return the memory of sweep's idle output buffers to the system."""
    POOL.clear()
