#!/usr/bin/env python
"""Speed of sweep against plain Python and plain NumPy on the same model and grid.

Three implementations of the calibrated tokens-per-watt model (concurrency → iteration time →
logistic power → tokens/W, all six outputs, float64), each in its own subprocess so that the
peak memory (max RSS) is its own:

  (a) python: a per-point loop of the same formulas (`math`), on a 1e5-point sample, extrapolated;
  (b) numpy:  whole-array NumPy over materialised per-point input arrays (materialising timed
              separately from computing);
  (c) sweep:  `sweep.run` on the full grid (≥ 1e7 points): one compiled kernel, chunked.

A scale section (also alone with --only-scale) compares, end to end in one process, the calibrated
grid of (c) with a 1e7-point first-principles grid of the dense family (50 sizes × 5 GPUs × 4 TP ×
100 contexts × 100 batches, its profile table built in each run) and reports a fleet grid's rate.

Figures are wall-clock, best of --repeat runs. For sweep also: the first run in the process
(with compilation), and runs with the output-buffer pool off (SWEEP_POOL_BYTES=0), so that
every run writes into fresh memory. Absolute numbers drift between runs; the ratios within one
run are what count.

    python scripts/benchmark.py                 # 2 GPUs × 1000 contexts × 5000 batches = 1e7
    python scripts/benchmark.py --batches 10000 # 2e7 points
    python scripts/benchmark.py --only-scale    # calibrated vs first-principles vs fleet rates
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np


def grid_axes(n_context: int, n_batch: int):
    contexts = np.unique(np.round(np.geomspace(1024, 131072, n_context * 2)).astype(np.int64))
    contexts = contexts[np.linspace(0, contexts.size - 1, n_context).round().astype(int)]
    batches = np.arange(1, n_batch + 1, dtype=np.int64)
    return contexts, batches


def profiles():
    from sweep.catalogs.profiles import load_catalog

    cat = load_catalog()
    return [cat[("H100", "llama-3.1-70b")].profile_values(), cat[("B200", "llama-3.1-70b")].profile_values()]


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


def bench_kernel(args):
    """The compiled kernel alone, block after block (outputs stay in XLA's buffers): the part of
    sweep.run that is not writing the grid-sized output arrays."""
    import jax
    import jax.numpy as jnp

    from sweep.grid import engine as _engine
    from sweep.grid.evaluators import InstanceEvaluator
    from sweep.grid.spec import parse
    from sweep.grid.tables import CalibratedDerive, calibrated_table

    contexts, batches = grid_axes(args.contexts, args.batches)
    spec = parse(
        {
            "convention": "paper",
            "axes": {"gpu": ["H100", "B200"], "model": ["llama-3.1-70b"], "context": [1024], "batch": [1]},
        }
    )
    theta = {
        k: jnp.asarray(_engine._pad(np.asarray(v, dtype=np.float64)))
        for k, v in calibrated_table(spec).theta.items()
    }
    axes = tuple(jnp.asarray(_engine._pad(a.astype(np.float64))) for a in (contexts, batches))
    params = {"mean_length_fraction": jnp.asarray(0.5), "load": jnp.asarray(1.0)}
    dims = (2, contexts.size, batches.size)
    sizes = jnp.asarray(np.array(dims, dtype=np.int64))
    model, derive = InstanceEvaluator("paper"), CalibratedDerive()
    pre = _engine._pre_kernel(
        theta, axes[:1], params, (), evaluator=model.pre, derive=derive, names=("context",)
    )
    plan = _engine.Plan.make(dims, args.chunk_points)
    lengths = plan.lengths
    keep = tuple(model.outputs)
    static = (
        ("evaluator", model),
        ("derive", derive),
        ("names", ("context", "batch")),
        ("keep", keep),
        ("lengths", lengths),
        ("n_cat", 1),
        ("dtype", "float64"),
    )
    spare = [{k: jnp.zeros(lengths, model.outputs[k][0] or np.float64) for k in keep} for _ in range(2)]

    def once():  # as in sweep.run, two sets of block buffers are recycled (donated)
        for starts, _, _ in plan.blocks():
            starts = np.array(starts, dtype=np.int64)
            out = _engine._kernel(spare.pop(0), starts, sizes, theta, axes, params, (), pre, static=static)
            spare.append(out)
        jax.block_until_ready(out)

    once()
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return {"points": math.prod(dims), "seconds": min(times)}


def machine():
    import os
    import platform

    import jax

    devices = jax.devices()
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": f"{len(devices)} × {devices[0].device_kind}",
    }


def _roofline_grid(n_context: int, n_batch: int, **extra) -> dict:
    contexts, batches = grid_axes(n_context, n_batch)
    return {
        "profile": "roofline",
        "tp": 8,
        "outputs": ["tokens_per_watt"],
        "axes": {
            "gpu": ["H100", "B200"],
            "model": ["llama-3.1-70b"],
            "context": contexts.tolist(),
            "batch": batches.tolist(),
        },
        **extra,
    }


def bench_uncertainty(args):
    """Evaluations per second: plain first-principles run vs Monte Carlo in the kernel; Sobol' timing."""
    import sweep

    def best(fn):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    plain = _roofline_grid(100, 5000)  # 1e6 points
    plain_points = 2 * 100 * 5000
    sweep.run(plain)
    plain_s = best(lambda: sweep.run(plain))
    n_draws = args.mc_samples
    mc = _roofline_grid(10, 50, uncertainty={"method": "monte_carlo", "samples": n_draws})
    sweep.run(mc)
    mc_s = best(lambda: sweep.run(mc))
    mc_evals = 2 * 10 * 50 * n_draws
    names = [
        "B200.hbm_bandwidth_bytes_per_s",
        "B200.memory_bytes",
        "B200.fp16_flops",
        "B200.tdp_w",
        "gpu_memory_utilization",
        "reserve_bytes",
        "bandwidth_efficiency",
        "layer_overhead_s",
    ]
    sobol_grid = _roofline_grid(10, 10)
    sobol_grid["axes"]["gpu"] = ["B200"]
    sobol_grid["uncertainty"] = {
        "method": "monte_carlo",
        "parameters": {n: {"distribution": "uniform", "width": 0.2} for n in names},
    }
    t = time.perf_counter()
    sweep.sensitivity(sobol_grid, method="sobol", samples=2**14)
    sobol_first_s = time.perf_counter() - t
    sobol_s = best(lambda: sweep.sensitivity(sobol_grid, method="sobol", samples=2**14))
    return {
        "points": plain_points,
        "seconds": plain_s,
        "mc_evaluations": mc_evals,
        "mc_seconds": mc_s,
        "mc_draws": n_draws,
        "sobol_seconds": sobol_s,
        "sobol_first_seconds": sobol_first_s,
    }


def scale_grids(args) -> dict:
    """The grids of the scale section: calibrated (as (c)), dense-family first-principles, fleet."""
    short, many = grid_axes(100, 100)
    return {
        "calibrated": calibrated_grid(args),
        # 50 dense sizes × 5 GPUs × 4 TP = 1000 profile rows, × 100 contexts × 100 batches = 1e7 points
        "roofline": {
            "convention": "physical",
            "profile": "roofline",
            "axes": {
                "gpu": ["A100", "H100", "H200", "B200", "GB200"],
                "model": {"dense_params": {"start": 1e9, "stop": 1e12, "num": 50, "spacing": "geometric"}},
                "tp": [1, 2, 4, 8],
                "context": short.tolist(),
                "batch": many.tolist(),
            },
            "chunk_points": args.chunk_points,
        },
        # mixture of experts (issue #20): 2 GPUs × 4 MoE models × 2 TP × 2 EP = 32 profile rows,
        # × 100 contexts × 3125 batches = 1e7 points, batch-dependent expert traffic and sliding/chunked KV
        "moe": {
            "convention": "physical",
            "profile": "roofline",
            "axes": {
                "gpu": ["H100", "B200"],
                "model": ["qwen3-30b-a3b", "qwen3-235b-a22b", "llama-4-scout", "llama-4-maverick"],
                "tp": [4, 8],
                "expert_parallel": [1, 4],
                "context": short.tolist(),
                "batch": grid_axes(100, 3125)[1].tolist(),
            },
            "chunk_points": args.chunk_points,
        },
        # 2 GPUs × 3 workloads × 3 topologies × 16 b_short × 16 γ × 16 arrival rates = 73,728 points
        "fleet": {
            "convention": "physical",
            "profile": "roofline",
            "tp": 8,
            "outputs": ["fleet_tokens_per_watt"],
            "axes": {
                "gpu": ["H100", "B200"],
                "model": ["llama-3.1-70b"],
                "workload": ["azure", "lmsys", "agent_heavy"],
                "topology": ["homogeneous", "pool", "fleetopt"],
                "b_short": [512 * i for i in range(1, 17)],
                "gamma": np.linspace(1.0, 4.0, 16).tolist(),
                "arrival_rate": np.geomspace(10.0, 1e5, 16).tolist(),
            },
        },
    }


def bench_scale(args):
    """End-to-end sweep.run in one process, best of --repeat after a first (compiling) run: the
    calibrated grid of (c), the 1e7-point dense-family first-principles grid with its profile-table
    set-up (every dense size re-derived each run) and a fleet grid; and that table's set-up alone."""
    import sweep
    from sweep.grid import tables
    from sweep.grid.spec import parse

    out = {}
    for name, spec in scale_grids(args).items():
        times, points = [], 0
        for _ in range(args.repeat + 1):
            tables._DENSE_ENTRIES.clear()  # set-up included: no dense size cached from the last run
            t = time.perf_counter()
            ds = sweep.run(spec)
            times.append(time.perf_counter() - t)
            points = ds["fleet_tokens_per_watt" if "fleet_tokens_per_watt" in ds else "tokens_per_watt"].size
            del ds
        out[name] = {"points": points, "seconds": min(times[1:]), "first_s": times[0]}
        if name == "roofline":
            parsed, table_times = parse(spec), []
            for _ in range(args.repeat):
                tables._DENSE_ENTRIES.clear()
                t = time.perf_counter()
                table = tables.profile_table(parsed)
                table_times.append(time.perf_counter() - t)
            out["table"] = {"rows": len(next(iter(table.theta.values()))), "seconds": min(table_times)}
    return out


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


def _stream_lines(results: dict) -> list:
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


METHODS = {
    "python": bench_python,
    "scale": bench_scale,
    "uncertainty": bench_uncertainty,
    "numpy": bench_numpy,
    "sweep": bench_sweep,
    "kernel": bench_kernel,
    "sweep1": lambda args: bench_sweep(args, ["tokens_per_watt"]),
    "machine": lambda args: machine(),
    "stream_all": bench_stream_all,
    "stream_one": bench_stream_one,
    "memory_one": bench_memory_one,
}
# sweep_fresh: sweep.run with its buffer pool off, so every run writes into fresh memory
ENV = {"sweep_fresh": {"SWEEP_POOL_BYTES": "0"}}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contexts", type=int, default=1000, help="context values (default 1000)")
    parser.add_argument("--batches", type=int, default=5000, help="batch values 1..N (default 5000)")
    parser.add_argument("--python-points", type=int, default=100_000, help="sample for the Python loop")
    parser.add_argument("--repeat", type=int, default=3, help="runs of numpy and sweep; best is reported")
    parser.add_argument("--chunk-points", type=int, default=1 << 18, help="sweep chunk size (points)")
    parser.add_argument("--mc-samples", type=int, default=1024, help="Monte Carlo draws (default 1024)")
    parser.add_argument(
        "--only-uncertainty", action="store_true", help="only the Monte Carlo and Sobol' measurements"
    )
    parser.add_argument(
        "--only-scale",
        action="store_true",
        help="only the scale section: calibrated vs 1e7-point dense-family first-principles vs fleet rates",
    )
    parser.add_argument(
        "--only-stream",
        action="store_true",
        help="only the streamed runs: 2.5e8 points (every output, float64, NetCDF) and 1e9 points (one output, "
        "float32, Zarr) written to a scratch folder ($SWEEP_BENCH_SCRATCH, default the system's temporary "
        "folder; about 14 GB free needed), with peak RSS and the disk's write rate",
    )
    parser.add_argument("--method", choices=sorted(METHODS) + sorted(ENV), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.method:  # child process: one method, JSON on stdout
        result = METHODS[args.method.replace("_fresh", "")](args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    results = {}
    methods = (
        "machine",
        "python",
        "numpy",
        "sweep",
        "sweep_fresh",
        "kernel",
        "sweep1",
        "uncertainty",
        "scale",
        "stream_all",
        "stream_one",
        "memory_one",
    )
    only = [m for m, flag in (("uncertainty", args.only_uncertainty), ("scale", args.only_scale)) if flag]
    if only:
        methods = ("machine", *only)
    if args.only_stream:
        methods = ("stream_all", "stream_one", "memory_one")
    for method in methods:
        cmd = [sys.executable, __file__, "--method", method] + sys.argv[1:]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, check=True, env={**os.environ, **ENV.get(method, {})}
        )
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
    stream = {k: results.pop(k) for k in ("stream_all", "stream_one", "memory_one") if k in results}
    stream_lines = _stream_lines(stream) if "stream_all" in stream else []
    if args.only_stream:
        print("\n".join(stream_lines))
        return
    info = results.pop("machine")
    scale_lines = _scale_lines(results.pop("scale"), args) if "scale" in results else []
    if args.only_scale and not args.only_uncertainty:
        print("\n".join(scale_lines))
        return
    unc = results.pop("uncertainty")
    plain_rate, mc_rate = unc["points"] / unc["seconds"], unc["mc_evaluations"] / unc["mc_seconds"]
    uncertainty_lines = [
        f"first-principles tokens/W (roofline, H100/B200 × llama-3.1-70b TP8), best of {args.repeat}:",
        f"  plain sweep.run, 1e6 points:                 {plain_rate:>14,.0f} points/s",
        f"  Monte Carlo in the kernel, 1000 points × {unc['mc_draws']} draws: {mc_rate:>14,.0f} evaluations/s "
        f"({mc_rate / plain_rate:.0%} of the plain rate per evaluated point)",
        f"  Sobol' N = 2^14 base samples, 8 parameters, 100 grid points (1.64e7 evaluations): "
        f"{unc['sobol_seconds']:.1f} s ({unc['sobol_first_seconds']:.1f} s with compilation)",
    ]
    if args.only_uncertainty:
        print("\n".join(uncertainty_lines + scale_lines))
        return
    rate = {m: r["points"] / r["seconds"] for m, r in results.items()}
    n_sweep = results["sweep"]["points"]
    print(
        f"machine: {info['cpus']} CPUs ({info['processor']}); jax {info['jax']} on {info['backend']} "
        f"({info['device']})"
    )
    print(
        f"grid: {n_sweep:,} points (2 GPUs × {args.contexts} contexts × {args.batches} batches), float64, "
        f"all outputs; best of {args.repeat}"
    )
    print(f"{'method':<34}{'points/s':>14}{'time for grid':>16}{'peak RSS':>12}")
    rows = [
        (
            "(a) Python per-point loop*",
            rate["python"],
            n_sweep / rate["python"],
            results["python"]["peak_rss_mb"],
        ),
        (
            "(b) NumPy, materialised inputs",
            rate["numpy"],
            results["numpy"]["seconds"],
            results["numpy"]["peak_rss_mb"],
        ),
        (
            "    of which compute only",
            results["numpy"]["points"] / results["numpy"]["compute_s"],
            results["numpy"]["compute_s"],
            float("nan"),
        ),
        ("(c) sweep.run", rate["sweep"], results["sweep"]["seconds"], results["sweep"]["peak_rss_mb"]),
        (
            "    first run (with compilation)",
            n_sweep / results["sweep"]["first_s"],
            results["sweep"]["first_s"],
            float("nan"),
        ),
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
    for name, r, t, mem in rows:
        mem_s = f"{mem:,.0f} MB" if mem == mem else ""
        print(f"{name:<34}{r:>14,.0f}{t:>15.2f}s{mem_s:>12}")
    print(f"* extrapolated from {results['python']['points']:,} points")
    numpy_compute = results["numpy"]["points"] / results["numpy"]["compute_s"]
    print(
        f"sweep / NumPy: {rate['sweep'] / rate['numpy']:.1f}× (vs NumPy compute only: "
        f"{rate['sweep'] / numpy_compute:.1f}×); sweep / Python loop: {rate['sweep'] / rate['python']:,.0f}×"
    )
    print(
        f"kernel alone / NumPy compute only: {rate['kernel'] / numpy_compute:.1f}×; "
        f"output bytes per point: {results['sweep'].get('bytes_per_point', 0):.0f} "
        f"(the grid's outputs alone need {n_sweep * results['sweep'].get('bytes_per_point', 0) / 1e9:.2f} GB)"
    )
    print("\n".join(uncertainty_lines + scale_lines + stream_lines))


def _scale_lines(scale: dict, args) -> list:
    """The scale section's report: end-to-end rates, the first-principles / calibrated ratio, fleet."""
    rate = {k: scale[k]["points"] / scale[k]["seconds"] for k in ("calibrated", "roofline", "moe", "fleet")}
    ratio = rate["roofline"] / rate["calibrated"]
    moe_ratio = rate["moe"] / rate["calibrated"]
    lines = [
        f"scale: end-to-end sweep.run in one process, best of {args.repeat} (first run, with compilation):"
    ]
    for key, label in (
        ("calibrated", "(a) calibrated, 2 GPUs × contexts × batches"),
        ("roofline", "(b) first-principles, 50 dense sizes × 5 GPUs × 4 TP × 100 × 100"),
        ("moe", "(d) first-principles MoE, 2 GPUs × 4 MoE × 2 TP × 2 EP × 100 × 3125"),
        ("fleet", "(c) fleet, first-principles, 2 GPUs × 3 × 3 × 16 × 16 × 16"),
    ):
        r = scale[key]
        lines.append(
            f"  {label:<68}{r['points']:>11,} points {rate[key]:>14,.0f} points/s "
            f"({r['seconds']:.2f} s; first {r['first_s']:.1f} s)"
        )
    lines.append(
        f"  (b)/(a): {ratio:.0%} of the calibrated rate (target ≥ 40 %: {'met' if ratio >= 0.4 else 'NOT met'}); "
        f"(b)'s profile table alone: {scale['table']['rows']:,} rows in {scale['table']['seconds'] * 1e3:.0f} ms"
    )
    lines.append(
        f"  (d)/(a): {moe_ratio:.0%} of the calibrated rate (issue #20 target ≥ 40 %: "
        f"{'met' if moe_ratio >= 0.4 else 'NOT met'})"
    )
    return lines


if __name__ == "__main__":
    main()
