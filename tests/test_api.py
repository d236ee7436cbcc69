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
