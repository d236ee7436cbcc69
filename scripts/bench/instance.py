"""Instance-grid section: (a) per-point Python loop, (b) NumPy, (c) sweep.run, and their table."""

from __future__ import annotations

import math
import time

import numpy as np

from bench.harness import grid_axes, profiles


def python_point(p, context, batch):
    blocks = -(-context // p["kv_block_tokens"])
    n_max = min(p["kv_blocks"] // blocks, (p["max_slots"] * p["calibration_context"]) // context)
    n = min(batch, n_max)
    tau = p["weight_time_s"] + p["kv_time_per_seq_s"] * (0.5 * context / p["calibration_context"]) * n
    tps = n / tau
    b = max(1, int(n))
    power = p["power_idle_w"] + (p["power_nominal_w"] - p["power_idle_w"]) / (
        1 + math.exp(-p["power_k"] * (math.log2(b) - p["power_x0"]))
    )
    return n_max, n, tau, tps, power, tps / power


def bench_python(args):
    profs = profiles()
    contexts, batches = grid_axes(args.contexts, args.batches)
    rng = np.random.default_rng(0)
    n = args.python_points
    gi = rng.integers(0, 2, n).tolist()
    ci = contexts[rng.integers(0, contexts.size, n)].tolist()
    bi = batches[rng.integers(0, batches.size, n)].tolist()
    t = time.perf_counter()
    out = [python_point(profs[g], c, b) for g, c, b in zip(gi, ci, bi)]
    dt = time.perf_counter() - t
    assert len(out) == n
    return {"points": n, "seconds": dt}


def bench_numpy(args):
    profs = profiles()
    contexts, batches = grid_axes(args.contexts, args.batches)
    keys = [
        "weight_time_s",
        "kv_time_per_seq_s",
        "calibration_context",
        "kv_block_tokens",
        "kv_blocks",
        "max_slots",
        "power_idle_w",
        "power_nominal_w",
        "power_k",
        "power_x0",
    ]
    table = {k: np.array([p[k] for p in profs], dtype=np.float64) for k in keys}
    best = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        g, c, b = np.meshgrid(
            np.arange(2), contexts.astype(np.float64), batches.astype(np.float64), indexing="ij"
        )
        g, c, b = g.ravel(), c.ravel(), b.ravel()
        p = {k: v[g] for k, v in table.items()}  # materialised per-point parameters
        t1 = time.perf_counter()
        blocks = -((-c.astype(np.int64)) // p["kv_block_tokens"].astype(np.int64))
        by_kv = p["kv_blocks"].astype(np.int64) // blocks
        by_slots = (p["max_slots"] * p["calibration_context"]).astype(np.int64) // c.astype(np.int64)
        n_max = np.minimum(by_kv, by_slots).astype(np.float64)
        n = np.minimum(b, n_max)
        tau = p["weight_time_s"] + p["kv_time_per_seq_s"] * (0.5 * c / p["calibration_context"]) * n
        tps = n / tau
        x = np.log2(np.maximum(1.0, np.floor(n)))
        power = p["power_idle_w"] + (p["power_nominal_w"] - p["power_idle_w"]) / (
            1 + np.exp(-p["power_k"] * (x - p["power_x0"]))
        )
        tpw = tps / power
        t2 = time.perf_counter()
        run = {"points": int(c.size), "materialise_s": t1 - t0, "compute_s": t2 - t1, "seconds": t2 - t0}
        del g, c, b, p, blocks, by_kv, by_slots, n_max, n, tau, tps, x, power, tpw
        best = run if best is None or run["seconds"] < best["seconds"] else best
    return best


def calibrated_grid(args, outputs=None) -> dict:
    """The grid of (c): calibrated profiles, 2 GPUs × --contexts × --batches, paper convention."""
    contexts, batches = grid_axes(args.contexts, args.batches)
    return {
        "convention": "paper",
        **({"outputs": outputs} if outputs else {}),
        "axes": {
            "gpu": ["H100", "B200"],
            "model": ["llama-3.1-70b"],
            "context": contexts.tolist(),
            "batch": batches.tolist(),
        },
        "chunk_points": args.chunk_points,
    }


def bench_sweep(args, outputs=None):
    import sweep

    spec = calibrated_grid(args, outputs)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        ds = sweep.run(spec)
        times.append(time.perf_counter() - t)
        points = int(ds.tokens_per_watt.size)
        out_bytes = sum(v.nbytes for v in ds.data_vars.values())
        del ds
    return {
        "points": points,
        "seconds": min(times),
        "first_s": times[0],
        "bytes_per_point": out_bytes / points,
    }


def _rows(results: dict, rate: dict, n_sweep: int) -> list:
    """(name, points/s, time for the grid, peak RSS) of each row of the grid table."""
    py, npy, sw = results["python"], results["numpy"], results["sweep"]
    return [
        ("(a) Python per-point loop*", rate["python"], n_sweep / rate["python"], py["peak_rss_mb"]),
        ("(b) NumPy, materialised inputs", rate["numpy"], npy["seconds"], npy["peak_rss_mb"]),
        ("    of which compute only", npy["points"] / npy["compute_s"], npy["compute_s"], float("nan")),
        ("(c) sweep.run", rate["sweep"], sw["seconds"], sw["peak_rss_mb"]),
        ("    first run (with compilation)", n_sweep / sw["first_s"], sw["first_s"], float("nan")),
        (
            "    fresh memory every run",
            rate["sweep_fresh"],
            results["sweep_fresh"]["seconds"],
            results["sweep_fresh"]["peak_rss_mb"],
        ),
        ("    compiled kernel alone", rate["kernel"], n_sweep / rate["kernel"], float("nan")),
        (
            "(c') sweep.run, one output",
            rate["sweep1"],
            results["sweep1"]["seconds"],
            results["sweep1"]["peak_rss_mb"],
        ),
    ]


def grid_lines(results: dict, info: dict, args) -> list:
    """The grid section's report: machine, grid, the method table and the ratios."""
    rate = {m: r["points"] / r["seconds"] for m, r in results.items()}
    n_sweep = results["sweep"]["points"]
    lines = [
        f"machine: {info['cpus']} CPUs ({info['processor']}); jax {info['jax']} on {info['backend']} "
        f"({info['device']})",
        f"grid: {n_sweep:,} points (2 GPUs × {args.contexts} contexts × {args.batches} batches), float64, "
        f"all outputs; best of {args.repeat}",
        f"{'method':<34}{'points/s':>14}{'time for grid':>16}{'peak RSS':>12}",
    ]
    for name, r, t, mem in _rows(results, rate, n_sweep):
        mem_s = f"{mem:,.0f} MB" if mem == mem else ""
        lines.append(f"{name:<34}{r:>14,.0f}{t:>15.2f}s{mem_s:>12}")
    lines.append(f"* extrapolated from {results['python']['points']:,} points")
    numpy_compute = results["numpy"]["points"] / results["numpy"]["compute_s"]
    bytes_per_point = results["sweep"].get("bytes_per_point", 0)
    lines.append(
        f"sweep / NumPy: {rate['sweep'] / rate['numpy']:.1f}× (vs NumPy compute only: "
        f"{rate['sweep'] / numpy_compute:.1f}×); sweep / Python loop: {rate['sweep'] / rate['python']:,.0f}×"
    )
    lines.append(
        f"kernel alone / NumPy compute only: {rate['kernel'] / numpy_compute:.1f}×; "
        f"output bytes per point: {bytes_per_point:.0f} "
        f"(the grid's outputs alone need {n_sweep * bytes_per_point / 1e9:.2f} GB)"
    )
    return lines
