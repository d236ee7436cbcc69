"""Ctrl-C (SIGINT) and SIGTERM on the command line: one line on stderr, no traceback, no hang, no partial file.

The command runs in a worker thread; the main thread only waits, so it answers a signal at once, in any
phase (imports, compute, NetCDF write). It removes the temporary files being written, prints
`sweep: interrupted; <target> unchanged` (a streamed run: after the block being written, and with how many
blocks are saved in its partial output and how to resume) and ends with `os._exit(128 + signal)` (130, 143) without waiting
for the worker, which may hold the NetCDF library's lock.
"""

from __future__ import annotations

import os
import signal
import threading

from sweep.io import files as _files
from sweep.io.progress import OPEN_LINE
from sweep.io.stream import STREAMING

SIGNALS = (signal.SIGINT, signal.SIGTERM)
state = {"target": None}  # the CLI's output file


def _interrupted(signum, frame):
    replaced = _files.discard_active()
    target = state["target"]
    note = f"; {target} unchanged" if target and target not in replaced else ""
    for stream in list(STREAMING.values()):  # a streamed run: let the block being written finish, then say
        stream.lock.acquire(timeout=30)  # what is saved (the partial is synced after every block)
        note += f"; {stream.saved()}"
    os.write(2, f"{chr(10) if OPEN_LINE['open'] else ''}sweep: interrupted{note}\n".encode())
    _files.discard_active()  # again: the worker may have opened its temporary file meanwhile
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
