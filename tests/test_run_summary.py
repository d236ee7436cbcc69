"""`sweep run`'s summary table: columns as wide as their labels and values, so huge contexts (1e9, 1e12, 9e15)
and long values never run together; big whole labels are compact (1e12) only where that is exact."""

import re

import numpy as np
import pytest
import xarray as xr

from sweep.cli.run import _column_label, summary


def result(contexts, values, models=("llama-3.1-8b", "llama-3.1-405b")) -> xr.Dataset:
    """A minimal instance result: tokens_per_watt on (gpu, model, context, batch)."""
    data = np.asarray(values, dtype=float).reshape(1, len(models), len(contexts), 1)
    ds = xr.Dataset(
        {"tokens_per_watt": (("gpu", "model", "context", "batch"), data)},
        coords={
            "gpu": ["H100"],
            "model": list(models),
            "context": np.asarray(contexts, dtype=np.int64),
            "batch": [0],
        },
    )
    ds.attrs["convention"] = "paper"
    return ds


def columns(line: str, n: int) -> list:
    """The last n fields of a table line, each with its right edge (the column's alignment)."""
    fields = [(m.group(), m.end()) for m in re.finditer(r"\S+", line)]
    return fields[-n:]


def assert_aligned(text: str, labels: list) -> None:
    header, *rows = text.split("\n")[1:]
    got = columns(header, len(labels))
    assert [f for f, _ in got] == labels, header
    edges = [e for _, e in got]
    for row in rows:
        cells = columns(row, len(labels))
        assert [e for _, e in cells] == edges, f"misaligned:\n{text}"
        starts = [e - len(f) for f, e in cells]
        assert all(s - prev >= 2 for s, prev in zip(starts, [0] + edges)), f"run together:\n{text}"


def test_summary_columns_of_huge_contexts_do_not_run_together():
    ds = result([8192, 10**9, 10**12, 9 * 10**15], [6.463, 6.792e-05, 6.793e-08, 7.548e-12] * 2)
    text = summary(ds, 1.0)
    assert_aligned(text, ["8192", "1e9", "1e12", "9e15"])
    assert "100000000010000000000009000000000000000" not in text


def test_summary_labels_that_are_not_exact_when_compact_are_printed_in_full():
    contexts = [1234567890123, 2**53, 10**7]
    ds = result(contexts, [-1.234567e-300, 1.0, 2.0] * 2)
    text = summary(ds, 1.0)
    assert_aligned(text, ["1234567890123", "9007199254740992", "1e7"])


def test_summary_first_column_fits_long_setup_names():
    long = "a-very-long-user-model-name-imported-from-a-hub-config-" + "x" * 30
    ds = result([8192, 10**12], [1.0, 2.0, 3.0, 4.0], models=("m", long))
    text = summary(ds, 1.0)
    assert_aligned(text, ["8192", "1e12"])
    assert f"H100 / {long}  " in text


@pytest.mark.parametrize(
    "value, label",
    [
        (np.int64(8192), "8192"),
        (np.int64(10**9), "1e9"),
        (np.int64(10**12), "1e12"),
        (np.int64(9 * 10**15), "9e15"),
        (np.int64(1234567890), "1234567890"),
        (np.int64(12_500_000), "1.25e7"),
        (np.str_("fleetopt"), "fleetopt"),
        (0.5, "0.5"),
    ],
)
def test_column_labels(value, label):
    assert _column_label(value) == label
