"""Figures from results (sweep.io.plotting, `sweep plot`), on one small result written once for the module."""

import numpy as np
import pytest

from sweep.cli import main
from sweep.io import plotting
from tests.test_tabular import GRID
from tests.utils import run_to_file


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("plotting") / "out.nc"
    ds = run_to_file(GRID, path)
    return str(path), ds


def test_plot_writes_a_png_with_lines_per_hue_and_panels_per_col(result, tmp_path, capsys):
    import matplotlib.image

    path, _ = result
    figure = tmp_path / "fig.png"
    assert main(["plot", path, "--x", "context", "--hue", "gpu", "--col", "batch", "-o", str(figure)]) == 0
    assert "tokens_per_watt against context (log x, log y), 2 line(s) per panel, 2 panel(s)" in (
        capsys.readouterr().out
    )
    image = matplotlib.image.imread(figure)
    assert image.shape[0] > 300 and image.shape[1] > 600  # two panels side by side
    rgb = image[..., :3]
    assert (rgb < 0.9).any() and rgb.std() > 0.05  # lines and text, not a blank canvas
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sweep-")]


def test_plot_categorical_batch_axis(result, tmp_path, capsys):
    path, _ = result
    figure = tmp_path / "batch.svg"
    argv = ["plot", path, "--x", "batch", "--hue", "gpu", "--sel", "context=8192", "-o", str(figure)]
    assert main(argv) == 0
    assert "tokens_per_watt against batch (linear x, " in capsys.readouterr().out
    assert "<!-- max -->" in figure.read_text()  # the tick label: batch 0 is "max"


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--x", "context", "--hue", "gpu"],
            "also varies over batch (max, 8); allowed: pick one with --sel batch=VALUE",
        ),
        (["--x", "ctx"], "--x: 'ctx' is not a dim of tokens_per_watt; allowed: gpu, model, context, batch"),
        (["--x", "context", "--hue", "context"], "must name different dims"),
        (["--x", "context", "--y", "power"], "--y: no variable 'power'; allowed:"),
    ],
)
def test_plot_bad_options_exit_2_with_one_line(result, tmp_path, capsys, args, message):
    path, _ = result
    assert main(["plot", path, *args, "-o", str(tmp_path / "fig.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "fig.png").exists()


def test_unknown_figure_format_is_an_error(result, tmp_path, capsys):
    path, _ = result
    assert (
        main(
            ["plot", path, "--x", "context", "--hue", "gpu", "--col", "batch", "-o", str(tmp_path / "f.xyz")]
        )
        == 2
    )
    assert "unknown figure format .xyz; allowed: " in capsys.readouterr().err


def test_labels_carry_the_convention_and_units(result):
    _, ds = result
    assert plotting.axis_label(ds, "tokens_per_watt") == "paper tok/W (per GPU) [J-1]"
    physical = ds.assign(tokens_per_watt_mean=ds.tokens_per_watt).assign_attrs(convention="physical")
    assert plotting.axis_label(physical, "tokens_per_watt") == "tokens per joule [J-1]"
    assert plotting.axis_label(physical, "tokens_per_watt_mean") == "tokens per joule: Monte Carlo mean [J-1]"
    assert plotting.axis_label(ds, "gpu_power") == "power of one GPU [W]"
    assert plotting.axis_label(ds, "context") == "context window C in tokens"  # dimensionless: no [1]


@pytest.mark.parametrize(
    "values, geometric",
    [
        ([2048, 4096, 8192, 16384, 32768], True),
        ([1, 10, 100], True),
        ([4096, 8192, 16384], False),  # spans 4x
        ([1, 10, 19, 28, 37], False),  # linear steps
        ([0, 10, 100], False),
    ],
)
def test_geometric_axes(values, geometric):
    assert plotting.is_geometric(np.array(values)) is geometric
