"""Figures of mini-batch training: thresholds and the stability map, the divergence of the
second moment, band errors by width, and the cost to a target by batch size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from companion.plotting._style import (
    ALGORITHM_STYLE,
    algorithm_label,
    axes,
    observed,
    panels,
    predicted,
)

__all__ = ["band_errors_by_width", "cost_by_batch", "mean_square_runs", "stability_map"]


def stability_map(
    batches: Sequence[int],
    fractions: Sequence[float],
    radii: np.ndarray,
    thresholds: Mapping[str, Mapping[int, float]],
    *,
    title: str = "",
) -> Figure:
    """Left: ``log10 rho(T)`` of the second-moment operator on a grid of batch size (rows)
    by step size as a fraction of the full-batch threshold (columns), 0 (white) at the
    mean-square boundary. Right: the exact mean-square threshold against batch size, one
    line per algorithm, as a fraction of that algorithm's full-batch threshold."""
    fig, (left, right) = panels(2, width=4.6, height=3.6, cols=2)
    values = np.log10(np.asarray(radii))
    span = max(float(np.abs(values).max()), 1e-6)
    image = left.imshow(
        values,
        origin="lower",
        aspect="auto",
        cmap="RdBu_r",
        norm=TwoSlopeNorm(0.0, -span, span),
        extent=(-0.5, len(fractions) - 0.5, -0.5, len(batches) - 0.5),
    )
    left.set_xticks(range(len(fractions)), [f"{f:g}" for f in fractions], rotation=45)
    left.set_yticks(range(len(batches)), [str(b) for b in batches])
    left.set_xlabel("step size / full-batch threshold")
    left.set_ylabel("batch size b")
    left.set_title(title)
    fig.colorbar(image, ax=left, label="log10 spectral radius of T")
    for name, by_batch in thresholds.items():
        sizes = sorted(by_batch)
        style = ALGORITHM_STYLE.get(name, "-")
        right.plot(sizes, [by_batch[b] for b in sizes], "o", ls=style, label=algorithm_label(name))
    right.axhline(1.0, color="0.5", lw=0.8)
    right.set_xlabel("batch size b")
    right.set_ylabel("mean-square threshold / full-batch")
    right.legend(fontsize=8)
    return fig


def mean_square_runs(
    steps: np.ndarray,
    exact: Mapping[float, np.ndarray],
    sampled: Mapping[float, np.ndarray],
    *,
    ylabel: str,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """One expected loss curve per step-size factor (of the mean-square threshold): the
    exact second moment's (line) and the Monte Carlo average (markers)."""
    fig, ax = axes(ax, (7.5, 4))
    for i, factor in enumerate(exact):
        label = f"{factor:g}x the mean-square threshold"
        predicted(ax, steps, exact[factor], f"C{i}", label=label)
        observed(ax, steps, sampled[factor], f"C{i}", count=30)
    ax.set_yscale("log")
    ax.set_xlabel("step k")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def band_errors_by_width(
    ours: Mapping[int, float],
    rival: Mapping[int, float],
    floor: Mapping[int, float],
    *,
    rival_label: str = "rival",
    ax: Axes | None = None,
) -> Figure:
    """The error of the predicted band (variance) against width: ours and the rival's
    (markers, median over seeds), and the noise floor of the ensembles (line)."""
    fig, ax = axes(ax, (6, 3.8))
    widths = sorted(ours)
    observed(ax, widths, [ours[w] for w in widths], "C0", ms=6, label="exact second moment")
    observed(ax, widths, [rival[w] for w in widths], "C3", marker="s", ms=6, label=rival_label)
    predicted(ax, widths, [floor[w] for w in widths], "0.4", ls="--", label="noise floor")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width")
    ax.set_ylabel("relative error of the summed variance")
    ax.legend(fontsize=8)
    return fig


def cost_by_batch(
    trained: Mapping[str, Mapping[str, float]],
    predicted_cost: Mapping[str, Mapping[str, float]],
    rival: Mapping[str, Mapping[str, float]],
    *,
    rival_label: str = "rival",
) -> Figure:
    """Steps, messages and gradient evaluations to the target against the batch label:
    trained (markers), predicted by the exact moments (line) and by the rival (dashed)."""
    labels = list(trained)
    fig, grid = panels(3, width=3.6, height=3.2, cols=3)
    for ax, field in zip(grid, ("steps", "messages", "gradient_evaluations"), strict=True):
        x = np.arange(len(labels))
        predicted(ax, x, [predicted_cost[k][field] for k in labels], "C0", label="exact moments")
        predicted(ax, x, [rival[k][field] for k in labels], "C3", ls="--", label=rival_label)
        observed(ax, x, [trained[k][field] for k in labels], "C0", ms=6, label="trained")
        ax.set_xticks(x, labels)
        ax.set_xlabel("batch")
        ax.set_title(field.replace("_", " "))
    grid[0].legend(fontsize=8)
    return fig
