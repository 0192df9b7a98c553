"""Figures of closed forms against training: per agent, per cell of the topology grid, per
algorithm, and on the way to the limit."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from companion.limits import Approach
from companion.plotting._style import (
    ALGORITHM_STYLE,
    MARKERS,
    agent_colours,
    agent_handles,
    algorithm_label,
    axes,
    grammar_handles,
    observed,
    predicted,
    topology_colour,
)
from companion.trajectory import Trajectory

# (field of Trajectory, axis label, log scale) of the four panels of dynamics_panels
PANELS = (
    ("local_loss", r"local loss $L_q(\theta_q)$", True),
    ("global_loss", r"global loss $L(\theta_q)$", True),
    ("consensus_distance", "consensus distance", False),
    ("param_distance", r"$\|\theta_q - \theta_0\|$", False),
)
PER_STEP = ("local_loss",)  # the other fields live at a run's saved steps


def agent_curves(
    ax: Axes,
    steps: np.ndarray,
    prediction: np.ndarray,
    measurement: np.ndarray | None = None,
    *,
    marker: str = "o",
    count: int = 12,
) -> None:
    """Per-agent (K, Q) curves in the agent palette: prediction lines, measured markers;
    a single curve (K,) is drawn in grey."""
    prediction = np.asarray(prediction).reshape(len(steps), -1)
    colours = agent_colours(prediction.shape[1]) if prediction.shape[1] > 1 else ["0.2"]
    for q, colour in enumerate(colours):
        predicted(ax, steps, prediction[:, q], colour)
        if measurement is not None:
            values = np.asarray(measurement).reshape(len(steps), -1)[:, q]
            observed(ax, steps, values, colour, marker=marker, count=count)


def loss_grid(
    predictions: Mapping[tuple[str, str], np.ndarray],
    measurements: Mapping[tuple[str, str], np.ndarray],
    *,
    ylabel: str = r"local loss $L_q$",
    mean: bool = False,
) -> Figure:
    """Per-agent (K, Q) curves, one panel per (topology, algorithm): topologies in rows,
    algorithms in columns; with ``mean`` the mean over agents in black."""
    topologies = list(dict.fromkeys(t for t, _ in predictions))
    algorithms = list(dict.fromkeys(a for _, a in predictions))
    rows, cols = len(topologies), len(algorithms)
    fig, grid = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 2.8 * rows), sharex=True, sharey=True, squeeze=False
    )
    for (i, topo), (j, alg) in (
        (r, c) for r in enumerate(topologies) for c in enumerate(algorithms)
    ):
        ax, pred, obs = grid[i, j], predictions[topo, alg], measurements[topo, alg]
        steps = np.arange(len(pred))
        agent_curves(ax, steps, pred, obs)
        if mean:
            predicted(ax, steps, np.mean(pred, 1), "k", lw=1.8)
            observed(ax, steps, np.mean(obs, 1), "k", marker="s", count=12)
        ax.set_yscale("log")
        ax.set_title(f"{topo}, {algorithm_label(alg)}", color=topology_colour(topo), fontsize=10)
        ax.set_xlabel("step k" if i == rows - 1 else "")
        ax.set_ylabel(ylabel if j == 0 else "")
    handles = grammar_handles()
    if mean:
        handles.append(Line2D([], [], color="k", lw=1.8, label="mean over agents"))
    grid[0, -1].legend(handles=handles, fontsize=7, loc="upper right")
    return fig


def accuracy_curves(
    predictions: Mapping[tuple[str, str], np.ndarray],
    measurements: Mapping[tuple[str, str], np.ndarray],
    *,
    ylabel: str = "test accuracy (mean over agents)",
) -> Figure:
    """(K,) curves per (topology, algorithm): one panel per algorithm, colour per topology."""
    topologies = list(dict.fromkeys(t for t, _ in predictions))
    algorithms = list(dict.fromkeys(a for _, a in predictions))
    fig, grid = plt.subplots(
        1, len(algorithms), figsize=(3.8 * len(algorithms), 3.2), sharey=True, squeeze=False
    )
    for ax, alg in zip(grid[0], algorithms, strict=True):
        for i, topo in enumerate(topologies):
            steps, colour = np.arange(len(predictions[topo, alg])), topology_colour(topo, i)
            predicted(ax, steps, predictions[topo, alg], colour, label=f"{topo}: closed form")
            observed(
                ax, steps, measurements[topo, alg], colour, count=12, label=f"{topo}: training"
            )
        ax.set_title(algorithm_label(alg))
        ax.set_xlabel("step k")
    grid[0, 0].set_ylabel(ylabel)
    grid[0, -1].legend(fontsize=7, loc="lower right")
    return fig


def dynamics_panels(
    prediction: Trajectory, measurements: Mapping[str, Trajectory], title: str = ""
) -> Figure:
    """Closed form (lines) against training runs (one marker shape each) in four panels:
    per agent the local loss ``L_q(theta_q)`` and the paper's global loss ``L(theta_q)``,
    the consensus distance, and each agent's distance from theta_0."""
    fig, grid = plt.subplots(1, len(PANELS), figsize=(15, 3.6))
    for ax, (field, ylabel, log) in zip(grid, PANELS, strict=True):
        axis = "steps" if field in PER_STEP else "saved_steps"
        agent_curves(ax, getattr(prediction, axis), getattr(prediction, field))
        for run, marker in zip(measurements.values(), MARKERS, strict=False):
            steps = getattr(run, axis)
            values = np.asarray(getattr(run, field)).reshape(len(steps), -1)
            colours = agent_colours(values.shape[1]) if values.shape[1] > 1 else ["0.2"]
            for q, colour in enumerate(colours):
                observed(ax, steps, values[:, q], colour, marker=marker)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("step k")
        ax.set_ylabel(ylabel)
    handles = grammar_handles(list(measurements)) + agent_handles(prediction.local_loss.shape[1])
    grid[-1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(title)
    return fig


def flow_vs_steps(
    flows: Mapping[str, Trajectory],
    discrete: Mapping[str, Trajectory],
    *,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Global loss (mean over agents of ``L(theta_q)``) of gradient flows (lines) and of
    discrete recursions (markers) against time ``t = k eta``; the i-th discrete run shares
    the i-th flow's colour."""
    fig, ax = axes(ax, (8, 3.8))
    for i, (label, flow) in enumerate(flows.items()):
        predicted(ax, flow.time, flow.mean_global_loss, f"C{i}", label=label)
    for i, (label, run) in enumerate(discrete.items()):
        observed(
            ax,
            run.time,
            run.mean_global_loss,
            f"C{i}",
            marker=MARKERS[i % len(MARKERS)],
            count=30,
            label=label,
        )
    ax.set_yscale("log")
    ax.set_xlabel(r"time $t = k\eta$")
    ax.set_ylabel(r"global loss $\frac{1}{Q}\sum_q L(\theta_q)$")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def algorithm_comparison(runs: Mapping[str, Trajectory], title: str = "") -> Figure:
    """Global loss at the network average ``L(theta_bar)``, consensus distance and (if
    recorded) test loss of several runs, one line each (keys "dgd", "atc", "cta" and
    "centralized" get their line styles; any other key is a label)."""
    has_test = all(t.test_loss is not None for t in runs.values())
    fig, grid = plt.subplots(1, 3 if has_test else 2, figsize=(14 if has_test else 10, 3.6))
    for name, traj in runs.items():
        style = dict(ls=ALGORITHM_STYLE.get(name, "-"), label=algorithm_label(name))
        grid[0].semilogy(traj.saved_steps, traj.average_loss, **style)
        consensus = np.asarray(traj.consensus_distance)
        if np.any(consensus > 0):
            grid[1].semilogy(traj.saved_steps[1:], consensus[1:], **style)
        else:  # a log axis cannot show it; say so in the legend
            grid[1].plot([], [], **{**style, "label": f"{style['label']}: identically 0"})
        if traj.test_loss is not None and has_test:
            grid[2].plot(traj.saved_steps, traj.test_loss.mean(axis=1), **style)
    grid[0].set_ylabel(r"global loss at the average $L(\bar\theta)$")
    grid[1].set_ylabel("consensus distance (parameters)")
    if has_test:
        grid[2].set_ylabel("test loss (mean over agents)")
    for ax in grid:
        ax.set_xlabel("step k")
    for ax in grid[:2]:
        ax.legend(fontsize=9)
    fig.suptitle(title)
    return fig


# (field of Approach, label, colour)
GAPS = (
    ("train_gap", r"$\|F_q - y\|$ (interpolation)", "C0"),
    ("test_gap", "test predictions vs NTK regression", "C1"),
    ("norm_gap", r"$\|\theta_q-\theta_0\|$ vs minimum norm", "C2"),
)


def limit_gaps(
    approaches: Mapping[str, Approach], *, title: str = "", ax: Axes | None = None
) -> Figure:
    """Distance of the worst agent to the centralized limit against the step (log-log);
    keys are algorithm names (line style), colours the three measures."""
    fig, ax = axes(ax, (8.5, 4))
    for algorithm, appr in approaches.items():
        steps = np.maximum(appr.steps, 1)
        for field, name, colour in GAPS:
            gap = getattr(appr, field)
            if gap is not None:
                ax.loglog(
                    steps,
                    gap.max(axis=1),
                    ls=ALGORITHM_STYLE.get(algorithm, "-"),
                    color=colour,
                    label=f"{algorithm_label(algorithm)}: {name}",
                )
    ax.set_xlabel("step k (step 0 drawn at k = 1)")
    ax.set_ylabel("relative gap to the limit (worst agent)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def flow_gaps(
    gaps: Mapping[str, Mapping[float, float]], *, title: str = "", ax: Axes | None = None
) -> Figure:
    """Gap between the discrete recursion and its flow against the step size (log-log), one
    line style per algorithm, with the first-order reference slope."""
    fig, ax = axes(ax, (6, 3.8))
    for name, by_lr in gaps.items():
        lrs = np.array(sorted(by_lr))
        ax.loglog(
            lrs,
            [by_lr[lr] for lr in lrs],
            marker="o",
            mfc="none",
            ls=ALGORITHM_STYLE.get(name, "-"),
            color="0.2",
            label=algorithm_label(name),
        )
    first = next(iter(gaps.values()))
    lrs = np.array(sorted(first))
    ax.loglog(
        lrs,
        first[lrs[-1]] * lrs / lrs[-1],
        color="firebrick",
        lw=0.8,
        label="slope 1 (first order)",
    )
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel(r"$\|F_k - F(k\eta)\| \,/\, \|F(k\eta) - F(0)\|$")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
