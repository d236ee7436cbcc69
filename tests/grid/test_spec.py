import json
import tomllib

import numpy as np
import pytest
import tomli_w

import sweep
from sweep import SweepInputError
from sweep.calibration.store import BUILTIN, load_calibration
from sweep.catalogs.provenance import read_provenance
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


# ------------------------------------------------------------------------------------------------
# Python values (issue #13): NumPy scalars and arrays, tuples and ranges, normalised once in `parse`


def test_numpy_values_tuples_and_ranges_become_plain_python_values():
    g = parse(
        {
            "axes": {
                "gpu": np.array(["H100"]),
                "model": ("llama-3.1-70b",),
                "context": np.array([4096, 8192], dtype=np.int32),
                "batch": range(1, 3),
                "mean_length_fraction": (np.float32(0.25), 0.5),
            },
            "load": np.float64(0.85),
            "price_per_gpu_hour": np.int64(3),
            "profiles": [{"gpu": "H100", "model": "x", "tp": np.int64(8), "kv_blocks": np.float64(1024.0)}],
        }
    )
    assert g.axes["context"] == [4096, 8192] and g.axes["batch"] == [1, 2]
    assert g.axes["gpu"] == ["H100"] and g.axes["mean_length_fraction"] == [0.25, 0.5]
    assert g.params["load"] == 0.85 and g.params["price_per_gpu_hour"] == 3.0
    assert type(g.params["load"]) is float and all(type(c) is int for c in g.axes["context"])
    # spec.raw (the grid_spec attribute) holds plain values: JSON without a fallback encoder
    raw = json.loads(json.dumps(g.raw))
    assert raw["axes"]["context"] == [4096, 8192] and raw["axes"]["batch"] == [1, 2]
    assert raw["profiles"][0]["tp"] == 8 and type(g.raw["profiles"][0]["kv_blocks"]) is float
    assert parse(spec(context=np.float64(8192.0))).axes["context"] == [8192]  # integral: fine


@pytest.mark.parametrize(
    "value, match",
    [
        (np.float64(8192.5), r"axes\.context: got 8192\.5; allowed: finite integers > 0"),
        (np.bool_(True), r"axes\.context: got True; allowed: finite integers > 0"),  # bools are not numbers
        (np.array([4096, 4096]), r"duplicate values: 4096 is given twice"),
        (np.array([np.nan]), r"axes\.context: got nan"),
    ],
)
def test_bad_numpy_values_are_input_errors(value, match):
    with pytest.raises(SweepInputError, match=match):
        parse(spec(context=value), "grid.toml")


def test_price_per_gpu_hour_is_a_point_axis_of_instance_grids():
    g = parse(spec(price_per_gpu_hour=[2.0, 4]))
    assert g.axes["price_per_gpu_hour"] == [2.0, 4.0] and "price_per_gpu_hour" not in g.params
    assert "price_per_gpu_hour" not in parse(BASE).params  # default: the profile's (catalog) price
    with pytest.raises(SweepInputError, match=r"price_per_gpu_hour: got -1; allowed: finite numbers >= 0"):
        parse(spec(price_per_gpu_hour=[-1]))
    fleet = {
        "axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "workload": ["azure"], "topology": ["pool"]}
    }
    with pytest.raises(SweepInputError, match=r"price_per_gpu_hour: only applies to a single-instance grid"):
        parse({**fleet, "price_per_gpu_hour": 2.0})


def test_file_errors(tmp_path):
    with pytest.raises(SweepInputError, match="no such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("title = 'x\n[axes\n")
    with pytest.raises(SweepInputError, match=r"bad\.toml: malformed TOML"):
        load(bad)
    with pytest.raises(SweepInputError, match="is a directory"):
        load(tmp_path)


# ------------------------------------------------------------------------------------------------
# calibration (docs/calibration.md §5)

ROOFLINE = {**BASE, "profile": "roofline"}


@pytest.mark.parametrize(
    "bad, match",
    [
        ({**BASE, "calibration": "mlenergy-v3"}, r'calibration: .*needs profile = "roofline"'),
        (
            {**ROOFLINE, "convention": "paper", "calibration": "mlenergy-v3"},
            r'calibration: .*convention = "physical"',
        ),
        ({**ROOFLINE, "calibration": "absent.toml"}, r"calibration: no such file 'absent\.toml'; built-in"),
        ({**ROOFLINE, "calibration": 3}, r"calibration: got 3; allowed: a calibration file or mlenergy-v3"),
        ({**ROOFLINE, "calibration": ""}, r"calibration: got ''"),
        ({**ROOFLINE, "power_model": "utilization"}, r"power_model: 'utilization' is the fitted power model"),
        (
            {**ROOFLINE, "calibration": "mlenergy-v3", "power_model": "tdp_fraction"},
            r"power_model: got 'tdp_fraction' with a calibration; allowed: utilization",
        ),
    ],
)
def test_bad_calibration_keys(bad, match):
    with pytest.raises(SweepInputError, match=r"^grid\.toml: " + match):
        parse(bad, "grid.toml")


def test_calibration_key(tmp_path):
    g = parse({**ROOFLINE, "calibration": "mlenergy-v3"})
    assert (g.calibration, g.power_model) == ("mlenergy-v3", "utilization")
    assert (parse(ROOFLINE).calibration, parse(ROOFLINE).power_model) == (None, "tdp_fraction")
    (tmp_path / "cal.toml").write_text("")  # a path relative to the grid file's folder
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'profile = "roofline"\ncalibration = "cal.toml"\n[axes]\ngpu = ["H100"]\nmodel = ["x"]\ncontext = [4096]\n'
    )
    assert load(grid).calibration == str(tmp_path / "cal.toml")


CALIBRATED_GRID = {
    "profile": "roofline",
    "calibration": "mlenergy-v3",
    "uncertainty": True,  # implies elasticities
    # batches below n_max (53 at 8K): the relaxed model's n is the exact one, so finite differences of the
    # exact model check the elasticities
    "axes": {"gpu": ["H100", "A100"], "model": ["llama-3.1-8b"], "context": [8192], "batch": [8, 32]},
}


@pytest.fixture(scope="module")
def calibrated_grid(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SWEEP_HOME", str(tmp_path_factory.mktemp("sweep-home")))  # no user catalog
        return sweep.run(CALIBRATED_GRID)


def test_calibrated_grid_records_calibration(calibrated_grid):
    ds = calibrated_grid
    assert ds.attrs["calibration"] == "mlenergy-v3"
    assert json.loads(ds.attrs["grid_spec"])["calibration"] == "mlenergy-v3"
    provenance = read_provenance(ds)
    cal = load_calibration("mlenergy-v3")
    h100, a100 = provenance["H100/llama-3.1-8b"], provenance["A100/llama-3.1-8b"]
    for name in cal.fitted:
        assert h100[name]["quality"] == "calibrated" and a100[name]["quality"] == "projected"
        assert h100[name]["source"] == "calibration mlenergy-v3: fitted"
        assert "calibration mlenergy-v3: mean of the calibrated GPUs" in a100[name]["source"]
        assert h100[name]["value"] == cal.groups["H100"]["values"][name]
        value, se = h100[name]["value"], cal.groups["H100"]["standard_errors"][name]
        assert h100[name]["uncertainty"] == pytest.approx(3**0.5 * se / value if value else 0.0, rel=1e-12)
        assert a100[name]["uncertainty"] > 0
    for entry in (h100, a100):
        assert entry["flops_efficiency"]["source"].startswith("calibration mlenergy-v3: fixed prior")
        assert entry["flops_efficiency"]["value"] == 0.6 and entry["flops_efficiency"]["uncertainty"] == 0.0
    assert np.isfinite(ds.tokens_per_watt.values).all() and (ds.tokens_per_watt.values > 0).all()
    assert (ds.tokens_per_watt_rel_uncertainty.values > 0).all()
    assert set(cal.fitted) <= set(ds.parameter.values)
    assert (ds.concurrency.values == [8, 32]).all()


def _tokens_per_watt_with(tmp_path, parameter: str, factor: float):
    """tokens/W of CALIBRATED_GRID with `parameter` scaled by `factor` in every group of a calibration copy."""
    doc = tomllib.loads(BUILTIN["mlenergy-v3"].read_text())
    for group in doc["groups"].values():
        group["values"][parameter] *= factor
    path = tmp_path / f"{parameter}-{factor!r}.toml"
    path.write_text(tomli_w.dumps(doc))
    spec = {**CALIBRATED_GRID, "calibration": str(path), "uncertainty": False}
    return sweep.run(spec).tokens_per_watt


@pytest.mark.parametrize("parameter", ["step_overhead_s", "bandwidth_efficiency"])
def test_calibrated_elasticity_matches_finite_difference(tmp_path, calibrated_grid, parameter):
    """d ln(tok/W) / d ln θ of a calibrated mechanism against a central difference through re-written
    calibration files (A100's projected value is the groups' mean, so it scales by the same factor)."""
    h = 1e-4
    up, down = (_tokens_per_watt_with(tmp_path, parameter, 1 + s * h) for s in (1, -1))
    fd = (np.log(up) - np.log(down)) / (2 * h)
    got = calibrated_grid.elasticity.sel(parameter=parameter)
    assert (np.abs(fd.values) > 1e-3).all()  # the mechanism matters at every point
    np.testing.assert_allclose(got.transpose(*fd.dims).values, fd.values, rtol=1e-6, atol=1e-9)
