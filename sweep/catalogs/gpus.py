"""GPU hardware catalog: `sweep/data/gpus.toml` plus user files and inline grid tables.

Names resolve case-insensitively through canonical names (`A100`, `H100`, `H200`, `B200`, `GB200`)
and aliases (`H100-SXM5`, `A100-SXM-80GB`, ...). An unknown name raises `UnknownNameError` with
close-name suggestions. Users add SKUs with extra TOML files in the same format, or inline dicts
(e.g. a grid's `[gpus.MY-GPU]` table): a user entry with an existing name replaces it (keeping its aliases unless it gives its own).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp

from sweep import validate as V
from sweep.catalogs.provenance import PROVENANCE_KEYS, Catalog, parse_entry, read_toml
from sweep.errors import InvalidValueError, MissingFieldError
from sweep.physics.profile import LOGISTIC_FIELDS

CATALOG_PATH = Path(__file__).parent.parent / "data" / "gpus.toml"

REQUIRED_FIELDS = (
    "memory_bytes",
    "hbm_bandwidth_bytes_per_s",
    "fp16_flops",
    "tdp_w",
    "price_per_gpu_hour",
    "prefill_chunk_tokens",
)
OPTIONAL_FIELDS = (
    "fp8_flops",
    "power_idle_w",
    "power_nominal_w",
    "power_k",
    "power_x0",
    "interconnect_bytes_per_s",
)
GPU_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
# field -> (rule of `sweep.validate.RULES`, integer)
RULES = {
    "memory_bytes": ("positive", False),
    "hbm_bandwidth_bytes_per_s": ("positive", False),
    "fp16_flops": ("positive", False),
    "fp8_flops": ("positive", False),
    "tdp_w": ("positive", False),
    "price_per_gpu_hour": ("nonnegative", False),
    "prefill_chunk_tokens": ("positive", True),
    "power_idle_w": ("nonnegative", False),
    "power_nominal_w": ("positive", False),
    "power_k": ("positive", False),
    "power_x0": ("finite", False),
    "interconnect_bytes_per_s": ("positive", False),
}


@dataclass(frozen=True)
class GpuEntry:
    """One SKU: numeric `specs` (Value with provenance) and metadata (aliases, description)."""

    name: str
    specs: dict
    aliases: tuple = ()
    description: str = ""
    origin: str = ""

    def value(self, key: str, default=float("nan")) -> float:
        v = self.specs.get(key)
        return v.value if v is not None else default

    @property
    def supports_fp8(self) -> bool:
        return "fp8_flops" in self.specs

    @property
    def has_logistic_power(self) -> bool:
        return all(k in self.specs for k in LOGISTIC_FIELDS)

    def field_values(self) -> dict:
        """Every GPU_FIELDS value as a number (NaN for absent optional fields): `arrays` without JAX."""
        return {k: self.value(k) for k in GPU_FIELDS}

    def arrays(self) -> dict:
        """Spec dict of float64 arrays (NaN for absent optional fields), as `derive_profile` takes."""
        return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in self.field_values().items()}


def gpu_entry_from_table(name: str, table: dict, origin: str = "") -> GpuEntry:
    """Validate and build one entry from a TOML/inline table (format of `sweep/data/gpus.toml`)."""
    if not isinstance(table, dict):
        raise InvalidValueError(f"gpu '{name}': expected a table of specs, got {type(table).__name__}")
    where = f"{origin}: gpu " if origin else "gpu "
    specs, meta = parse_entry(name, table, numeric_keys=GPU_FIELDS, where=where)
    V.keys(
        f"{where}'{name}'",
        [*specs, *meta],
        [*GPU_FIELDS, "aliases", "description", *PROVENANCE_KEYS],
        REQUIRED_FIELDS,
    )
    present = [k for k in LOGISTIC_FIELDS if k in specs]
    if present and len(present) != len(LOGISTIC_FIELDS):
        raise MissingFieldError(f"{where}'{name}': logistic power needs all of {', '.join(LOGISTIC_FIELDS)}")
    for k, v in specs.items():
        V.number(f"{where}'{name}'", k, v.value, *RULES[k])
    V.ordered(
        f"{where}'{name}'",
        {k: specs[k].value for k in ("power_idle_w", "power_nominal_w", "tdp_w") if k in specs},
    )
    return GpuEntry(
        name=name,
        specs=specs,
        aliases=tuple(meta.get("aliases", ())),
        description=str(meta.get("description", "")),
        origin=origin,
    )


class GpuCatalog(Catalog):
    """GPU name -> GpuEntry (case-insensitive, aliases accepted)."""

    kind = "gpu"


def load_gpu_catalog(extra_files=(), inline: dict | None = None) -> GpuCatalog:
    """Built-in catalog, then each extra TOML file, then `inline` {name: table} (later wins)."""
    cat = GpuCatalog()
    for path in (CATALOG_PATH, *extra_files):
        for name, table in read_toml(path).items():
            cat.add(gpu_entry_from_table(name, table, origin=str(path)))
    for name, table in (inline or {}).items():
        cat.add(gpu_entry_from_table(name, table, origin="inline"))
    return cat


@functools.cache
def default_gpu_catalog() -> GpuCatalog:
    """The built-in catalog, read once."""
    return load_gpu_catalog()


def get_gpu(name: str, catalog: GpuCatalog | None = None) -> GpuEntry:
    """Catalog entry for `name` (default catalog unless given)."""
    return (catalog or default_gpu_catalog()).get(name)


def gpu_arrays(entries) -> dict:
    """Stack GpuEntries into a dict of float64 arrays of shape (K,) (NaN where a field is absent)."""
    entries = list(entries)
    return {k: jnp.asarray([e.value(k) for e in entries], dtype=jnp.float64) for k in GPU_FIELDS}
