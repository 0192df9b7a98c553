"""Figures of the NTK regime: linearization, kernel and error against width, and error
over width and horizon."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from companion.plotting._style import axes, observed, predicted


def _width_axis(ax: Axes, widths: np.ndarray, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(widths, [f"{w:g}" for w in widths])
    ax.minorticks_off()
    ax.set_xlabel("hidden width (units per layer)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)


def error_by_width(
    errors: Mapping[int, float],
    *,
    slope: float | None = None,
    reference: Mapping[int, float] | None = None,
    reference_label: str = "reference",
    ylabel: str = "relative error",
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Measured error against width (markers), the fitted power law through their
    geometric mean (line), and optional reference points."""
    fig, ax = axes(ax, (6, 3.8))
    widths = np.array(sorted(errors), dtype=float)
    values = np.array([errors[w] for w in sorted(errors)])
    observed(ax, widths, values, "C0", ms=6, label="this run")
    if slope is not None:
        log_w = np.log(widths)
        fit = np.exp(np.mean(np.log(values)) + slope * (log_w - log_w.mean()))
        predicted(ax, widths, fit, "0.4", ls="--", label=f"fit, slope {slope:.2f}")
    if reference:
        ax.plot(
            list(reference), list(reference.values()), "s", color="C3", ms=8, label=reference_label
        )
    _width_axis(ax, widths, ylabel, title)
    return fig


def error_heatmap(
    errors: np.ndarray,
    rows: Sequence,
    cols: Sequence,
    *,
    row_label: str = "hidden width",
    col_label: str = "horizon k (steps)",
    label: str = "relative error",
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Annotated heatmap of ``errors[i, j]`` (e.g. width i, horizon j), log colour scale."""
    errors = np.asarray(errors)
    fig, ax = axes(ax, (1.0 * len(cols) + 2.5, 0.6 * len(rows) + 1.8))
    sns.heatmap(
        errors,
        ax=ax,
        annot=True,
        fmt=".3f",
        cmap="rocket_r",
        xticklabels=list(cols),
        yticklabels=list(rows),
        norm=LogNorm(errors.min(), errors.max()),
        cbar_kws={"label": label},
    )
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(title)
    return fig


def ntk_linearization(
    steps: np.ndarray,
    network_loss: np.ndarray,
    linearized_loss: np.ndarray,
    gaps: Mapping[str, np.ndarray],
    *,
    title: str = "",
) -> Figure:
    """Left: training loss of the network (markers) against its linearization (line, which
    the closed form reproduces). Right: relative gaps between their predictions."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    predicted(left, steps, linearized_loss, "C0", label=r"linearized $f_{\mathrm{lin}}$")
    observed(left, steps, network_loss, "C1", label="network $f$")
    left.set_yscale("log")
    left.set_xlabel("gradient step k")
    left.set_ylabel(r"training loss $L(\theta_k)$")
    left.legend(fontsize=8)
    for i, (name, gap) in enumerate(gaps.items()):
        right.plot(steps, gap, color=f"C{i + 3}", label=name)
    right.set_xlabel("gradient step k")
    right.set_ylabel(r"$\|f - f_{\mathrm{lin}}\| \,/\, \|f_{\mathrm{lin}}\|$")
    right.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def ntk_width_scaling(
    widths: Sequence[float],
    values: Mapping[str, np.ndarray],
    *,
    ylabel: str,
    title: str = "",
    reference: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Quantities against width (log-log): ``values`` maps a label to (seeds, widths); each
    seed is a dot, the median over seeds a marker, the least-squares power law through the
    medians a dashed line whose slope is in the legend; ``reference`` adds a dotted line of
    that slope (theory)."""
    fig, ax = axes(ax, (6.4, 4))
    x = np.asarray(widths, dtype=float)
    for i, (name, vals) in enumerate(values.items()):
        seeds = np.atleast_2d(np.asarray(vals, dtype=float))
        median = np.median(seeds, axis=0)
        slope, intercept = np.polyfit(np.log(x), np.log(median), 1)
        for row in seeds:
            ax.scatter(x, row, color=f"C{i}", s=12, alpha=0.4)
        observed(ax, x, median, f"C{i}", ms=6, label=f"{name} (median)")
        fit = np.exp(intercept) * x**slope
        predicted(ax, x, fit, f"C{i}", ls="--", lw=1, label=f"fit: slope {slope:.2f}")
        if reference is not None and i == 0:
            line = median[0] * (x / x[0]) ** reference
            ax.plot(x, line, ":", color="0.4", label=f"theory: slope {reference:g}")
    _width_axis(ax, x, ylabel, title)
    return fig


def power_laws(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Several measured quantities against one variable (log-log), markers joined by thin
    lines, each labelled with its least-squares slope."""
    fig, ax = axes(ax, (6.4, 4))
    xs = np.asarray(x, dtype=float)
    for i, (name, values) in enumerate(series.items()):
        ys = np.asarray(values, dtype=float)
        slope = np.polyfit(np.log(xs), np.log(ys), 1)[0]
        ax.plot(xs, ys, "o-", color=f"C{i}", mfc="none", lw=0.8, label=f"{name}, slope {slope:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
