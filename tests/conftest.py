"""Shared test set-up: 64-bit JAX, a private $SWEEP_HOME for every test, and a small grid file."""

from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)

ROOT = Path(__file__).resolve().parent.parent
SMALL_GRID = """
title = "small test grid"
[axes]
gpu = ["H100"]
model = ["llama-3.1-70b"]
context = [4096, 8192]
"""


@pytest.fixture(autouse=True)
def private_sweep_home(tmp_path_factory, monkeypatch):
    """No test reads or writes the real user catalog (~/.sweep)."""
    home = tmp_path_factory.mktemp("sweep-home")
    monkeypatch.setenv("SWEEP_HOME", str(home))
    return home


@pytest.fixture
def small_grid(tmp_path) -> str:
    """Path of a 2-point calibrated grid file (H100, Llama-3.1-70B, contexts 4K and 8K)."""
    path = tmp_path / "grid.toml"
    path.write_text(SMALL_GRID)
    return str(path)
