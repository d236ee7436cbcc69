import json
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from sweep.cli import main
from tests.utils import TINY_HF_CONFIG

ROOT = Path(__file__).resolve().parents[1]
GOOD = """
title = "cli test"
convention = "paper"
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
context = [4096, 8192]
"""


def write(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_writes_netcdf_with_cf_metadata(tmp_path, capsys):
    out = tmp_path / "out.nc"
    assert main(["run", str(write(tmp_path, GOOD)), "-o", str(out), "--elasticities"]) == 0
    printed = capsys.readouterr().out
    assert "tokens/W" in printed and "H100 / llama-3.1-70b" in printed
    ds = xr.open_dataset(out)
    assert ds.attrs["Conventions"] == "CF-1.11"
    assert ds.attrs["convention"] == "paper"
    assert ds.attrs["source"].startswith("sweep ")
    assert "sweep run" in ds.attrs["history"] and ds.attrs["history"][:4].isdigit()
    assert json.loads(ds.attrs["grid_spec"])["title"] == "cli test"
    for name in list(ds.data_vars) + ["context", "batch"]:
        assert "long_name" in ds[name].attrs and "units" in ds[name].attrs, name
    assert ds.tokens_per_watt.attrs["units"] == "J-1"
    assert ds.gpu.values.tolist() == ["H100"] and ds.gpu.dtype.kind in "OU"
    assert set(ds.parameter.values) >= {"weight_time_s", "power_x0"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sweep-")]


@pytest.mark.parametrize(
    "text, match",
    [
        (
            GOOD.replace('"H100"', '"H999"'),
            r"no calibrated profile for gpu 'H999'.*available: B200/llama-3.1-70b",
        ),
        (GOOD.replace("[4096, 8192]", "[0]"), r"axes\.context: got 0; allowed: finite integers > 0"),
        (
            GOOD.replace("[4096, 8192]", "[4096.5]"),
            r"axes\.context: got 4096\.5; allowed: finite integers > 0",
        ),
        (GOOD.replace("[4096, 8192]", "[]"), r"axes\.context: axis is empty"),
        ("speed = 3\n" + GOOD, r"unknown key\(s\) \['speed'\]"),
        (GOOD.replace("[axes]", "[axes]\ncolour = [1]"), r"unknown axis \['colour'\]"),
        (GOOD + "[[profiles]]\ngpu = 'X'\n", r"missing required profile key"),
        ("[axes\n", r"malformed TOML"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, text, match):
    out = tmp_path / "out.nc"
    grid = write(tmp_path, text)
    assert main(["run", str(grid), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(grid) in err
    import re

    assert re.search(match, err), err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["grid.toml"]


def test_unreadable_file_and_unwritable_output(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    grid = write(tmp_path, GOOD)
    assert main(["run", str(grid), "-o", str(tmp_path / "missing-dir" / "x.nc")]) == 2
    assert "cannot write output" in capsys.readouterr().err
    # an output path that is a folder cannot be replaced by a file
    (tmp_path / "taken.nc").mkdir()
    assert main(["run", str(grid), "-o", str(tmp_path / "taken.nc"), "-q"]) == 2
    assert "cannot write output" in capsys.readouterr().err


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import sweep.io.output as dataset

    def boom(self, path, **kw):
        Path(path).write_text("partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    grid = write(tmp_path, GOOD)
    assert main(["run", str(grid), "-o", str(tmp_path / "out.nc"), "-q"]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["grid.toml"]
    assert dataset  # imported module patched through xarray


def test_python_api_raises_value_error_with_same_message(tmp_path):
    import sweep

    with pytest.raises(ValueError, match=r"grid\.toml: axes\.context: axis is empty"):
        sweep.run(write(tmp_path, GOOD.replace("[4096, 8192]", "[]")))


def test_list_profiles_shows_provenance(capsys):
    assert main(["list", "profiles"]) == 0
    out = capsys.readouterr().out
    assert "H100 / llama-3.1-70b" in out and "[measured]" in out and "[projected ±20%]" in out


def test_help_and_console_script():
    res = subprocess.run([sys.executable, "-m", "sweep", "run", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--elasticities" in res.stdout and "NetCDF" in res.stdout
    res = subprocess.run([sys.executable, "-m", "sweep", "frobnicate"], capture_output=True, text=True)
    assert res.returncode == 2


@pytest.mark.parametrize(
    "what, expect",
    [
        ("gpus", "H100  (aliases"),
        ("models", "qwen3-235b-a22b"),
        ("workloads", "azure"),
        ("profiles", "B200 / llama-3.1-70b"),
    ],
)
def test_list_catalogs(capsys, what, expect):
    assert main(["list", what]) == 0
    assert expect in capsys.readouterr().out


def test_model_import_adds_to_user_catalog_and_grids_see_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SWEEP_HOME", str(tmp_path / "home"))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY_HF_CONFIG))
    assert main(["model", "import", str(config), "--name", "tiny-llama"]) == 0
    assert (tmp_path / "home" / "models.toml").exists()
    assert main(["model", "import", str(config), "--name", "tiny-llama"]) == 2  # no silent duplicate
    assert "already in this catalog" in capsys.readouterr().err
    import sweep

    ds = sweep.run(
        {"profile": "roofline", "axes": {"gpu": ["H100"], "model": ["tiny-llama"], "context": [8192]}}
    )
    assert int(ds.max_concurrency.squeeze()) > 0
    assert main(["model", "import", str(tmp_path / "missing.json")]) == 2


def test_optimize_command(tmp_path, capsys):
    grid = write(
        tmp_path,
        """
convention = "paper"
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
workload = ["azure"]
topology = ["homogeneous", "pool", "fleetopt"]
b_short = [2048, 4096]
""",
    )
    out = tmp_path / "best.nc"
    assert main(["optimize", str(grid), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "H100 / llama-3.1-70b / azure" in printed and "fleetopt" in printed
    best = xr.open_dataset(out)
    assert float(best.gain_over_homogeneous.squeeze()) > 2
    assert main(["optimize", str(write(tmp_path, GOOD, "instance.toml"))]) == 2
    assert "needs a fleet grid" in capsys.readouterr().err


def test_run_fleet_grid_prints_topology_summary(capsys):
    grid = ROOT / "grids" / "table3.toml"
    assert main(["run", str(grid), "-q"]) == 0
    assert main(["run", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "fleet tokens/W" in out and "fleetopt" in out and "H100 / llama-3.1-70b / azure" in out


@pytest.mark.parametrize(
    "spec",
    [
        {
            "convention": "physical",
            "uncertainty": True,
            "axes": {"gpu": ["B200"], "model": ["llama-3.1-70b"], "context": [8192], "load": [0.5, 1.0]},
        },
        {
            "profile": "roofline",
            "axes": {
                "gpu": ["H100"],
                "model": ["llama-3.1-8b"],
                "tp": [1, 2],
                "weight_dtype": ["bf16", "fp8"],
                "context": [8192],
            },
        },
        {  # fleet outputs (the elasticity variable is labelled in the first case; the fleet elasticity
            # kernel, whose compile dominates this file, is tested in tests/grid/test_fleet_grid.py)
            "axes": {
                "gpu": ["H100"],
                "model": ["llama-3.1-70b"],
                "workload": ["azure"],
                "topology": ["pool"],
                "b_short": [2048, 4096],
                "gamma": [2.0],
            },
        },
    ],
)
def test_every_variable_and_coordinate_is_labelled(tmp_path, spec):
    import sweep

    out = tmp_path / "out.nc"
    sweep.run(spec, out=out)
    ds = xr.open_dataset(out)
    for name in ds.variables:
        assert ds[name].attrs.get("long_name"), name
        if ds[name].dtype.kind in "iuf":
            assert "units" in ds[name].attrs, name


# ------------------------------------------------------------------------------------------------
# sweep calibrate / sweep predict

MEASURED = ROOT / "sweep" / "data" / "measurements" / "mlenergy-v3-chat.csv"
FAMILIES = ROOT / "sweep" / "data" / "measurements" / "mlenergy-v3-families.csv"
MEAS_HEADER = "gpu,model,tp,concurrency,output_tokens,tokens_per_second,power_w"
MEAS_ROW = "H100,llama-3.1-8b,1,32,400,3000,650"


MOE_HEADER = (
    "gpu,model,tp,num_gpus,expert_parallel,data_parallel,concurrency,output_tokens,tokens_per_second,power_w"
)
MOE_ROW = "H100,qwen3-30b-a3b,1,2,2,1,16,500,800,1200"


def _cell(column: str, value: str) -> str:
    """MEAS_ROW with one cell replaced."""
    cells = dict(zip(MEAS_HEADER.split(","), MEAS_ROW.split(",")))
    cells[column] = value
    return ",".join(cells.values())


BAD_MEASUREMENTS = {
    "missing column": (
        "gpu,model,tp,output_tokens,tokens_per_second,power_w\nH100,llama-3.1-8b,1,400,3000,650\n",
        r": missing required column\(s\) concurrency; the header has: gpu, model",
    ),
    "not a number": (
        f"{MEAS_HEADER}\n{MEAS_ROW}\n{_cell('concurrency', 'many')}\n",
        r":3: column 'concurrency': got 'many'",
    ),
    "zero power": (
        f"{MEAS_HEADER}\n{MEAS_ROW}\n{_cell('power_w', '0')}\n",
        r":3: column 'power_w': got '0'; allowed: finite",
    ),
    "unknown gpu": (f"{MEAS_HEADER}\n{MEAS_ROW}\n{_cell('gpu', 'H999')}\n", r":3: column 'gpu': got 'H999';"),
    "unknown model": (
        f"{MEAS_HEADER}\n{MEAS_ROW}\n{_cell('model', 'llama-9')}\n",
        r":3: column 'model': got 'llama-9';",
    ),
    "too few rows": (
        f"{MEAS_HEADER}\n{MEAS_ROW}\n",
        r": 1 rows give 2 residuals, not more than the 7 parameters",
    ),
    # issue #20: the new columns and layouts
    "unknown task": (
        f"{MEAS_HEADER},task\n{MEAS_ROW},gpqa\n{MEAS_ROW},math\n",
        r":3: column 'task': got 'math'; allowed: lm-arena-chat, gpqa, sourcegraph-fim",
    ),
    "EP not dividing the experts": (
        f"{MOE_HEADER}\n{MOE_ROW}\nH100,qwen3-30b-a3b,1,6,6,3,16,500,800,1200\n",
        r":3: columns 'tp', 'num_gpus', 'expert_parallel', 'data_parallel': expert_parallel=6 for qwen3-30b-a3b: "
        r"must divide n_experts=128",
    ),
    "EP larger than the instance": (
        f"{MOE_HEADER}\n{MOE_ROW}\nH100,qwen3-30b-a3b,1,2,4,1,16,500,800,1200\n",
        r":3: column 'expert_parallel': got '4'",
    ),
    "EP on a dense model": (
        f"{MOE_HEADER}\n{MOE_ROW}\nH100,qwen3-8b,1,2,2,1,16,500,800,1200\n",
        r":3: columns 'tp', 'num_gpus', 'expert_parallel', 'data_parallel': expert_parallel=2 for qwen3-8b: "
        r"a dense model has no experts",
    ),
    "mxfp4 on a model without MXFP4 experts": (
        f"{MEAS_HEADER},weight_dtype\n{MEAS_ROW},bf16\n{MEAS_ROW},mxfp4\n",
        r":3: column 'weight_dtype': weight_dtype 'mxfp4' for llama-3.1-8b: its checkpoint does not store MXFP4",
    ),
}


def _one_error_line(capsys, path) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sweep: error: ") and str(path) in err, err
    assert "wrote" not in captured.out
    return err


@pytest.mark.parametrize(
    ("command", "case"),
    [("calibrate", case) for case in BAD_MEASUREMENTS]
    + [("predict", case) for case in BAD_MEASUREMENTS if case != "too few rows"],  # predict fits nothing
)
def test_bad_measurements_exit_2_with_one_line(tmp_path, capsys, command, case):
    import re

    text, match = BAD_MEASUREMENTS[case]
    path = write(tmp_path, text, "runs.csv")
    out = tmp_path / ("cal.toml" if command == "calibrate" else "pred.csv")
    assert main([command, str(path), "-o", str(out)]) == 2
    err = _one_error_line(capsys, path)
    assert re.search(re.escape(str(path)) + match, err), err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]


def test_calibrate_unknown_fit_name(tmp_path, capsys):
    out = tmp_path / "cal.toml"
    assert main(["calibrate", str(MEASURED), "-o", str(out), "--fit", "bandwidth_efficiency,nonsense"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--fit: unknown parameter 'nonsense'; allowed: bandwidth_efficiency, layer_overhead_s" in err
    assert "prompt_tokens" in err and not out.exists()


def test_calibrate_then_predict(tmp_path, capsys):
    """The shipped measurements: CAL.toml with the shipped values, the in-sample table, then predict with it."""
    import tomllib

    from sweep.calibration.store import BUILTIN, load_calibration
    from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS

    cal = tmp_path / "cal.toml"
    assert main(["calibrate", str(MEASURED), str(FAMILIES), "-o", str(cal)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "fitted bandwidth_efficiency, step_overhead_s" in out and "per gpu on 226 rows" in out
    assert f"prompt_tokens: blank in the data; assumed {ASSUMED_PROMPT_TOKENS:g} tokens" in out
    assert (
        "prompt_tokens of task gpqa: fitted" in out and "prompt_tokens of task sourcegraph-fim: fitted" in out
    )
    assert "in-sample: median |ln(predicted / measured)|" in out
    table = out[out.index("in-sample") :].splitlines()
    assert table[1].split() == ["gpu", "rows", "tok/J", "tok/s", "power", "ITL", "tok/J", "bias"]
    assert [line.split()[:2] for line in table[2:4]] == [["B200", "92"], ["H100", "134"]]
    assert f"wrote {cal}" in out
    warned = captured.err.strip().splitlines()
    assert warned and all(line.startswith("sweep: warning: ") for line in warned)
    assert any("H100.attention_latency_s" in line for line in warned)

    written, shipped = load_calibration(cal), load_calibration("mlenergy-v3")
    assert written.fitted == shipped.fitted and set(written.groups) == set(shipped.groups)
    for g, group in shipped.groups.items():
        for n, v in group["values"].items():
            assert written.groups[g]["values"][n] == pytest.approx(v, rel=1e-6, abs=1e-12), (g, n)
    assert [d["sha256"] for d in tomllib.loads(cal.read_text())["data"]] == [
        d["sha256"] for d in tomllib.loads(BUILTIN["mlenergy-v3"].read_text())["data"]
    ]

    pred = tmp_path / "pred.csv"
    assert main(["predict", str(MEASURED), "--calibration", str(cal), "-o", str(pred)]) == 0
    out = capsys.readouterr().out
    assert f"predicted 78 rows with calibration {cal}" in out and "exceed the KV capacity" not in out
    assert "against the measured columns" in out and f"wrote {pred}" in out
    assert pred.read_text().splitlines()[0].endswith("predicted_itl_s,exceeds_kv_capacity")


def test_predict_missing_calibration(tmp_path, capsys):
    out = tmp_path / "pred.csv"
    missing = tmp_path / "nonexistent.toml"
    assert main(["predict", str(MEASURED), "--calibration", str(missing), "-o", str(out)]) == 2
    err = _one_error_line(capsys, missing)
    assert "no such file" in err and not out.exists()


# ------------------------------------------------------------------------------------------------
# sweep run --uncertainty / sweep sensitivity / sweep compare

# B200 (projected ±20 %) × Llama-3.1-70B TP8, roofline: the uncertainty tests' grid shapes (shared compiles)
UNCERTAIN = """
profile = "roofline"
convention = "physical"
tp = 8
[axes]
gpu = ["B200"]
model = ["llama-3.1-70b"]
context = [8192, 32768]
"""
UNCERTAIN_ONE = UNCERTAIN.replace("[8192, 32768]", "[8192]")
COMPARED = UNCERTAIN.replace('gpu = ["B200"]', 'gpu = ["H100", "B200"]')


def _drivers(out: str) -> list:
    """The ranked parameter names of the printed drivers table."""
    lines = out[out.index("drivers of tokens_per_watt") :].splitlines()[1:]
    return [line.split()[1] for line in lines if line.strip()[:1].isdigit()]


def test_run_monte_carlo_prints_ranked_drivers(tmp_path, capsys):
    out = tmp_path / "mc.nc"
    grid = write(tmp_path, UNCERTAIN_ONE)
    assert main(["run", str(grid), "--uncertainty", "--samples", "64", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "drivers of tokens_per_watt at gpu=B200, model=llama-3.1-70b, context=8192" in printed
    assert "standardized regression" in printed
    ranked = _drivers(printed)
    # TDP (1/TDP) and HBM bandwidth carry nearly all the variance; fp8 (bf16 weights) none
    assert set(ranked[:2]) == {"B200.tdp_w", "B200.hbm_bandwidth_bytes_per_s"}
    assert len(ranked) == 5 and ranked[-1] in ("B200.fp8_flops", "B200.fp16_flops")
    ds = xr.open_dataset(out)
    assert ds.sizes["quantile"] == 3 and float(ds.tokens_per_watt_std.squeeze()) > 0
    assert (
        "monte_carlo" in ds.attrs["uncertainty_method"] and "64 joint draws" in ds.attrs["uncertainty_method"]
    )


def test_run_first_order_prints_ranked_drivers(tmp_path, capsys):
    grid = write(tmp_path, UNCERTAIN)
    assert main(["run", str(grid), "--uncertainty", "first_order"]) == 0
    printed = capsys.readouterr().out
    assert "drivers of tokens_per_watt at gpu=B200, model=llama-3.1-70b, context=8192" in printed
    assert "first-order share of variance" in printed
    assert set(_drivers(printed)[:2]) == {"tdp_w", "hbm_bandwidth_bytes_per_s"}


def test_sensitivity_command_writes_the_indices(tmp_path, capsys):
    out = tmp_path / "oat.nc"
    grid = write(tmp_path, UNCERTAIN)
    assert main(["sensitivity", str(grid), "--method", "oat", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "oat indices of tokens_per_watt for 5 parameters, 22 evaluations" in printed
    assert "ranked by swing at gpu=B200" in printed and f"wrote {out}" in printed
    ranking = printed[printed.index("ranked by swing") :].splitlines()[1:6]
    assert ranking[0].split()[0] == "B200.tdp_w"  # ±20 % TDP: 1/0.8 − 1/1.2 = 42 % swing
    ds = xr.open_dataset(out)
    assert set(ds.data_vars) == {"low", "high", "swing"}
    assert ds.attrs["sensitivity_method"] == "oat" and ds.sizes["parameter"] == 5
    assert float(ds.swing.sel(parameter="B200.tdp_w").max()) == pytest.approx(1 / 0.8 - 1 / 1.2, rel=1e-9)


def test_compare_command_prints_the_ratio_table(tmp_path, capsys):
    out = tmp_path / "ratio.nc"
    grid = write(tmp_path, COMPARED)
    args = ["compare", str(grid), "--dim", "gpu", "--numerator", "B200", "--denominator", "H100"]
    assert main([*args, "--samples", "64", "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert (
        printed[0]
        == "tokens_per_watt(gpu=B200) / tokens_per_watt(gpu=H100) under the same joint draws; 64 draws"
    )
    assert printed[1].split() == ["point", "nominal", "mean", "q0.05", "q0.5", "q0.95"]
    rows = [line for line in printed if line.startswith("model=llama-3.1-70b")]
    assert [r.split(",")[1].strip() for r in rows] == ["context=8192", "context=32768"]
    ratio = xr.open_dataset(out)
    for row, context in zip(rows, (8192, 32768)):
        nominal, mean, q05, q50, q95 = map(float, row.split()[-5:])
        at = ratio.sel(model="llama-3.1-70b", context=context).squeeze()
        assert nominal == pytest.approx(float(at.ratio), abs=5e-4)  # printed to 3 decimals
        assert mean == pytest.approx(float(at.ratio_mean), abs=5e-4)
        assert q05 < nominal < q95 and q05 < q50 < q95
    # numbers typed by the coordinate: contexts compare too
    assert (
        main(
            [
                "compare",
                str(grid),
                "--dim",
                "context",
                "--numerator",
                "8192",
                "--denominator",
                "32768",
                "--samples",
                "64",
            ]
        )
        == 0
    )
    assert "tokens_per_watt(context=8192) / tokens_per_watt(context=32768)" in capsys.readouterr().out


def test_compare_command_keeps_the_grids_parameters(tmp_path, capsys):
    out = tmp_path / "ratio.nc"
    grid = write(
        tmp_path,
        COMPARED
        + '[uncertainty.parameters]\ngpu_memory_utilization = { distribution = "normal", sigma = 0.02 }\n',
    )
    args = ["compare", str(grid), "--dim", "gpu", "--numerator", "B200", "--denominator", "H100"]
    assert main([*args, "--samples", "64", "-o", str(out)]) == 0
    ratio = xr.open_dataset(out)
    # only the memory utilization (shared, σ 2 %) is drawn: the ratio moves by well under 1 %, not the
    # ~17 % every projected B200 spec gives
    assert float((ratio.ratio_std / ratio.ratio_mean).max()) < 0.01


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (
            '[uncertainty.parameters]\n"B300.tdp_w" = { distribution = "uniform", width = 0.1 }\n',
            r"uncertainty\.parameters: unknown parameter 'B300\.tdp_w'; allowed: a field \(",
        ),
        (
            '[uncertainty.parameters]\ntdp_w = { distribution = "uniform", width = -0.1 }\n',
            r"uncertainty\.parameters\.tdp_w\.width: got -0\.1; allowed: numbers in \(0, 1\)",
        ),
        ("[uncertainty]\nsamples = 1\n", r"uncertainty\.samples: got 1; allowed: integers >= 2"),
        (
            '[uncertainty.correlation]\nparameters = ["B200.tdp_w", "B200.memory_bytes"]\n'
            "matrix = [[1.0, 0.5], [0.4, 1.0]]\n",
            r"uncertainty\.correlation\.matrix: not a correlation matrix",
        ),
        (
            '[uncertainty.correlation]\nparameters = ["B200.tdp_w", "B200.memory_bytes"]\n'
            "matrix = [[1.0, 1.0], [1.0, 1.0]]\n",
            r"uncertainty\.correlation\.matrix: not positive definite",
        ),
    ],
    ids=["unknown parameter", "negative width", "samples 1", "non-symmetric matrix", "singular matrix"],
)
def test_bad_uncertainty_exits_2_with_one_line_and_no_output(tmp_path, capsys, table, match):
    import re

    grid = write(tmp_path, UNCERTAIN + table)
    out = tmp_path / "out.nc"
    assert main(["run", str(grid), "-o", str(out)]) == 2
    err = _one_error_line(capsys, grid)
    assert re.search(re.escape(str(grid)) + ": " + match, err), err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["grid.toml"]


def test_bad_uncertainty_options_on_the_command_line(tmp_path, capsys):
    grid = write(tmp_path, UNCERTAIN)
    out = tmp_path / "out.nc"
    assert main(["run", str(grid), "--uncertainty", "--samples", "1", "-o", str(out)]) == 2
    assert "uncertainty.samples: got 1; allowed: integers >= 2" in _one_error_line(capsys, grid)
    assert main(["sensitivity", str(grid), "--method", "sobol", "--samples", "1", "-o", str(out)]) == 2
    assert "--samples 1: allowed: integers >= 2" in capsys.readouterr().err
    compared = write(tmp_path, COMPARED, "compared.toml")
    args = ["compare", str(compared), "--dim", "gpu", "--numerator", "B300", "--denominator", "H100"]
    assert main([*args, "--samples", "64", "-o", str(out)]) == 2
    assert "compare: gpu = 'B300' is not in the grid; allowed: H100, B200" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("tp", ["1099511627776", "1e300"])
def test_huge_tp_is_refused_at_once(tmp_path, capsys, tp):
    """Issue #21: the TP check listed every degree up to tp (tp = 2^40 hung); it now stops at the heads."""
    grid = write(
        tmp_path,
        f'convention = "physical"\nprofile = "roofline"\n[axes]\ngpu = ["H100"]\nmodel = ["llama-3.1-8b"]\n'
        f"tp = [{tp}]\ncontext = [8192]\n",
        "g.toml",
    )
    out = tmp_path / "out.nc"
    assert main(["run", str(grid), "-o", str(out), "-q"]) == 2
    err = _one_error_line(capsys, grid)
    if float(tp) > 2**53:  # beyond the largest count the engine holds exactly: refused by the grid spec
        assert "axes.tp: got 1e+300; allowed: finite integers > 0, at most 2^53" in err
    else:
        assert "must divide n_heads=32" in err and "allowed tp: 1, 2, 4, 8, 16, 32" in err
    assert not out.exists()
