"""The shared harness: grid axes, best-of timing, the machine record and one child process per method."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np


def grid_axes(n_context: int, n_batch: int):
    """Geometric contexts 1024..131072 and batches 1..n_batch, as every section uses them."""
    contexts = np.unique(np.round(np.geomspace(1024, 131072, n_context * 2)).astype(np.int64))
    contexts = contexts[np.linspace(0, contexts.size - 1, n_context).round().astype(int)]
    batches = np.arange(1, n_batch + 1, dtype=np.int64)
    return contexts, batches


def profiles():
    """The calibrated H100 and B200 × llama-3.1-70b profile values."""
    from sweep.catalogs.profiles import load_catalog

    cat = load_catalog()
    return [cat[("H100", "llama-3.1-70b")].profile_values(), cat[("B200", "llama-3.1-70b")].profile_values()]


def timed(fn, repeat: int) -> list:
    """Wall-clock seconds of `repeat` calls of fn (the caller takes the best, or the first)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def machine(args=None):
    """CPUs, processor, JAX version, backend and device."""
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


def run_child(script: str, method: str, argv: list, env: dict) -> dict:
    """Run one method in its own process (so that its peak RSS is its own); its JSON result."""
    cmd = [sys.executable, script, "--method", method] + argv
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **env})
    return json.loads(proc.stdout.strip().splitlines()[-1])
