"""Grid specifications: TOML files (or dicts) that name the axes of a sweep.

    title = "…"                      # optional
    convention = "paper"             # "paper" | "physical"
    profile = "calibrated"           # "calibrated" (catalog / inline) profiles
    elasticities = false             # add ∂ln(tokens_per_watt)/∂ln θ for every parameter θ
    dtype = "float64"                # or "float32" for huge grids
    chunk_points = 4194304           # grid points evaluated per compiled call (memory bound)
    mean_length_fraction = 0.5       # a scalar parameter … (L̄ = fraction × context)
    [axes]                           # … or an axis: every axis is a dimension of the result
    gpu = ["H100", "B200"]
    model = ["llama-3.1-70b"]
    context = { start = 2048, stop = 131072, spacing = "pow2" }
    batch = [1, 8, 64, "max"]
    [[profiles]]                     # optional inline calibrated profiles (catalog keys)

An axis is a list, or a range table: `{start, stop, step}` (linear, stop included when hit),
`{start, stop, num, spacing = "linear" | "geometric"}` or `{start, stop, spacing = "pow2"}`
(powers of two from start to stop, both powers of two).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field

import numpy as np

from sweep._errors import SweepInputError

CONVENTIONS = ("paper", "physical")
PROFILE_KINDS = ("calibrated",)
DTYPES = ("float64", "float32")
DEFAULT_CHUNK_POINTS = 1 << 22

# name -> (kind, default when not an axis, description)
AXES = {
    "gpu": ("categorical", None, "GPU SKU names"),
    "model": ("categorical", None, "model ids"),
    "context": ("positive_int", None, "context window C in tokens"),
    "batch": ("batch", "max", 'sequences in flight: positive integers or "max" (= n_max)'),
    "mean_length_fraction": ("fraction", 0.5, "mean sequence length in flight / context (paper 0.5)"),
    "load": ("fraction", 1.0, 'utilisation ρ when batch is "max": n = floor(ρ·n_max)'),
}
REQUIRED_AXES = ("gpu", "model", "context")
CORE_DIMS = ("gpu", "model", "context", "batch")
TOP_KEYS = ("title", "convention", "profile", "elasticities", "dtype", "chunk_points", "axes", "profiles")
BATCH_MAX = 0  # encoding of batch = "max" in the integer batch coordinate


@dataclass
class GridSpec:
    where: str  # file path or "<dict>", used in error messages
    axes: dict  # name -> list of values (only the swept/explicit ones; core dims always present)
    params: dict  # scalar parameters not swept
    title: str = "sweep grid"
    convention: str = "paper"
    profile: str = "calibrated"
    elasticities: bool = False
    dtype: str = "float64"
    chunk_points: int = DEFAULT_CHUNK_POINTS
    profiles: list = field(default_factory=list)  # inline profile tables
    raw: dict = field(default_factory=dict)  # the spec as given (recorded in the output)


def _fail(where: str, key: str, message: str):
    raise SweepInputError(f"{where}: {key}: {message}")


def expand_range(where: str, key: str, table: dict) -> list:
    """Expand a range table into a list of values (see module docstring)."""
    allowed = "start, stop and one of step | num (+ spacing linear|geometric) | spacing = 'pow2'"
    unknown = set(table) - {"start", "stop", "step", "num", "spacing"}
    if unknown or "start" not in table or "stop" not in table:
        _fail(where, key, f"range table needs {allowed}; got keys {sorted(table)}")
    start, stop = table["start"], table["stop"]
    for k in ("start", "stop"):
        if isinstance(table[k], bool) or not isinstance(table[k], (int, float)):
            _fail(where, f"{key}.{k}", f"must be a number, got {table[k]!r}")
    spacing = table.get("spacing", "linear")
    if spacing == "pow2":
        ok = all(isinstance(v, int) and v > 0 and v & (v - 1) == 0 for v in (start, stop))
        if not ok or stop < start:
            _fail(where, key, f"pow2 range needs integer powers of two start <= stop, got {start}..{stop}")
        return [1 << e for e in range(start.bit_length() - 1, stop.bit_length())]
    if "step" in table:
        step = table["step"]
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0 or stop < start:
            _fail(where, key, f"linear range needs step > 0 and start <= stop, got {table}")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        values = [start + i * step for i in range(count)]
        return [int(v) for v in values] if all(isinstance(v, int) for v in (start, step)) else values
    if "num" in table:
        num = table["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            _fail(where, f"{key}.num", f"must be a positive integer, got {num!r}")
        if spacing == "linear":
            return np.linspace(start, stop, num).tolist()
        if spacing == "geometric":
            if start <= 0 or stop <= 0:
                _fail(where, key, f"geometric range needs start, stop > 0, got {start}..{stop}")
            return np.geomspace(start, stop, num).tolist()
        _fail(where, f"{key}.spacing", f"unknown spacing {spacing!r}; allowed: linear, geometric, pow2")
    _fail(where, key, f"range table needs {allowed}")


def _validate_axis(where: str, name: str, values: list) -> list:
    kind = AXES[name][0]
    key = f"axes.{name}"
    if not values:
        _fail(where, key, "axis is empty; give at least one value")
    if kind == "categorical":
        if not all(isinstance(v, str) and v for v in values):
            _fail(where, key, f"values must be non-empty strings, got {values!r}")
    elif kind == "positive_int":
        for v in values:
            is_int = isinstance(v, int) or (isinstance(v, float) and v.is_integer())
            if isinstance(v, bool) or not is_int or v <= 0:
                _fail(where, key, f"values must be positive integers (tokens), got {v!r}")
        values = [int(v) for v in values]
    elif kind == "batch":
        for v in values:
            if v == "max":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                _fail(where, key, f'values must be positive integers or "max", got {v!r}')
        values = [BATCH_MAX if v == "max" else int(v) for v in values]
    elif kind == "fraction":
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                _fail(where, key, f"values must be numbers in (0, 1], got {v!r}")
        values = [float(v) for v in values]
    if len(set(values)) != len(values):
        _fail(where, key, f"values must be distinct, got {values!r}")
    return values


def parse(spec, where: str = "<dict>") -> GridSpec:
    """Validate a spec dict (as read from TOML) into a `GridSpec`."""
    if not isinstance(spec, dict):
        raise SweepInputError(f"{where}: a grid spec must be a table/dict, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(TOP_KEYS) - set(AXES))
    if unknown:
        raise SweepInputError(
            f"{where}: unknown key(s) {unknown}; allowed keys: {', '.join(TOP_KEYS + tuple(AXES))}"
        )
    axes_in = spec.get("axes", {})
    if not isinstance(axes_in, dict):
        _fail(where, "axes", "must be a table of axis name = list or range")
    bad_axes = sorted(set(axes_in) - set(AXES))
    if bad_axes:
        _fail(where, "axes", f"unknown axis {bad_axes}; allowed axes: {', '.join(AXES)}")
    axes, params = {}, {}
    for name, (_, default, _) in AXES.items():
        if name in axes_in and name in spec:
            _fail(where, name, "given both as a scalar parameter and as an axis; give one")
        if name in axes_in:
            raw = axes_in[name]
            if isinstance(raw, dict):
                raw = expand_range(where, f"axes.{name}", raw)
            elif not isinstance(raw, list):
                raw = [raw]
            axes[name] = _validate_axis(where, name, raw)
        elif name in spec:
            value = _validate_axis(where, name, [spec[name]])[0]
            if name in CORE_DIMS:
                axes[name] = [value]
            else:
                params[name] = value
        elif name in REQUIRED_AXES:
            _fail(where, f"axes.{name}", "required axis is missing")
        elif name in CORE_DIMS:
            axes[name] = _validate_axis(where, name, [default])
        else:
            params[name] = default

    def choice(key, allowed, default):
        value = spec.get(key, default)
        if value not in allowed:
            _fail(where, key, f"got {value!r}; allowed: {', '.join(map(str, allowed))}")
        return value

    chunk = spec.get("chunk_points", DEFAULT_CHUNK_POINTS)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        _fail(where, "chunk_points", f"must be a positive integer, got {chunk!r}")
    elasticities = spec.get("elasticities", False)
    if not isinstance(elasticities, bool):
        _fail(where, "elasticities", f"must be true or false, got {elasticities!r}")
    profiles = spec.get("profiles", [])
    if not isinstance(profiles, list) or not all(isinstance(p, dict) for p in profiles):
        _fail(where, "profiles", "must be an array of tables ([[profiles]])")
    title = spec.get("title", "sweep grid")
    if not isinstance(title, str):
        _fail(where, "title", f"must be a string, got {title!r}")
    return GridSpec(
        where=where,
        axes=axes,
        params=params,
        title=title,
        convention=choice("convention", CONVENTIONS, "paper"),
        profile=choice("profile", PROFILE_KINDS, "calibrated"),
        elasticities=elasticities,
        dtype=choice("dtype", DTYPES, "float64"),
        chunk_points=chunk,
        profiles=profiles,
        raw=spec,
    )


def load(path) -> GridSpec:
    """Read and validate a grid TOML file."""
    where = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SweepInputError(f"{where}: cannot read grid file: no such file") from None
    except IsADirectoryError:
        raise SweepInputError(f"{where}: cannot read grid file: it is a directory") from None
    except PermissionError:
        raise SweepInputError(f"{where}: cannot read grid file: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepInputError(f"{where}: malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SweepInputError(f"{where}: malformed TOML: not UTF-8 text") from None
    return parse(data, where)
