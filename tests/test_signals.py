"""Ctrl-C (SIGINT) and SIGTERM on `sweep run` (sweep.signals): one line, exit 130/143, no hang, target unchanged."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ~1e7 points: compute ~1-2 s (longer with small chunks), an 80 MB NetCDF write
GRID = """
profile = "calibrated"
outputs = ["tokens_per_watt"]
chunk_points = {chunk}
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
context = {{ start = 1024, stop = 1000000, step = 1 }}
batch = [1, 2, 4, 8, 16, 32, 64, 128, 256, "max"]
"""


def handlers_installed(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize(
    "phase, sig",
    [
        ("setup", signal.SIGTERM),  # right after start: JAX is still being imported
        ("compute", signal.SIGINT),  # a progress line shows blocks done and blocks to go
        ("write", signal.SIGINT),  # the temporary file exists
        ("write", signal.SIGTERM),
    ],
)
def test_signal_ends_run_with_one_line_and_target_unchanged(tmp_path, phase, sig):
    grid, target = tmp_path / "grid.toml", tmp_path / "out.nc"
    grid.write_text(GRID.format(chunk=4096 if phase == "compute" else 262144))
    target.write_text("old")
    quiet = [] if phase == "compute" else ["-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep", "run", str(grid), "-o", str(target), *quiet],
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
                and re.search(rb"block (\d+)/(?!\1\b)\d+", err)
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
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "block " not in line]
    assert code == 128 + sig
    assert took < 2.0
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.fullmatch(rf"sweep: interrupted(; {re.escape(str(target))} unchanged)?", lines[0]), err
    if phase != "setup":
        assert lines[0].endswith("unchanged")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml", "out.nc"]
