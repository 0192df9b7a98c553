"""Figures of tuning without training: predicted against observed scores, and loss against
messages sent."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from companion.plotting._style import (
    ALGORITHM_STYLE,
    MARKERS,
    algorithm_label,
    axes,
    topology_colour,
)


def predicted_vs_observed(
    scores: pd.DataFrame, *, label: str, log: bool = True, ax: Axes | None = None
) -> Figure:
    """Observed against predicted score of every (seed, configuration): hollow markers,
    coloured by topology, shaped by algorithm, with the diagonal where they agree.

    Args:
        scores: columns ``topology``, ``algorithm``, ``predicted``, ``observed``
            (:meth:`companion.tune.Confirmation.scores`).
        label: what the score is, with its unit.
        log: logarithmic axes.
    """
    fig, ax = axes(ax, (6, 5))
    algorithms = list(dict.fromkeys(scores["algorithm"]))
    for i, topology in enumerate(dict.fromkeys(scores["topology"])):
        for j, algorithm in enumerate(algorithms):
            cell = scores[(scores["topology"] == topology) & (scores["algorithm"] == algorithm)]
            ax.scatter(
                cell["predicted"],
                cell["observed"],
                marker=MARKERS[j % len(MARKERS)],
                facecolors="none",
                edgecolors=[topology_colour(topology, i)],
                s=40,
            )
    finite = scores[["predicted", "observed"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    low, high = finite.min(), finite.max()
    ax.plot([low, high], [low, high], color="0.4", lw=1, zorder=0)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # labelled minor ticks collide within a decade
            axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"predicted {label} (closed form)")
    ax.set_ylabel(f"observed {label} (training)")
    handles = [
        Line2D([], [], marker="o", ls="", mfc="none", color=topology_colour(t, i), label=t)
        for i, t in enumerate(dict.fromkeys(scores["topology"]))
    ] + [
        Line2D(
            [],
            [],
            marker=MARKERS[j % len(MARKERS)],
            ls="",
            mfc="none",
            color="0.3",
            label=algorithm_label(a),
        )
        for j, a in enumerate(algorithms)
    ]
    ax.legend(handles=handles, fontsize="small", ncols=2)
    return fig


def loss_by_messages(
    predicted: Mapping[str, tuple[np.ndarray, np.ndarray]],
    observed: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    target: float,
    ax: Axes | None = None,
) -> Figure:
    """Global loss against parameter vectors sent, one colour per configuration: closed
    form (line) and training (hollow markers), with the target as a dashed line.

    Args:
        predicted, observed: configuration label -> (messages sent so far, loss), the label
            starting with the topology's name and containing the algorithm's.
        target: the loss to reach.
    """
    fig, ax = axes(ax, (8, 4))
    for i, (name, (messages, loss)) in enumerate(predicted.items()):
        colour = topology_colour(name.split()[0], i)
        style = next((s for a, s in ALGORITHM_STYLE.items() if a in name.lower()), "-")
        ax.plot(messages, loss, color=colour, ls=style, label=name)
        seen_messages, seen_loss = observed[name]
        ax.plot(seen_messages, seen_loss, ls="", marker="o", mfc="none", color=colour, ms=5)
    ax.axhline(target, color="0.3", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("parameter vectors sent, all agents")
    ax.set_ylabel(r"global loss $L(\bar\theta)$")
    ax.legend(fontsize="small")
    return fig
