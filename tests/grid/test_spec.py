import pytest

from sweep import SweepInputError
from sweep.grid.spec import BATCH_MAX, expand_range, load, parse

BASE = {"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [4096]}}


def spec(**axes):
    return {"axes": {**BASE["axes"], **axes}}


def test_defaults_and_core_dims():
    g = parse(BASE)
    assert g.axes["batch"] == [BATCH_MAX]
    assert g.params == {"mean_length_fraction": 0.5, "load": 1.0}
    assert (g.convention, g.profile, g.dtype, g.elasticities) == ("physical", "calibrated", "float64", False)


@pytest.mark.parametrize(
    "table, want",
    [
        ({"start": 2048, "stop": 131072, "spacing": "pow2"}, [2048, 4096, 8192, 16384, 32768, 65536, 131072]),
        ({"start": 1, "stop": 10, "step": 3}, [1, 4, 7, 10]),
        ({"start": 0.1, "stop": 0.5, "num": 5}, [0.1, 0.2, 0.3, 0.4, 0.5]),
        ({"start": 1, "stop": 1000, "num": 4, "spacing": "geometric"}, [1, 10, 100, 1000]),
    ],
)
def test_ranges(table, want):
    assert expand_range("f", "k", table) == pytest.approx(want)


def test_scalar_parameter_or_axis():
    g = parse({**spec(mean_length_fraction=[0.25, 0.5]), "load": 0.85})
    assert g.axes["mean_length_fraction"] == [0.25, 0.5] and g.params["load"] == 0.85
    assert parse({**BASE, "batch": 8}).axes["batch"] == [8]
    assert parse(spec(batch=[1, "max", 64])).axes["batch"] == [1, BATCH_MAX, 64]


@pytest.mark.parametrize(
    "bad, match",
    [
        (spec(context=[0]), r"axes\.context: got 0; allowed: finite integers > 0"),
        (spec(context=[-4096]), r"axes\.context: got -4096; allowed: finite integers > 0"),
        (spec(context=[4096.5]), r"axes\.context: got 4096\.5; allowed: finite integers > 0"),
        (spec(context=[]), r"axes\.context: axis is empty"),
        (spec(context=["4k"]), r"axes\.context"),
        (spec(batch=[0]), r'positive integers or "max"'),
        (spec(batch=["all"]), r'positive integers or "max"'),
        (spec(load=[1.5]), r"axes\.load: got 1\.5; allowed: numbers in \(0, 1\]"),
        (spec(widget=[1]), r"unknown axis \['widget'\]; allowed axes: gpu, model"),
        ({**BASE, "colour": "red"}, r"unknown key\(s\) \['colour'\]; allowed keys"),
        ({"axes": {"gpu": ["H100"], "model": ["x"]}}, r"axes\.context: required axis is missing"),
        ({**BASE, "convention": "exact"}, r"convention: got 'exact'; allowed: paper, physical"),
        ({**BASE, "dtype": "float16"}, r"dtype: got 'float16'; allowed: float64, float32"),
        (spec(context={"start": 3000, "stop": 8192, "spacing": "pow2"}), r"powers of two"),
        (spec(context={"start": 1, "stop": 8}), r"range table has keys \['start', 'stop'\]"),
        (spec(context=[4096, 4096]), r"duplicate values: 4096 is given twice; allowed: distinct values"),
        ({**BASE, "load": 0.85, "axes": {**BASE["axes"], "load": [0.5]}}, r"both as a scalar"),
    ],
)
def test_bad_specs_name_the_key(bad, match):
    with pytest.raises(SweepInputError, match=match):
        parse(bad, "grid.toml")


def test_errors_are_value_errors_and_name_the_file():
    with pytest.raises(ValueError, match=r"^grid\.toml: "):
        parse(spec(context=[0]), "grid.toml")


def test_file_errors(tmp_path):
    with pytest.raises(SweepInputError, match="no such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("title = 'x\n[axes\n")
    with pytest.raises(SweepInputError, match=r"bad\.toml: malformed TOML"):
        load(bad)
    with pytest.raises(SweepInputError, match="is a directory"):
        load(tmp_path)
