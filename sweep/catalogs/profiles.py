"""Calibrated profiles: the catalog (`sweep/data/profiles.toml`) and inline grid-file profiles.

A calibrated profile gives the `Profile` fields directly for one (gpu, model, tp) setup, each
value with its provenance. Inline `[[profiles]]` tables in a grid file use the same keys and
behave exactly like catalog entries (they take precedence over a catalog entry of the same
gpu and model).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources

from sweep import validate as V
from sweep.catalogs.provenance import Value, parse_entry
from sweep.errors import SweepInputError
from sweep.physics.profile import CONTINUOUS_FIELDS, LOGISTIC_DEFAULTS, Profile

REQUIRED_KEYS = ("gpu", "model", "tp", *CONTINUOUS_FIELDS)
OPTIONAL_DEFAULTS = {"prefill_chunk_tokens": 1024, "price_per_gpu_hour": 0.0}
# key -> (rule of `sweep.validate.RULES`, integer); max_slots <= 0 means no compute cap
RULES = {
    "tp": ("positive", True),
    "weight_time_s": ("positive", False),
    "kv_time_per_seq_s": ("positive", False),
    "calibration_context": ("positive", True),
    "kv_block_tokens": ("positive", True),
    "kv_blocks": ("positive", True),
    "max_slots": ("finite", True),
    "power_idle_w": ("nonnegative", False),
    "power_nominal_w": ("positive", False),
    "power_k": ("positive", False),
    "power_x0": ("finite", False),
    "prefill_chunk_tokens": ("positive", True),
    "price_per_gpu_hour": ("nonnegative", False),
}
ALLOWED_KEYS = (*REQUIRED_KEYS, *OPTIONAL_DEFAULTS, "source", "quality", "uncertainty")
DEFAULT_SOURCE = "sweep default"  # provenance of an optional key a profile leaves out


@dataclass(frozen=True)
class CalibratedProfile:
    gpu: str
    model: str
    values: dict  # Profile field -> number
    provenance: dict = field(default_factory=dict)  # Profile field -> Value (with provenance)

    def profile_values(self) -> dict:
        """All `Profile` fields (logistic-power defaults filled in)."""
        return {**LOGISTIC_DEFAULTS, **self.values}


def parse_profile(entry: dict, where: str) -> CalibratedProfile:
    """Validate one profile table (catalog or inline) and return it."""
    V.keys(where, entry, ALLOWED_KEYS, REQUIRED_KEYS, what="profile key")
    numbers, meta = parse_entry("profile", entry, where=f"{where}: ")
    for key in ("gpu", "model"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise SweepInputError(
                f"{where}: profile key {key!r} must be a non-empty string, got {entry[key]!r}"
            )
    for key in (*REQUIRED_KEYS[2:], *OPTIONAL_DEFAULTS):
        if key in entry and key not in numbers:
            raise SweepInputError(f"{where}: profile key {key!r} must be a number, got {meta.get(key)!r}")
    for key, (rule, integer) in RULES.items():
        if key in numbers:
            V.number(where, key, numbers[key].value, rule, integer)
    V.ordered(where, {k: numbers[k].value for k in ("power_idle_w", "power_nominal_w")})
    for key, default in OPTIONAL_DEFAULTS.items():
        numbers.setdefault(key, Value(default, DEFAULT_SOURCE, "calibrated", 0.0))
    values = {k: v.value for k, v in numbers.items()}
    provenance = numbers
    gpu, model = entry["gpu"], entry["model"]
    return CalibratedProfile(gpu=gpu, model=model, values=values, provenance=provenance)


def load_catalog(path=None) -> dict[tuple[str, str], CalibratedProfile]:
    """The calibrated-profile catalog, keyed by (gpu, model)."""
    if path is None:
        text = resources.files("sweep").joinpath("data/profiles.toml").read_text()
        where = "sweep/data/profiles.toml"
    else:
        where = str(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
    data = tomllib.loads(text)
    catalog = {}
    for i, entry in enumerate(data.get("profile", [])):
        prof = parse_profile(entry, f"{where} [[profile]] #{i + 1}")
        catalog[(prof.gpu, prof.model)] = prof
    return catalog


def profile_table(entries: list[CalibratedProfile], dtype) -> Profile:
    """Struct-of-arrays `Profile` with one row per entry (fields of shape (K,))."""
    import numpy as np

    rows = [e.profile_values() for e in entries]
    return Profile(**{f: np.asarray([r[f] for r in rows], dtype=dtype) for f in Profile._fields})
