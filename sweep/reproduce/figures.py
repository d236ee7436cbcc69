"""The report's figures: the 1/W law, routing topologies, measured parity and the uncertainty tornado."""

from __future__ import annotations

import math
from pathlib import Path

from sweep.io.files import write_atomic
from sweep.reproduce.common import FLEET_PAIRS, TOPOLOGY_LABELS

PARITY_BAND = 0.25  # shaded band of the parity figure: |ln(pred/meas)| <= 0.25


def _figure(path: Path, draw) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw(plt)
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)
    return path


def tokens_per_watt_label(convention: str, fleet: bool = False) -> str:
    """Axis label of (fleet_)tokens_per_watt in `convention`: tokens per joule (physical: ÷ every GPU's
    power) or the paper's tok/W (an instance's tokens/s ÷ ONE GPU's power)."""
    fleet_ = "fleet " if fleet else ""
    return f"{fleet_}tokens per joule" if convention == "physical" else f"paper {fleet_}tok/W (per GPU)"


def plot_one_over_w(ds, path: Path) -> Path:
    convention = ds.attrs.get("convention", "paper")

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6, 4.2))
        context = ds.context.values
        for gpu, colour in zip(ds.gpu.values, ("tab:blue", "tab:orange")):
            tpw = ds.tokens_per_watt.sel(gpu=gpu).squeeze().values
            ax.loglog(context, tpw, "o-", color=colour, label=f"{gpu} (calibrated, {convention} convention)")
            ax.loglog(
                context,
                tpw[0] * context[0] / context,
                "--",
                color=colour,
                alpha=0.5,
                label=f"{gpu}: ideal 1/W slope",
            )
        ax.set_xlabel("context window W (tokens)")
        ax.set_ylabel(tokens_per_watt_label(convention))
        ax.set_title("The 1/W law: Llama-3.1-70B, TP8, n = n_max")
        ax.set_xticks(context, [f"{c // 1024}K" for c in context])
        ax.minorticks_off()
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    return _figure(path, draw)


def plot_topologies(ds, phys, path: Path) -> Path:
    import numpy as np

    convention = ds.attrs.get("convention", "paper")

    def draw(plt):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=False)
        topologies = list(ds.topology.values)
        width = 0.38
        for ax, (workload, b_short) in zip(axes, FLEET_PAIRS):
            x = np.arange(len(topologies))
            for i, gpu in enumerate(ds.gpu.values):
                vals = (
                    ds.fleet_tokens_per_watt.sel(gpu=gpu, workload=workload, b_short=b_short).squeeze().values
                )
                bars = ax.bar(x + (i - 0.5) * width, vals, width, label=f"{gpu} ({convention} conv.)")
                for b, v in zip(bars, vals):
                    ax.text(
                        b.get_x() + b.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7
                    )
                pv = (
                    phys.fleet_tokens_per_watt.sel(gpu=gpu, workload=workload, b_short=b_short)
                    .squeeze()
                    .values
                )
                ax.plot(
                    x + (i - 0.5) * width,
                    8 * pv,
                    "k_",
                    markersize=14,
                    label="physical × 8 (tok/J × TP)" if i == 0 else None,
                )
            ax.set_xticks(x, [TOPOLOGY_LABELS[t] for t in topologies])
            ax.set_title(f"{workload} (B_short = {b_short})")
            ax.set_ylabel(tokens_per_watt_label(convention, fleet=True))
            ax.grid(True, axis="y", alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(
            "Routing topology vs GPU generation: Llama-3.1-70B TP8, λ = 1000 req/s\n"
            f"bars: {convention} convention; ticks: physical convention × 8",
            fontsize=10,
        )
        fig.tight_layout()
        return fig

    return _figure(path, draw)


def plot_parity(measured, by_gpu, panels, path: Path) -> Path:
    """Predicted vs measured tokens/J, one panel per (title, predicted) of `panels`, log-log."""
    import numpy as np

    styles = {"H100": ("o", "tab:blue"), "B200": ("s", "tab:orange")}

    def draw(plt):
        fig, axes = plt.subplots(1, len(panels), figsize=(10, 4.6), sharex=True, sharey=True)
        values = np.concatenate([measured, *(p for _, p in panels)])
        lo, hi = values[values > 0].min() / 1.5, values.max() * 1.5
        line = np.geomspace(lo, hi, 100)
        for ax, (title, predicted) in zip(axes, panels):
            ax.fill_between(
                line,
                line * math.exp(-PARITY_BAND),
                line * math.exp(PARITY_BAND),
                color="0.85",
                label=f"±{100 * PARITY_BAND:.0f} % (|ln(pred/meas)| ≤ {PARITY_BAND:g})",
            )
            ax.plot(line, line, "k-", linewidth=1, label="1:1")
            for gpu in dict.fromkeys(by_gpu):
                sel = by_gpu == gpu
                marker, colour = styles.get(str(gpu), ("^", None))
                ax.loglog(
                    measured[sel],
                    predicted[sel],
                    marker,
                    color=colour,
                    markersize=5,
                    alpha=0.8,
                    linestyle="none",
                    label=f"{gpu} ({int(sel.sum())} runs)",
                )
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_aspect("equal")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("measured (tokens/J)")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=8, loc="lower right")
        axes[0].set_ylabel("predicted (tokens/J)")
        fig.suptitle("Tokens per joule: model vs ML.ENERGY Benchmark v3 (vLLM, LMArena chat)", fontsize=10)
        fig.tight_layout()
        return fig

    return _figure(path, draw)


def plot_tornado(names: list, low, high, title: str, path: Path, *, step: float) -> Path:
    """Horizontal bars: relative change of tokens per joule at (1 − step) and (1 + step) × each parameter."""
    import numpy as np

    low, high = 100 * np.asarray(low), 100 * np.asarray(high)
    order = np.argsort(np.nan_to_num(np.abs(high - low)))  # widest swing on top

    def draw(plt):
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.6))
        y = np.arange(len(names))
        moved = f"{100 * step:.0f} %"
        ax.barh(y, low[order], 0.7, color="tab:blue", label=f"parameter −{moved}")
        ax.barh(y, high[order], 0.7, color="tab:orange", alpha=0.8, label=f"parameter +{moved}")
        ax.set_yticks(y, [names[i] for i in order], fontsize=8)
        ax.axvline(0, color="k", linewidth=0.8)
        ax.set_xlabel("relative change of tokens per joule (%)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return fig

    return _figure(path, draw)
