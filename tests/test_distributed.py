"""Several devices and several processes give the same data as one (sweep.grid.engine, sweep.distributed)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

import sweep
from tests.test_stream import CHUNK, SPEC, assert_same_data, small_chunks

ROOT = Path(__file__).resolve().parents[1]

FOUR_DEVICES = """
import dataclasses, functools, json, sys
import jax, numpy as np
import sweep, sweep.api
from sweep.grid import spec as _grid
assert len(jax.local_devices()) == 4
spec = dataclasses.replace(_grid.parse(json.loads(sys.argv[1])), chunk_points=int(sys.argv[2]))
four = sweep.run(spec)
sweep.api.run_grid = functools.partial(sweep.api.run_grid, devices=jax.local_devices()[:1])
one = sweep.run(spec)
for name in one.data_vars:
    assert np.array_equal(one[name].values, four[name].values, equal_nan=True), name
print("identical", len(one.data_vars))
"""


def test_four_forced_cpu_devices_give_identical_results():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    args = [sys.executable, "-c", FOUR_DEVICES, json.dumps(SPEC), str(CHUNK)]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("identical")


WORKER = """
import dataclasses, json, sys
import jax
import sweep
from sweep.distributed import initialize
from sweep.grid import spec as _grid
initialize(sys.argv[4], 2, int(sys.argv[5]))
spec = dataclasses.replace(_grid.parse(json.loads(sys.argv[1])), chunk_points=int(sys.argv[2]))
calls = []
sweep.run(spec, out=sys.argv[3], distributed=True, progress=lambda *a: calls.append(a))
print("blocks", calls[-1][1])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_worker_processes_give_the_single_process_result(tmp_path):
    out = tmp_path / "out.zarr"
    coordinator = f"127.0.0.1:{free_port()}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(SPEC), str(CHUNK), str(out), coordinator, str(i)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    for w, (_, stderr) in zip(workers, outputs):
        assert w.returncode == 0, stderr[-3000:]
    shares = [int(stdout.split()[-1]) for stdout, _ in outputs]
    single = sweep.run(small_chunks())
    n_blocks = sweep.grid.engine.Plan.make((2, 1, 5, 5, 2), CHUNK).n_blocks
    assert sorted(shares) == [n_blocks // 2, n_blocks - n_blocks // 2]  # each process computed its share
    assert_same_data(sweep.io.stream.open_result(out), single)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    assert np.isfinite(single.tokens_per_watt.values).all()
