"""Ctrl-C (SIGINT) and SIGTERM on the command line: one line on stderr, no traceback, no hang, no partial file.

The command runs in a worker thread; the main thread only waits, so it answers a signal at once, in any
phase (imports, parse, compute, NetCDF write, rename, summary). It removes the temporary files being
written, stops further renames, prints one line that says whether the output is complete,
`sweep: interrupted; <target> unchanged` or `sweep: interrupted; <target> is complete` (a streamed run:
after the block being written, with how many blocks are saved in its partial output and how to resume),
and ends with `os._exit(128 + signal)` (130, 143) without waiting for the worker, which may hold the
NetCDF library's lock.

Light on purpose (no numpy, xarray, JAX): `main()` imports it and installs the handlers before anything
heavy is imported, so a signal in the first instant of `sweep ...` also ends with one line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from sweep.io.progress import OPEN_LINE

SIGNALS = (signal.SIGINT, signal.SIGTERM)
state = {"target": None, "before": None}  # the CLI's output file and its identity before the command ran


def identity(path):
    """What changes when `path` is replaced (by a rename): device, inode, mtime; None if it is absent."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def set_target(path) -> None:
    """Record the command's output file `path` (or None) and its identity now, before the command runs."""
    state["target"], state["before"] = path, identity(path) if path else None


def _streams() -> list:
    """The streamed runs being written; none if sweep.io.stream (numpy, xarray) was never imported."""
    stream = sys.modules.get("sweep.io.stream")
    return list(getattr(stream, "STREAMING", {}).values())


def _discard_active() -> set:
    """`sweep.io.files.discard_active()` (also in the target's folder): the targets already replaced; nothing
    is written if that module was never imported."""
    files = sys.modules.get("sweep.io.files")
    target = state["target"]
    folders = [os.path.dirname(os.path.realpath(target))] if target else []
    return files.discard_active(folders) if files else set()


def status(replaced: set) -> str:
    """What the output is now: `; <target> unchanged`, `; <target> is complete` (replaced by this run), or
    without a target `; nothing written` or `; <files> complete`."""
    target = state["target"]
    if not target:
        return f"; {', '.join(sorted(replaced))} complete" if replaced else "; nothing written"
    now = identity(target)
    complete = target in replaced or (now is not None and now != state["before"])
    return f"; {target} {'is complete' if complete else 'unchanged'}"


def _interrupted(signum, frame):
    replaced = _discard_active()
    streams = _streams()
    for stream in streams:  # a streamed run: let the block being written finish (the partial is synced after
        stream.lock.acquire(timeout=30)  # every block); held from here on, so no more blocks nor the rename
    if files := sys.modules.get("sweep.io.files"):
        files.REPLACING.acquire(timeout=5)  # held from here on: no temporary file is renamed onto a target
    replaced |= _discard_active()  # again: the worker may have opened its temporary file meanwhile
    note = status(replaced)
    for stream in streams:
        if os.path.exists(stream.partial):  # else it was renamed onto the target: complete
            note += f"; {stream.saved()}"
    os.write(2, f"{chr(10) if OPEN_LINE['open'] else ''}sweep: interrupted{note}\n".encode())
    os._exit(128 + signum)


def install() -> dict:
    """Handle SIGINT and SIGTERM as above (main thread only); return the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, _interrupted) for s in SIGNALS}


def restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)


def run_in_worker(func):
    """`func()` in a worker thread while this thread waits for it (or a signal); its result or exception."""
    box = {}

    def work():
        try:
            box["result"] = func()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller)
            box["error"] = exc

    worker = threading.Thread(target=work, name="sweep-command", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["result"]
