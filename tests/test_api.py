"""The public API: every name in `sweep.__all__` exists, is documented, and its examples run."""

import doctest

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
