"""Measured deployments: the CSV files calibration reads (format in docs/calibration.md).

One row per steady-state run of one serving instance. A file is UTF-8, comma-separated, with a header
line first; cells are stripped of surrounding whitespace and a blank optional cell means "not given".

- required: `gpu`, `model` (catalog names or aliases), `tp` (integer >= 1), `concurrency` (mean number
  of running sequences, > 0) and, for measurements, `tokens_per_second` (output tokens per second, > 0)
  and `power_w` (mean total GPU power, > 0); prediction inputs (`measured=False`) may leave those two out;
- sequence length: `mean_context_tokens` (mean tokens held per running sequence, > 0) or `output_tokens`
  (mean output tokens per request, > 0) with `prompt_tokens` (>= 0; blank: unknown);
- optional: `num_gpus` (GPUs of the row, see the layout below), `weight_dtype` and `kv_dtype` (default
  bf16), `max_num_seqs` (the batch cap, integer >= 1), `itl_s` (median inter-token latency, > 0), `context`
  (the serving window, integer >= 1), `source`, `task` (one of `sweep.vocabulary.TASKS`, as written there;
  blank: lm-arena-chat), `model_id` (the served Hugging Face id, free text, not resolved),
  `expert_parallel` and `data_parallel` (integers >= 1, default 1).

Layout: with `expert_parallel` and `data_parallel` both 1, `num_gpus` is a multiple of tp (default tp):
num_gpus / tp replicas whose tokens per second and power are totals. With either > 1, the row is ONE
instance of G = `num_gpus` GPUs (default tp x data_parallel): data_parallel and expert_parallel divide G,
the given tp is 1 or G / data_parallel, and the row's `tp` becomes the attention tensor-parallel size
G / data_parallel (one replica). Whether expert_parallel divides the model's experts is checked later.

Physical consistency (`check_physical`, once per row after its cells are checked; docs/calibration.md
"Checks on measurement files"): `power_w` within [5 %, 125 %] of num_gpus x the GPU's TDP, `concurrency`
at most the sequences the instance's whole HBM holds at one KV token each, and the median `itl_s` within
20x of the mean step time concurrency / (tokens_per_second per instance). Rows that repeat an earlier row
exactly warn once (`SweepWarning`, naming the lines); `Measurements.distinct` marks them and a fit counts
each distinct row once.

The columns `sweep predict` adds (`PREDICTED_COLUMNS`) are ignored without a notice (predict replaces them).
Other columns are ignored with one `SweepWarning` per file. A bad cell is a one-line `SweepInputError`
"<file>:<line>: column '<col>': got <cell>; allowed: <what>" (line 1 is the header).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

from sweep import validate as V
from sweep.catalogs import gpu_catalog, model_catalog
from sweep.catalogs.provenance import suggest
from sweep.errors import InvalidValueError, MissingFieldError, SweepInputError, SweepWarning, UnknownNameError
from sweep.io.files import read_text
from sweep.physics.architecture import kv_bytes_per_token, kv_cache_heads
from sweep.vocabulary import KV_DTYPE_BYTES, TASKS, WEIGHT_DTYPE_BYTES

REQUIRED = ("gpu", "model", "tp", "concurrency")
MEASURED = ("tokens_per_second", "power_w")  # required when measured=True
LENGTH = ("mean_context_tokens", "output_tokens")  # at least one per row
# numeric column -> (rule of `sweep.validate.RULES`, integer)
NUMERIC = {
    "tp": ("at_least_one", True),
    "num_gpus": ("at_least_one", True),
    "concurrency": ("positive", False),
    "tokens_per_second": ("positive", False),
    "power_w": ("positive", False),
    "itl_s": ("positive", False),
    "mean_context_tokens": ("positive", False),
    "prompt_tokens": ("nonnegative", False),
    "output_tokens": ("positive", False),
    "max_num_seqs": ("at_least_one", True),
    "context": ("at_least_one", True),
    "expert_parallel": ("at_least_one", True),
    "data_parallel": ("at_least_one", True),
}
PARALLEL = ("expert_parallel", "data_parallel")  # numeric columns whose blank means 1, not NaN
DERIVED = ("replicas",)  # numeric row keys that are not columns
DTYPES = {"weight_dtype": WEIGHT_DTYPE_BYTES, "kv_dtype": KV_DTYPE_BYTES}
DEFAULT_DTYPE = "bf16"
DEFAULT_TASK = TASKS[0]  # lm-arena-chat
COLUMNS = ("source", "task", "model_id", "gpu", "model", *NUMERIC, *DTYPES)
PREDICTED = ("tokens_per_second", "power_w", "tokens_per_joule", "itl_s")  # what `sweep predict` adds
PREDICTED_COLUMNS = (*(f"predicted_{q}" for q in PREDICTED), "exceeds_kv_capacity")  # ignored on read
NOT_KEY = ("where", "raw")  # row keys that do not make a row distinct (`Measurements.distinct`)
DUPLICATES_LISTED = 8  # duplicated lines named in the warning; the count gives the rest

# Physical consistency (`check_physical`): bounds no real run crosses, far from every shipped run.
POWER_FLOOR_OF_TDP = 0.05  # a powered GPU idles at 10-20 % of its TDP (H100 ~70 W of 700); shipped >= 29 %
POWER_CEILING_OF_TDP = 1.25  # board power is capped at the power limit (<= TDP); shipped <= 99 %
STEP_TIME_FACTOR = 20.0  # mean step time n / (tokens/s) vs median ITL: shipped 0.77-1.67 (fim prefill)
UNIT_HINTS = {  # (unit, factor): a value that fits the bounds once multiplied by factor was given in unit
    "power_w": (("kW", 1e3), ("mW", 1e-3)),
    "itl_s": (("ms", 1e-3), ("µs", 1e-6)),
}


@dataclass(frozen=True)
class Measurements:
    """Rows of one or more measurement files, in file and line order.

    `rows`: one dict per data row: `gpu`, `model` (canonical names), the numeric columns as floats (NaN
    when not given; `expert_parallel` and `data_parallel` default to 1; `num_gpus` and `tp` as the layout
    rule of the module docstring makes them), `replicas` (instances the row's totals are over: num_gpus /
    tp, or 1 for an expert- or data-parallel instance), `weight_dtype`, `kv_dtype`, `task` (default
    lm-arena-chat), `model_id` and `source` ("" if absent), `where` ("<file>:<line>") and `raw` (the row's
    cells by header column, for writing it back).
    `files`: per file {"path", "sha256" (of its bytes), "rows"}. `columns`: the header columns of all
    files in first-seen order.
    """

    rows: tuple[dict, ...]
    files: tuple[dict, ...]
    columns: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, key: str) -> np.ndarray:
        """The float64 values of numeric column (or derived key) `key` over the rows (NaN where not given)."""
        if key not in NUMERIC and key not in DERIVED:
            raise InvalidValueError(
                f"measurements: column {key!r} is not numeric; allowed: {', '.join((*NUMERIC, *DERIVED))}"
            )
        return np.array([row.get(key, math.nan) for row in self.rows], dtype=np.float64)

    def distinct(self) -> np.ndarray:
        """Boolean (K,): True at each row's first occurrence, False where a row repeats an earlier one
        exactly (every checked value, and every cell of the columns not read). A fit counts each once."""
        first = _first_occurrences(self.rows)
        return first == np.arange(len(self.rows))


def read_measurements(paths, *, measured: bool = True) -> Measurements:
    """Read and check measurement CSV files (one path or a sequence of paths), concatenated in order.

    With `measured=False` (inputs to predict) `tokens_per_second` and `power_w` may be absent or blank.
    Raises a one-line `SweepInputError` naming the file, line and column of the first bad cell, or of the
    first value no real run can give (`check_physical`); warns once about rows that repeat an earlier one.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise SweepInputError("measurements: no files given; allowed: one or more CSV files")
    resolve = {"gpu": _resolver(gpu_catalog()), "model": _resolver(model_catalog())}
    resolve["limits"] = _limits(resolve["gpu"].entries, resolve["model"].entries)
    rows, files, columns = [], [], {}
    for path in paths:
        file_rows, header, sha256 = _read_file(path, measured, resolve)
        rows.extend(file_rows)
        files.append({"path": path, "sha256": sha256, "rows": len(file_rows)})
        columns.update(dict.fromkeys(header))
    _warn_duplicates(rows, paths)
    return Measurements(rows=tuple(rows), files=tuple(files), columns=tuple(columns))


def _first_occurrences(rows) -> np.ndarray:
    """(K,) index of the first row with the same values as each row (itself when it is the first): the same
    checked values and the same cells in the columns the reader does not read (labels such as a run id)."""
    seen, first = {}, []
    for i, row in enumerate(rows):
        values = sorted((k, repr(v)) for k, v in row.items() if k not in NOT_KEY)
        labels = sorted((c, v.strip()) for c, v in row.get("raw", {}).items() if c not in COLUMNS)
        key = (tuple(values), tuple(labels))
        first.append(seen.setdefault(key, i))
    return np.array(first, dtype=np.int64)


def _repeat(where: str, first: str) -> str:
    """The repeat of row `first` at `where`, as the warning names it (the same place: the file given twice)."""
    return f"{where} = {first}" if where != first else f"{where} (the file given again)"


def _warn_duplicates(rows, paths) -> None:
    """One `SweepWarning` naming the rows that repeat an earlier row exactly (and the row they repeat)."""
    first = _first_occurrences(rows)
    repeats = [_repeat(rows[i]["where"], rows[j]["where"]) for i, j in enumerate(first) if j != i]
    if not repeats:
        return
    shown = ", ".join(repeats[:DUPLICATES_LISTED])
    more = f", and {len(repeats) - DUPLICATES_LISTED} more" if len(repeats) > DUPLICATES_LISTED else ""
    warnings.warn(
        f"{', '.join(dict.fromkeys(paths))}: {len(repeats)} of {len(rows)} rows repeat an earlier row exactly; "
        f"a fit counts each distinct row once: {shown}{more}",
        SweepWarning,
        stacklevel=3,
    )


def _fail(where: str, col: str, raw: str, allowed: str):
    raise InvalidValueError(f"{where}: column '{col}': got {raw!r}; allowed: {allowed}")


def _resolver(catalog):
    """`resolve(where, col, name)`: the canonical catalog name, each distinct name looked up once;
    `resolve.entries`: canonical name -> catalog entry of the names resolved."""
    known, entries = {}, {}

    def resolve(where: str, col: str, name: str) -> str:
        if name not in known:
            try:
                entry = catalog.get(name)
                known[name] = entry.name
                entries[entry.name] = entry
            except UnknownNameError:
                known[name] = None
        if known[name] is None:
            aliases = [a for e in catalog.entries.values() for a in e.aliases]
            hint = suggest(name, [*catalog.names(), *aliases]) if name else ""
            raise UnknownNameError(
                f"{where}: column '{col}': got {name!r};{hint} allowed: "
                f"{', '.join(sorted(catalog.names()))} (or their aliases)"
            )
        return known[name]

    resolve.entries = entries
    return resolve


def _number(where: str, col: str, raw: str, required: bool) -> float:
    """The float of a numeric cell, checked against its rule; NaN for a blank optional cell."""
    rule, integer = NUMERIC[col]
    test, allowed = V.RULES[rule]
    if integer:
        allowed = allowed.replace("numbers", "integers")
    if raw == "" and not required:
        return math.nan
    try:
        v = float(raw)
    except ValueError:
        _fail(where, col, raw, allowed)
    if not math.isfinite(v) or not test(v) or (integer and not v.is_integer()):
        _fail(where, col, raw, allowed)
    return v


def _parse_row(where: str, cells: dict, measured: bool, resolve: dict) -> dict:
    """One checked row dict from its stripped cells (column -> text)."""
    row = {col: resolve[col](where, col, cells.get(col, "")) for col in ("gpu", "model")}
    required = REQUIRED + (MEASURED if measured else ())
    numbers = {col: _number(where, col, cells.get(col, ""), col in required) for col in NUMERIC}
    for col in PARALLEL:
        if math.isnan(numbers[col]):
            numbers[col] = 1.0
    if numbers["expert_parallel"] > 1 or numbers["data_parallel"] > 1:
        _instance_layout(where, cells, numbers)
    elif math.isnan(numbers["num_gpus"]):
        numbers["num_gpus"] = numbers["tp"]
        numbers["replicas"] = 1.0
    elif numbers["num_gpus"] % numbers["tp"]:
        _fail(where, "num_gpus", cells["num_gpus"], f"multiples of tp = {numbers['tp']:g}")
    else:
        numbers["replicas"] = numbers["num_gpus"] / numbers["tp"]
    if all(math.isnan(numbers[col]) for col in LENGTH):
        raise InvalidValueError(
            f"{where}: columns 'mean_context_tokens' and 'output_tokens': both blank; "
            "allowed: a number > 0 in at least one of them"
        )
    row.update(numbers)
    for col, table in DTYPES.items():
        raw = cells.get(col, "")
        row[col] = raw.lower() or DEFAULT_DTYPE
        if row[col] not in table:
            _fail(where, col, raw, ", ".join(table))
    raw = cells.get("task", "")
    row["task"] = raw or DEFAULT_TASK
    if row["task"] not in TASKS:
        _fail(where, "task", raw, ", ".join(TASKS))
    row["model_id"] = cells.get("model_id", "")
    row["source"] = cells.get("source", "")
    row["where"] = where
    check_physical(where, cells, row, resolve["limits"](row))
    return row


def _limits(gpus: dict, models: dict):
    """`limits(row)`: the catalog numbers `check_physical` needs for a row's setup, computed once each from
    the resolved entries (canonical name -> entry)."""
    known = {}

    def limits(row) -> dict:
        key = (row["gpu"], row["model"], row["kv_dtype"])
        if key not in known:
            gpu, arch = gpus[row["gpu"]], models[row["model"]].field_values()
            known[key] = {
                "tdp_w": gpu.value("tdp_w"),
                "memory_bytes": gpu.value("memory_bytes"),
                "kv_bytes_per_token": float(
                    kv_bytes_per_token(arch, KV_DTYPE_BYTES[row["kv_dtype"]], "physical")
                ),
                "kv_heads": float(kv_cache_heads(arch)),
            }
        return known[key]

    return limits


def check_physical(where: str, cells: dict, row: dict, limits: dict) -> None:
    """Refuse a row no real run can give (module docstring): power against the TDP, the concurrency against
    the KV cache, then the ITL against the mean step time (which the concurrency sets). Each bound is far
    outside every real run; the message gives it and, where the value is off by a unit's factor, the unit
    it seems to be in."""
    instance = f"{row['num_gpus']:g} {row['gpu']}"
    tdp, power = limits["tdp_w"], row["power_w"]
    if not math.isnan(power) and math.isfinite(tdp) and tdp > 0:
        low, high = (f * row["num_gpus"] * tdp for f in (POWER_FLOOR_OF_TDP, POWER_CEILING_OF_TDP))
        side = "below the idle draw of any powered GPU" if power < low else "above the GPUs' power limit"
        allowed = (
            f"{low:.4g} to {high:.4g} W for {instance} ({100 * POWER_FLOOR_OF_TDP:g} % to "
            f"{100 * POWER_CEILING_OF_TDP:g} % of its {tdp:g} W TDP per GPU); {power:g} W is {side}"
        )
        _within(where, "power_w", cells["power_w"], power, (low, high), allowed)
    per_gpu = limits["kv_bytes_per_token"] / min(row["tp"], limits["kv_heads"])
    most = row["data_parallel"] * limits["memory_bytes"] / per_gpu  # every data-parallel rank: its own cache
    if math.isfinite(most) and row["concurrency"] > most:
        allowed = (
            f"at most {math.floor(most):,} running sequences for {row['model']} on {instance}, what "
            f"{limits['memory_bytes'] / 2**30:g} GiB of HBM per GPU holds at one KV token per sequence "
            f"({per_gpu:g} bytes per token per GPU); the run cannot fit the KV cache"
        )
        _fail(where, "concurrency", cells["concurrency"], allowed)
    itl, tokens_per_s = row["itl_s"], row["tokens_per_second"]
    if not (math.isnan(itl) or math.isnan(tokens_per_s)):
        step = row["concurrency"] * row["replicas"] / tokens_per_s  # mean step time of one instance
        low, high = step / STEP_TIME_FACTOR, step * STEP_TIME_FACTOR
        allowed = (
            f"{low:.3g} to {high:.3g} s, within {STEP_TIME_FACTOR:g}x of the mean step time concurrency / "
            f"tokens_per_second per instance = {step:.3g} s (columns 'concurrency', 'tokens_per_second'); "
            f"{itl:g} s is {itl / step:.3g}x of it"
        )
        _within(where, "itl_s", cells["itl_s"], itl, (low, high), allowed)


def _within(where: str, col: str, raw: str, value: float, bounds: tuple, allowed: str) -> None:
    """Fail unless low <= value <= high; name the unit of `UNIT_HINTS` the value seems to be in."""
    low, high = bounds
    if low <= value <= high:
        return
    unit = next((u for u, factor in UNIT_HINTS[col] if low <= value * factor <= high), None)
    _fail(where, col, raw, allowed + (f": is {col} in {unit}?" if unit else ""))


def _instance_layout(where: str, cells: dict, numbers: dict) -> None:
    """Check and set an expert- or data-parallel row: ONE instance of G = num_gpus GPUs (module docstring)."""
    dp, ep, tp = numbers["data_parallel"], numbers["expert_parallel"], numbers["tp"]
    g = tp * dp if math.isnan(numbers["num_gpus"]) else numbers["num_gpus"]
    if g <= 4096:  # listed only for a plausible instance; never a loop as long as a huge cell
        small = [d for d in range(1, math.isqrt(int(g)) + 1) if g % d == 0]
        divisors = ", ".join(str(d) for d in sorted({*small, *(int(g) // d for d in small)}))
    else:
        divisors = "integers that divide it"
    of_g = f"num_gpus = {g:g}" + ("" if cells.get("num_gpus", "") else " (blank: tp x data_parallel)")
    if g % dp:
        _fail(where, "data_parallel", cells["data_parallel"], f"divisors of {of_g}: {divisors}")
    if ep > g or g % ep:
        _fail(where, "expert_parallel", cells["expert_parallel"], f"divisors of {of_g}: {divisors}")
    if tp not in (1.0, g / dp):
        _fail(
            where,
            "tp",
            cells["tp"],
            f"1 or num_gpus / data_parallel = {g / dp:g} (one expert- or data-parallel instance of {g:g} GPUs)",
        )
    numbers.update(num_gpus=g, tp=g / dp, replicas=1.0)


def _read_file(path: str, measured: bool, resolve: dict) -> tuple[list, list, str]:
    """(rows, header columns, sha256) of one measurement file."""
    text = read_text(path, "measurement file")
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()  # strict UTF-8 decodes and encodes back exactly
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    header, rows = None, []
    try:
        line = reader.line_num + 1
        for record in reader:
            if not any(cell.strip() for cell in record):  # blank line
                line = reader.line_num + 1
                continue
            if header is None:
                header = _check_header(path, line, [cell.strip() for cell in record], measured)
            elif len(record) != len(header):
                raise InvalidValueError(
                    f"{path}:{line}: got {len(record)} cells; allowed: {len(header)}, one per header column"
                )
            else:
                named = [(col, cell) for col, cell in zip(header, record) if col]
                cells = {col: cell.strip() for col, cell in named}
                row = _parse_row(f"{path}:{line}", cells, measured, resolve)
                row["raw"] = dict(named)
                rows.append(row)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidValueError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None
    if header is None:
        raise SweepInputError(f"{path}: the file is empty; expected a header line and data rows")
    if not rows:
        raise SweepInputError(f"{path}: no data rows, only a header; expected one row per measured run")
    return rows, [col for col in header if col], sha256


def _check_header(path: str, line: int, header: list, measured: bool) -> list:
    """Check the header's column names (required present, none twice); warn once about unknown ones."""
    named = [col for col in header if col]
    twice = sorted({col for col in named if named.count(col) > 1})
    if twice:
        raise InvalidValueError(
            f"{path}:{line}: column(s) {', '.join(twice)} given twice; allowed: once each"
        )
    missing = [col for col in REQUIRED + (MEASURED if measured else ()) if col not in header]
    if not any(col in header for col in LENGTH):
        missing.append(" or ".join(LENGTH))
    if missing:
        raise MissingFieldError(
            f"{path}: missing required column(s) {', '.join(missing)}; the header has: {', '.join(named)}"
        )
    known = (*COLUMNS, *PREDICTED_COLUMNS)
    unknown = [col or f"(unnamed column {i + 1})" for i, col in enumerate(header) if col not in known]
    if unknown:
        warnings.warn(f"{path}: ignoring unknown columns: {', '.join(unknown)}", SweepWarning, stacklevel=4)
    return header
