#!/usr/bin/env bash
# The GPU check of issue #12, as one prepared script for a machine with an NVIDIA GPU:
#   1. the JAX backend and devices;
#   2. a grid evaluated on the GPU(s) and on the CPU: integer outputs equal, float64 outputs within 1e-12
#      (XLA's GPU and CPU libraries may round transcendental functions differently in the last bits);
#   3. the benchmark's scale and streaming sections on the GPU.
# Usage: bash scripts/gpu_check.sh [OUTDIR]   (needs `pip install -e . "jax[cuda12]"` in .venv first)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-outputs/gpu_check}
mkdir -p "$OUT"
"$PY" - <<'PYEOF' | tee "$OUT/devices.txt"
import jax
print("backend", jax.default_backend(), "devices", jax.devices())
assert jax.default_backend() == "gpu", "no GPU backend: install jax[cuda12]"
PYEOF
GRID='{"profile": "roofline", "convention": "physical", "elasticities": true,
       "axes": {"gpu": ["H100", "B200", "H200"], "model": ["llama-3.1-8b", "llama-3.1-70b", "dense-400b"],
                "tp": [1, 2, 4, 8], "context": [1024, 8192, 32768, 131072], "batch": [1, 8, 64, 256, "max"]}}'
"$PY" -c "import json, sys, sweep; sweep.run(json.loads(sys.argv[1]), out=sys.argv[2])" "$GRID" "$OUT/gpu.nc"
JAX_PLATFORMS=cpu "$PY" -c "import json, sys, sweep; sweep.run(json.loads(sys.argv[1]), out=sys.argv[2])" "$GRID" "$OUT/cpu.nc"
"$PY" - "$OUT" <<'PYEOF' | tee "$OUT/equality.txt"
import sys
import numpy as np, xarray as xr
gpu, cpu = (xr.open_dataset(f"{sys.argv[1]}/{n}.nc") for n in ("gpu", "cpu"))
worst = 0.0
for name in cpu.data_vars:
    a, b = gpu[name].values, cpu[name].values
    if a.dtype.kind in "iub":
        assert np.array_equal(a, b), f"{name}: integer outputs differ between GPU and CPU"
    elif a.dtype.kind == "f":
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{name}: NaN positions differ"
        ok = np.isfinite(b) & (b != 0)
        rel = np.max(np.abs(a[ok] / b[ok] - 1), initial=0.0)
        worst = max(worst, rel)
        assert rel < 1e-12, f"{name}: GPU/CPU relative difference {rel:.2e}"
print(f"GPU equals CPU: integer outputs exactly, float outputs within {worst:.1e} (relative)")
PYEOF
"$PY" scripts/benchmark.py --only-scale | tee "$OUT/scale.txt"
SWEEP_BENCH_SCRATCH=${SWEEP_BENCH_SCRATCH:-$OUT} "$PY" scripts/benchmark.py --only-stream | tee "$OUT/stream.txt"
