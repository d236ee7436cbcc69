"""Streamed outputs (sweep.io.stream): equal to in-memory runs, the memory guard, resume after a kill, compression."""

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sweep
from sweep.grid import spec as _grid
from sweep.grid.engine import Plan
from tests.grid.test_engine import SPEC, with_chunk

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 7  # many blocks
N_BLOCKS = Plan.make((2, 1, 5, 5, 2), CHUNK).n_blocks


def small_chunks(spec: dict = SPEC, **changes) -> _grid.GridSpec:
    """The spec in blocks of CHUNK points, below the grid-file minimum (to exercise many blocks)."""
    return dataclasses.replace(with_chunk(spec, CHUNK), **changes)


def assert_same_data(got, want):
    assert set(got.variables) == set(want.variables)
    for name in want.variables:
        assert got[name].dims == want[name].dims, name
        a, b = got[name].values, want[name].values
        if a.dtype.kind in "iufb":
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
        else:
            assert (a == b).all(), name


@pytest.fixture(scope="module")
def in_memory():
    return sweep.run(small_chunks())


@pytest.fixture(scope="module")
def with_elasticities():
    return sweep.run(small_chunks(elasticities=True))


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_streamed_output_equals_in_memory_run(tmp_path, with_elasticities, suffix):
    # elasticities are masked block by block where the target is 0 or no sequence fits
    in_memory = with_elasticities
    out = tmp_path / f"out{suffix}"
    ds = sweep.run(small_chunks(elasticities=True), out=out)
    assert_same_data(ds, in_memory)
    assert {k: v for k, v in ds.attrs.items() if k not in ("history", "compression")} == {
        k: v for k, v in in_memory.attrs.items() if k != "history"
    }
    assert ds.attrs["compression"] == "none"
    for name in in_memory.variables:
        assert ds[name].attrs.keys() - {"_FillValue"} == in_memory[name].attrs.keys(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no partial or log left


def test_memory_guard_stops_before_computing_and_streaming_runs(tmp_path, monkeypatch):
    calls = []
    with pytest.raises(sweep.SweepInputError) as err:
        sweep.run(small_chunks(), max_memory="1kB", progress=lambda *a: calls.append(a))
    message = str(err.value)
    assert "\n" not in message and not calls
    assert "over the budget of 1.0 kB (max_memory; set --max-memory or SWEEP_MAX_MEMORY)" in message
    assert "pass an output path (-o out.nc or -o out.zarr)" in message
    monkeypatch.setenv("SWEEP_MAX_MEMORY", "2 KiB")
    with pytest.raises(sweep.SweepInputError, match=r"budget of 2\.0 kB \(SWEEP_MAX_MEMORY"):
        sweep.run(small_chunks())
    ds = sweep.run(small_chunks(), out=tmp_path / "out.nc")  # streamed: the budget does not apply
    assert ds.tokens_per_watt.size == 2 * 5 * 5 * 2
    with pytest.raises(sweep.SweepInputError, match="cannot read size 'lots'"):
        sweep.run(small_chunks(), max_memory="lots")


KILLER = """
import dataclasses, json, os, sys
import sweep
from sweep.grid import spec as _grid
spec = dataclasses.replace(_grid.parse(json.loads(sys.argv[1])), chunk_points=int(sys.argv[2]))
kill_at = int(sys.argv[4])
def hook(done, total, elapsed_s):
    if done == kill_at:
        os.kill(os.getpid(), 9)
sweep.run(spec, out=sys.argv[3], progress=hook)
"""


def test_resume_after_sigkill_at_a_random_block_is_bit_equal(tmp_path, in_memory):
    out = tmp_path / "out.nc"
    out.write_text("old")
    kill_at = random.Random(os.getpid()).randrange(1, N_BLOCKS)
    args = [sys.executable, "-c", KILLER, json.dumps(SPEC), str(CHUNK), str(out), str(kill_at)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert out.read_text() == "old", f"killed at block {kill_at}: the target changed"
    log = (tmp_path / "out.nc.partial.done-0").read_text().split("\n")
    assert len([b for b in log[1:] if b]) >= kill_at
    ds = sweep.run(small_chunks(), out=out, resume=True)
    assert_same_data(ds, in_memory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


class Interrupted(Exception):
    pass


def interrupt_at(block: int):
    def hook(done, total, elapsed_s):
        if done == block:
            raise Interrupted

    return hook


def test_resume_of_an_interrupted_zarr_run_computes_only_the_missing_blocks(tmp_path, in_memory):
    out = tmp_path / "out.zarr"
    with pytest.raises(Interrupted):
        sweep.run(small_chunks(), out=out, progress=interrupt_at(5))
    assert not out.exists() and (tmp_path / "out.zarr.partial").is_dir()
    calls = []
    ds = sweep.run(small_chunks(), out=out, resume=True, progress=lambda *a: calls.append(a))
    assert_same_data(ds, in_memory)
    total = calls[-1][1]
    assert total == N_BLOCKS - 5  # the 5 saved blocks are not computed again


def test_resume_refuses_the_partial_output_of_another_grid(tmp_path):
    out = tmp_path / "out.nc"
    with pytest.raises(Interrupted):
        sweep.run(small_chunks(), out=out, progress=interrupt_at(2))
    other = {**SPEC, "axes": {**SPEC["axes"], "context": [1000, 2048, 8192, 99999]}}
    with pytest.raises(sweep.SweepInputError, match="written by a different grid"):
        sweep.run(small_chunks(other), out=out, resume=True)
    with pytest.warns(sweep.SweepWarning, match="replacing the partial output of an earlier run"):
        sweep.run(small_chunks(other), out=out)  # without --resume: started again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


@pytest.mark.parametrize("suffix, codec", [(".nc", "zlib"), (".zarr", "zstd")])
def test_compression_is_recorded_and_lossless(tmp_path, in_memory, suffix, codec):
    ds = sweep.run(small_chunks(), out=tmp_path / f"c{suffix}", compression=3)
    assert ds.attrs["compression"] == f"{codec} level 3"
    assert_same_data(ds, in_memory)


def test_resume_and_distributed_need_a_streamed_output():
    with pytest.raises(sweep.SweepInputError, match="resume: needs a streamed output"):
        sweep.run(small_chunks(), resume=True)


def test_command_line_memory_guard_is_one_line_and_exit_2(tmp_path, capsys):
    from sweep.cli import main

    grid = tmp_path / "grid.toml"
    grid.write_text('[axes]\ngpu = ["H100"]\nmodel = ["llama-3.1-70b"]\ncontext = [1024, 2048]\n')
    assert main(["run", str(grid), "--max-memory", "100B", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("sweep: error: the grid's results need about")
    assert "budget of 100 B (max_memory" in err and "-o out.zarr" in err
    assert main(["run", str(grid), "--max-memory", "100B", "-q", "-o", str(tmp_path / "out.zarr")]) == 0
    assert (tmp_path / "out.zarr" / "zarr.json").exists()


def test_in_memory_zarr_write_replaces_only_a_zarr_store(tmp_path, in_memory):
    from sweep.io.stream import open_result, write_zarr

    out = tmp_path / "mem.zarr"
    write_zarr(in_memory, out)
    write_zarr(in_memory, out)  # an existing store is replaced
    assert_same_data(open_result(out), in_memory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mem.zarr"]
    (tmp_path / "folder.zarr").mkdir()
    with pytest.raises(
        sweep.SweepInputError, match="folder.zarr: cannot write output: it exists and is not a Zarr"
    ):
        sweep.run(small_chunks(), out=tmp_path / "folder.zarr")
