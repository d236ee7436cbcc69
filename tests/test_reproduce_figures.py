"""The reproduction's figures (sweep.reproduce) say which convention their tokens-per-watt axis is in."""

import matplotlib
import numpy as np
import pytest
import xarray as xr

from sweep.reproduce import figures as reproduce

matplotlib.use("Agg")


@pytest.fixture
def figures(monkeypatch):
    """Draw the figures without writing them: each plot function returns its matplotlib figure."""
    import matplotlib.pyplot as plt

    drawn = []
    monkeypatch.setattr(reproduce, "_figure", lambda path, draw: drawn.append(draw(plt)) or drawn[-1])
    yield
    for fig in drawn:
        plt.close(fig)


def one_over_w(convention):
    context = np.array([8192, 16384, 32768])
    values = np.stack([1.0 / context, 2.0 / context])[:, None, :]
    return xr.Dataset(
        {"tokens_per_watt": (("gpu", "model", "context"), values)},
        coords={"gpu": ["H100", "B200"], "model": ["llama-3.1-70b"], "context": context},
        attrs={"convention": convention},
    )


def fleet(convention):
    workloads = [w for w, _ in reproduce.FLEET_PAIRS]
    b_short = sorted({b for _, b in reproduce.FLEET_PAIRS})
    shape = (2, len(workloads), len(reproduce.TOPOLOGY_LABELS), len(b_short))
    return xr.Dataset(
        {"fleet_tokens_per_watt": (("gpu", "workload", "topology", "b_short"), np.ones(shape))},
        coords={
            "gpu": ["H100", "B200"],
            "workload": workloads,
            "topology": list(reproduce.TOPOLOGY_LABELS),
            "b_short": b_short,
        },
        attrs={"convention": convention},
    )


@pytest.mark.parametrize(
    "convention, label",
    [("paper", "paper tok/W (per GPU)"), ("physical", "tokens per joule")],
)
def test_one_over_w_axis_names_the_convention(figures, convention, label):
    fig = reproduce.plot_one_over_w(one_over_w(convention), "unused.png")
    assert fig.axes[0].get_ylabel() == label
    assert all(f"{convention} convention" in t.get_text() for t in fig.axes[0].get_legend().get_texts()[::2])


def test_topologies_axes_name_the_convention(figures):
    fig = reproduce.plot_topologies(fleet("paper"), fleet("physical"), "unused.png")
    assert [ax.get_ylabel() for ax in fig.axes] == ["paper fleet tok/W (per GPU)"] * 2
    assert "bars: paper convention" in fig.get_suptitle()
