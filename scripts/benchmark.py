#!/usr/bin/env python
"""Speed of sweep against plain Python and plain NumPy on the same model and grid.

Sections (run all by default, or some with --only SECTION[,SECTION...]); each method runs in its
own subprocess so that the peak memory (max RSS) is its own:

  grid         three implementations of the calibrated tokens-per-watt model (concurrency →
               iteration time → logistic power → tokens/W, all six outputs, float64):
                 (a) python: a per-point loop of the same formulas (`math`), on a 1e5-point sample,
                     extrapolated;
                 (b) numpy:  whole-array NumPy over materialised per-point input arrays
                     (materialising timed separately from computing);
                 (c) sweep:  `sweep.run` on the full grid (≥ 1e7 points): one compiled kernel, chunked;
                     also its first run (with compilation), runs with the output-buffer pool off
                     (SWEEP_POOL_BYTES=0, fresh memory every run), the compiled kernel alone and
                     one output only.
  uncertainty  plain first-principles sweep.run vs Monte Carlo in the kernel; Sobol' timing.
  scale        end to end in one process: the calibrated grid of (c), a 1e7-point first-principles
               grid of the dense family (50 sizes × 5 GPUs × 4 TP × 100 contexts × 100 batches, its
               profile table built in each run), a MoE grid and a fleet grid's rate.
  stream       2.5e8 points (every output, float64, NetCDF) and 1e9 points (one output, float32,
               Zarr) streamed to a scratch folder ($SWEEP_BENCH_SCRATCH, default the system's
               temporary folder; about 14 GB free needed), with peak RSS and the disk's write rate.

Figures are wall-clock, best of --repeat runs. Absolute numbers drift between runs; the ratios
within one run are what count.

    python scripts/benchmark.py                 # 2 GPUs × 1000 contexts × 5000 batches = 1e7
    python scripts/benchmark.py --batches 10000 # 2e7 points
    python scripts/benchmark.py --only scale    # calibrated vs first-principles vs fleet rates
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scripts/: the bench package

from bench import instance, kernel, scale, stream, uncertainty  # noqa: E402
from bench.harness import machine, run_child  # noqa: E402

METHODS = {
    "python": instance.bench_python,
    "scale": scale.bench_scale,
    "uncertainty": uncertainty.bench_uncertainty,
    "numpy": instance.bench_numpy,
    "sweep": instance.bench_sweep,
    "kernel": kernel.bench_kernel,
    "sweep1": lambda args: instance.bench_sweep(args, ["tokens_per_watt"]),
    "machine": machine,
    "stream_all": stream.bench_stream_all,
    "stream_one": stream.bench_stream_one,
    "memory_one": stream.bench_memory_one,
}
# sweep_fresh: sweep.run with its buffer pool off, so every run writes into fresh memory
ENV = {"sweep_fresh": {"SWEEP_POOL_BYTES": "0"}}
# section → its methods, in the order they run and print
SECTIONS = {
    "grid": ("machine", "python", "numpy", "sweep", "sweep_fresh", "kernel", "sweep1"),
    "uncertainty": ("uncertainty",),
    "scale": ("scale",),
    "stream": ("stream_all", "stream_one", "memory_one"),
}


def _sections(text: str) -> list:
    """The comma-separated section names of --only, checked against SECTIONS."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SECTIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(bad) or repr(text)}; allowed: {', '.join(SECTIONS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    """The options: grid size, repeats, chunk size, Monte Carlo draws and which sections run."""
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
        "--only",
        type=_sections,
        metavar="SECTIONS",
        help=f"run only these sections, comma-separated: {', '.join(SECTIONS)} (default: all)",
    )
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
    return parser


def selected(args) -> list:
    """The sections to run: --only, else the --only-* flags (uncertainty and scale combine), else all."""
    if args.only:
        return [s for s in SECTIONS if s in args.only]
    if args.only_stream:
        return ["stream"]
    flags = [s for s, flag in (("uncertainty", args.only_uncertainty), ("scale", args.only_scale)) if flag]
    return flags or list(SECTIONS)


def report(results: dict, args) -> list:
    """The printed lines of the sections that ran, in section order."""
    lines = []
    if "sweep" in results:
        info = results.pop("machine")
        grid = {m: results[m] for m in SECTIONS["grid"] if m in results}
        lines += instance.grid_lines(grid, info, args)
    if "uncertainty" in results:
        lines += uncertainty.uncertainty_lines(results["uncertainty"], args)
    if "scale" in results:
        lines += scale.scale_lines(results["scale"], args)
    if "stream_all" in results:
        lines += stream.stream_lines({k: results[k] for k in SECTIONS["stream"]})
    return lines


def main(argv=None):
    """Run each selected method in a child process and print the report; or, as a child, one method."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.method:  # child process: one method, JSON on stdout
        result = METHODS[args.method.replace("_fresh", "")](args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    results = {}
    for section in selected(args):
        for method in SECTIONS[section]:
            results[method] = run_child(os.path.abspath(__file__), method, argv, ENV.get(method, {}))
    print("\n".join(report(results, args)))


if __name__ == "__main__":
    main()
