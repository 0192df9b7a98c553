"""Figures of changing graphs: Monte Carlo bands against expected dynamics, and
disagreement against the messages it cost."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from companion.plotting._style import agent_colours, axes, observed, predicted, topology_colour


def expected_band(
    samples: np.ndarray,
    mean: np.ndarray,
    second: np.ndarray,
    *,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """One output per agent over steps: the Monte Carlo mean (markers) and its band of two
    standard deviations (shaded) against the predicted mean (line) and the predicted band
    from the exact second moment (dashed).

    Args:
        samples: (realizations, steps + 1, Q) one output of every agent per realization.
        mean, second: (steps + 1, Q) the predicted first and second moments.
    """
    fig, ax = axes(ax, (9, 4.2))
    steps = np.arange(samples.shape[1])
    spread = 2 * np.sqrt(np.clip(second - mean**2, 0, None))
    for q, colour in enumerate(agent_colours(samples.shape[2])):
        low, high = np.percentile(samples[:, :, q], [2.275, 97.725], axis=0)
        ax.fill_between(steps, low, high, color=colour, alpha=0.15, lw=0)
        predicted(ax, steps, mean[:, q], colour, label=f"agent {q}")
        for sign in (-1, 1):
            predicted(ax, steps, mean[:, q] + sign * spread[:, q], colour, ls="--", lw=0.9)
        observed(ax, steps, samples[:, :, q].mean(0), colour)
    ax.set_xlabel("step k")
    ax.set_ylabel("prediction on one training output")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def disagreement_by_messages(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Disagreement against the messages each agent has sent, one line per schedule.

    Args:
        curves: name -> (messages sent per agent so far, disagreement), one value per step.
    """
    fig, ax = axes(ax, (8, 4))
    for i, (name, (messages, disagreement)) in enumerate(curves.items()):
        predicted(ax, messages, disagreement, topology_colour(name, i), label=name, marker=".")
    ax.set_yscale("log")
    ax.set_xlabel("messages sent per agent")
    ax.set_ylabel("distance to the average")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
