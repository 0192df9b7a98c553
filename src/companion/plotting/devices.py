"""Figures of agents on devices: who sits where, which ppermute carries which rows, and
the bytes one mixing moves."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from companion.plotting._style import axes, observed, panels, predicted, topology_colour


def device_colours(num_devices: int) -> list:
    """One colour per device (a categorical palette, apart from the agent palette)."""
    return list(sns.color_palette("Set2", num_devices))


def _layout(graph: nx.Graph) -> dict:
    """Grids and tori on their grid (row-major, as companion.graphs numbers them), cycles
    on a circle, anything else by Kamada-Kawai."""
    q, name = graph.number_of_nodes(), graph.graph.get("name")
    if name in ("grid", "torus"):
        side = math.isqrt(q)
        return {i: (i % side, -(i // side)) for i in range(q)}
    if name == "cycle":
        return nx.circular_layout(graph)
    return nx.get_node_attributes(graph, "pos") or nx.kamada_kawai_layout(graph)


def agents_on_devices(
    graph: nx.Graph, num_devices: int, *, ax: Axes | None = None, title: str = ""
) -> Figure:
    """The agent graph, each agent in its device's colour (blocks of Q / D consecutive
    agents); edges inside a device grey and thin, edges between devices dark, and the
    torus's wrap-around edges curved."""
    fig, ax = axes(ax, (3.4, 3.2))
    q = graph.number_of_nodes()
    device = np.arange(q) // (q // num_devices)
    pos = _layout(graph)
    for u, v in graph.edges():
        far = (
            bool(np.hypot(*np.subtract(pos[u], pos[v])) > 1.5)
            and graph.graph.get("name") == "torus"
        )
        inside = device[u] == device[v]
        curved: dict[str, Any] = dict(arrows=True, arrowstyle="-", connectionstyle="arc3,rad=0.35")
        nx.draw_networkx_edges(
            graph,
            pos,
            edgelist=[(u, v)],
            ax=ax,
            edge_color="0.75" if inside else "0.25",
            width=0.8 if inside else 1.2,
            **(curved if far else {}),
        )
    colours = device_colours(num_devices)
    nx.draw_networkx_nodes(
        graph, pos, ax=ax, node_color=[colours[d] for d in device], node_size=150
    )
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=6)
    ax.set_title(title or f"{q} agents on {num_devices} devices", fontsize=10)
    ax.axis("off")
    return fig


def ppermute_rounds(
    rounds: Sequence[Sequence[tuple[int, int]]],
    num_devices: int,
    *,
    ax: Axes | None = None,
    title: str = "",
) -> Figure:
    """Devices on a circle, each arc ``source -> destination`` coloured by the ppermute
    that carries it: within one colour no device sends twice or receives twice."""
    fig, ax = axes(ax, (3.4, 3.2))
    devices = nx.DiGraph()
    devices.add_nodes_from(range(num_devices))
    pos = nx.circular_layout(devices)
    palette = sns.color_palette("dark", max(len(rounds), 1))
    for colour, arcs in zip(palette, rounds, strict=False):
        nx.draw_networkx_edges(
            nx.DiGraph(list(arcs)),
            pos,
            ax=ax,
            edge_color=[colour],
            width=1.5,
            arrowsize=9,
            connectionstyle="arc3,rad=0.18",
            node_size=260,
        )
    nx.draw_networkx_nodes(
        devices, pos, ax=ax, node_color=device_colours(num_devices), node_size=260
    )
    nx.draw_networkx_labels(devices, pos, ax=ax, font_size=7)
    handles = [
        Line2D([], [], color=c, lw=1.5, label=f"ppermute {i + 1}")
        for i, c in enumerate(palette[: len(rounds)])
    ]
    if handles:
        ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(0.95, 1.0))
    ax.set_title(title or f"{len(rounds)} ppermutes", fontsize=10)
    ax.axis("off")
    return fig


def device_plans(plans: Mapping[str, tuple[nx.Graph, Sequence, int]]) -> Figure:
    """For each graph (title -> (graph, rounds, D)): its agents coloured by device, then
    the ppermutes between the devices."""
    fig, grid = panels(2 * len(plans), width=3.4, height=3.2, cols=2)
    for (name, (graph, rounds, d)), left, right in zip(
        plans.items(), grid[::2], grid[1::2], strict=True
    ):
        agents_on_devices(graph, d, ax=left, title=f"{name}: agents on {d} devices")
        ppermute_rounds(rounds, d, ax=right, title=f"{name}: {len(rounds)} ppermutes")
    return fig


def traffic(rows: Sequence[Mapping], *, ax: Axes | None = None, title: str = "") -> Figure:
    """Bytes one mixing moves against Q: counted from the plan (lines) and measured from
    the compiled program (hollow markers), by matchings per graph and by an all-gather."""
    fig, ax = axes(ax, (6.4, 3.8))
    for i, name in enumerate(dict.fromkeys(r["graph"] for r in rows)):
        mine = [r for r in rows if r["graph"] == name]
        q = [r["num_agents"] for r in mine]
        colour = topology_colour(name, i)
        predicted(ax, q, [r["counted_bytes"] for r in mine], colour, label=f"{name}: matchings")
        observed(ax, q, [r["measured_bytes"] for r in mine], colour, ms=7)
    gather = {r["num_agents"]: r for r in rows}
    q = sorted(gather)
    predicted(ax, q, [gather[k]["allgather_bytes"] for k in q], "0.4", ls="--", label="all-gather")
    observed(ax, q, [gather[k]["allgather_measured_bytes"] for k in q], "0.4", ms=7)
    ax.plot([], [], "o", color="0.3", mfc="none", label="measured (compiled program)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(q, [str(k) for k in q])
    ax.set_xlabel("agents Q")
    ax.set_ylabel("bytes moved per mixing")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
