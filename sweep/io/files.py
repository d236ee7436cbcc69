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
from sweep.io.progress import pause

HOST = socket.gethostname()
TEMP_NAME = re.compile(r"^\.sweep-(\d+)@(.+)\.[^.]+\.tmp$")
ACTIVE: dict = {}  # temporary file -> target, while it is written (read by the CLI's signal handler)
WRITTEN: set = set()  # targets replaced by this process
# held while a temporary file is renamed onto its target; a signal handler takes it for good (no rename after)
REPLACING = threading.Lock()
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

    Anything else at the path (directory, device, FIFO, socket), a missing or unwritable folder, or `-`
    (standard output: see `write_text`), is a `SweepInputError`.
    """
    path = os.fspath(path)
    if is_stdout(path):
        raise SweepInputError(
            "-: cannot write output: '-' is standard output, which takes only text outputs (CSV, TOML); "
            "allowed: a file name"
        )
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


def discard_active(folders=()) -> set:
    """Remove every temporary file being written, and any other of this process in `folders` (for a signal
    handler: one created but not yet in ACTIVE); return the targets already replaced (their file was renamed)."""
    replaced = set(WRITTEN)
    for tmp, target in list(ACTIVE.items()):
        if discard(tmp):
            ACTIVE.pop(tmp, None)  # a second call does not take it for renamed
        else:
            replaced.add(target)
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        own = [n for n in names if (m := TEMP_NAME.match(n)) and m[1] == str(os.getpid()) and m[2] == HOST]
        for name in own:
            discard(os.path.join(folder, name))
    return replaced


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
        pause("write")  # test hooks (sweep.io.progress.pause): inert unless SWEEP_TEST_PAUSE is set
        _in_thread(write, tmp)
        resolve_target(path)  # still a regular file or absent
        pause("rename")
        with REPLACING:
            os.replace(tmp, real)
            WRITTEN.add(path)
        pause("renamed")
    except (OSError, RuntimeError) as exc:
        raise SweepInputError(f"{path}: cannot write output: {_cause(exc, folder)}") from None
    finally:
        discard(tmp)
        ACTIVE.pop(tmp, None)


# ----------------------------------------------------------------------------------------------------
# output names: never one of the inputs; `-o -` is standard output (text outputs only)

STDOUT = "-"  # the output name that means standard output
CONTENT = {"stream": None}  # where `-o -` content goes while the CLI sends its other lines to stderr


def is_stdout(path) -> bool:
    """True where an output path is `-`: standard output."""
    return path is not None and os.fspath(path) == STDOUT


def _clash(out: str, path: str, partial: bool) -> str | None:
    """How writing `out` (and, with `partial`, `<out>.partial*`) would replace or write into `path`."""
    real, given = os.path.realpath(out), os.path.realpath(path)
    try:
        same = os.path.samefile(out, path)  # also a hard link
    except OSError:
        same = real == given
    if same:
        return "is also an input"
    if given.startswith(real + os.sep):
        return "would replace a folder that holds an input"
    if real.startswith(given + os.sep):
        return "lies inside an input"
    if partial and given.startswith(real + ".partial"):
        return f"its partial output {real}.partial (of a streamed run) would replace an input"
    return None


def check_not_an_input(out, inputs, key: str = "-o", partial: bool = False) -> None:
    """Refuse an output `out` that would replace (or write into) one of the command's `inputs`.

    `inputs`: (path, description) pairs, the description as the message names the file ("the grid file
    g.toml"). Symlinks are resolved and hard links compared by inode; an input inside a folder output
    (a Zarr store) or a folder input holding the output clash too; `partial`: also `<out>.partial` (a
    streamed run's data until it completes). Nothing is written: call it before any work.
    """
    if out is None or is_stdout(out):
        return
    out = os.fspath(out).rstrip("/") or "/"
    for path, description in inputs:
        how = _clash(out, os.fspath(path), partial)
        if how:
            raise SweepInputError(f"{out}: {key}: {how} ({description}); allowed: a new file name")


def content_stream():
    """Where `-o -` content goes: standard output (the real one while the CLI redirects its prints)."""
    import sys

    return CONTENT["stream"] or sys.stdout


def content_to_stdout():
    """A context for a command run with `-o -`: content written with `write_text("-", …)` (or to
    `content_stream()`) goes to standard output, every `print` of the command to stderr."""
    import contextlib
    import sys

    @contextlib.contextmanager
    def redirected():
        CONTENT["stream"] = sys.stdout
        try:
            with contextlib.redirect_stdout(sys.stderr):
                yield
        finally:
            CONTENT["stream"] = None

    return redirected()


def write_text(path, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8), or to standard output where `path` is `-`."""
    if is_stdout(path):
        stream = content_stream()
        stream.write(text)
        stream.flush()
        return

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomic(path, write)
