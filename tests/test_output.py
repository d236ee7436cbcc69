"""Output files (sweep.io.files via sweep.io.output): regular files only, temporary files, disk full, interrupts."""

import _thread
import errno
import faulthandler
import os
import socket
import stat
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import sweep.io.files as files
from sweep.cli import main
from sweep.errors import SweepInputError
from sweep.io.output import write_netcdf


def temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".sweep-"))


def small():
    return xr.Dataset({"x": ("i", np.arange(3.0))})


def make_socket(path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    return s


@pytest.mark.parametrize(
    "make, kind",
    [
        (lambda p: p.mkdir(), "a directory"),
        (lambda p: os.mkfifo(p), "a FIFO"),
        (make_socket, "a socket"),
        (lambda p: p.symlink_to("/dev/null"), "a character device"),
    ],
)
def test_only_regular_files_are_replaced(tmp_path, capsys, make, kind, small_grid):
    target = tmp_path / "out.nc"
    keep = make(target)
    before = os.lstat(target)
    assert main(["run", small_grid, "-o", str(target), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sweep: error: {target}") and f"it is {kind}" in err
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert temps(tmp_path) == []
    if keep is not None:
        keep.close()


def test_symlink_is_written_through_to_a_regular_file(tmp_path, small_grid):
    import sweep

    real, link, dangling = tmp_path / "real.nc", tmp_path / "link.nc", tmp_path / "new-link.nc"
    real.write_text("old")
    link.symlink_to(real)
    dangling.symlink_to(tmp_path / "created.nc")
    sweep.run(small_grid, out=link)
    sweep.run(small_grid, out=dangling)
    assert link.is_symlink() and dangling.is_symlink()
    for path in (real, tmp_path / "created.nc"):
        assert xr.open_dataset(path).tokens_per_watt.size == 2
    assert temps(tmp_path) == []


def test_target_is_checked_again_at_write_time(tmp_path, monkeypatch):
    target = tmp_path / "out.nc"

    def swap_in_fifo(self, path, **kw):  # something else takes the target's place during the write
        open(path, "w").write("partial")
        os.mkfifo(target)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", swap_in_fifo)
    with pytest.raises(SweepInputError, match=r"out\.nc: cannot write output: it is a FIFO"):
        write_netcdf(small(), target)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert temps(tmp_path) == []


@pytest.mark.parametrize(
    "error, free, cause",
    [
        (RuntimeError("NetCDF: HDF error"), 0, "no space left on device"),  # what netCDF4 raises on ENOSPC
        (OSError(errno.ENOSPC, "No space left on device"), 1 << 40, "no space left on device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 1 << 40, "disk quota exceeded"),
        (PermissionError(errno.EACCES, "Permission denied"), 1 << 40, "permission denied"),
    ],
)
def test_write_errors_exit_2_with_one_line_and_keep_the_old_file(
    tmp_path, monkeypatch, capsys, error, free, cause, small_grid
):
    target = tmp_path / "out.nc"
    target.write_text("old")
    seen = []

    def fail(self, path, **kw):
        seen.append(os.path.basename(path))
        open(path, "w").write("partial")
        raise error

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fail)
    monkeypatch.setattr(files, "_free_bytes", lambda folder: free)
    assert main(["run", small_grid, "-o", str(target), "-q"]) == 2
    assert capsys.readouterr().err == f"sweep: error: {target}: cannot write output: {cause}\n"
    assert target.read_text() == "old"
    assert temps(tmp_path) == []
    assert seen == ["out.nc.partial"]  # streamed: the partial output, removed (no block was saved)
    names = sorted(p.name for p in tmp_path.iterdir())

    # an in-memory result (a CSV table) goes through a temporary file that names its writer
    def fail_csv(self, f, **kw):
        seen.append(os.path.basename(f.name))
        f.write("partial")
        raise error

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail_csv)
    assert main(["run", small_grid, "-o", str(tmp_path / "out.csv"), "-q"]) == 2
    assert capsys.readouterr().err == f"sweep: error: {tmp_path / 'out.csv'}: cannot write output: {cause}\n"
    match = files.TEMP_NAME.match(seen[-1])
    assert match and (int(match[1]), match[2]) == (os.getpid(), files.HOST)
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_stale_temporary_files_of_dead_runs_are_removed(tmp_path, capsys, small_grid):
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "60"])
    try:
        stale = tmp_path / f".sweep-{dead.pid}@{files.HOST}.abc123.tmp"
        running = tmp_path / f".sweep-{live.pid}@{files.HOST}.def456.tmp"
        elsewhere = tmp_path / f".sweep-{dead.pid}@another-host.ghi789.tmp"
        for path in (stale, running, elsewhere):
            path.write_text("partial")
        assert main(["run", small_grid, "-o", str(tmp_path / "out.nc"), "-q"]) == 0
        err = capsys.readouterr().err
        assert err == (
            f"sweep: warning: removed 1 temporary file(s) left in {tmp_path} by killed sweep runs: "
            f"{stale.name}\n"
        )
        assert temps(tmp_path) == sorted([running.name, elsewhere.name])
        assert (tmp_path / "out.nc").exists()
    finally:
        live.kill()
        live.wait()


def test_keyboard_interrupt_during_a_real_write_neither_hangs_nor_leaves_files(tmp_path):
    target = tmp_path / "out.nc"
    target.write_text("old")
    ds = xr.Dataset({"x": ("i", np.random.default_rng(0).random(6_000_000))})
    sent = {}

    def interrupt_when_writing():  # once NetCDF has written into the temporary file
        while not any((tmp_path / name).stat().st_size for name in temps(tmp_path)):
            time.sleep(0.002)
        sent["at"] = time.perf_counter()
        _thread.interrupt_main()

    watcher = threading.Thread(target=interrupt_when_writing)
    watcher.start()
    faulthandler.dump_traceback_later(60, exit=True)  # a hang fails the run instead of blocking it
    try:
        with pytest.raises(KeyboardInterrupt):
            write_netcdf(ds, target)
        waited = time.perf_counter() - sent["at"]
    finally:
        faulthandler.cancel_dump_traceback_later()
        watcher.join()
    assert waited < 1.0
    assert target.read_text() == "old"
    assert temps(tmp_path) == []
    for thread in threading.enumerate():  # the abandoned writer finishes and leaves nothing behind
        if thread.name == "sweep-write":
            thread.join()
    assert temps(tmp_path) == [] and files.ACTIVE == {}
