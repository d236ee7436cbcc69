"""Stream section: grids streamed to NetCDF / Zarr with peak RSS and the disk's rate; in-memory rate."""

from __future__ import annotations

import os
import time

import numpy as np


def _stream_spec(points: float, outputs, dtype: str) -> dict:
    """A calibrated grid of about `points` points: 2 GPUs × 1000 contexts × batches 1..N."""
    n_batch = int(points // 2000)
    return {
        "convention": "paper",
        "dtype": dtype,
        "chunk_points": 1 << 21,
        **({"outputs": outputs} if outputs else {}),
        "axes": {
            "gpu": ["H100", "B200"],
            "model": ["llama-3.1-70b"],
            "context": {"start": 1024, "stop": 130894, "step": 130},
            "batch": {"start": 1, "stop": n_batch, "step": 1},
        },
    }


def _streamed(points: float, outputs, dtype: str, suffix: str) -> dict:
    """One streamed run to a scratch file (removed after): points/s, bytes written and the disk's rate."""
    import shutil
    import tempfile

    import sweep

    spec = _stream_spec(points, outputs, dtype)
    scratch = tempfile.mkdtemp(prefix="sweep-bench-", dir=os.environ.get("SWEEP_BENCH_SCRATCH"))
    try:
        out = os.path.join(scratch, "grid" + suffix)
        start = time.perf_counter()
        ds = sweep.run(spec, out=out)
        seconds = time.perf_counter() - start
        n = int(np.prod([ds.sizes[d] for d in ds.tokens_per_watt.dims]))
        size = (
            sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
            if os.path.isdir(out)
            else os.path.getsize(out)
        )
        ds.close()
        probe = os.path.join(scratch, "probe")  # the disk's sequential write rate: 1 GiB, fsynced
        block = np.zeros(1 << 24, dtype=np.uint8)
        t = time.perf_counter()
        with open(probe, "wb") as f:
            for _ in range(64):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        disk = (1 << 30) / (time.perf_counter() - t)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"points": n, "seconds": seconds, "bytes": size, "disk_bytes_per_s": disk}


def bench_stream_all(args):
    """2.5e8 points, every output, float64, streamed to NetCDF."""
    return _streamed(2.5e8, None, "float64", ".nc")


def bench_stream_one(args):
    """1e9 points, tokens_per_watt only, float32, streamed to Zarr."""
    return _streamed(1e9, ["tokens_per_watt"], "float32", ".zarr")


def bench_memory_one(args):
    """The in-memory rate of the same one-output float32 grid, at 1e8 points (best of --repeat)."""
    import sweep

    spec = _stream_spec(1e8, ["tokens_per_watt"], "float32")
    sweep.run(spec)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        ds = sweep.run(spec)
        times.append(time.perf_counter() - t)
    return {"points": int(np.prod([ds.sizes[d] for d in ds.tokens_per_watt.dims])), "seconds": min(times)}


def stream_lines(results: dict) -> list:
    lines = ["streamed to disk (peak RSS of the whole process; the outputs do not stay in memory):"]
    memory = results.get("memory_one")
    for key, what, limit in (
        ("stream_all", "2.5e8 points, every output, float64, NetCDF", 2048),
        ("stream_one", "1e9 points, tokens_per_watt, float32, Zarr", 1536),
    ):
        r = results[key]
        rate = r["points"] / r["seconds"]
        lines.append(
            f"  {what}: {r['points']:,} points in {r['seconds']:.1f} s ({rate:,.0f} points/s), "
            f"{r['bytes'] / 1e9:.1f} GB written at {r['bytes'] / r['seconds'] / 1e6:,.0f} MB/s "
            f"(disk: {r['disk_bytes_per_s'] / 1e6:,.0f} MB/s); peak RSS {r['peak_rss_mb']:,.0f} MB "
            f"(target < {limit:,} MB: {'met' if r['peak_rss_mb'] < limit else 'MISSED'})"
        )
        if key == "stream_one" and memory:
            in_memory = memory["points"] / memory["seconds"]
            lines.append(
                f"    in memory, same grid at {memory['points']:.1e} points: {in_memory:,.0f} points/s "
                f"(streamed: {rate / in_memory:.0%} of it)"
            )
    return lines
