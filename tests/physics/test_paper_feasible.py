"""The paper convention keeps its planner's clamp (n_max >= 1) and numbers, but `feasible = 0` where nothing
really fits: weights larger than the GPU memory, or one sequence of that context larger than the KV cache."""

import numpy as np
import pytest

import sweep
from sweep.cli import main
from sweep.physics.concurrency import fits, fitting_concurrency, max_concurrency

PAPER_GRID = {
    "convention": "paper",
    "profile": "roofline",
    "axes": {"gpu": ["H100"], "model": ["llama-3.1-405b", "llama-3.1-8b"], "context": [8192, 10**12]},
}


@pytest.fixture(scope="module")
def paper():
    with pytest.warns(sweep.SweepWarning, match="max_context_tokens"):
        return sweep.run(PAPER_GRID)


def test_paper_405b_tp1_on_one_h100_is_infeasible_but_keeps_its_clamped_numbers(paper):
    cell = paper.sel(model="llama-3.1-405b", context=8192).squeeze()
    assert int(cell.feasible) == 0
    assert int(cell.max_concurrency) == 1 and float(cell.concurrency) == 1  # the planner's clamp
    np.testing.assert_allclose(float(cell.tokens_per_second), 3.3061000990065783, rtol=1e-12)


def test_paper_1e12_token_context_is_infeasible_but_keeps_its_clamped_numbers(paper):
    cell = paper.sel(model="llama-3.1-8b", context=10**12).squeeze()
    assert int(cell.feasible) == 0
    assert int(cell.max_concurrency) == 1 and float(cell.concurrency) == 1
    assert np.isfinite(float(cell.tokens_per_watt)) and float(cell.tokens_per_watt) > 0


def test_paper_8b_at_8k_stays_feasible(paper):
    cell = paper.sel(model="llama-3.1-8b", context=8192).squeeze()
    assert int(cell.feasible) == 1 and int(cell.max_concurrency) == 58


def test_paper_evaluate_gives_the_same_feasibility_as_the_grid():
    p = sweep.profile_for("H100", "llama-3.1-405b", convention="paper")
    out = sweep.evaluate(p, 8192, 0)
    assert int(out["feasible"]) == 0 and float(out["concurrency"]) == 1
    small = sweep.profile_for("H100", "llama-3.1-8b", convention="paper")
    assert int(sweep.evaluate(small, 8192, 0)["feasible"]) == 1
    assert int(sweep.evaluate(small, 1e12, 0)["feasible"]) == 0


def test_fitting_concurrency_is_n_max_before_the_clamp():
    p = sweep.profile_for("H100", "llama-3.1-405b", convention="paper")
    assert float(p.kv_blocks) == 0 and float(p.min_concurrency) == 1
    assert float(fitting_concurrency(p, 8192.0)) == 0 and float(max_concurrency(p, 8192.0)) == 1
    assert not bool(fits(fitting_concurrency(p, 8192.0)))


def test_physical_convention_is_unchanged_where_nothing_fits():
    grid = {**PAPER_GRID, "convention": "physical", "axes": {**PAPER_GRID["axes"], "context": [8192]}}
    cell = sweep.run(grid).sel(model="llama-3.1-405b").squeeze()
    assert (
        int(cell.feasible) == 0 and int(cell.max_concurrency) == 0 and np.isnan(float(cell.tokens_per_watt))
    )


def test_best_skips_the_paper_conventions_infeasible_points(tmp_path, capsys):
    """--best --min tokens_per_watt over context picked the 1e12-token context before (clamped, tiny tok/W)."""
    grid = tmp_path / "g.toml"
    grid.write_text(
        'convention = "paper"\nprofile = "roofline"\n[axes]\ngpu = ["H100"]\nmodel = ["llama-3.1-8b"]\n'
        "context = [8192, 1000000000000]\n"
    )
    assert main(["run", str(grid), "-q", "--best", "tokens_per_watt", "--min", "--over", "context"]) == 0
    out = capsys.readouterr().out
    assert "skipped: 1 point(s) with feasible = 0" in out, out
    assert "8192" in out and "1000000000000" not in out, out
