"""The memory budget of an in-memory run: `max_memory` / `--max-memory` / `SWEEP_MAX_MEMORY`, default half of RAM.

A run whose results would not fit stops before computing, with one line: the estimate, the budget and
the advice to stream the grid to a file (`-o out.nc` or `out.zarr`).
"""

from __future__ import annotations

import os
import re

from sweep.errors import SweepInputError

UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12}
UNITS.update({"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40})
SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_bytes(text, where: str = "max_memory") -> int:
    """A size in bytes from a number or text such as '2GiB', '500 MB', '1e9' (decimal and binary units)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = SIZE.match(str(text))
        if not match or match[2].lower() not in UNITS:
            raise SweepInputError(
                f"{where}: cannot read size {text!r}; give bytes or a number with a unit "
                "(B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 8GiB"
            )
        value, unit = float(match[1]), match[2].lower()
    size = value * UNITS[unit]
    if not size > 0 or size != size:
        raise SweepInputError(f"{where}: the memory budget must be positive, got {text!r}")
    return int(size)


def physical_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def memory_budget(max_memory=None) -> tuple:
    """(bytes, how it was set): `max_memory`, else $SWEEP_MAX_MEMORY, else half of physical memory."""
    if max_memory is not None:
        return parse_bytes(max_memory), "max_memory"
    env = os.environ.get("SWEEP_MAX_MEMORY")
    if env:
        return parse_bytes(env, "SWEEP_MAX_MEMORY"), "SWEEP_MAX_MEMORY"
    return physical_memory_bytes() // 2, "half of RAM"


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def check_fits(estimate_bytes: int, max_memory=None, what: str = "the grid's results") -> None:
    """A one-line `SweepInputError` if `estimate_bytes` exceeds the memory budget."""
    budget, how = memory_budget(max_memory)
    if estimate_bytes > budget:
        raise SweepInputError(
            f"{what} need about {human(estimate_bytes)} in memory, over the budget of {human(budget)} ({how}; "
            "set --max-memory or SWEEP_MAX_MEMORY); pass an output path (-o out.nc or -o out.zarr) to stream "
            "the grid to disk instead"
        )
