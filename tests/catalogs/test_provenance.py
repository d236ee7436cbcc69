"""Provenance in output files (sweep.catalogs.provenance.provenance_fields / read_provenance): a short
summary attribute, the full record deduplicated in coordinate variables, recoverable exactly."""

import json
from types import SimpleNamespace

import numpy as np
import xarray as xr

from sweep.catalogs.provenance import MAX_SUMMARY_BYTES, provenance_fields, read_provenance


def big_provenance(n_gpus=5, n_models=80):
    """A dense-family-like record: every GPU's specs repeated under each of its models, long sources."""
    gpu_fields = [f"gpu_field_{i}" for i in range(12)]
    model_fields = [f"model_field_{i}" for i in range(20)]
    out = {}
    for g in range(n_gpus):
        for m in range(n_models):
            record = {
                f: {
                    "value": float(g * 100 + i),
                    "source": f"GPU {g} datasheet, field {i}: " + "a long citation " * 6,
                    "quality": "projected" if g else "measured",
                    "uncertainty": 0.2 if g else 0.0,
                }
                for i, f in enumerate(gpu_fields)
            }
            record.update(
                {
                    f: {
                        "value": float(m % 7 + i),
                        "source": "sweep dense family (integer shapes)",
                        "quality": "projected",
                        "uncertainty": 0.0,
                    }
                    for i, f in enumerate(model_fields)
                }
            )
            out[f"GPU{g}/dense-{m}b"] = record
    return out


def dataset_with(provenance):
    attrs, coords = provenance_fields(SimpleNamespace(provenance=provenance))
    ds = xr.Dataset({"tokens_per_watt": ("gpu", np.ones(2))}, coords={"gpu": ["A", "B"]})
    ds = ds.assign_coords(coords)
    ds.attrs.update(attrs)
    return attrs, ds


def test_summary_attribute_is_small_and_the_record_is_recoverable_from_netcdf(tmp_path):
    provenance = big_provenance()
    assert len(json.dumps(provenance)) > 1_000_000  # what the attribute used to hold
    attrs, ds = dataset_with(provenance)
    summary = attrs["profile_provenance"]
    assert len(summary.encode()) <= MAX_SUMMARY_BYTES < 8192
    parsed = json.loads(summary)
    assert parsed["profiles"] == 5 * 80 and parsed["values"] == 5 * 80 * 32
    assert parsed["qualities"] == {"measured": 80 * 12, "projected": 5 * 80 * 32 - 80 * 12}
    assert parsed["sources"]["sweep dense family (integer shapes)"] == 5 * 80 * 20  # most used first
    assert next(iter(parsed["sources"])) == "sweep dense family (integer shapes)"
    # each distinct record once: 5 GPUs × 12 specs, and the 26 distinct model values (0 … 25)
    assert parsed["distinct_entries"] == ds.sizes["provenance_entry"] == 5 * 12 + 26
    assert "provenance" in ds.coords and "provenance" not in ds.data_vars  # not a grid output
    path = tmp_path / "p.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        assert read_provenance(back) == provenance
        assert len(back.attrs["profile_provenance"].encode()) < 8192


def test_many_sources_are_counted_not_listed():
    provenance = {
        f"G/m{i}": {"x": {"value": 1.0, "source": f"source {i} " + "x" * 200, "quality": "measured"}}
        for i in range(200)
    }
    attrs, ds = dataset_with(provenance)
    parsed = json.loads(attrs["profile_provenance"])
    assert len(attrs["profile_provenance"].encode()) <= MAX_SUMMARY_BYTES
    assert len(parsed["sources"]) + parsed["sources_not_listed"] == 200
    assert read_provenance(ds) == provenance


def test_a_missing_field_is_minus_one_and_an_old_file_reads_from_the_attribute():
    provenance = {
        "H100/a": {"tdp_w": {"value": 700.0, "source": "s", "quality": "measured", "uncertainty": 0.0}},
        "H100/b": {"n_layers": {"value": 32.0, "source": "t", "quality": "measured", "uncertainty": 0.0}},
    }
    _, ds = dataset_with(provenance)
    assert sorted(ds.provenance_index.values.ravel().tolist()) == [-1, -1, 0, 1]
    assert read_provenance(ds) == provenance
    old = xr.Dataset(attrs={"profile_provenance": json.dumps(provenance)})
    assert read_provenance(old) == provenance
