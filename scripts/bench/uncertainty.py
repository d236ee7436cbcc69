"""Uncertainty section: plain first-principles run vs Monte Carlo in the kernel; Sobol' timing."""

from __future__ import annotations

import time

from bench.harness import grid_axes, timed


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
        return min(timed(fn, args.repeat))

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


def uncertainty_lines(unc: dict, args) -> list:
    """The uncertainty section's report: plain and Monte Carlo rates, Sobol' seconds."""
    plain_rate, mc_rate = unc["points"] / unc["seconds"], unc["mc_evaluations"] / unc["mc_seconds"]
    return [
        f"first-principles tokens/W (roofline, H100/B200 × llama-3.1-70b TP8), best of {args.repeat}:",
        f"  plain sweep.run, 1e6 points:                 {plain_rate:>14,.0f} points/s",
        f"  Monte Carlo in the kernel, 1000 points × {unc['mc_draws']} draws: {mc_rate:>14,.0f} evaluations/s "
        f"({mc_rate / plain_rate:.0%} of the plain rate per evaluated point)",
        f"  Sobol' N = 2^14 base samples, 8 parameters, 100 grid points (1.64e7 evaluations): "
        f"{unc['sobol_seconds']:.1f} s ({unc['sobol_first_seconds']:.1f} s with compilation)",
    ]
