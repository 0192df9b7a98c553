"""Figures of heterogeneous data: which classes each agent holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def label_mix(
    labels_by_agent: Mapping[str, Sequence[np.ndarray]], *, num_classes: int = 10
) -> Figure:
    """Class counts of every agent as stacked bars, one panel per partition.

    Args:
        labels_by_agent: partition name -> the labels of each agent's rows.
    """
    fig, grid = plt.subplots(
        1,
        len(labels_by_agent),
        figsize=(2.6 * len(labels_by_agent), 3.2),
        sharey=True,
        squeeze=False,
    )
    colours = plt.get_cmap("tab10")(np.arange(num_classes) % 10)
    for ax, (name, agents) in zip(grid[0], labels_by_agent.items(), strict=True):
        counts = np.stack([np.bincount(a, minlength=num_classes) for a in agents])
        bottom = np.zeros(len(agents))
        for c in range(num_classes):
            ax.bar(range(len(agents)), counts[:, c], bottom=bottom, color=colours[c], width=0.8)
            bottom += counts[:, c]
        ax.set_title(name)
        ax.set_xlabel("agent")
        ax.set_xticks(range(len(agents)))
    grid[0, 0].set_ylabel("samples (colour: class)")
    return fig


def error_by_partition(
    spreads: Mapping[str, Mapping[int, tuple[float, float, float]]],
    *,
    ylabel: str = "relative error",
    title: str = "",
) -> Figure:
    """Error against width, one line per partition: the median over seeds (markers and
    line) with bars from the minimum to the maximum.

    Args:
        spreads: partition name -> width -> ``(median, minimum, maximum)``
            (:func:`companion.metrics.spread`).
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, by_width) in enumerate(spreads.items()):
        widths = np.array(sorted(by_width), dtype=float)
        median, low, high = np.array([by_width[w] for w in sorted(by_width)]).T
        shift = widths * 1.04**i  # side by side, on a log axis
        ax.errorbar(
            shift,
            median,
            yerr=[median - low, high - median],
            marker="o",
            mfc="none",
            capsize=3,
            label=name,
            color=f"C{i}",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
