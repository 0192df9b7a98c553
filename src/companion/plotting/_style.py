"""The book's visual grammar, in one place.

- The closed form (any prediction) is a line; training (any measurement) is hollow markers
  on top of it, thinned so the line stays visible.
- Colour means agent (:func:`agent_colours`, one palette) or topology
  (:data:`TOPOLOGY_COLOURS`); line style means algorithm (:data:`ALGORITHM_STYLE`).
- Every figure is returned as a matplotlib ``Figure``; single-panel functions take
  ``ax=None`` and draw into a new figure when none is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from companion.algorithms import ALGORITHMS

#: One colour per topology, shared by every chapter.
TOPOLOGY_COLOURS: dict[str, Any] = dict(
    zip(
        ("cycle", "star", "complete", "path", "grid", "torus", "erdos_renyi", "random_geometric"),
        sns.color_palette("colorblind", 8),
        strict=True,
    )
)
#: One line style per algorithm.
ALGORITHM_STYLE = {"dgd": "-", "atc": "--", "cta": ":", "centralized": "-."}
MARKERS = ("o", "s", "^", "D", "v")


def theme() -> None:
    """Applies the book's seaborn theme (call once per chapter)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 96, "savefig.dpi": 96, "figure.autolayout": True})


def agent_colours(num_agents: int) -> list[Any]:
    """The agent palette: agent q is colour q of ``num_agents``."""
    return list(sns.color_palette("viridis", num_agents))


def topology_colour(name: str, index: int = 0) -> Any:
    """The colour of a topology (a default colour for unknown names)."""
    return TOPOLOGY_COLOURS.get(name, f"C{index % 10}")


def algorithm_label(name: str) -> str:
    """``"dgd"`` -> ``"DGD"``; other names unchanged."""
    return name.upper() if name in ALGORITHMS else name


def axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new single-panel figure."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax  # type: ignore[return-value]


def panels(
    n: int, *, width: float = 3.2, height: float = 3.0, cols: int = 4, **kwargs: Any
) -> tuple[Figure, list[Axes]]:
    """A grid of ``n`` panels, ``cols`` per row, unused cells hidden."""
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, grid = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kwargs
    )
    for ax in grid.flat[n:]:
        ax.set_visible(False)
    return fig, list(grid.flat[:n])


def thinned(length: int, count: int = 25) -> np.ndarray:
    """About ``count`` evenly spaced indices of ``range(length)`` for markers."""
    return np.unique(np.linspace(0, length - 1, min(count, length)).astype(int))


def predicted(ax: Axes, x: Any, y: Any, colour: Any, *, ls: str = "-", **kw: Any) -> None:
    """A prediction: a line."""
    ax.plot(x, y, color=colour, ls=ls, lw=kw.pop("lw", 1.4), **kw)


def observed(
    ax: Axes, x: Any, y: Any, colour: Any, *, marker: str = "o", count: int = 25, **kw: Any
) -> None:
    """A measurement: hollow markers, thinned to about ``count``."""
    x, y = np.asarray(x), np.asarray(y)
    idx = thinned(len(x), count)
    ax.plot(x[idx], y[idx], marker, color=colour, mfc="none", ms=kw.pop("ms", 4), ls="", **kw)


def grammar_handles(labels: Sequence[str] = ("training",)) -> list[Any]:
    """Legend entries for "closed form" (line) and each measured run (marker shape)."""
    handles = [Line2D([], [], color="0.3", lw=1.4, label="closed form")]
    handles += [
        Line2D([], [], color="0.3", ls="", marker=m, mfc="none", label=label)
        for label, m in zip(labels, MARKERS, strict=False)
    ]
    return handles


def agent_handles(num_agents: int) -> list[Any]:
    """Legend entries naming the agent colours."""
    colours = agent_colours(num_agents)
    return [Line2D([], [], color=colours[q], label=f"agent {q + 1}") for q in range(num_agents)]
