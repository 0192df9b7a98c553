"""Figures of seed ensembles against the infinite-width prediction, and of where a
prediction stays valid over width and training time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from companion.plotting._style import (
    agent_colours,
    algorithm_label,
    observed,
    predicted,
    topology_colour,
)

Cells = Mapping[tuple[str, str], np.ndarray]


def _cells(cells: Mapping[tuple[str, str], object]) -> tuple[list[str], list[str]]:
    """The topologies (rows) and algorithms (columns) of a (topology, algorithm) mapping."""
    return list(dict.fromkeys(t for t, _ in cells)), list(dict.fromkeys(a for _, a in cells))


def ensemble_bands(
    predicted_mean: Cells,
    predicted_sd: Cells,
    sample_mean: Cells,
    sample_sd: Cells,
    saved_steps: np.ndarray,
    *,
    ylabel: str,
    seeds: int,
) -> Figure:
    """Per agent, the predicted mean (line) and mean +- 2 standard deviations (band), each
    (K, Q) at every step, against an ensemble's sample mean (markers) and +- 2 sample
    standard deviations (bars), each (S, Q) at ``saved_steps``; one panel per (topology,
    algorithm), topologies in rows."""
    topologies, algorithms = _cells(predicted_mean)
    rows, cols = len(topologies), len(algorithms)
    fig, grid = plt.subplots(
        rows, cols, figsize=(3.8 * cols, 2.9 * rows), sharex=True, sharey=True, squeeze=False
    )
    for (i, topo), (j, alg) in (
        (r, c) for r in enumerate(topologies) for c in enumerate(algorithms)
    ):
        ax, cell = grid[i, j], (topo, alg)
        mean, sd = np.asarray(predicted_mean[cell]), np.asarray(predicted_sd[cell])
        steps = np.arange(len(mean))
        for q, colour in enumerate(agent_colours(mean.shape[1])):
            predicted(ax, steps, mean[:, q], colour)
            ax.fill_between(
                steps,
                mean[:, q] - 2 * sd[:, q],
                mean[:, q] + 2 * sd[:, q],
                color=colour,
                alpha=0.12,
                lw=0,
            )
            shift = (q - (mean.shape[1] - 1) / 2) * 0.15 * np.diff(saved_steps[:2])  # dodge
            ax.errorbar(
                saved_steps + shift,
                sample_mean[cell][:, q],
                yerr=2 * sample_sd[cell][:, q],
                fmt="none",
                ecolor=colour,
                elinewidth=0.8,
                alpha=0.7,
            )
            observed(
                ax, saved_steps + shift, sample_mean[cell][:, q], colour, count=len(saved_steps)
            )
        ax.set_title(f"{topo}, {algorithm_label(alg)}", color=topology_colour(topo), fontsize=10)
        ax.set_xlabel("step k" if i == rows - 1 else "")
        ax.set_ylabel(ylabel if j == 0 else "")
    handles = [
        Line2D([], [], color="0.3", lw=1.4, label="infinite width: mean"),
        Patch(color="0.3", alpha=0.12, label=r"infinite width: $\pm 2$ sd"),
        Line2D([], [], color="0.3", marker="o", mfc="none", ls="", label=f"{seeds} networks: mean"),
        Line2D([], [], color="0.3", lw=0.8, label=r"networks: $\pm 2$ sample sd"),
    ]
    grid[0, -1].legend(handles=handles, fontsize=7, loc="best")
    return fig


def validity_maps(
    gaps: Cells,
    widths: Sequence[int],
    horizons: Sequence[int],
    *,
    threshold: float,
    label: str = "log-loss gap up to k",
) -> Figure:
    """(widths, horizons) maps of a gap per (topology, algorithm), on one log colour scale;
    cells at or below ``threshold`` are outlined."""
    topologies, algorithms = _cells(gaps)
    rows, cols = len(topologies), len(algorithms)
    values = np.stack([np.asarray(v, dtype=float) for v in gaps.values()])
    positive = values[values > 0]
    low = float(positive.min()) if positive.size else 1e-3
    norm = LogNorm(low, max(values.max(), 2 * threshold))
    fig, grid = plt.subplots(
        rows,
        cols,
        figsize=(0.75 * len(horizons) * cols + 1.5, 0.5 * len(widths) * rows + 1.2),
        squeeze=False,
        layout="constrained",  # room for the shared colour bar
    )
    for (i, topo), (j, alg) in (
        (r, c) for r in enumerate(topologies) for c in enumerate(algorithms)
    ):
        ax, cell = grid[i, j], np.asarray(gaps[topo, alg], dtype=float)
        sns.heatmap(
            np.maximum(cell, low),
            ax=ax,
            annot=cell,
            fmt=".2f",
            annot_kws={"fontsize": 7},
            cmap="rocket_r",
            norm=norm,
            cbar=False,
            xticklabels=[str(h) for h in horizons],
            yticklabels=[str(w) for w in widths],
        )
        for r, c in zip(*np.nonzero(cell <= threshold), strict=True):
            ax.add_patch(Rectangle((c, r), 1, 1, fill=False, edgecolor="C2", lw=2))
        ax.set_title(f"{topo}, {algorithm_label(alg)}", color=topology_colour(topo), fontsize=10)
        ax.set_xlabel("horizon k (steps)" if i == rows - 1 else "")
        ax.set_ylabel("hidden width" if j == 0 else "")
    mappable = plt.cm.ScalarMappable(norm=norm, cmap="rocket_r")
    fig.colorbar(mappable, ax=grid, label=label, shrink=0.6)
    grid[0, -1].legend(
        handles=[Patch(fill=False, edgecolor="C2", lw=2, label=f"at most {threshold:.3g}")],
        fontsize=7,
        loc="upper right",
    )
    return fig


def ensemble_errors_by_width(
    errors: Mapping[str, np.ndarray],
    floors: Mapping[str, np.ndarray],
    rivals: Mapping[str, np.ndarray],
    widths: Sequence[int],
    *,
    slopes: Mapping[str, float],
) -> Figure:
    """One panel per error: for each width, the median over settings (markers, with the
    range over settings as a band), the fitted power law, the noise floor (dotted) and the
    same error against a rival prediction (squares). Each array is (settings, widths)."""
    fig, grid = plt.subplots(1, len(errors), figsize=(3.9 * len(errors), 3.4), squeeze=False)
    w = np.asarray(widths, dtype=float)
    for ax, (name, values) in zip(grid[0], errors.items(), strict=True):
        median = np.median(values, 0)
        ax.fill_between(w, values.min(0), values.max(0), color="C0", alpha=0.15, lw=0)
        observed(ax, w, median, "C0", ms=6, label="median over settings (band: range)")
        fit = np.exp(np.mean(np.log(median)) + slopes[name] * (np.log(w) - np.log(w).mean()))
        predicted(ax, w, fit, "0.4", ls="--", label=f"fit, slope {slopes[name]:.2f}")
        ax.plot(w, np.median(floors[name], 0), ":", color="0.5", label="noise floor")
        ax.plot(w, np.median(rivals[name], 0), "s", color="C3", ms=5, label="rival")
        ax.set(xscale="log", yscale="log", xlabel="hidden width", title=name)
        ax.set_xticks(w, [str(int(v)) for v in w])
        ax.minorticks_off()
    grid[0, 0].set_ylabel("relative error")
    grid[0, -1].legend(fontsize=7, loc="lower left")
    return fig
