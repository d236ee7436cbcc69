"""The public API: every name in `sweep.__all__` exists, is documented, and its examples run."""

import doctest

import numpy as np
import pytest

import sweep

FUNCTIONS = [n for n in sweep.__all__ if not n.startswith("__")]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_public_name_is_documented(name):
    obj = getattr(sweep, name)
    assert obj.__doc__ and len(obj.__doc__.strip()) > 40, f"sweep.{name} needs a docstring"


@pytest.mark.parametrize("name", [n for n in FUNCTIONS if ">>>" in (getattr(sweep, n).__doc__ or "")])
def test_docstring_examples_run(name):
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(getattr(sweep, name), f"sweep.{name}", globs={"sweep": sweep}):
        runner.run(test)
    assert runner.failures == 0, f"sweep.{name}: {runner.failures} example(s) failed"


def test_examples_exist_for_the_main_entry_points():
    for name in ("run", "evaluate", "profile_for", "gpu_catalog", "model_catalog", "dense_family"):
        assert ">>>" in getattr(sweep, name).__doc__


def test_a_name_outside_the_api_is_an_attribute_error():
    with pytest.raises(AttributeError):
        sweep.calibrated_table  # noqa: B018


def test_public_functions_stay_functions_after_their_modules_are_imported():
    """A submodule named like a public function would replace it on the package once imported."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(sweep.__path__, "sweep."):
        if module.name != "sweep.__main__":
            importlib.import_module(module.name)
    for name in FUNCTIONS:
        assert not isinstance(getattr(sweep, name), type(sweep)), f"sweep.{name} is a module"


BASE = {"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"]}}


@pytest.mark.parametrize(
    "context",
    [np.int64(8192), np.array([4096, 8192]), range(4096, 8193, 4096), (4096, 8192), [np.int32(4096), 8192.0]],
    ids=["numpy-scalar", "numpy-array", "range", "tuple", "mixed-list"],
)
def test_run_takes_numpy_values_ranges_and_tuples(context):
    ds = sweep.run({"axes": {**BASE["axes"], "context": context}})
    assert list(ds.context.values) == list(np.atleast_1d(np.asarray(context, dtype=np.int64)))
    assert ds.context.dtype == np.int64


def test_progress_true_false_or_a_callable(capsys):
    spec = {"axes": {**BASE["axes"], "context": [4096, 8192]}, "chunk_points": 1024}
    calls = []
    sweep.run(spec, progress=lambda done, total, elapsed_s: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]
    sweep.run(spec, progress=False)
    sweep.run(spec, progress=True)  # a short run prints nothing
    assert capsys.readouterr().err == ""
    with pytest.raises(sweep.SweepInputError, match="progress"):
        sweep.run(spec, progress="yes")


def test_geometric_range_on_an_integer_axis_is_rounded_and_reported():
    context = {"start": 1000, "stop": 4000, "num": 9, "spacing": "geometric"}
    with pytest.warns(sweep.SweepWarning, match=r"axes\.context: range rounded to integers: 9 values"):
        ds = sweep.run({"axes": {**BASE["axes"], "context": context}})
    assert list(ds.context.values) == [round(v) for v in np.geomspace(1000, 4000, 9)]
    batch = {"start": 1, "stop": 4, "num": 7, "spacing": "geometric"}  # 1, 1.26, 1.59, 2, ... -> duplicates
    with pytest.warns(sweep.SweepWarning, match="duplicates dropped"):
        ds = sweep.run({"axes": {**BASE["axes"], "context": [8192], "batch": batch}})
    assert list(ds.batch.values) == sorted(set(round(v) for v in np.geomspace(1, 4, 7)))


# ------------------------------------------------------------------------------------------------
# Physical sanity (issue #13 item 3): model context limits, model sizes, cost per million tokens
# (first-principles grids: tests/grid/test_roofline_grid.py; tables: tests/grid/test_tables.py)

FLOAT_OUTPUTS = ("concurrency", "iteration_time", "tokens_per_second", "gpu_power", "tokens_per_watt")
BEYOND = {**BASE["axes"], "context": [8192, 262144]}  # Llama-3.1-70B: at most 131072 tokens
SAID = r"model 'llama-3\.1-70b' supports at most 131072 context tokens \(max_context_tokens\); context 262144"


def test_context_beyond_the_models_maximum_is_flagged_and_nan_in_the_physical_convention():
    with pytest.warns(sweep.SweepWarning, match=SAID + r" beyond it: .*NaN there \(physical convention\)"):
        ds = sweep.run({"axes": BEYOND})
    flag = ds.exceeds_model_context
    assert flag.dims == ("gpu", "model", "context") and flag.values.ravel().tolist() == [0, 1]
    assert flag.attrs["flag_meanings"] == "within_model_context exceeds_model_context"
    for name in (*FLOAT_OUTPUTS, "instance_power", "cost_per_mtok"):
        assert np.isfinite(ds[name].sel(context=8192)).all() and np.isnan(ds[name].sel(context=262144)).all()
    assert ds.max_concurrency.sel(context=262144).item() == 4 and ds.feasible.sel(context=262144).item() == 1
    # the model's sizes, from the catalog, as coordinates on `model`
    assert ds.parameters.dims == ("model",) and ds.parameters.attrs["units"] == "1"
    assert (
        ds.parameters.item() == pytest.approx(70.55e9, rel=1e-3)
        and ds.active_parameters.item() == ds.parameters.item()
    )
    # cost from the H100 profile's price, $4.02 per GPU-hour, every GPU of the TP8 instance paid for
    want = 4.02 * 8 / (ds.tokens_per_second.sel(context=8192) * 3600) * 1e6
    np.testing.assert_allclose(ds.cost_per_mtok.sel(context=8192), want, rtol=1e-12)
    assert ds.cost_per_mtok.attrs["long_name"].startswith("cost in US dollars per million output tokens")
    # the provenance record: coordinates (not grid outputs), each distinct record once
    from sweep.catalogs.provenance import read_provenance

    assert "provenance" in ds.coords and "provenance_index" in ds.coords and "provenance" not in ds.data_vars
    record = read_provenance(ds)["H100/llama-3.1-70b"]
    assert record["kv_blocks"]["value"] == 65536 and record["price_per_gpu_hour"]["value"] == 4.02


def test_paper_convention_keeps_its_numbers_beyond_the_context_and_prices_from_an_axis():
    from sweep.catalogs.profiles import load_catalog

    grid = {"convention": "paper", "axes": {**BEYOND, "price_per_gpu_hour": np.array([2.0, 4.0])}}
    with pytest.warns(sweep.SweepWarning, match=SAID + r" beyond it: .*values kept \(paper convention\)"):
        ds = sweep.run(grid)
    assert ds.exceeds_model_context.values.ravel().tolist() == [0, 1]
    values = load_catalog()[("H100", "llama-3.1-70b")].profile_values()  # the profile without a limit
    unlimited = sweep.evaluate(sweep.Profile.from_mapping(values), 262144.0, 0.0, convention="paper")
    for name in FLOAT_OUTPUTS:
        got = ds[name].sel(context=262144).isel(price_per_gpu_hour=0).item()
        assert got == pytest.approx(float(unlimited[name]), rel=1e-12)
    tokens_per_s = ds.tokens_per_second.isel(price_per_gpu_hour=0)
    for price in (2.0, 4.0):  # cost = price_per_gpu_hour × tp / (tokens per second × 3600) × 1e6
        want = price * 8 / (tokens_per_s * 3600) * 1e6
        np.testing.assert_allclose(ds.cost_per_mtok.sel(price_per_gpu_hour=price), want, rtol=1e-12)
    assert ds.price_per_gpu_hour.attrs["units"] == "1" and "price_per_gpu_hour" not in ds.attrs


SMALL = {"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [8192]}}


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(elasticities="no"), r"sweep.run: elasticities: got 'no' \(str\); allowed: True, False or None"),
        (dict(elasticities=1), r"elasticities: got 1 \(int\)"),
        (dict(resume="yes"), r"sweep.run: resume: got 'yes'"),
        (dict(distributed=0.0), r"sweep.run: distributed: got 0.0"),
        (dict(out=5), r"sweep.run: out: got 5 \(int\); allowed: a path \(str or os.PathLike\) or None"),
    ],
)
def test_run_refuses_flags_that_are_not_bools_and_outputs_that_are_not_paths(kwargs, text):
    """Issue #21: a string was taken as true and out=5 gave a bare TypeError."""
    with pytest.raises(sweep.SweepInputError, match=text) as info:
        sweep.run(SMALL, **kwargs)
    assert "\n" not in str(info.value)
    assert "elasticity" in sweep.run(SMALL, elasticities=np.True_)  # NumPy booleans are booleans
