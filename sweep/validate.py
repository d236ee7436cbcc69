"""The checks every number entering sweep goes through (grid values and ranges, inline profiles,
GPU/model catalogs, imported configs, workload CDFs).

Each failure is one `SweepInputError` line: "<where>: <key>: <what is wrong>; allowed: <what>".
"""

from __future__ import annotations

import math

from sweep.errors import InvalidValueError, MissingFieldError

MAX_AXIS_VALUES = 10**7  # values one range may expand to (checked before expanding)
MIN_CHUNK_POINTS = 1024  # smaller chunks only add per-call overhead

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


def number(where: str, key: str, v, rule: str = "finite", integer: bool = False):
    """Check that `v` is a finite number obeying `rule` (and whole when `integer`); return it."""
    test, allowed = RULES[rule]
    if integer:
        allowed = allowed.replace("numbers", "integers")
    if not is_number(v) or not finite(v):
        fail(where, key, f"got {v!r}", allowed)
    if not test(v) or (integer and not float(v).is_integer()):
        fail(where, key, f"got {v!r}", allowed)
    return v


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
