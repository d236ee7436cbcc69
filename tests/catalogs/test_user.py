"""The user catalog (sweep.catalogs.user): model names, TOML written by a TOML writer, corrupt catalogs."""

import json
import tomllib

import pytest

import sweep
from sweep.cli import main
from sweep.errors import SweepWarning
from tests.utils import TINY_HF_CONFIG

CONFIG = TINY_HF_CONFIG
ROOFLINE = {"profile": "roofline", "axes": {"gpu": ["H100"], "model": ["llama-3.1-8b"], "context": [8192]}}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def config(tmp_path, **extra):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**CONFIG, **extra}))
    return str(path)


@pytest.mark.parametrize("name", ['my"model', "My-Model", "my model", "org/model", "-model", "", "modèle"])
def test_import_rejects_names_that_are_not_hub_style_ids(tmp_path, home, capsys, name):
    assert main(["model", "import", config(tmp_path), f"--name={name}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"model name {name!r} is not allowed" in err
    assert "lower-case letters, digits, '.', '-' and '_'" in err
    assert not home.exists()


def test_import_rejects_an_invalid_derived_name(tmp_path, home, capsys):
    assert main(["model", "import", config(tmp_path, _name_or_path="org/My Model")]) == 2
    assert "'my model' is not allowed" in capsys.readouterr().err and not home.exists()


def test_import_appends_valid_toml_atomically_and_keeps_comments(tmp_path, home, capsys):
    home.mkdir()
    (home / "models.toml").write_text("# my notes\n")
    for name in ("tiny-1.0_a", "tiny-2"):
        assert main(["model", "import", config(tmp_path), "--name", name]) == 0
    text = (home / "models.toml").read_text()
    assert text.startswith("# my notes\n")
    assert set(tomllib.loads(text)["models"]) == {"tiny-1.0_a", "tiny-2"}
    assert sorted(p.name for p in home.iterdir()) == ["models.toml"]  # no temporary file left
    ds = sweep.run({**ROOFLINE, "axes": {**ROOFLINE["axes"], "model": ["tiny-2"]}})
    assert int(ds.max_concurrency.squeeze()) > 0


def test_import_rewrites_a_catalog_that_cannot_be_appended_to(tmp_path, home):
    home.mkdir()
    (home / "models.toml").write_text("models = { }\n")  # an inline table cannot take [models.x] after it
    assert main(["model", "import", config(tmp_path), "--name", "tiny"]) == 0
    assert set(tomllib.loads((home / "models.toml").read_text())["models"]) == {"tiny"}


def test_corrupt_user_catalog_is_skipped_unless_a_grid_needs_it(tmp_path, home, capsys):
    home.mkdir()
    corrupt = 'x = 1\n[models.bad\nn_layers = "\n'
    (home / "models.toml").write_text(corrupt)
    (home / "gpus.toml").write_text(corrupt)
    with pytest.warns(SweepWarning) as caught:
        assert float(sweep.run(ROOFLINE).tokens_per_watt.squeeze()) > 0
    messages = sorted(str(w.message) for w in caught)
    assert [
        m.startswith(f"user catalog skipped: catalog file '{home / kind}") and "line 2" in m
        for m, kind in zip(messages, ("gpus.toml", "models.toml"))
    ] == [True, True]
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'profile = "roofline"\n[axes]\ngpu = ["H100"]\nmodel = ["llama-3.1-8b"]\ncontext = [8192]\n'
    )
    assert main(["run", str(grid), "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(
        e.startswith("sweep: warning: user catalog skipped: catalog file") for e in err
    )
    assert main(["list", "models"]) == 0
    out = capsys.readouterr()
    assert "llama-3.1-8b" in out.out and str(home / "models.toml") in out.err and "line 2" in out.err
    grid.write_text(grid.read_text().replace("llama-3.1-8b", "my-model"))
    assert main(["run", str(grid), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert "unknown model 'my-model'" in err and "user catalog was skipped" in err and "line 2" in err
    assert main(["model", "import", config(tmp_path), "--name", "my-model"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(home / "models.toml") in err and "line 2" in err
    assert (home / "models.toml").read_text() == corrupt
    calibrated = {"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [8192]}}
    assert float(sweep.run(calibrated).tokens_per_watt.squeeze()) > 0
