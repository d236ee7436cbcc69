"""Progress of a run on stderr: a tqdm bar through set-up, compile, blocks and write, for runs over 2 s
on a terminal (not in logs, pipes or captured output).

The bar counts grid points, so it shows done/total, points per second and the time left. A user's
own `progress(done_blocks, total_blocks, elapsed_s)` callable gets the blocks instead.
"""

from __future__ import annotations

import os
import sys
import threading

OPEN_LINE = {"open": False}  # a progress bar is on screen without its newline (a signal handler ends it)
DELAY_S = 2.0  # runs shorter than this show no bar
PAUSE = "SWEEP_TEST_PAUSE"  # test hook: the phase at which `pause` blocks (tests/test_signals.py)


def pause(phase: str) -> None:
    """Test hook, inert unless the environment variable SWEEP_TEST_PAUSE is `phase`: then print
    `sweep-test-pause: <phase>` on stdout and block this thread for good, so that a test can signal the
    process at exactly that point ("parse", "compute", "write", "rename", "renamed", "done")."""
    if os.environ.get(PAUSE) == phase:
        os.write(1, f"sweep-test-pause: {phase}\n".encode())
        threading.Event().wait()


class Bar:
    """A tqdm bar on `stream` (stderr) over the grid's points, with the stage as its description."""

    def __init__(self, stream=None):
        from tqdm import tqdm

        self.points = 0
        self.bar = tqdm(
            total=None,
            desc="set-up",
            unit="pt",
            unit_scale=True,
            delay=DELAY_S,
            file=stream or sys.stderr,
            leave=False,
            dynamic_ncols=True,
            disable=None,  # only on a terminal: no bar in logs, pipes or captured output
        )
        OPEN_LINE["open"] = True

    def stage(self, name: str, points: int | None = None) -> None:
        """Enter stage `name` ("compile", "write", …); `points`: the grid's size, when it is known."""
        if points is not None and points != self.points:
            self.points = points
            self.bar.reset(total=points)
        self.bar.set_description_str(name)

    def __call__(self, done: int, total: int, elapsed_s: float) -> None:
        if done == 1:
            self.bar.set_description_str("blocks")
        self.bar.update(round(self.points * done / total) - self.bar.n)
        pause("compute")  # test hook: a block is done, more are being computed

    def close(self) -> None:
        self.bar.close()
        OPEN_LINE["open"] = False


def as_progress(progress):
    """The `progress` argument of `sweep.run`: True (a bar on stderr), False or None (nothing), or a
    callable `progress(done_blocks, total_blocks, elapsed_s)`."""
    from sweep.errors import SweepInputError

    if progress is True:
        return Bar()
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    raise SweepInputError(f"progress: got {progress!r}; allowed: True, False, None or a callable")


def stage(progress, name: str, points: int | None = None) -> None:
    """Tell a progress bar which stage the run is in (a user's callable is not told)."""
    if isinstance(progress, Bar):
        progress.stage(name, points)


def close(progress) -> None:
    """End the bar: the run is over (its output, if any, written)."""
    if isinstance(progress, Bar):
        progress.close()
    pause("done")  # test hook: the output is complete, the command still runs (summary)
