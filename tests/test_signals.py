"""Ctrl-C (SIGINT) and SIGTERM on `sweep run` (sweep.io.signals): one line, exit 130/143, no hang, target unchanged."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sweep

ROOT = Path(__file__).resolve().parents[1]
# ~1.3e6 points (every context within the model's 128K): 318 blocks of 4096 points streamed, or a CSV write
GRID = """
profile = "calibrated"
outputs = ["tokens_per_watt"]
chunk_points = {chunk}
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
context = {{ start = 1024, stop = 131072, step = 1 }}
batch = [1, 2, 4, 8, 16, 32, 64, 128, 256, "max"]
"""


def handlers_installed(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def blocks_saved(log: Path) -> int:
    return max(0, len(log.read_text().split("\n")) - 2) if log.exists() else 0


@pytest.mark.parametrize(
    "phase, sig",
    [
        ("setup", signal.SIGTERM),  # right after start: JAX is still being imported
        ("compute", signal.SIGINT),  # streamed to out.nc.partial: blocks are saved, the run can be resumed
        ("write", signal.SIGINT),  # an in-memory result (CSV) is being written to a temporary file
        ("write", signal.SIGTERM),
    ],
)
def test_signal_ends_run_with_one_line_and_target_unchanged(tmp_path, phase, sig):
    grid, target = tmp_path / "grid.toml", tmp_path / ("out.csv" if phase == "write" else "out.nc")
    grid.write_text(GRID.format(chunk=4096 if phase == "compute" else 262144))
    target.write_text("old")
    log = tmp_path / "out.nc.partial.done-0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep", "run", str(grid), "-o", str(target)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.set_blocking(proc.stderr.fileno(), False)
    err, deadline = b"", time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            err += proc.stderr.read() or b""
            if (
                phase == "setup"
                and handlers_installed(proc.pid)
                or phase == "compute"
                and blocks_saved(log) >= 2
                or phase == "write"
                and any(p.name.startswith(".sweep-") for p in tmp_path.iterdir())
            ):
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"the run ended before the {phase} phase was seen"
        sent = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    os.set_blocking(proc.stderr.fileno(), True)
    err = (err + proc.stderr.read()).decode()
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "pt/s" not in line]
    assert code == 128 + sig
    assert took < 2.0
    assert len(lines) == 1 and "Traceback" not in err, err
    if phase == "compute":  # what is saved and how to finish
        saved = blocks_saved(log)
        assert lines[0] == (
            f"sweep: interrupted; {target} unchanged; {saved} of 318 blocks saved in {target}.partial; "
            "run the same command with --resume to finish"
        )
    else:
        assert re.fullmatch(rf"sweep: interrupted(; {re.escape(str(target))} unchanged)?", lines[0]), err
    if phase != "setup":
        assert "unchanged" in lines[0]
    assert target.read_text() == "old"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["grid.toml", target.name] + (["out.nc.partial", log.name] if phase == "compute" else [])
    if phase == "compute":  # --resume finishes it: the data equal an uninterrupted run
        resumed = subprocess.run(
            [sys.executable, "-m", "sweep", "run", str(grid), "-o", str(target), "--resume", "-q"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr
        with xr.open_dataset(target) as ds:
            np.testing.assert_array_equal(ds.tokens_per_watt.values, sweep.run(grid).tokens_per_watt.values)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml", target.name]
