"""Catalog values with provenance: every number says where it comes from.

In a catalog TOML entry a value is either a bare number, inheriting the entry's `source`,
`quality` and `uncertainty`, or an inline table `{ value, source, quality, uncertainty }`.
"""

from __future__ import annotations

from dataclasses import dataclass

QUALITIES = ("measured", "calibrated", "projected")
META_KEYS = ("source", "quality", "uncertainty")


@dataclass(frozen=True)
class Provenance:
    source: str
    quality: str  # measured | calibrated | projected
    uncertainty: float  # relative half-width (0.2 = ±20 %); 0 where not projected


def split_entry(entry: dict, where: str, *, error=ValueError) -> tuple[dict, dict]:
    """Split a catalog entry into ({key: value}, {key: Provenance}) using entry-level defaults.

    Non-numeric keys (names, labels) are returned as values without provenance.
    """
    default_source = str(entry.get("source", where))
    default_quality = entry.get("quality", "calibrated")
    default_unc = entry.get("uncertainty", 0.0)
    values, provenance = {}, {}
    for key, raw in entry.items():
        if key in META_KEYS:
            continue
        if isinstance(raw, dict):
            if "value" not in raw:
                raise error(f"{where}: key {key!r} is a table without 'value' (allowed keys: value, {', '.join(META_KEYS)})")
            unknown = set(raw) - {"value", *META_KEYS}
            if unknown:
                raise error(f"{where}: key {key!r} has unknown field(s) {sorted(unknown)} (allowed: value, {', '.join(META_KEYS)})")
            value = raw["value"]
            prov = Provenance(
                str(raw.get("source", default_source)),
                raw.get("quality", default_quality),
                float(raw.get("uncertainty", default_unc if raw.get("quality", default_quality) == "projected" else 0.0)),
            )
        else:
            value = raw
            prov = Provenance(default_source, default_quality, float(default_unc))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            values[key] = value
            continue
        if prov.quality not in QUALITIES:
            raise error(f"{where}: key {key!r} has quality {prov.quality!r} (allowed: {', '.join(QUALITIES)})")
        values[key] = value
        provenance[key] = prov
    return values, provenance
