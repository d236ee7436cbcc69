"""Progress of a run on stderr: one line, rewritten in place, once a run takes over a second."""

from __future__ import annotations

import sys

OPEN_LINE = {"open": False}  # a progress line is on screen without its newline (a signal handler ends it)


def stderr_progress(stream=None):
    """A `progress(done_blocks, total_blocks, elapsed_s)` callable that writes to `stream` (stderr)."""
    stream = stream or sys.stderr
    last = {"s": 0.0}

    def progress(done, total, elapsed_s):
        if total == 1 or (elapsed_s < 1.0 and done < total):
            return
        if done < total and elapsed_s - last["s"] < 0.5:
            return
        last["s"] = elapsed_s
        OPEN_LINE["open"] = done < total
        end = "\n" if done == total else ""
        stream.write(f"\r  block {done}/{total} ({100 * done / total:.0f} %), {elapsed_s:.1f} s{end}")
        stream.flush()

    return progress


def as_progress(progress):
    """The `progress` argument of `sweep.run`: True (a line on stderr), False or None (nothing), or a
    callable `progress(done_blocks, total_blocks, elapsed_s)`."""
    from sweep.errors import SweepInputError

    if progress is True:
        return stderr_progress()
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    raise SweepInputError(f"progress: got {progress!r}; allowed: True, False, None or a callable")
