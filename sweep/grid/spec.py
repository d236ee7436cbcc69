"""Grid specifications: TOML files (or dicts) that name the axes of a sweep.

docs/grids.md is the full reference. In short: top-level keys choose the
convention, the profile kind and options; `[axes]` lists the swept values (a list or a range
table); any axis may instead be given as a scalar top-level key (a parameter, not a dimension).

An axis is a list, or a range table: `{start, stop, step}` (linear, stop included when hit),
`{start, stop, num, spacing = "linear" | "geometric"}` or `{start, stop, spacing = "pow2"}`
(powers of two from start to stop, both powers of two). The model axis also takes
`{ dense_params = <range> }`: dense models of those parameter counts ("dense-<N>b").

Integer counts have upper bounds the engine computes exactly (sweep.validate: MAX_COUNT = 2^53 tokens,
sequences or GPUs; kv_block_tokens <= 2^20; reserve_bytes <= 2^53; dense models <= 1e15 parameters); a
range's start and stop are checked against them before it is expanded.
"""

from __future__ import annotations

import re
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sweep import validate as V
from sweep.calibration.store import BUILTIN
from sweep.errors import SweepInputError, SweepWarning
from sweep.grid.uncertainty_options import UncertaintyOptions, parse_uncertainty
from sweep.io.files import read_text
from sweep.vocabulary import (
    BATCH_MAX,
    CONVENTIONS,
    KV_DTYPE_BYTES,
    POWER_MODELS,
    TOPOLOGIES,
    WEIGHT_DTYPE_BYTES,
)

DENSE_MODEL = re.compile(r"^dense-(\d+(\.\d+)?(e[+-]?\d+)?)b$", re.IGNORECASE)
# dense-<N>b models: dense_family's Newton solve and integer shapes stay finite and exact far beyond this,
# and a 6-digit name of any count up to it stays up to it
MAX_DENSE_PARAMS = 1e15
PROFILE_KINDS = ("calibrated", "roofline")
DTYPES = ("float64", "float32")
DEFAULT_CHUNK_POINTS = 1 << 18


@dataclass(frozen=True)
class Axis:
    kind: str  # validator, see _validate_axis
    default: object  # value when neither an axis nor a scalar is given (None: required/unused)
    group: str  # "profile" (selects/derives the profile), "instance" or "fleet" (point axes)
    doc: str
    choices: tuple = ()
    most: float | None = None  # upper bound (None: MAX_COUNT for integer axes, else none)

    @property
    def bound(self):
        """The largest value allowed: `most`, else V.MAX_COUNT for integer counts (batch, positive_int)."""
        if self.most is not None:
            return self.most
        return V.MAX_COUNT if self.kind in ("batch", "positive_int") else None


AXES = {
    # profile axes: every combination is one row of the profile table
    "gpu": Axis("name", None, "profile", "GPU SKU names (catalog, alias or [gpus.NAME])"),
    "model": Axis("name", None, "profile", "model ids (catalog, alias, [models.NAME] or dense-<N>b)"),
    "tp": Axis(
        "positive_int", None, "profile", "tensor-parallel GPUs per attention rank (roofline; default 1)"
    ),
    "expert_parallel": Axis(
        "positive_int",
        1,
        "profile",
        "GPUs the routed experts are spread over, dividing tp·data_parallel (physical)",
    ),
    "data_parallel": Axis(
        "positive_int",
        1,
        "profile",
        "attention data-parallel ranks of one instance, each tp GPUs with its own KV cache (physical)",
    ),
    "weight_dtype": Axis("choice", "bf16", "profile", "weight dtype (roofline)", tuple(WEIGHT_DTYPE_BYTES)),
    "kv_dtype": Axis(
        "choice",
        None,
        "profile",
        "KV-cache dtype (roofline; default = weights, int4 → bf16)",
        tuple(KV_DTYPE_BYTES),
    ),
    "gpu_memory_utilization": Axis(
        "fraction", 0.90, "profile", "share of GPU memory vLLM may use (roofline)"
    ),
    "kv_block_tokens": Axis(
        "positive_int", 16, "profile", "KV block size in tokens (roofline)", most=V.MAX_BLOCK_TOKENS
    ),
    "reserve_bytes": Axis(
        "nonnegative",
        None,
        "profile",
        "activation/runtime reserve per GPU (physical roofline; default 4 GiB)",
        most=V.MAX_BYTES,
    ),
    "prefill_chunk_tokens": Axis(
        "positive_int", None, "profile", "chunked-prefill size (roofline; default: the GPU's)"
    ),
    "moe_dispatch_overhead_s": Axis(
        "nonnegative", 0.0, "profile", "MoE dispatch time per MoE layer per step (physical roofline)"
    ),
    "prefill_tokens_per_output": Axis(
        "nonnegative",
        0.0,
        "profile",
        "prompt tokens prefilled per output token inside decode steps (physical roofline; 0 = decode only)",
    ),
    # single-instance point axes
    "context": Axis("positive_int", None, "instance", "context window C in tokens"),
    "batch": Axis("batch", "max", "instance", 'sequences in flight: positive integers or "max" (= n_max)'),
    "mean_length_fraction": Axis(
        "fraction", 0.5, "instance", "mean sequence length in flight / context (paper 0.5)"
    ),
    "load": Axis("fraction", 1.0, "instance", 'utilisation ρ when batch is "max": n = floor(ρ·n_max)'),
    "price_per_gpu_hour": Axis(
        "nonnegative",
        None,
        "instance",
        "US dollars per GPU-hour for cost_per_mtok (default: the profile's, i.e. the GPU catalog's)",
    ),
    # fleet axes (a grid with `topology` is a fleet grid)
    "workload": Axis("name", None, "fleet", "request-length CDF: built-in name or JSON file"),
    "topology": Axis("choice", None, "fleet", "routing topology", tuple(TOPOLOGIES)),
    "b_short": Axis("positive_int", 4096, "fleet", "short-pool context window B_short (tokens)"),
    "gamma": Axis(
        "at_least_one", 2.0, "fleet", "FleetOpt compression factor γ ≥ 1 (L ≤ γ·B_short → short pool)"
    ),
    "long_context": Axis("positive_int", 65536, "fleet", "long-pool context window (tokens)"),
    "arrival_rate": Axis("positive", 1000.0, "fleet", "request arrival rate λ (requests/s)"),
    "ttft_p99_s": Axis("positive", 0.5, "fleet", "P99 time-to-first-token target (s)"),
    "rho_max": Axis("open_fraction", 0.85, "fleet", "maximum utilisation per pool, in (0, 1)"),
    "output_share": Axis("open_fraction", 0.2, "fleet", "output tokens / total tokens of a request"),
}
ROOFLINE_ONLY = (
    "tp",
    "expert_parallel",
    "data_parallel",
    "weight_dtype",
    "kv_dtype",
    "gpu_memory_utilization",
    "kv_block_tokens",
    "reserve_bytes",
    "prefill_chunk_tokens",
    "moe_dispatch_overhead_s",
    "prefill_tokens_per_output",
)
CORE_DIMS = {
    "instance": ("gpu", "model", "context", "batch"),
    "fleet": ("gpu", "model", "workload", "topology"),
}
REQUIRED = {"instance": ("gpu", "model", "context"), "fleet": ("gpu", "model", "workload", "topology")}
TOP_KEYS = (
    "title",
    "convention",
    "profile",
    "elasticities",
    "uncertainty",
    "dtype",
    "chunk_points",
    "outputs",
    "axes",
    "profiles",
    "gpus",
    "models",
    "gpu_catalogs",
    "model_catalogs",
    "model_configs",
    "power_model",
    "calibration",
)


@dataclass
class GridSpec:
    where: str  # file path or "<dict>", used in error messages
    mode: str  # "instance" | "fleet"
    axes: dict  # name -> list of values (dimensions, in AXES order)
    params: dict  # scalar parameters (not dimensions)
    title: str = "sweep grid"
    convention: str = "physical"
    profile: str = "calibrated"
    elasticities: bool = False
    uncertainty: UncertaintyOptions | None = None  # None: no uncertainty outputs
    dtype: str = "float64"
    chunk_points: int = DEFAULT_CHUNK_POINTS
    power_model: str = "tdp_fraction"
    calibration: str | None = None  # calibration file (resolved path) or built-in name
    outputs: tuple = ()  # per-point output variables to compute and store (empty: all)
    profiles: list = field(default_factory=list)  # inline calibrated profile tables
    gpus: dict = field(default_factory=dict)  # inline GPU tables
    models: dict = field(default_factory=dict)  # inline model tables
    gpu_catalogs: list = field(default_factory=list)  # extra GPU catalog files (resolved paths)
    model_catalogs: list = field(default_factory=list)
    model_configs: list = field(default_factory=list)  # HF config.json files to import
    raw: dict = field(default_factory=dict)  # the spec as given (recorded in the output)

    @property
    def folder(self) -> Path:
        """The grid file's folder (relative paths in the grid are relative to it); "." for a dict."""
        return Path(self.where).parent if self.where != "<dict>" else Path(".")

    def workload_source(self, name: str) -> str:
        """A workload as given: a built-in name, or a JSON file relative to the grid's folder."""
        return name if not name.endswith(".json") or Path(name).is_absolute() else str(self.folder / name)

    def value(self, name):
        """The grid's values of `name`: the axis list, or a one-element list of the parameter."""
        return self.axes[name] if name in self.axes else [self.params[name]]


def _fail(where: str, key: str, message: str):
    raise SweepInputError(f"{where}: {key}: {message}")


def expand_range(where: str, key: str, table: dict, rule: str = "finite", most=None) -> list:
    """Expand a range table into a list of values (see module docstring). Its start and stop are
    checked first (against the axis's `rule` and bound `most`: every value lies between them), then its
    size, so nothing is allocated for a range that could not be used."""
    allowed = "start, stop and one of step | num (+ spacing linear|geometric) | spacing = 'pow2'"
    unknown = set(table) - {"start", "stop", "step", "num", "spacing"}
    if unknown or "start" not in table or "stop" not in table or ("step" in table and "num" in table):
        V.fail(where, key, f"range table has keys {sorted(table)}", allowed)
    start = V.number(where, f"{key}.start", table["start"], rule, most=most)
    stop = V.number(where, f"{key}.stop", table["stop"], rule, most=most)
    V.ordered(where, {f"{key}.start": start, f"{key}.stop": stop})
    spacing = table.get("spacing", "linear")
    if spacing not in ("linear", "geometric", "pow2"):
        V.fail(where, f"{key}.spacing", f"unknown spacing {spacing!r}", "linear, geometric, pow2")
    if spacing == "pow2" and "step" not in table and "num" not in table:
        ok = all(isinstance(v, int) and v > 0 and v & (v - 1) == 0 for v in (start, stop))
        if not ok:
            V.fail(where, key, f"pow2 range {start!r}..{stop!r}", "integer powers of two start <= stop")
        V.range_size(where, key, stop.bit_length() - start.bit_length() + 1)
        return [1 << e for e in range(start.bit_length() - 1, stop.bit_length())]
    if "step" in table and spacing == "linear":
        step = V.number(where, f"{key}.step", table["step"], "positive")
        count = V.range_size(where, key, (stop - start) / step + 1e-9 + 1)
        values = [start + i * step for i in range(count)]
        return [int(v) for v in values] if all(isinstance(v, int) for v in (start, step)) else values
    if "num" in table and spacing != "pow2":
        num = V.range_size(
            where, f"{key}.num", V.number(where, f"{key}.num", table["num"], "at_least_one", True)
        )
        if spacing == "geometric":
            V.number(where, f"{key}.start", start, "positive")
            return np.geomspace(start, stop, num).tolist()
        return np.linspace(start, stop, num).tolist()
    V.fail(where, key, f"range table has keys {sorted(table)} and spacing {spacing!r}", allowed)


def dense_model_name(n_params: float) -> str:
    """Label of the dense-family model with `n_params` parameters, e.g. dense-13b."""
    return f"dense-{n_params / 1e9:.6g}b"


NUMBER_KINDS = {
    "positive_int": ("positive", True),
    "fraction": ("fraction", False),
    "open_fraction": ("open_fraction", False),
    "positive": ("positive", False),
    "nonnegative": ("nonnegative", False),
    "at_least_one": ("at_least_one", False),
}


def _is_count(v, most) -> bool:
    """A whole number in [1, most] (an int or float; not a bool, nor an int too large for a float)."""
    return V.is_number(v) and V.finite(v) and 0 < v <= most and float(v).is_integer()


def _check_dense_name(where: str, key: str, name: str) -> None:
    """A dense-<N>b model name must have 0 < N·1e9 <= MAX_DENSE_PARAMS parameters."""
    match = DENSE_MODEL.match(name)
    if match is None:
        return
    n_params = float(match.group(1)) * 1e9
    if not 0 < n_params <= MAX_DENSE_PARAMS:
        V.fail(
            where,
            key,
            f"{name!r} has {n_params:.4g} parameters",
            f"dense-<N>b with 0 < N·1e9 <= {MAX_DENSE_PARAMS:g} parameters",
        )


def _validate_axis(where: str, name: str, values: list, key: str) -> list:
    axis = AXES[name]
    if not values:
        V.fail(where, key, "axis is empty", "at least one value")
    kind = axis.kind
    if kind in NUMBER_KINDS:
        rule, integer = NUMBER_KINDS[kind]
        values = [V.number(where, key, v, rule, integer, axis.bound) for v in values]
        values = [int(v) if integer else float(v) for v in values]
    for v in values:
        if kind == "name" and not (isinstance(v, str) and v != ""):
            V.fail(where, key, f"got {v!r}", "non-empty strings")
        if kind == "name" and name == "model":
            _check_dense_name(where, key, v)
        if kind == "choice" and not (isinstance(v, str) and v.lower() in axis.choices):
            V.fail(where, key, f"got {v!r}", ", ".join(axis.choices))
        if kind == "batch" and v != "max" and not _is_count(v, axis.bound):
            V.fail(
                where,
                key,
                f"got {v!r}",
                f'positive integers or "max" (integers at most {V.bound_text(axis.bound)})',
            )
    if kind == "choice":
        values = [v.lower() for v in values]
    elif kind == "batch":
        values = [BATCH_MAX if v == "max" else int(v) for v in values]
    V.distinct(where, key, values, str.lower if kind == "name" else lambda v: v)
    return values


def _round_integer_range(where: str, name: str, key: str, values: list) -> list:
    """A range on an integer axis (context, batch, tp, …) rounded to integers, duplicates dropped,
    with a one-line notice; other axes' values unchanged."""
    integer = AXES[name].kind == "batch" or NUMBER_KINDS.get(AXES[name].kind, ("", False))[1]
    if not integer or all(float(v).is_integer() for v in values):
        return values
    rounded = list(dict.fromkeys(int(round(v)) for v in values))
    shown = ", ".join(map(str, rounded[:6])) + (", …" if len(rounded) > 6 else "")
    warnings.warn(
        f"{where}: {key}: range rounded to integers: {len(rounded)} values ({len(values) - len(rounded)} "
        f"duplicates dropped): {shown}",
        SweepWarning,
        stacklevel=2,
    )
    return rounded


def plain(value):
    """What Python users pass, as the plain values a TOML file gives: NumPy scalars and arrays,
    tuples and ranges become int, float, str, bool and lists (recursively through dicts)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, range, np.ndarray)):
        return [plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _axis_values(where: str, name: str, raw) -> list:
    key = f"axes.{name}"
    if name == "model" and isinstance(raw, dict) and "dense_params" in raw:
        if set(raw) != {"dense_params"}:
            _fail(where, key, "a model range table takes only 'dense_params'")
        counts, at = raw["dense_params"], f"{key}.dense_params"
        bounds = ("positive", MAX_DENSE_PARAMS)
        counts = expand_range(where, at, counts, *bounds) if isinstance(counts, dict) else counts
        counts = counts if isinstance(counts, list) else [counts]
        counts = [V.number(where, at, c, bounds[0], most=bounds[1]) for c in counts]
        raw = [dense_model_name(c) for c in counts]
    elif isinstance(raw, dict):
        kind = AXES[name].kind
        rule = "positive" if kind == "batch" else NUMBER_KINDS.get(kind, ("finite",))[0]
        raw = _round_integer_range(where, name, key, expand_range(where, key, raw, rule, AXES[name].bound))
    elif not isinstance(raw, list):
        raw = [raw]
    return _validate_axis(where, name, raw, key)


def _paths(where: str, spec: dict, key: str) -> list:
    value = spec.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail(where, key, f"must be a list of file paths, got {value!r}")
    base = Path(where).parent if where != "<dict>" else Path(".")
    return [str(Path(v) if Path(v).is_absolute() else base / v) for v in value]


def _choice(where: str, spec: dict, key: str, allowed, default):
    """The top-level option `key` (default `default`); SweepInputError unless it is one of `allowed`."""
    value = spec.get(key, default)
    if value not in allowed:
        _fail(where, key, f"got {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value


def _flag(where: str, spec: dict, key: str) -> bool:
    """The top-level boolean `key` (default false); SweepInputError unless it is true or false."""
    value = spec.get(key, False)
    if not isinstance(value, bool):
        _fail(where, key, f"must be true or false, got {value!r}")
    return value


def _check_keys(where: str, spec) -> dict:
    """Reject a non-table spec, unknown top-level keys and unknown axes; return the [axes] table."""
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
    return axes_in


def _axes_and_params(where: str, spec: dict, axes_in: dict, mode: str, profile: str) -> tuple:
    """Sort every axis of `mode` into a dimension (axes, in AXES order) or a scalar parameter (params)."""
    axes, params = {}, {}
    for name, axis in AXES.items():
        if name in axes_in and name in spec:
            _fail(where, name, "given both as a scalar parameter and as an axis; give one")
        given = name in axes_in or name in spec
        if axis.group not in ("profile", mode):
            if given:
                other = (
                    "a fleet grid (one with `topology`)"
                    if axis.group == "fleet"
                    else "a single-instance grid"
                )
                _fail(where, name, f"only applies to {other}")
            continue
        if profile == "calibrated" and name in ROOFLINE_ONLY:
            if given:
                _fail(
                    where,
                    name,
                    'serving-config keys need profile = "roofline" (a calibrated profile has its own)',
                )
            continue
        if name in axes_in:
            axes[name] = _axis_values(where, name, axes_in[name])
        elif name in spec:
            value = _axis_values(where, name, spec[name])
            if len(value) != 1:
                _fail(where, name, "a scalar parameter takes one value; put lists under [axes]")
            if name in CORE_DIMS[mode]:
                axes[name] = value
            else:
                params[name] = value[0]
        elif name in REQUIRED[mode]:
            _fail(where, f"axes.{name}", "required axis is missing")
        elif name in CORE_DIMS[mode]:
            axes[name] = _validate_axis(where, name, [axis.default], f"axes.{name}")
        elif axis.default is not None or name in ("tp", "kv_dtype", "reserve_bytes", "prefill_chunk_tokens"):
            params[name] = axis.default
    axes = {n: axes[n] for n in AXES if n in axes}
    if mode == "fleet":
        _check_fleet(where, axes, params)
    return axes, params


def _chunk_points(where: str, spec: dict) -> int:
    """The `chunk_points` option: an integer >= V.MIN_CHUNK_POINTS (default DEFAULT_CHUNK_POINTS)."""
    chunk = spec.get("chunk_points", DEFAULT_CHUNK_POINTS)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < V.MIN_CHUNK_POINTS:
        V.fail(
            where,
            "chunk_points",
            f"got {chunk!r}",
            f"integers >= {V.MIN_CHUNK_POINTS} (points per compiled call)",
        )
    return chunk


def _title(where: str, spec: dict) -> str:
    """The `title` option: a string (default "sweep grid")."""
    title = spec.get("title", "sweep grid")
    if not isinstance(title, str):
        _fail(where, "title", f"must be a string, got {title!r}")
    return title


def _tables(where: str, spec: dict) -> tuple:
    """The inline tables (profiles, gpus, models): [[profiles]] and [gpus.NAME] / [models.NAME]."""
    profiles = spec.get("profiles", [])
    if not isinstance(profiles, list) or not all(isinstance(p, dict) for p in profiles):
        _fail(where, "profiles", "must be an array of tables ([[profiles]])")
    for key in ("gpus", "models"):
        tables = spec.get(key, {})
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            _fail(where, key, f"must be tables [{key}.NAME] of specs")
    return profiles, spec.get("gpus", {}), spec.get("models", {})


def _outputs(where: str, spec: dict) -> tuple:
    """The `outputs` option: the per-point output variables to compute (empty: all)."""
    outputs = spec.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        _fail(where, "outputs", f"must be a list of output variable names, got {outputs!r}")
    return tuple(outputs)


def parse(spec, where: str = "<dict>") -> GridSpec:
    """Validate a spec dict (as read from TOML) into a `GridSpec`."""
    spec = plain(spec)
    axes_in = _check_keys(where, spec)
    mode = "fleet" if ("topology" in axes_in or "topology" in spec) else "instance"
    profile = _choice(where, spec, "profile", PROFILE_KINDS, "calibrated")
    axes, params = _axes_and_params(where, spec, axes_in, mode, profile)
    chunk = _chunk_points(where, spec)
    title = _title(where, spec)
    profiles, gpus, models = _tables(where, spec)
    uncertainty = parse_uncertainty(where, spec.get("uncertainty"))
    outputs = _outputs(where, spec)
    calibration = _calibration(where, spec, profile)
    return GridSpec(
        where=where,
        mode=mode,
        axes=axes,
        params=params,
        title=title,
        convention=_choice(where, spec, "convention", CONVENTIONS, "physical"),
        profile=profile,
        elasticities=_flag(where, spec, "elasticities")
        or (uncertainty is not None and uncertainty.method == "first_order"),
        uncertainty=uncertainty,
        dtype=_choice(where, spec, "dtype", DTYPES, "float64"),
        chunk_points=chunk,
        power_model=_power_model(where, spec, calibration),
        calibration=calibration,
        outputs=outputs,
        profiles=profiles,
        gpus=gpus,
        models=models,
        gpu_catalogs=_paths(where, spec, "gpu_catalogs"),
        model_catalogs=_paths(where, spec, "model_catalogs"),
        model_configs=_paths(where, spec, "model_configs"),
        raw=spec,
    )


def _calibration(where: str, spec: dict, profile: str) -> str | None:
    """The `calibration` key: a built-in name or a file (relative to the grid's folder); physical roofline only."""
    value = spec.get("calibration")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        _fail(where, "calibration", f"got {value!r}; allowed: a calibration file or {', '.join(BUILTIN)}")
    if profile != "roofline" or spec.get("convention", "physical") != "physical":
        _fail(
            where,
            "calibration",
            'a calibration applies to first-principles grids: needs profile = "roofline" and '
            'convention = "physical"',
        )
    if value in BUILTIN:
        return value
    base = Path(where).parent if where != "<dict>" else Path(".")
    path = Path(value) if Path(value).is_absolute() else base / value
    if not path.is_file():
        _fail(
            where, "calibration", f"no such file {str(path)!r}; built-in calibrations: {', '.join(BUILTIN)}"
        )
    return str(path)


def _power_model(where: str, spec: dict, calibration: str | None) -> str:
    """`power_model`: "utilization" with a calibration (the fitted power model), else tdp_fraction by default."""
    if calibration is None:
        value = _choice(where, spec, "power_model", POWER_MODELS, "tdp_fraction")
        if value == "utilization":
            _fail(
                where,
                "power_model",
                "'utilization' is the fitted power model of a calibration; give calibration",
            )
        return value
    value = spec.get("power_model", "utilization")
    if value != "utilization":
        _fail(
            where, "power_model", f"got {value!r} with a calibration; allowed: utilization (the fitted model)"
        )
    return value


def _check_fleet(where: str, axes: dict, params: dict) -> None:
    def values(name):
        return axes.get(name, [params.get(name)])

    b_short, long_ctx = values("b_short"), values("long_context")
    if max(b_short) >= min(long_ctx):
        _fail(where, "b_short", f"every b_short must be < long_context ({min(long_ctx)}), got {max(b_short)}")


def load(path) -> GridSpec:
    """Read and validate a grid TOML file."""
    where = str(path)
    try:
        data = tomllib.loads(read_text(path, "grid file"))
    except tomllib.TOMLDecodeError as exc:
        raise SweepInputError(f"{where}: malformed TOML: {exc}") from None
    return parse(data, where)
