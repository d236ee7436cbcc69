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
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


# ---------------------------------------------------------------------------------------------
# Provenance in output files: a short summary attribute, the full record in coordinate variables

PROVENANCE_ATTRIBUTE = "profile_provenance"
MAX_SUMMARY_BYTES = 8000  # the summary attribute stays under 8 KB (`ncdump -h` stays readable)
PROVENANCE_NOTE = (
    "the full record is in the coordinate variables provenance (one JSON record per distinct value, "
    "dim provenance_entry) and provenance_index (provenance_profile, provenance_field: the entry of "
    "each profile's value, -1 none); sweep.catalogs.provenance.read_provenance(ds) rebuilds it"
)


def provenance_fields(table) -> tuple[dict, dict]:
    """The provenance of every value a grid's profile table used, for its Dataset: (attrs, coords).

    `table.provenance` maps profile keys ("H100/llama-3.1-70b") to {field: {value, source, quality,
    uncertainty}}. The same record (a GPU's TDP, shared by every model) is stored once:
    - `provenance` (dim `provenance_entry`): each distinct record as a JSON string;
    - `provenance_index` (dims `provenance_profile`, `provenance_field`): the entry of each profile's
      field (-1 where the profile has no such field);
    - attrs[PROVENANCE_ATTRIBUTE]: a JSON summary under MAX_SUMMARY_BYTES (counts of values per quality
      and per source, most used first, and where the rest is).
    The variables are coordinates, not data variables: they are not grid outputs.
    `read_provenance(ds)` rebuilds `table.provenance` from a Dataset.
    """
    provenance = getattr(table, "provenance", table) or {}
    profiles = sorted(provenance)
    fields = sorted({f for record in provenance.values() for f in record})
    entries, index = {}, np.full((len(profiles), len(fields)), -1, dtype=np.int32)
    qualities, sources = {}, {}
    column = {f: j for j, f in enumerate(fields)}
    for i, key in enumerate(profiles):
        for f, record in provenance[key].items():
            text = json.dumps(record, sort_keys=True)
            index[i, column[f]] = entries.setdefault(text, len(entries))
            quality, source = str(record.get("quality", "")), str(record.get("source", ""))
            qualities[quality] = qualities.get(quality, 0) + 1
            sources[source] = sources.get(source, 0) + 1
    summary = {
        "profiles": len(profiles),
        "values": int((index >= 0).sum()),
        "distinct_entries": len(entries),
        "qualities": dict(sorted(qualities.items())),
        "sources": dict(sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))),
        "full_record": PROVENANCE_NOTE,
    }
    text = _fit_summary(summary)
    coords = {
        "provenance_profile": (
            ("provenance_profile",),
            np.asarray(profiles, dtype=object),
            {"long_name": "profile key of the provenance record (gpu/model)"},
        ),
        "provenance_field": (
            ("provenance_field",),
            np.asarray(fields, dtype=object),
            {"long_name": "profile, GPU or model field of the provenance record"},
        ),
        "provenance": (
            ("provenance_entry",),
            np.asarray(list(entries), dtype=object),
            {"long_name": "distinct provenance record: JSON of value, source, quality, uncertainty"},
        ),
        "provenance_index": (
            ("provenance_profile", "provenance_field"),
            index,
            {
                "long_name": "index along provenance_entry of each profile's value (-1: no such field)",
                "units": "1",
            },
        ),
    }
    return {PROVENANCE_ATTRIBUTE: text}, coords


def _fit_summary(summary: dict) -> str:
    """The summary as JSON, its least used sources dropped (and counted) until it fits MAX_SUMMARY_BYTES."""
    sources = list(summary["sources"].items())
    kept = len(sources)
    while True:
        shown = {**summary, "sources": dict(sources[:kept])}
        if kept < len(sources):
            shown["sources_not_listed"] = len(sources) - kept
        text = json.dumps(shown)
        if len(text.encode()) <= MAX_SUMMARY_BYTES or kept == 0:
            return text
        kept = max(0, kept - max(1, (len(text.encode()) - MAX_SUMMARY_BYTES) // 80))


def read_provenance(ds) -> dict:
    """{profile key: {field: {value, source, quality, uncertainty}}} of a sweep Dataset (see
    `provenance_fields`); a file written before the record moved out of the attribute holds it all
    in the `profile_provenance` attribute."""
    if "provenance_index" not in ds.variables:
        return json.loads(ds.attrs[PROVENANCE_ATTRIBUTE])
    records = [json.loads(str(r)) for r in ds["provenance"].values]
    index = np.asarray(ds["provenance_index"].values)
    fields = [str(f) for f in ds["provenance_field"].values]
    return {
        str(key): {f: records[i] for f, i in zip(fields, row) if i >= 0}
        for key, row in zip(ds["provenance_profile"].values, index)
    }
