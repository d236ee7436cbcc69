"""Reading TOML catalog files with per-value provenance, and the project's input-error classes.

Catalog format (used by `sweep/data/gpus.toml` and `sweep/data/models.toml`): each entry is a TOML
table. Entry-level keys `source`, `quality`, `uncertainty` are defaults for the entry's values.
Each numeric value is either a bare number or an inline table
    key = { value = 3.35e12, source = "...", quality = "measured", uncertainty = 0.0 }
whose keys override the entry defaults. `quality` is one of QUALITIES; `uncertainty` is a relative
half-width (0.20 = ±20 %). Other keys (strings, lists, booleans) are metadata, kept as they are.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sweep import validate as V
from sweep.errors import (
    InvalidValueError,
    SweepInputError,  # noqa: F401 (re-exported)
    UnknownNameError,
)
from sweep.vocabulary import QUALITIES

PROVENANCE_KEYS = ("source", "quality", "uncertainty")


@dataclass(frozen=True)
class Value:
    """One catalog number with its provenance."""

    value: float
    source: str = ""
    quality: str = "measured"
    uncertainty: float = 0.0


def read_toml(path) -> dict:
    """Parse a TOML file; a syntax error becomes a one-line `SweepInputError` naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SweepInputError(f"catalog file '{path}' does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise SweepInputError(f"catalog file '{path}': invalid TOML ({e})") from None


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def parse_entry(name: str, table: dict, numeric_keys=None, where: str = "") -> tuple[dict, dict]:
    """Split one catalog table into (values: key -> Value, metadata: key -> other).

    Booleans in `numeric_keys` become 0/1 values. `numeric_keys=None` accepts any numeric key.
    """
    defaults = {
        "source": table.get("source", ""),
        "quality": table.get("quality", "measured"),
        "uncertainty": V.number(
            f"{where}{name}", "uncertainty", table.get("uncertainty", 0.0), "nonnegative"
        ),
    }
    values, meta = {}, {}
    for key, raw in table.items():
        if key in PROVENANCE_KEYS:
            continue
        numeric = numeric_keys is None or key in numeric_keys
        if isinstance(raw, dict) and "value" in raw:
            unknown = set(raw) - {"value", *PROVENANCE_KEYS}
            if unknown:
                raise InvalidValueError(
                    f"{where}{name}.{key}: unknown provenance key(s) {sorted(unknown)}; "
                    f"allowed: value, {', '.join(PROVENANCE_KEYS)}"
                )
            prov = {**defaults, **{k: raw[k] for k in PROVENANCE_KEYS if k in raw}}
            v = raw["value"]
        else:
            prov, v = defaults, raw
        if numeric and (_is_number(v) or isinstance(v, bool)):
            if prov["quality"] not in QUALITIES:
                raise InvalidValueError(
                    f"{where}{name}.{key}: quality '{prov['quality']}'; allowed: {', '.join(QUALITIES)}"
                )
            V.number(f"{where}{name}", key, int(v) if isinstance(v, bool) else v)
            unc = V.number(f"{where}{name}", f"{key}.uncertainty", prov["uncertainty"], "nonnegative")
            values[key] = Value(float(v), str(prov["source"]), prov["quality"], float(unc))
        else:
            meta[key] = v
    meta.update({k: table[k] for k in PROVENANCE_KEYS if k in table})
    return values, meta


def suggest(name: str, candidates, n: int = 3) -> str:
    """' Did you mean ...?' text for an unknown name (case-insensitive difflib match), or ''."""
    lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lower), n=n, cutoff=0.5)
    if not close:
        return ""
    return " did you mean " + ", ".join(f"'{lower[c]}'" for c in close) + "?"


def unknown_name(kind: str, name: str, candidates) -> UnknownNameError:
    """Build the one-line error for an unknown catalog name."""
    cands = sorted(set(candidates))
    return UnknownNameError(f"unknown {kind} '{name}';{suggest(name, cands)} known: {', '.join(cands)}")


@dataclass
class Catalog:
    """Name -> entry (entries have `.name` and `.aliases`), looked up case-insensitively, aliases
    accepted. Subclasses name their `kind` ("gpu", "model") for error messages."""

    entries: dict = field(default_factory=dict)
    kind = "entry"

    def add(self, entry) -> None:
        """Add or replace an entry; a replacement without aliases keeps the old entry's aliases."""
        old = self.entries.get(entry.name)
        if old is not None and not entry.aliases:
            entry = dataclasses.replace(entry, aliases=old.aliases)
        self.entries[entry.name] = entry

    def _lookup(self) -> dict:
        table = {}
        for e in self.entries.values():  # aliases first so canonical names win on a clash
            for a in e.aliases:
                table[a.lower()] = e.name
        for e in self.entries.values():
            table[e.name.lower()] = e.name
        return table

    def resolve(self, name: str) -> str:
        """Canonical name of `name` (case-insensitive, aliases accepted)."""
        canon = self._lookup().get(str(name).lower())
        if canon is None:
            known = list(self.entries) + [a for e in self.entries.values() for a in e.aliases]
            raise unknown_name(self.kind, str(name), known)
        return canon

    def get(self, name: str):
        """The entry of `name` (see `resolve`)."""
        return self.entries[self.resolve(name)]

    def names(self) -> list:
        return list(self.entries)

    def __contains__(self, name) -> bool:
        return str(name).lower() in self._lookup()
