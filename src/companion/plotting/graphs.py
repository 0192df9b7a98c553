"""Figures of graphs, mixing matrices and consensus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from companion.plotting._style import axes, observed, panels, predicted, topology_colour


def draw_graph(
    graph: nx.Graph, *, ax: Axes | None = None, title: str = "", seed: int = 0
) -> Figure:
    """One graph, spring layout (``pos`` node attributes win where present)."""
    fig, ax = axes(ax, (3.2, 3.0))
    pos = nx.get_node_attributes(graph, "pos") or nx.spring_layout(graph, seed=seed)
    colour = topology_colour(graph.graph.get("name", ""))
    nx.draw_networkx(
        graph, pos, ax=ax, node_color=[colour], node_size=160, font_size=7, edge_color="0.6"
    )
    ax.set_title(title or f"Q={graph.number_of_nodes()}, |E|={graph.number_of_edges()}")
    ax.axis("off")
    return fig


def draw_graphs(graphs: Mapping[str, nx.Graph], seed: int = 0) -> Figure:
    """Every graph, one panel each."""
    fig, grid = panels(len(graphs))
    for ax, (name, graph) in zip(grid, graphs.items(), strict=True):
        title = f"{name} (Q={graph.number_of_nodes()}, |E|={graph.number_of_edges()})"
        draw_graph(graph, ax=ax, title=title, seed=seed)
    return fig


def mixing_heatmaps(matrices: Mapping[str, np.ndarray]) -> Figure:
    """Heatmap of each mixing matrix ``W[q, r]``, one panel each, one colour scale."""
    fig, grid = panels(len(matrices))
    vmax = max(float(m.max()) for m in matrices.values())
    for ax, (name, w) in zip(grid, matrices.items(), strict=True):
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


def spectra(eigenvalues: Mapping[str, np.ndarray], *, ax: Axes | None = None) -> Figure:
    """Eigenvalues of each mixing matrix, one strip per topology."""
    fig, ax = axes(ax, (8, 3.6))
    for i, (name, eig) in enumerate(eigenvalues.items()):
        ax.scatter(np.full(eig.size, i), eig, color=topology_colour(name, i), s=28)
    ax.set_xticks(range(len(eigenvalues)), list(eigenvalues), rotation=20)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylabel(r"eigenvalue of $W$")
    ax.set_title("Spectra of the mixing matrices")
    return fig


def rate_curves(
    predictions: Mapping[str, np.ndarray],
    measurements: Mapping[str, np.ndarray],
    *,
    ylabel: str,
    xlabel: str = "step k",
    title: str = "",
    ylim: tuple[float, float] | None = None,
    colours: Mapping[str, object] | None = None,
    measured_at: Sequence[int] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Predicted curves (lines, one value per step) and measured ones (hollow markers, at
    the steps ``measured_at``, by default every step), log scale, one colour per key (a
    topology's colour, unless ``colours`` says otherwise)."""
    fig, ax = axes(ax, (9, 4))
    for i, name in enumerate(predictions):
        colour = (colours or {}).get(name) or topology_colour(name, i)
        steps = np.arange(len(predictions[name]))
        predicted(ax, steps, predictions[name], colour, label=f"{name}: predicted")
        at = np.arange(len(measurements[name])) if measured_at is None else measured_at
        observed(ax, at, measurements[name], colour, label=f"{name}: measured")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
