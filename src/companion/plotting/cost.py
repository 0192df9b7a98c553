"""Figures of cost: wall times and their scaling against operation counts."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from companion.plotting._style import axes, observed, panels, predicted, topology_colour

_COST_LABELS = {"m": "outputs m = n C", "num_agents": "agents Q", "width": "hidden width"}


def bars(
    values: Mapping[str, float],
    *,
    ylabel: str,
    title: str = "",
    log: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """One bar per named value."""
    fig, ax = axes(ax, (7, 3.5))
    names = list(values)
    ax.bar(
        names,
        [values[n] for n in names],
        color=[topology_colour(n, i) for i, n in enumerate(names)],
    )
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=20)
    return fig


def cost_curve(
    run: Mapping, *, title: str = "", colour: str = "C0", ax: Axes | None = None
) -> Figure:
    """Measured seconds (markers) against the leading-order operation count rescaled
    through the middle point (line), log-log, for one :func:`companion.cost.sweep`."""
    fig, ax = axes(ax, (3.6, 3.1))
    x, sec, ops = (np.asarray(run[k], float) for k in ("values", "seconds", "ops"))
    mid = len(x) // 2
    observed(ax, x, sec, colour, ms=6, label=f"measured, slope {run['slope']:.2f}")
    predicted(
        ax,
        x,
        ops * sec[mid] / ops[mid],
        "0.4",
        ls="--",
        label=f"operation count, slope {run['theory_slope']:.2f}",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{v:g}" for v in x], minor=False)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(_COST_LABELS.get(run["vary"], str(run["vary"])))
    ax.set_ylabel("wall time (s)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def cost_scaling(runs: Mapping[str, Mapping], *, cols: int = 3) -> Figure:
    """:func:`cost_curve` for every sweep in ``runs`` (title -> sweep), one panel each."""
    fig, grid = panels(len(runs), width=3.6, height=3.1, cols=cols)
    for i, (ax, (title, run)) in enumerate(zip(grid, runs.items(), strict=True)):
        cost_curve(run, title=title, colour=f"C{i}", ax=ax)
    return fig
