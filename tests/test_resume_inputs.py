"""--resume refuses a partial output computed from input files that have changed since (a calibration, a GPU
catalog the grid names, the user catalog under $SWEEP_HOME, a workload CDF): exit 2 with one line naming the
file, the partial kept; with unchanged inputs the resumed run equals an uninterrupted one."""

import shutil

import numpy as np
import pytest

import sweep
from sweep.calibration.store import BUILTIN
from sweep.cli import main
from sweep.grid.spec import load, parse
from sweep.grid.tables import input_files
from sweep.io.stream import changed_input, file_digests, open_result

USER_GPU = """
[my-gpu]
description = "an H100-like GPU of the user catalog"
source = "test"
quality = "projected"
uncertainty = 0.0
memory_bytes = 85899345920
hbm_bandwidth_bytes_per_s = 3.35e12
fp16_flops = 989e12
fp8_flops = 1978e12
tdp_w = 700
price_per_gpu_hour = 4.02
prefill_chunk_tokens = 1024
interconnect_bytes_per_s = 450e9
"""
GRID = """
profile = "roofline"
convention = "physical"
calibration = "cal.toml"
gpu_catalogs = ["extra_gpus.toml"]
chunk_points = 1024
[axes]
gpu = ["my-gpu"]
model = ["llama-3.1-8b"]
context = { start = 1024, stop = 65536, step = 1024 }
batch = { start = 1, stop = 32, step = 1 }
"""


class Interrupted(Exception):
    pass


def interrupt_at(block: int):
    def hook(done, total, elapsed_s):
        if done == block:
            raise Interrupted

    return hook


@pytest.fixture
def grid(tmp_path, private_sweep_home):
    """A 2048-point grid (two blocks) over a user-catalog GPU, with its own calibration and GPU catalog."""
    (private_sweep_home / "gpus.toml").write_text(USER_GPU)
    shutil.copy(BUILTIN["mlenergy-v3"], tmp_path / "cal.toml")
    (tmp_path / "extra_gpus.toml").write_text(USER_GPU.replace("[my-gpu]", "[other-gpu]"))
    path = tmp_path / "g.toml"
    path.write_text(GRID)
    return path


@pytest.fixture
def partial(grid, tmp_path):
    """`sweep run g.toml -o c.nc` interrupted after its first block."""
    out = tmp_path / "c.nc"
    with pytest.raises(Interrupted):
        sweep.run(str(grid), out=out, progress=interrupt_at(1))
    assert not out.exists() and (tmp_path / "c.nc.partial").exists()
    return out


def resume(grid, out) -> int:
    return main(["run", str(grid), "-o", str(out), "--resume", "-q"])


def test_resume_with_unchanged_inputs_finishes_the_run(grid, partial):
    assert resume(grid, partial) == 0
    want = sweep.run(str(grid))
    got = open_result(partial)
    np.testing.assert_array_equal(got.tokens_per_watt.values, want.tokens_per_watt.values)
    assert not (partial.parent / "c.nc.partial").exists()


@pytest.mark.parametrize(
    "edited, old, new",
    [
        ("cal.toml", "value = 100.0", "value = 200.0"),  # the assumed prompt tokens
        ("extra_gpus.toml", "3.35e12", "3.0e12"),
        ("home:gpus.toml", "3.35e12", "3.0e12"),
    ],
    ids=["calibration", "grid-gpu-catalog", "user-gpu-catalog"],
)
def test_resume_after_an_input_file_changed_exits_2_naming_it(
    grid, partial, capsys, private_sweep_home, edited, old, new
):
    path = private_sweep_home / "gpus.toml" if edited.startswith("home:") else grid.parent / edited
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    capsys.readouterr()
    assert resume(grid, partial) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sweep: error: ") and "\n" not in err, err
    assert f"input file {path.resolve()} changed since the partial output was written" in err, err
    assert not partial.exists() and (partial.parent / "c.nc.partial").exists()  # nothing lost, nothing mixed


def test_resume_after_a_user_model_catalog_appeared_exits_2(grid, partial, capsys, private_sweep_home):
    (private_sweep_home / "models.toml").write_text("")
    assert resume(grid, partial) == 2
    err = capsys.readouterr().err
    assert f"input file {(private_sweep_home / 'models.toml').resolve()} was created" in err, err


def test_run_without_resume_after_a_change_starts_again(grid, partial, capsys):
    cal = grid.parent / "cal.toml"
    cal.write_text(cal.read_text() + "\n# edited\n")
    assert resume(grid, partial) == 2
    assert main(["run", str(grid), "-o", str(partial), "-q"]) == 0
    assert partial.exists() and not (partial.parent / "c.nc.partial").exists()


def test_input_files_name_every_file_the_grid_reads(grid, private_sweep_home, tmp_path):
    files = input_files(load(grid))
    for want in (
        tmp_path / "cal.toml",
        tmp_path / "extra_gpus.toml",
        private_sweep_home / "gpus.toml",
        private_sweep_home / "models.toml",  # absent, recorded as such
    ):
        assert str(want) in files


def test_input_files_of_a_fleet_grid_include_its_workload_cdfs(tmp_path):
    cdf = tmp_path / "mine.json"
    cdf.write_text("[[0, 0.0], [100, 1.0]]")
    spec = parse(
        {
            "axes": {
                "gpu": ["H100"],
                "model": ["llama-3.1-70b"],
                "workload": ["lmsys", "mine.json"],
                "topology": ["pool"],
            }
        },
        str(tmp_path / "g.toml"),
    )
    files = input_files(spec)
    assert str(cdf) in files and any(f.endswith("workloads/lmsys.json") for f in files)


def test_changed_input_names_changed_removed_and_created_files(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text("x = 1")
    before = file_digests([a, tmp_path / "b.toml"])
    assert changed_input(before, file_digests([a, tmp_path / "b.toml"])) is None
    a.write_text("x = 2")
    assert changed_input(before, file_digests([a])) == f"{a.resolve()} changed"
    (tmp_path / "b.toml").write_text("")
    assert changed_input(before, file_digests([tmp_path / "b.toml"])).endswith("b.toml was created")
    a.unlink()
    assert changed_input(before, file_digests([a])).endswith("a.toml was removed")
    assert changed_input(before, {}) is None  # a file the grid no longer names: the grid changed instead
