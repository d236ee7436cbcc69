"""Tables from results (sweep.io.tabular): `sweep show`, `sweep run --best`, `-o FILE.csv`.

One small result is computed once for the module (a plain run; its kernel is the one most tests compile);
elasticity, quantile and pool variables are added to a copy with known values, so the tests cost no
further compile.
"""

import csv
import warnings

import numpy as np
import pytest
import xarray as xr

from sweep.cli import main
from sweep.errors import SweepInputError
from sweep.io import tabular
from sweep.io.output import annotate, write_netcdf
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
GRID_TOML = """
convention = "paper"
[axes]
gpu = ["H100", "B200"]
model = ["llama-3.1-70b"]
context = [2048, 8192, 32768]
batch = ["max", 8]
"""
PARAMETERS = ["weight_time_s", "power_x0"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """(path, Dataset) of the small grid, written by sweep.run(grid, out=path)."""
    path = tmp_path_factory.mktemp("tabular") / "out.nc"
    ds = run_to_file(GRID, path)
    return str(path), ds


@pytest.fixture(scope="module")
def extended(result, tmp_path_factory):
    """The result with elasticity(parameter, ...), a Monte Carlo quantile and a pool variable added."""
    _, ds = result
    ds = ds.copy()
    shape = tuple(ds.tokens_per_watt.shape)
    ds.coords["parameter"] = np.array(PARAMETERS, dtype=object)
    ds.coords["quantile"] = [0.05, 0.95]
    ds.coords["pool"] = np.array(["short", "long"], dtype=object)
    dims = ds.tokens_per_watt.dims
    ds["elasticity"] = (("parameter", *dims), np.arange(2 * np.prod(shape), dtype=float).reshape(2, *shape))
    ds["tokens_per_watt_quantile"] = xr.concat(
        [0.9 * ds.tokens_per_watt, 1.1 * ds.tokens_per_watt], "quantile"
    )
    ds["instances"] = (dims + ("pool",), np.ones(shape + (2,)))
    ds = annotate(ds)
    path = tmp_path_factory.mktemp("tabular") / "extended.nc"
    write_netcdf(ds, path)
    return str(path), ds


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_show_without_options_prints_the_header_and_rows(result, capsys):
    path, ds = result
    assert main(["show", path]) == 0
    out = capsys.readouterr().out
    assert "dims: gpu=2, model=1, context=3, batch=2" in out
    assert "batch" in out and "max, 8" in out  # batch 0 is labelled max
    assert "tokens_per_watt" in out and "J-1" in out and "convention paper" in out
    assert "[0 infeasible, 1 feasible]" in out  # flag meanings
    assert "H100     2048  max" in out  # the first table row


def test_show_slice_parses_values_to_the_coordinate_dtype(result, capsys):
    path, ds = result
    assert (
        main(
            [
                "show",
                path,
                "--sel",
                "gpu=b200,batch=max",
                "--sel",
                "context=..8192",
                "--vars",
                "tokens_per_watt",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "at gpu=B200, model=llama-3.1-70b, batch=max"
    rows = [line.split() for line in out[3:]]
    expected = ds.tokens_per_watt.sel(gpu="B200", batch=0, context=[2048, 8192]).squeeze()
    assert [int(r[0]) for r in rows] == [2048, 8192]
    np.testing.assert_allclose([float(r[1]) for r in rows], expected.values, rtol=1e-3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sel", "gpu=B300"], "--sel gpu=B300: no such gpu; allowed: H100, B200"),
        (["--sel", "gpus=B200"], "unknown dim 'gpus'; allowed: gpu, model, context, batch"),
        (["--sel", "context=5000"], "no such context; allowed: 2048, 8192, 32768"),
        (["--sel", "batch=most"], "no such batch; allowed: max, 8"),
        (["--sel", "gpu"], "expected DIM=VALUE"),
        (["--vars", "tok"], "--vars: no variable 'tok'; allowed: "),
        (["--best", "tok"], "--best: no numeric variable 'tok'; allowed: "),
        (
            ["--best", "tokens_per_watt", "--over", "tp"],
            "'tp' is not a dim of tokens_per_watt; allowed: gpu,",
        ),
        (["--over", "gpu"], "--over/--min: they go with --best"),
        (["--limit", "0"], "--limit: got 0"),
        (["-o", "x.parquet"], "Parquet needs pyarrow"),
    ],
)
def test_show_bad_options_exit_2_with_one_line(result, capsys, args, message):
    path, _ = result
    assert main(["show", path, *args]) == 2
    err = one_line_error(capsys)
    assert message in err
    if "no variable" in message or "no numeric variable" in message:
        assert "tokens_per_watt" in err.partition("allowed: ")[2]


def test_show_unreadable_result_exits_2(tmp_path, capsys):
    assert main(["show", str(tmp_path / "missing.nc")]) == 2
    assert "missing.nc: cannot read result: no such file" in one_line_error(capsys)
    (tmp_path / "grid.toml").write_text(GRID_TOML)
    assert main(["show", str(tmp_path / "grid.toml")]) == 2
    assert "not a NetCDF file or zarr store" in one_line_error(capsys)


def test_show_limits_long_tables(result, capsys):
    path, _ = result
    assert main(["show", path, "--sel", "gpu=H100", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "... 4 more rows (6 in all): --all prints every row" in out
    assert main(["show", path, "--all", "--vars", "tokens_per_watt"]) == 0
    assert "more row" not in capsys.readouterr().out


def test_best_is_the_argmax_over_the_named_dims(result):
    _, ds = result
    picked = tabular.best(ds, "tokens_per_watt", ["gpu"], also=["gpu_power"])
    assert picked.tokens_per_watt.dims == ("model", "context", "batch")
    np.testing.assert_array_equal(picked.tokens_per_watt.values, ds.tokens_per_watt.max("gpu").values)
    np.testing.assert_array_equal(picked.gpu.values, ds.gpu.values[ds.tokens_per_watt.argmax("gpu").values])
    np.testing.assert_array_equal(
        picked.gpu_power.values, ds.gpu_power.isel(gpu=ds.tokens_per_watt.argmax("gpu")).values
    )
    low = tabular.best(ds, "tokens_per_watt", ["gpu", "batch"], minimize=True)
    assert low.tokens_per_watt.dims == ("model", "context")
    np.testing.assert_array_equal(low.tokens_per_watt.values, ds.tokens_per_watt.min(["gpu", "batch"]).values)
    single = tabular.best(ds, "tokens_per_watt", None)  # every dim: the single best point
    assert single.tokens_per_watt.dims == () and float(single.tokens_per_watt) == float(
        ds.tokens_per_watt.max()
    )


def test_best_skips_infeasible_points_and_marks_empty_rows(result):
    _, ds = result
    ds = ds.copy(deep=True)
    ds["feasible"] = ds.feasible.copy(data=np.ones_like(ds.feasible.values))
    ds["feasible"][{"gpu": 1}] = 0  # B200 infeasible everywhere
    ds["tokens_per_watt"][{"gpu": 0, "context": 2}] = np.nan  # H100 at 32K: NaN
    picked = tabular.best(ds, "tokens_per_watt", ["gpu"], also=["bound"])
    assert set(picked.gpu.sel(context=[2048, 8192]).values.ravel()) == {"H100"}
    assert set(picked.gpu.sel(context=32768).values.ravel()) == {"-"}
    assert np.isnan(picked.tokens_per_watt.sel(context=32768)).all()
    assert np.isnan(picked.bound.sel(context=32768)).all()  # nothing chosen: no value of the others either
    assert "skipped: 6 point(s) with feasible = 0" in picked.attrs["best"]


def test_run_best_and_csv_output(result, tmp_path, capsys):
    _, ds = result
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID_TOML)
    out = tmp_path / "out.csv"
    assert main(["run", str(grid), "-q", "--best", "tokens_per_watt", "--over", "gpu", "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("largest tokens_per_watt over gpu; one row per model, context, batch")
    assert printed[4].split() == [
        "2048",
        "max",
        "B200",
        f"{ds.tokens_per_watt.sel(gpu='B200', context=2048, batch=0).item():.4g}",
    ]
    rows = list(csv.reader(out.open()))
    assert rows[0][:4] == ["gpu", "model", "context", "batch"]  # a CSV table, not NetCDF
    assert "tokens_per_watt [J-1]" in rows[0] and "gpu_power [W]" in rows[0]
    assert len(rows) == 1 + 12 and rows[1][:4] == ["H100", "llama-3.1-70b", "2048", "max"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sweep-")]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--best", "tokens_per_wat"],
            "--best: no output variable 'tokens_per_wat'; allowed: max_concurrency,",
        ),
        (
            ["--best", "tokens_per_watt", "--over", "tp"],
            "--over: no dim 'tp'; allowed: gpu, model, context, batch",
        ),
        (["--min"], "--over/--min: they go with --best"),
        (["-o", "out.parquet"], "Parquet needs pyarrow"),
    ],
)
def test_run_bad_answers_fail_before_computing(tmp_path, capsys, args, message):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID_TOML)
    assert main(["run", str(grid), *args]) == 2
    err = one_line_error(capsys)
    assert message in err
    assert str(grid) in err or "out.parquet" in err
    assert [p.name for p in tmp_path.iterdir()] == ["grid.toml"]


def test_csv_has_one_row_per_point_and_columns_per_label(extended, tmp_path):
    import pandas as pd

    _, ds = extended
    path = tmp_path / "table.csv"
    assert tabular.write_csv(ds, path) == 12
    table = pd.read_csv(path)
    assert len(table) == 12
    assert {"elasticity_weight_time_s", "elasticity_power_x0"} <= set(table.columns)
    assert {"tokens_per_watt_quantile_0.05 [J-1]", "tokens_per_watt_quantile_0.95 [J-1]"} <= set(
        table.columns
    )
    assert {"instances_short", "instances_long"} <= set(table.columns)
    assert list(table.batch[:2]) == ["max", "8"]
    # row order is C order over (gpu, model, context, batch); max_concurrency is repeated over batch
    np.testing.assert_array_equal(table["tokens_per_watt [J-1]"], ds.tokens_per_watt.values.ravel())
    np.testing.assert_array_equal(
        table.elasticity_power_x0, ds.elasticity.sel(parameter="power_x0").values.ravel()
    )
    np.testing.assert_array_equal(
        table.max_concurrency, np.repeat(ds.max_concurrency.values.ravel(), ds.sizes["batch"])
    )


def test_show_prints_elasticity_and_quantile_columns_and_writes_a_slice(extended, tmp_path, capsys):
    path, ds = extended
    assert main(["show", path, "--sel", "gpu=H100", "--vars", "tokens_per_watt*,elasticity"]) == 0
    header = capsys.readouterr().out.splitlines()[1].split()
    assert header == [
        "context",
        "batch",
        "tokens_per_watt",
        "tokens_per_watt_quantile_0.05",
        "tokens_per_watt_quantile_0.95",
        "elasticity_weight_time_s",
        "elasticity_power_x0",
    ]
    out = tmp_path / "slice.csv"
    assert main(["show", path, "--sel", "gpu=H100,context=8192", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["batch"] for r in rows] == ["max", "8"] and {r["gpu"] for r in rows} == {"H100"}
    assert float(rows[0]["elasticity_power_x0"]) == float(
        ds.elasticity.sel(parameter="power_x0", gpu="H100", context=8192, batch=0).squeeze()
    )


def test_show_best_over_a_variable_with_a_quantile_dim(extended, capsys):
    path, ds = extended
    assert (
        main(["show", path, "--best", "tokens_per_watt_quantile", "--over", "gpu", "--sel", "batch=max"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        "largest tokens_per_watt_quantile over gpu; one row per quantile, model, context"
    )
    assert len(out) == 4 + 2 * 3  # title, fixed dims, names, units, then quantile x context rows


def test_select_parses_floats_ranges_and_repeated_keys(extended):
    _, ds = extended
    assert tabular.parse_selection(ds, ["quantile=0.95"], "x") == {"quantile": [1]}
    assert tabular.parse_selection(ds, ["context=8192..", "gpu=B200,gpu=H100"], "x") == {
        "context": [1, 2],
        "gpu": [0, 1],
    }
    with pytest.raises(SweepInputError, match=r"x: --sel context=8192\.5: no such context"):
        tabular.parse_selection(ds, ["context=8192.5"], "x")


def test_show_reads_a_zarr_store(result, tmp_path, capsys):
    path, ds = result
    store = tmp_path / "out.zarr"
    with warnings.catch_warnings():  # zarr 3: fixed-width strings have no stable v3 spec yet
        warnings.simplefilter("ignore")
        # the fixture's lazily opened result, not a second netCDF4 handle on the same file: reopening it in
        # this process crashed HDF5 once in CI (segfault in netCDF4.Dataset, 2026-12-07; not reproduced alone)
        ds.to_zarr(store)
    assert main(["show", str(store), "--sel", "gpu=H100,batch=max", "--vars", "tokens_per_watt"]) == 0
    assert (
        f"{ds.tokens_per_watt.sel(gpu='H100', batch=0, context=2048).item():.4g}" in capsys.readouterr().out
    )
