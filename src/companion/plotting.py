"""Every figure of the book, in one seaborn look.

Functions take plain arrays and return the matplotlib ``Figure`` so a chapter can show it
(the last expression of a cell) and a caption can live in the cell metadata.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import seaborn as sns

#: Colours per topology and line styles per algorithm, shared by every chapter.
PALETTE = dict(
    zip(
        ("cycle", "star", "complete", "path", "grid", "torus", "erdos_renyi", "random_geometric"),
        sns.color_palette("colorblind", 8),
        strict=True,
    )
)
ALGORITHM_STYLE = {"dgd": "-", "atc": "--", "cta": ":", "centralized": "-."}


def theme() -> None:
    """Applies the book's seaborn theme (call once per chapter)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 96, "savefig.dpi": 96, "figure.autolayout": True})


def _grid(n: int, width: float = 3.2, height: float = 3.0, cols: int = 4):
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def draw_graphs(graphs: Mapping[str, nx.Graph], seed: int = 0):
    """Draws each graph with a spring layout (``pos`` attributes win where present)."""
    fig, axes = _grid(len(graphs))
    for ax, (name, graph) in zip(axes, graphs.items(), strict=True):
        pos = nx.get_node_attributes(graph, "pos") or nx.spring_layout(graph, seed=seed)
        colour = PALETTE.get(graph.graph.get("name", name), "C0")
        nx.draw_networkx(
            graph, pos, ax=ax, node_color=[colour], node_size=160, font_size=7, edge_color="0.6"
        )
        ax.set_title(f"{name} (Q={graph.number_of_nodes()}, |E|={graph.number_of_edges()})")
        ax.axis("off")
    return fig


def mixing_heatmaps(matrices: Mapping[str, np.ndarray]):
    """Heatmap of each mixing matrix ``W[q, r]``."""
    fig, axes = _grid(len(matrices))
    vmax = max(float(m.max()) for m in matrices.values())
    for ax, (name, w) in zip(axes, matrices.items(), strict=True):
        sns.heatmap(
            w,
            ax=ax,
            vmin=0,
            vmax=vmax,
            cmap="mako_r",
            square=True,
            cbar=False,
            xticklabels=False,
            yticklabels=False,
        )
        ax.set_title(name)
        ax.set_xlabel("agent r")
        ax.set_ylabel("agent q")
    return fig


def spectra(eigenvalues: Mapping[str, np.ndarray]):
    """Eigenvalues of each mixing matrix, sorted, one strip per topology."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, (name, eig) in enumerate(eigenvalues.items()):
        ax.scatter(np.full(eig.size, i), eig, color=PALETTE.get(name, f"C{i}"), s=28)
    ax.set_xticks(range(len(eigenvalues)), list(eigenvalues), rotation=20)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylabel(r"eigenvalue of $W$")
    ax.set_title("Spectra of the mixing matrices")
    return fig


def rate_curves(
    measured: Mapping[str, np.ndarray],
    predicted: Mapping[str, np.ndarray],
    ylabel: str,
    xlabel: str = "step k",
    title: str = "",
    ylim: tuple[float, float] | None = None,
):
    """Measured curves (solid) against predicted ones (dashed), log scale, per topology."""
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, name in enumerate(measured):
        colour = PALETTE.get(name, f"C{i}")
        ax.semilogy(measured[name], color=colour, label=f"{name}: measured")
        ax.semilogy(predicted[name], color=colour, ls="--", lw=1, label=f"{name}: predicted")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def bars(values: Mapping[str, float], ylabel: str, title: str = "", log: bool = False):
    """One bar per named value."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(values)
    ax.bar(
        names,
        [values[n] for n in names],
        color=[PALETTE.get(n, f"C{i}") for i, n in enumerate(names)],
    )
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=20)
    return fig


_COST_LABELS = {"m": "outputs m = n C", "num_agents": "agents Q", "width": "hidden width"}


def cost_scaling(runs: Mapping[str, Mapping], *, cols: int = 3):
    """Log-log cost curves: measured seconds (markers) against the leading-order operation
    count rescaled through the middle point (dashed), each run a panel with both slopes.

    ``runs`` maps a title to a :func:`companion.cost.sweep` result.
    """
    fig, axes = _grid(len(runs), width=3.6, height=3.1, cols=cols)
    for i, (ax, (title, run)) in enumerate(zip(axes, runs.items(), strict=True)):
        x, sec, ops = (np.asarray(run[k], float) for k in ("values", "seconds", "ops"))
        mid = len(x) // 2
        ax.loglog(x, sec, "o-", color=f"C{i}", label=f"measured, slope {run['slope']:.2f}")
        ax.loglog(x, ops * sec[mid] / ops[mid], "--", color="0.4",
                  label=f"operation count, slope {run['theory_slope']:.2f}")  # fmt: skip
        ax.set_xlabel(_COST_LABELS.get(run["vary"], run["vary"]))
        ax.set_ylabel("wall time (s)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    return fig
