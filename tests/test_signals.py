"""Ctrl-C (SIGINT) and SIGTERM on `sweep` (sweep.io.signals), in every phase from the first instant: one line
that says whether the output is complete, exit 130/143, no traceback, no hang, no temporary file left.

The phases are reached with the test hook `SWEEP_TEST_PAUSE=<phase>` (sweep.io.progress.pause): the command
prints `sweep-test-pause: <phase>` and blocks there, the test then signals it (a SIGINT and a SIGTERM
process side by side). The first instant (imports) is reached by timing, a real compute and a large write
without a pause.
"""

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
from sweep.io import files, signals

ROOT = Path(__file__).resolve().parents[1]
SWEEP = Path(sys.executable).with_name("sweep")  # the console script a user runs
SIGNALS = (signal.SIGINT, signal.SIGTERM)
# ~1.3e6 points (every context within the model's 128K): 318 blocks of 4096 points streamed, or a CSV write
GRID = """
profile = "calibrated"
outputs = ["tokens_per_watt"]
chunk_points = {chunk}
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
context = {{ start = 1024, stop = {stop}, step = {step} }}
batch = [1, 2, 4, 8, 16, 32, 64, 128, 256, "max"]
"""
BIG = GRID.format(chunk=262144, stop=131072, step=1)
STREAMED_BIG = GRID.format(chunk=4096, stop=131072, step=1)
MEDIUM = GRID.format(chunk=1024, stop=131072, step=256)  # 5 blocks of 1024 points
SMALL = GRID.format(chunk=1024, stop=3072, step=1024)  # 30 points, one block
NETCDF_IN_MEMORY = ["--uncertainty", "--samples", "8"]  # written by write_atomic (an in-memory result)


class Sweep:
    """A `sweep` subprocess in `folder` (its grid.toml and the old target), optionally paused at `pause`."""

    def __init__(self, folder: Path, args, grid: str = SMALL, target: str = "out.nc", pause=None):
        folder.mkdir()
        (folder / "grid.toml").write_text(grid)
        (folder / target).write_text("old")
        self.folder, self.target, self.pause = folder, folder / target, pause
        env = {k: v for k, v in os.environ.items() if k != "SWEEP_TEST_PAUSE"}
        env.update({"SWEEP_TEST_PAUSE": pause} if pause else {})
        argv = [str(SWEEP)] if SWEEP.exists() else [sys.executable, "-m", "sweep"]
        args = [str(self.target) if a == "TARGET" else a for a in args]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv + args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for pipe in (self.proc.stdout, self.proc.stderr):
            os.set_blocking(pipe.fileno(), False)
        self.out = self.err = b""

    def read(self) -> None:
        self.out += self.proc.stdout.read() or b""
        self.err += self.proc.stderr.read() or b""

    def wait_for(self, ready, what: str, timeout: float = 120, poll: float = 0.01) -> None:
        """Poll until `ready(self)`; fail if the command ends first (a busy machine: generous timeout)."""
        deadline = time.monotonic() + timeout
        while not ready(self):
            self.read()
            assert self.proc.poll() is None, f"sweep ended before {what}: {self.err.decode()}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(poll)

    def paused(self) -> None:
        self.wait_for(
            lambda s: f"sweep-test-pause: {self.pause}\n".encode() in s.out, f"the {self.pause} pause"
        )

    def interrupt(self, sig) -> str:
        """Send `sig`; check exit 128 + sig within 5 s and one stderr line, no traceback; return the line."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=20)
        finally:
            self.proc.kill()
        took = time.monotonic() - sent
        for pipe in (self.proc.stdout, self.proc.stderr):
            os.set_blocking(pipe.fileno(), True)
        self.read()
        err = self.err.decode()
        lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "pt/s" not in line]
        assert code == 128 + sig, err
        assert took < 5.0
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith("sweep: interrupted"), err
        return lines[0]

    def names(self) -> list:
        """The folder's files; no temporary file (`.sweep-*`) may be among them."""
        return sorted(p.name for p in self.folder.iterdir())


def pair(tmp_path, args, **kwargs) -> dict:
    """A SIGINT and a SIGTERM `sweep` process, started together."""
    return {sig: Sweep(tmp_path / sig.name, args, **kwargs) for sig in SIGNALS}


def installed(run: Sweep) -> bool:
    """True once the command's SIGTERM handler is installed (read from /proc)."""
    try:
        status = Path(f"/proc/{run.proc.pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def blocks_saved(log: Path) -> int:
    """The blocks recorded in a streamed run's log (after its key line; a torn last line does not count)."""
    return sum(line.isdigit() for line in log.read_text().split("\n")[1:-1]) if log.exists() else 0


def test_import_of_the_cli_imports_nothing_heavy_before_main_installs_the_handlers():
    code = "import sys, sweep.cli; print(sorted({'numpy', 'xarray', 'pandas', 'jax'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize(
    "args, delay",
    [
        (["run", "grid.toml", "-o", "TARGET"], 0.0),  # as soon as the handlers are installed: imports
        (["run", "grid.toml", "-o", "TARGET"], 0.05),
        (["run", "grid.toml", "-o", "TARGET"], 0.3),  # parsed; the worker imports JAX
        (["--help"], 0.0),  # build_parser imports the subcommand modules
    ],
    ids=["run-at-install", "run-at-0.05s", "run-at-0.3s", "help-at-install"],
)
def test_signal_in_the_first_instant_ends_with_one_line_and_nothing_written(tmp_path, args, delay):
    # Before the handlers are installed (Python's own start-up, ~35 ms) no sweep code runs: signal after that.
    for sig in SIGNALS:  # one after the other: each is signalled in its first instant
        run = Sweep(tmp_path / sig.name, args)
        run.wait_for(
            lambda r: installed(r) and time.monotonic() >= r.started + delay, "the handlers", poll=0.001
        )
        if args == ["--help"]:  # the handlers come before anything heavy (numpy: ~0.5 s of imports)
            assert "/numpy/" not in Path(f"/proc/{run.proc.pid}/maps").read_text()
        line = run.interrupt(sig)
        assert re.fullmatch(
            rf"sweep: interrupted; (nothing written|{re.escape(str(run.target))} unchanged)", line
        )
        assert run.target.read_text() == "old"
        assert run.names() == ["grid.toml", "out.nc"]


def test_signal_after_the_arguments_are_parsed_says_the_target_is_unchanged(tmp_path):
    runs = pair(tmp_path, ["run", "grid.toml", "-o", "TARGET"], pause="parse")
    for sig, run in runs.items():
        run.paused()
        assert run.interrupt(sig) == f"sweep: interrupted; {run.target} unchanged"
        assert run.target.read_text() == "old"
        assert run.names() == ["grid.toml", "out.nc"]


def test_signal_during_compute_says_the_target_is_unchanged_and_what_is_saved(tmp_path):
    target = "out.nc"  # streamed to out.nc.partial (an in-memory run says "unchanged" alone)
    runs = pair(tmp_path, ["run", "grid.toml", "-o", "TARGET"], grid=MEDIUM, target=target, pause="compute")
    for sig, run in runs.items():
        run.paused()  # after the first block; more are in flight
        line = run.interrupt(sig)
        assert run.target.read_text() == "old"
        partial = f"{run.target}.partial"
        saved = int(
            re.fullmatch(
                rf"sweep: interrupted; {re.escape(str(run.target))} unchanged; (\d) of 5 blocks saved in "
                rf"{re.escape(partial)}; run the same command with --resume to finish",
                line,
            )[1]
        )
        assert saved == blocks_saved(run.folder / "out.nc.partial.done-0") >= 1  # what --resume skips
        assert run.names() == ["grid.toml", target, "out.nc.partial", "out.nc.partial.done-0"]


@pytest.mark.parametrize(
    "phase, complete",
    [
        ("write", False),  # the temporary file exists, the NetCDF write starts
        ("rename", False),  # the temporary file is written, not yet renamed onto the target
        ("renamed", True),  # the target is replaced, the command still runs
    ],
)
def test_signal_around_the_netcdf_write_says_whether_the_target_is_complete(tmp_path, phase, complete):
    runs = pair(tmp_path, ["run", "grid.toml", "-o", "TARGET", "-q", *NETCDF_IN_MEMORY], pause=phase)
    for sig, run in runs.items():
        run.paused()
        if phase != "renamed":
            assert any(name.startswith(".sweep-") for name in run.names())
        line = run.interrupt(sig)
        assert line == f"sweep: interrupted; {run.target} {'is complete' if complete else 'unchanged'}"
        assert run.names() == ["grid.toml", "out.nc"]  # no temporary file left
        if complete:
            with xr.open_dataset(run.target) as ds:
                assert ds.tokens_per_watt_mean.size == 30 and np.isfinite(ds.tokens_per_watt_mean).all()
        else:
            assert run.target.read_text() == "old"


def test_signal_after_a_streamed_run_renamed_its_partial_says_the_target_is_complete(tmp_path):
    runs = pair(tmp_path, ["run", "grid.toml", "-o", "TARGET"], pause="done")  # before the summary
    for sig, run in runs.items():
        run.paused()
        assert run.interrupt(sig) == f"sweep: interrupted; {run.target} is complete"
        assert run.names() == ["grid.toml", "out.nc"]  # no partial, no log
        with xr.open_dataset(run.target) as ds:
            assert ds.tokens_per_watt.size == 30 and np.isfinite(ds.tokens_per_watt).all()


def test_status_says_complete_once_the_target_is_replaced_and_unchanged_before(tmp_path, monkeypatch):
    """The handler's line (sweep.io.signals.status): a streamed run's rename is seen from the target itself."""
    target = tmp_path / "out.nc"
    target.write_text("old")
    monkeypatch.setattr(signals, "state", {})
    signals.set_target(str(target))
    assert signals.status(set()) == f"; {target} unchanged"
    (tmp_path / "new").write_text("new")
    os.replace(tmp_path / "new", target)
    assert signals.status(set()) == f"; {target} is complete"
    signals.set_target(None)
    assert signals.status(set()) == "; nothing written"
    assert signals.status({"a.png", "b.nc"}) == "; a.png, b.nc complete"


def test_pause_hook_is_inert_unless_its_variable_names_the_phase(tmp_path, monkeypatch, capfd):
    from sweep.io.progress import pause

    monkeypatch.delenv("SWEEP_TEST_PAUSE", raising=False)
    pause("write")
    monkeypatch.setenv("SWEEP_TEST_PAUSE", "parse")  # another phase: write_atomic passes its three hooks
    files.write_atomic(tmp_path / "out.txt", lambda tmp: Path(tmp).write_text("new"))
    assert (tmp_path / "out.txt").read_text() == "new"
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize(
    "phase",
    [
        "compute",  # real blocks streamed to out.nc.partial, unpaused: saved, the run can be resumed
        "write",  # an in-memory result (1.3e6 rows of CSV) in the middle of its write, unpaused
    ],
)
def test_ctrl_c_in_an_unpaused_run_ends_with_one_line_and_target_unchanged(tmp_path, phase):
    sig = signal.SIGINT
    target, grid = ("out.csv", BIG) if phase == "write" else ("out.nc", STREAMED_BIG)
    run = Sweep(tmp_path / "run", ["run", "grid.toml", "-o", "TARGET"], grid=grid, target=target)
    log = run.folder / "out.nc.partial.done-0"
    run.wait_for(
        lambda r: (
            blocks_saved(log) >= 2 if phase == "compute" else any(n.startswith(".sweep-") for n in r.names())
        ),
        f"the {phase} phase",
    )
    line = run.interrupt(sig)
    assert run.target.read_text() == "old"
    if phase == "write":
        assert line == f"sweep: interrupted; {run.target} unchanged"
        assert run.names() == ["grid.toml", target]
        return
    assert line == (
        f"sweep: interrupted; {run.target} unchanged; {blocks_saved(log)} of 318 blocks saved in "
        f"{run.target}.partial; run the same command with --resume to finish"
    )
    assert run.names() == ["grid.toml", target, "out.nc.partial", log.name]
    resumed = subprocess.run(  # --resume finishes it: the data equal an uninterrupted run
        [sys.executable, "-m", "sweep", "run", "grid.toml", "-o", str(run.target), "--resume", "-q"],
        cwd=run.folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    with xr.open_dataset(run.target) as ds:
        expected = sweep.run(run.folder / "grid.toml").tokens_per_watt.values
        np.testing.assert_array_equal(ds.tokens_per_watt.values, expected)
    assert run.names() == ["grid.toml", target]
