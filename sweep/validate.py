"""The checks every number entering sweep goes through (grid values and ranges, inline profiles,
GPU/model catalogs, imported configs, workload CDFs).

Each failure is one `SweepInputError` line: "<where>: <key>: <what is wrong>; allowed: <what>".
"""

from __future__ import annotations

import math

from sweep.errors import InvalidValueError, MissingFieldError

MAX_AXIS_VALUES = 10**7  # values one range may expand to (checked before expanding)
MIN_CHUNK_POINTS = 1024  # smaller chunks only add per-call overhead

# Upper bounds of grid counts, from what the engine computes exactly. It evaluates every grid value in
# float64 (integers exact up to 2^53), rounds counts to int64 in its floors (sweep.physics.intmath) and
# stores integer coordinates as int64 (< 2^63): a count up to 2^53 is exact everywhere.
MAX_COUNT = 2**53  # tokens (context, b_short, long_context, chunk), sequences (batch), GPUs, parameters
# the KV budget floors (budget bytes) // (KV bytes per token · block tokens) in int64: with blocks of at
# most 2^20 tokens the divisor stays below 2^63 for any KV row under 2^43 bytes per token
MAX_BLOCK_TOKENS = 2**20
MAX_BYTES = 2**53  # bytes taken from the KV budget (reserve_bytes): exact, and an int64 budget floor

# rule name -> (test on a finite number, allowed text)
RULES = {
    "finite": (lambda v: True, "finite numbers"),
    "positive": (lambda v: v > 0, "finite numbers > 0"),
    "nonnegative": (lambda v: v >= 0, "finite numbers >= 0"),
    "fraction": (lambda v: 0 < v <= 1, "numbers in (0, 1]"),
    "open_fraction": (lambda v: 0 < v < 1, "numbers in (0, 1)"),
    "unit": (lambda v: 0 <= v <= 1, "numbers in [0, 1]"),
    "flag": (lambda v: v in (0, 1), "0 or 1 (false or true)"),
    "at_least_one": (lambda v: v >= 1, "finite numbers >= 1"),
}


def fail(where: str, key: str, problem: str, allowed: str):
    """Raise the one-line input error."""
    raise InvalidValueError(f"{where}: {key}: {problem}; allowed: {allowed}")


def is_number(v) -> bool:
    """An int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def finite(v) -> bool:
    """A finite number (an int too large for a float is not)."""
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def number(where: str, key: str, v, rule: str = "finite", integer: bool = False, most=None):
    """Check that `v` is a finite number obeying `rule` (whole when `integer`, at most `most` when
    given); return it."""
    test, allowed = RULES[rule]
    if integer:
        allowed = allowed.replace("numbers", "integers")
    if most is not None:
        allowed += f", at most {bound_text(most)}"
    if not is_number(v) or not finite(v):
        fail(where, key, f"got {v!r}", allowed)
    if not test(v) or (integer and not float(v).is_integer()) or (most is not None and v > most):
        fail(where, key, f"got {v!r}", allowed)
    return v


def bound_text(most) -> str:
    """An upper bound as users read it: 2^53 = 9007199254740992 for a power of two, else the number."""
    if isinstance(most, int) and most > 1024 and most & (most - 1) == 0:
        return f"2^{most.bit_length() - 1} = {most}"
    return f"{most:g}" if isinstance(most, float) else str(most)


def ordered(where: str, pairs: dict) -> None:
    """Check that the values of `pairs` (key -> value, in order) do not decrease."""
    items = list(pairs.items())
    for (k1, v1), (k2, v2) in zip(items, items[1:]):
        if v1 > v2:
            fail(where, k2, f"{v2!r} is below {k1} = {v1!r}", f"{' <= '.join(pairs)}")


def range_size(where: str, key: str, count: float) -> int:
    """Check that a range of `count` values is small enough to expand; return it as an int."""
    if not count <= MAX_AXIS_VALUES:
        fail(
            where, key, f"the range has {count:.4g} values", f"at most {MAX_AXIS_VALUES:.0e} values per axis"
        )
    return int(count)


def distinct(where: str, key: str, values: list, canonical=lambda v: v) -> None:
    """Check that no two of `values` name the same thing after `canonical` (case, aliases)."""
    seen = {}
    for v in values:
        c = canonical(v)
        if c in seen:
            same = f"{seen[c]!r} and {v!r} are both {c!r}" if seen[c] != v else f"{v!r} is given twice"
            fail(where, key, f"duplicate values: {same}", "distinct values")
        seen[c] = v


def keys(where: str, given, allowed, required=(), *, what: str = "field") -> None:
    """Check that `given` names only `allowed` keys and every `required` one (one-line errors)."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidValueError(f"{where}: unknown {what}(s) {unknown}; allowed: {', '.join(allowed)}")
    missing = [k for k in required if k not in given]
    if missing:
        raise MissingFieldError(
            f"{where}: missing required {what}(s) {missing}; required: {', '.join(required)}"
        )
