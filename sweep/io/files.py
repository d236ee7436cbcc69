"""Output files: only regular files are replaced, atomically, through temporary files that never outlive a run.

A write goes to `.sweep-<pid>@<host>.<random>.tmp` in the target's folder, then `os.replace`s the target.
The temporary file is removed on every exit path; one left by a killed run (its process is gone from this
host) is removed by the next write into that folder, with a `SweepWarning`.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import tempfile
import threading
import warnings

from sweep.errors import SweepInputError, SweepWarning

HOST = socket.gethostname()
TEMP_NAME = re.compile(r"^\.sweep-(\d+)@(.+)\.[^.]+\.tmp$")
ACTIVE: dict = {}  # temporary file -> target, while it is written (read by the CLI's signal handler)
WRITTEN: set = set()  # targets replaced by this process
KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def read_text(path, what: str) -> str:
    """The UTF-8 text of an input file (`what`: "grid file", "config file", …); a one-line
    `SweepInputError` naming the file and why it cannot be read otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data.decode("utf-8")
    except FileNotFoundError:
        reason = "no such file (it does not exist)"
    except IsADirectoryError:
        reason = "it is a directory"
    except PermissionError:
        reason = "permission denied"
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    raise SweepInputError(f"{path}: cannot read {what}: {reason}")


def resolve_target(path) -> str:
    """The regular file (new or existing) that writing `path` replaces; a symlink is written through.

    Anything else at the path (directory, device, FIFO, socket), a missing or unwritable folder, is a
    `SweepInputError`.
    """
    path = os.fspath(path)
    real = os.path.realpath(path)
    where = f"{path} (a link to {real})" if os.path.islink(path) else path
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise SweepInputError(f"{where}: cannot write output: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
        raise SweepInputError(f"{where}: cannot write output: it is {kind}; only regular files are replaced")
    check_folder(real, where)
    return real


def check_folder(real: str, where: str) -> None:
    """A `SweepInputError` naming `where` if the folder of the output `real` is missing or not writable."""
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise SweepInputError(f"{where}: cannot write output: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise SweepInputError(f"{where}: cannot write output: folder {folder} is not writable")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(folder) -> list:
    """Remove temporary files in `folder` whose writer, a process on this host, is gone; warn once."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in names:
        match = TEMP_NAME.match(name)
        if match and match[2] == HOST and not _alive(int(match[1])) and discard(os.path.join(folder, name)):
            removed.append(name)
    if removed:
        warnings.warn(
            f"removed {len(removed)} temporary file(s) left in {folder} by killed sweep runs: "
            + ", ".join(removed),
            SweepWarning,
            stacklevel=2,
        )
    return removed


def discard(path) -> bool:
    """Remove `path` if it exists; True if it did."""
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False


def discard_active() -> set:
    """Remove every temporary file being written (for a signal handler); return the targets already replaced."""
    return WRITTEN | {target for tmp, target in list(ACTIVE.items()) if not discard(tmp)}


def _free_bytes(folder) -> int:
    try:
        st = os.statvfs(folder)
    except OSError:
        return 1 << 62
    return st.f_bavail * st.f_frsize


def _cause(exc: Exception, folder: str) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or _free_bytes(folder) < 1 << 20:
        return "no space left on device"
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower()
    return str(exc)  # netCDF4 reports disk full and quota as RuntimeError("NetCDF: HDF error")


def _in_thread(write, tmp: str) -> None:
    """`write(tmp)` in a worker thread: an interrupt (KeyboardInterrupt) of the caller never waits for it."""
    box, cancelled = {}, threading.Event()

    def work():
        try:
            write(tmp)
        except BaseException as exc:  # noqa: BLE001 (handed to the caller)
            box["error"] = exc
        if cancelled.is_set():  # the caller gave up: leave nothing behind
            discard(tmp)

    worker = threading.Thread(target=work, name="sweep-write", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.05)
    except BaseException:
        cancelled.set()
        raise
    if "error" in box:
        raise box["error"]


def write_atomic(path, write) -> None:
    """Write `path` as `write(tmp)` into a temporary file in its folder, then rename it over `path`.

    On any failure or interrupt the temporary file is removed and `path` is unchanged. Disk full, quota and
    permission errors become a one-line `SweepInputError` naming the path and the cause.
    """
    path = os.fspath(path)
    real = resolve_target(path)
    folder = os.path.dirname(real)
    remove_stale_temps(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".sweep-{os.getpid()}@{HOST}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SweepInputError(f"{path}: cannot write output: {_cause(exc, folder)}") from None
    ACTIVE[tmp] = path
    try:
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        _in_thread(write, tmp)
        resolve_target(path)  # still a regular file or absent
        os.replace(tmp, real)
        WRITTEN.add(path)
    except (OSError, RuntimeError) as exc:
        raise SweepInputError(f"{path}: cannot write output: {_cause(exc, folder)}") from None
    finally:
        discard(tmp)
        ACTIVE.pop(tmp, None)
