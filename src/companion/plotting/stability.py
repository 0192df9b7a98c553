"""Figures of step-size stability: spectral radius, thresholds and runs across them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from companion.plotting._style import (
    ALGORITHM_STYLE,
    algorithm_label,
    axes,
    observed,
    panels,
    predicted,
    topology_colour,
)


def stability_radius(
    lr_scale: np.ndarray,
    radii: Mapping[tuple[str, str], np.ndarray],
    marks: Mapping[str, Mapping[str, float]],
    *,
    xlabel: str,
) -> Figure:
    """Spectral radius of the iteration matrix against step size, one panel per topology,
    one line style per algorithm; ``marks[topology]`` maps a label to a step size drawn as
    a vertical line."""
    topologies = list(dict.fromkeys(t for t, _ in radii))
    fig, grid = panels(len(topologies), width=3.6, height=3.3, cols=len(topologies))
    for ax, topo in zip(grid, topologies, strict=True):
        for (t, alg), rho in radii.items():
            if t == topo:
                predicted(
                    ax,
                    lr_scale,
                    rho,
                    topology_colour(topo),
                    ls=ALGORITHM_STYLE[alg],
                    label=algorithm_label(alg),
                )
        for j, (label, x) in enumerate(marks.get(topo, {}).items()):
            ax.axvline(x, color=f"{0.1 + 0.35 * j:.2f}", ls=(":", "--")[j % 2], lw=1.5, label=label)
        ax.axhline(1.0, color="firebrick", lw=0.8)
        ax.set_ylim(0.8, 2.5)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("spectral radius of M")
        ax.set_title(topo)
        ax.legend(fontsize=7, loc="upper left")
    return fig


def stability_thresholds(
    sufficient: Mapping[str, float],
    exact: Mapping[str, float],
    *,
    ylabel: str,
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars per topology: the sufficient DGD bound against the exact threshold."""
    fig, ax = axes(ax, (7, 3.6))
    names = list(exact)
    x = np.arange(len(names))
    colours = [topology_colour(n, i) for i, n in enumerate(names)]
    ax.bar(
        x - 0.2,
        [sufficient[n] for n in names],
        0.4,
        color=colours,
        alpha=0.45,
        hatch="//",
        label="sufficient bound",
    )
    ax.bar(
        x + 0.2,
        [exact[n] for n in names],
        0.4,
        color=colours,
        label="exact threshold (spectral radius = 1)",
    )
    ax.set_xticks(x, names)
    ax.set_ylabel(ylabel)
    ax.set_title("DGD: largest stable step size")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    return fig


def stability_runs(
    steps: np.ndarray,
    curves: Mapping[tuple[str, float], np.ndarray],
    *,
    ylabel: str,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Log-scale loss curves keyed by ``(model, factor)``: the linearized model (whose
    closed form is exact) as lines, the network as markers, one colour per factor."""
    fig, ax = axes(ax, (8, 4))
    factors = list(dict.fromkeys(f for _, f in curves))
    for (model, factor), curve in curves.items():
        colour, label = f"C{factors.index(factor)}", f"{model}, {factor:g}x threshold"
        if model == "linearized":
            predicted(ax, steps[: len(curve)], curve, colour, ls="--", label=label)
        else:
            observed(ax, steps[: len(curve)], curve, colour, count=40, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step k")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
