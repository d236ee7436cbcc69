"""Output names: no command's output replaces one of its inputs; a name says what is written; `-o -`.

Every refusal exits 2 with one line before any work, and leaves every file in the folder byte for byte
as it was (`refused`). Inputs are the files on the command line and the files a grid names
(calibration, catalogs, workload CDFs, the user catalog); the output is compared after resolving
symlinks and by inode (hard links); a streamed run's `OUT.partial` and a Zarr store folder count too.
"""

import csv
import io
import os
import shutil
from pathlib import Path

import pytest

import sweep
from sweep.cli import main
from sweep.errors import SweepInputError
from sweep.io import files
from tests.utils import run_to_file

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = ROOT / "sweep" / "data" / "measurements" / "mlenergy-v3-chat.csv"
CALIBRATION = ROOT / "sweep" / "data" / "calibrations" / "mlenergy-v3.toml"
WORKLOAD = ROOT / "sweep" / "data" / "workloads" / "azure.json"
GRID = {
    "convention": "paper",
    "axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [2048, 8192], "batch": ["max", 8]},
}
GRID_TOML = """
convention = "paper"
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
context = [2048, 8192]
batch = ["max", 8]
"""
ROOFLINE_TOML = """
profile = "roofline"
calibration = "cal.toml"
gpu_catalogs = ["gpus.toml"]
model_catalogs = ["models.toml"]
[axes]
gpu = ["H100"]
model = ["llama-3.1-8b"]
context = [2048]
"""
FLEET_TOML = """
arrival_rate = 1000.0
ttft_p99_s = 0.5
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
workload = ["{workload}"]
topology = ["homogeneous"]
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The bytes of a small result (NetCDF), computed once."""
    path = tmp_path_factory.mktemp("names") / "r.nc"
    run_to_file(GRID, path)
    return path.read_bytes()


@pytest.fixture
def folder(tmp_path, saved):
    """A folder with a grid, a result, measurements, a calibration, a workload and a config file."""
    (tmp_path / "g.toml").write_text(GRID_TOML)
    (tmp_path / "r.nc").write_bytes(saved)
    shutil.copy(MEASUREMENTS, tmp_path / "in.csv")
    shutil.copy(MEASUREMENTS, tmp_path / "more.csv")
    shutil.copy(CALIBRATION, tmp_path / "cal.toml")
    shutil.copy(WORKLOAD, tmp_path / "w.json")
    (tmp_path / "gpus.toml").write_text("")
    (tmp_path / "models.toml").write_text("")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "roofline.toml").write_text(ROOFLINE_TOML)
    return tmp_path


def snapshot(root: Path) -> dict:
    """{relative path: bytes (files) or None (folders, links)} of everything under `root`."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        out[key] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return out


def refused(argv, folder: Path, capsys, *message) -> str:
    """Run `sweep argv` in `folder`: exit 2, one line on stderr holding every `message`, nothing written."""
    before = snapshot(folder)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert main(argv) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for part in message:
        assert part in err, err
    assert snapshot(folder) == before
    return err


# ----------------------------------------------------------------------------------------------------
# an output that is one of the command's inputs


def test_run_refuses_output_that_is_the_grid_file(folder, capsys):
    refused(
        ["run", "g.toml", "-o", "g.toml"],
        folder,
        capsys,
        "g.toml: -o: is also an input (the grid file g.toml); allowed: a new file name",
    )


def test_run_refuses_a_symlink_to_the_grid_file(folder, capsys):
    (folder / "link.nc").symlink_to("g.toml")
    refused(
        ["run", "g.toml", "-o", "link.nc"], folder, capsys, "link.nc: -o: is also an input (the grid file"
    )


def test_run_refuses_a_hard_link_to_the_grid_file(folder, capsys):
    os.link(folder / "g.toml", folder / "hard.nc")
    refused(
        ["run", "g.toml", "-o", "hard.nc"], folder, capsys, "hard.nc: -o: is also an input (the grid file"
    )


def test_run_refuses_the_grid_through_another_path(folder, capsys):
    (folder / "sub").mkdir()
    refused(
        ["run", "g.toml", "-o", "sub/../g.toml"], folder, capsys, "is also an input (the grid file g.toml)"
    )


@pytest.mark.parametrize(
    "output, what",
    [
        ("cal.toml", "the calibration file"),
        ("gpus.toml", "the GPU catalog"),
        ("models.toml", "the model catalog"),
    ],
)
def test_run_refuses_output_that_is_a_file_the_grid_names(folder, capsys, output, what):
    refused(
        ["run", "roofline.toml", "-o", output],
        folder,
        capsys,
        f"{output}: -o: is also an input ({what}",
        "named in",
    )


def test_run_refuses_output_that_is_the_grids_workload_file(folder, capsys):
    (folder / "f.toml").write_text(FLEET_TOML.format(workload="w.json"))
    refused(["run", "f.toml", "-o", "w.json"], folder, capsys, "is also an input (the workload file")


def test_run_refuses_output_that_is_the_user_catalog(folder, capsys, private_sweep_home):
    (private_sweep_home / "models.toml").write_text("")
    (folder / "cat.nc").symlink_to(private_sweep_home / "models.toml")
    before = (private_sweep_home / "models.toml").read_bytes()
    refused(["run", "g.toml", "-o", "cat.nc"], folder, capsys, "is also an input (the user model catalog")
    assert (private_sweep_home / "models.toml").read_bytes() == before


def test_run_refuses_a_zarr_store_that_holds_an_input(folder, capsys):
    store = folder / "out.zarr"
    store.mkdir()
    shutil.copy(WORKLOAD, store / "w.json")
    (folder / "f.toml").write_text(FLEET_TOML.format(workload="out.zarr/w.json"))
    refused(
        ["run", "f.toml", "-o", "out.zarr"],
        folder,
        capsys,
        "out.zarr: -o: would replace a folder that holds an input",
    )


def test_run_refuses_when_its_partial_output_is_the_grid_file(folder, capsys):
    (folder / "r2.nc.partial").write_text(GRID_TOML)
    refused(
        ["run", "r2.nc.partial", "-o", "r2.nc"],
        folder,
        capsys,
        "r2.nc: -o: its partial output",
        "would replace an input (the grid file r2.nc.partial)",
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["sensitivity", "g.toml", "--method", "oat", "-o", "g.toml"],
        [
            "compare",
            "g.toml",
            "--dim",
            "context",
            "--numerator",
            "8192",
            "--denominator",
            "2048",
            "-o",
            "g.toml",
        ],
        ["optimize", "g.toml", "-o", "g.toml"],
    ],
    ids=["sensitivity", "compare", "optimize"],
)
def test_grid_commands_refuse_output_that_is_the_grid_file(folder, capsys, argv):
    refused(argv, folder, capsys, "g.toml: -o: is also an input (the grid file g.toml)")


@pytest.mark.parametrize(
    "argv, what",
    [
        (["show", "r.nc", "-o", "r.nc"], "the result file r.nc"),
        (["plot", "r.nc", "--x", "context", "-o", "r.nc"], "the result file r.nc"),
        (["calibrate", "in.csv", "-o", "in.csv"], "the measurement file in.csv"),
        (["calibrate", "in.csv", "more.csv", "-o", "more.csv"], "the measurement file more.csv"),
        (["predict", "in.csv", "-o", "in.csv"], "the rows file in.csv"),
        (
            ["predict", "in.csv", "--calibration", "cal.toml", "-o", "cal.toml"],
            "the calibration file cal.toml",
        ),
        (["model", "import", "config.json", "--catalog", "config.json"], "the config file config.json"),
    ],
    ids=[
        "show",
        "plot",
        "calibrate",
        "calibrate-second-file",
        "predict-rows",
        "predict-calibration",
        "model",
    ],
)
def test_commands_refuse_output_that_is_a_named_input(folder, capsys, argv, what):
    refused(argv, folder, capsys, f": is also an input ({what}); allowed: a new file name")


def test_api_run_refuses_out_equal_to_the_grid_file(folder):
    grid = folder / "g.toml"
    before = grid.read_bytes()
    with pytest.raises(SweepInputError, match=r"g\.toml: out: is also an input \(the grid file"):
        sweep.run(grid, out=grid)
    assert grid.read_bytes() == before


def test_api_run_refuses_out_equal_to_a_file_the_grid_names(folder):
    before = (folder / "cal.toml").read_bytes()
    with pytest.raises(SweepInputError, match=r"out: is also an input \(the calibration file .*named in"):
        sweep.run(folder / "roofline.toml", out=folder / "cal.toml")
    assert (folder / "cal.toml").read_bytes() == before


def test_api_run_refuses_standard_output():
    with pytest.raises(SweepInputError, match=r"^-: out: .*not standard output"):
        sweep.run(GRID, out="-")


def test_check_not_an_input_accepts_new_names_and_refuses_folders_around_or_inside(tmp_path):
    (tmp_path / "a.toml").write_text("x")
    inputs = [(tmp_path / "a.toml", "the grid file a.toml")]
    files.check_not_an_input(tmp_path / "b.nc", inputs)  # a new name: fine
    files.check_not_an_input(tmp_path / "a.toml.nc", inputs, partial=True)  # a.toml.nc.partial is not a.toml
    with pytest.raises(SweepInputError, match="would replace a folder that holds an input"):
        files.check_not_an_input(tmp_path, inputs)
    with pytest.raises(SweepInputError, match="lies inside an input"):
        files.check_not_an_input(tmp_path / "a.toml" / "x.nc", inputs)
    with pytest.raises(SweepInputError, match=r"^.*a\.toml: out: is also an input"):
        files.check_not_an_input(str(tmp_path / "a.toml"), inputs, key="out")


# ----------------------------------------------------------------------------------------------------
# the name says what is written


@pytest.mark.parametrize(
    "argv, allowed",
    [
        (
            ["calibrate", "in.csv", "-o", "x.csv"],
            "sweep calibrate writes a calibration (TOML); allowed: a name ending in .toml",
        ),
        (
            ["predict", "in.csv", "-o", "x.toml"],
            "sweep predict writes CSV tables; allowed: a name ending in .csv",
        ),
        (["show", "r.nc", "-o", "x.nc"], "sweep show writes CSV tables; allowed: a name ending in .csv"),
        (["run", "g.toml", "-o", "x.toml"], "allowed: a name ending in .nc, .zarr or .csv"),
        (
            ["sensitivity", "g.toml", "-o", "x.csv"],
            "sweep sensitivity writes NetCDF; allowed: a name ending in .nc",
        ),
        (
            [
                "compare",
                "g.toml",
                "--dim",
                "gpu",
                "--numerator",
                "H100",
                "--denominator",
                "H100",
                "-o",
                "x.csv",
            ],
            "a name ending in .nc",
        ),
        (
            ["optimize", "g.toml", "-o", "x.zarr"],
            "sweep optimize writes NetCDF; allowed: a name ending in .nc",
        ),
        (["plot", "r.nc", "--x", "context", "-o", "fig.nc"], "unknown figure format .nc; allowed: "),
        (
            ["model", "import", "config.json", "--catalog", "c.json"],
            "c.json: --catalog: sweep does not write .json",
        ),
        (
            ["model", "import", "config.json", "--catalog", "c.txt"],
            "c.txt: --catalog: sweep model writes a model catalog",
        ),
    ],
    ids=[
        "calibrate",
        "predict",
        "show",
        "run",
        "sensitivity",
        "compare",
        "optimize",
        "plot",
        "model-json",
        "model-txt",
    ],
)
def test_output_name_must_end_as_what_the_command_writes(folder, capsys, argv, allowed):
    refused(argv, folder, capsys, allowed)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "g.toml", "-o", "-"],
        ["plot", "r.nc", "--x", "context", "-o", "-"],
        ["sensitivity", "g.toml", "-o", "-"],
        ["optimize", "g.toml", "-o", "-"],
    ],
    ids=["run", "plot", "sensitivity", "optimize"],
)
def test_dash_is_refused_for_binary_outputs(folder, capsys, argv):
    refused(argv, folder, capsys, "-: -o: ", "which standard output does not take")
    assert not (folder / "-").exists()


def test_show_dash_writes_a_clean_csv_to_stdout(folder, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    assert main(["show", "r.nc", "--vars", "tokens_per_watt", "-o", "-"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(captured.out)))
    assert rows[0] == ["gpu", "model", "context", "batch", "tokens_per_watt [J-1]"]
    assert len(rows) == 1 + 4  # one per grid point, nothing else
    assert "wrote standard output (4 rows" in captured.err
    assert not (folder / "-").exists()


def test_write_text_dash_goes_to_stdout_and_a_name_to_the_file(tmp_path, capsys):
    files.write_text("-", "a,b\n1,2\n")
    assert capsys.readouterr().out == "a,b\n1,2\n"
    files.write_text(tmp_path / "x.csv", "a\n")
    assert (tmp_path / "x.csv").read_text() == "a\n"


def test_content_to_stdout_sends_prints_to_stderr(capsys):
    with files.content_to_stdout():
        print("summary line")
        files.write_text("-", "content\n")
    captured = capsys.readouterr()
    assert captured.out == "content\n"
    assert captured.err == "summary line\n"


def test_atomic_writes_refuse_dash_instead_of_writing_a_file_named_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SweepInputError, match=r"^-: cannot write output: '-' is standard output"):
        files.write_atomic("-", lambda tmp: Path(tmp).write_text("x"))
    assert list(tmp_path.iterdir()) == []
