"""`sweep show` tables stay bounded: the provenance record is never crossed with the grid's rows (`--vars
'*'`), a whole table over the memory budget is refused before its first row, and `--attrs -o` writes the
attributes (it used to ignore `-o`)."""

import csv

import numpy as np
import pytest
import xarray as xr

from sweep.cli import main
from tests.utils import run_to_file

GRID = {
    "convention": "paper",
    "axes": {
        "gpu": ["H100", "B200"],
        "model": ["llama-3.1-70b"],
        "context": [2048, 8192, 32768],
        "batch": ["max", 8],
    },
}
POINTS = 12


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """(path, Dataset) of a 12-point result with its provenance coordinates."""
    path = tmp_path_factory.mktemp("bounds") / "small.nc"
    ds = run_to_file(GRID, path)
    assert "provenance" in ds.coords and "provenance_index" in ds.coords
    return str(path), ds


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def read_csv(path) -> list:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_show_star_csv_has_one_row_per_point_and_no_provenance(result, tmp_path):
    path, _ = result
    out = tmp_path / "star.csv"
    assert main(["show", path, "--vars", "*", "-o", str(out)]) == 0
    rows = read_csv(out)
    assert len(rows) == 1 + POINTS  # was 12 x the provenance dims, cross-multiplied
    assert not [c for c in rows[0] if c.startswith("provenance")]
    assert "tokens_per_watt [J-1]" in rows[0] and "parameters" in rows[0]


def test_show_star_on_screen_has_one_row_per_point(result, capsys):
    path, _ = result
    assert main(["show", path, "--vars", "*", "--all"]) == 0
    out = capsys.readouterr().out
    assert "provenance" not in out
    assert len([line for line in out.splitlines() if line.startswith(("H100", "B200"))]) == POINTS


def test_show_provenance_named_alone_is_its_own_table(result, tmp_path):
    path, ds = result
    out = tmp_path / "provenance.csv"
    assert main(["show", path, "--vars", "provenance", "-o", str(out)]) == 0
    rows = read_csv(out)
    assert rows[0] == ["provenance_entry", "provenance"]
    assert len(rows) == 1 + ds.sizes["provenance_entry"]


def test_show_provenance_with_grid_variables_exits_2(result, capsys, tmp_path):
    path, _ = result
    out = tmp_path / "mixed.csv"
    assert main(["show", path, "--vars", "tokens_per_watt,provenance", "-o", str(out)]) == 2
    err = one_line_error(capsys)
    assert "--vars: provenance (dims provenance_*) is a table of its own" in err
    assert "allowed: --vars provenance alone" in err
    assert not out.exists()


def test_show_table_over_the_memory_budget_is_refused_before_writing(result, capsys, tmp_path):
    path, _ = result
    out = tmp_path / "big.csv"
    assert main(["show", path, "--vars", "tokens_per_watt", "--max-memory", "100B", "-o", str(out)]) == 2
    err = one_line_error(capsys)
    assert f"the table has {POINTS} rows x 5 columns" in err
    assert "over the memory budget of 100 B (max_memory" in err
    assert "allowed: a smaller slice (--sel) or fewer variables (--vars)" in err
    assert not out.exists()


def test_show_all_over_the_budget_from_the_environment_is_refused(result, capsys, monkeypatch):
    path, _ = result
    monkeypatch.setenv("SWEEP_MAX_MEMORY", "100B")
    assert main(["show", path, "--vars", "tokens_per_watt", "--all"]) == 2
    assert "budget of 100 B (SWEEP_MAX_MEMORY" in one_line_error(capsys)
    assert main(["show", path, "--vars", "tokens_per_watt"]) == 0  # the first 40 rows need no budget


def test_show_bad_max_memory_exits_2(result, capsys):
    path, _ = result
    assert main(["show", path, "--max-memory", "lots"]) == 2
    assert "cannot read size 'lots'" in one_line_error(capsys)


def test_show_cross_product_of_billions_of_rows_is_refused_at_once(tmp_path, capsys):
    # two variables over disjoint dims: 60,000 x 60,000 = 3.6e9 rows (the runaway `--vars '*'` case)
    path = tmp_path / "wide.nc"
    xr.Dataset({"a": ("x", np.zeros(60_000)), "b": ("y", np.zeros(60_000))}).to_netcdf(path)
    out = tmp_path / "t.csv"
    assert main(["show", str(path), "--vars", "a,b", "--max-memory", "8GiB", "-o", str(out)]) == 2
    assert "the table has 3,600,000,000 rows x 4 columns" in one_line_error(capsys)
    assert not out.exists()


def test_show_attrs_with_output_writes_attribute_value_rows(result, capsys, tmp_path):
    path, ds = result
    out = tmp_path / "a.csv"
    assert main(["show", path, "--attrs", "-o", str(out)]) == 0
    rows = read_csv(out)
    assert rows[0] == ["attribute", "value"]
    assert dict(rows[1:]) == {k: str(v) for k, v in ds.attrs.items()}
    assert f"wrote {out} ({len(ds.attrs)} attributes" in capsys.readouterr().out


def test_show_attrs_to_stdout_is_a_clean_csv(result, capsys):
    path, ds = result
    assert main(["show", path, "--attrs", "-o", "-"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.reader(captured.out.splitlines()))
    assert rows[0] == ["attribute", "value"] and len(rows) == 1 + len(ds.attrs)
    assert "wrote standard output" in captured.err


def test_show_attrs_with_a_table_option_exits_2(result, capsys):
    path, _ = result
    assert main(["show", path, "--attrs", "--sel", "gpu=H100"]) == 2
    assert (
        "--attrs: it shows the global attributes, so it takes no --sel, --vars or --best"
        in one_line_error(capsys)
    )
