"""Scale section: calibrated vs dense-family first-principles vs MoE vs fleet, end to end."""

from __future__ import annotations

import time

import numpy as np

from bench.harness import grid_axes
from bench.instance import calibrated_grid


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


def scale_lines(scale: dict, args) -> list:
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
