"""How well a prediction agrees with a training run, measured so that a wrong one fails.

The relative L2 error of a whole loss curve is a weak measure: it is set by the first
steps, where both curves start from the same ``f_0`` and fall by orders of magnitude, so a
prediction can be off by a factor of two at the end and still score well. The metrics
here look where predictions can be wrong:

- :attr:`Agreement.final_loss_rel_err`: ``|L^_T - L_T| / L_T`` of the global loss (the
  mean over agents of ``L(theta_q)``) at the last step both runs saved;
- :attr:`Agreement.final_loss_ratio`: ``L^_T / L_T``, above 1 when the trained run ends
  lower than predicted (it trained faster);
- :attr:`Agreement.log_loss_gap`: ``max_k |log(L^_k / L_k)|`` of the same curve, which
  weighs a factor of two the same at every scale;
- :attr:`Agreement.agent_loss_rel_err`: each agent's final local-loss relative error;
- :attr:`Agreement.consensus_rel_err`: relative L2 error of the consensus-distance curve;
- :attr:`Agreement.test_loss_rel_err`, :attr:`Agreement.test_accuracy_gap`: the final test
  loss (relative) and test accuracy (absolute) gaps.

:func:`graph_distance` is graph-sensitive (per-agent losses and consensus distance), and
:func:`confusion` tells which graph's closed form is closest to each trained run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import scipy.stats

from companion import ntk
from companion.models import Model
from companion.trajectory import Trajectory, relative_error

__all__ = [
    "Agreement",
    "agent_kernels",
    "agreement",
    "confusion",
    "flat_parameters",
    "graph_distance",
    "identified",
    "kernel_drift",
    "log_loss_gap_until",
    "log_loss_gaps",
    "prediction_error",
    "loss_curve_distance",
    "fall_factor",
    "ordering",
    "pairwise_distances",
    "rank_correlation",
    "spread",
]


def _rows(trajectory: Trajectory, steps: np.ndarray) -> np.ndarray:
    """Row indices of ``steps`` among the trajectory's saved steps."""
    saved = np.asarray(trajectory.saved_steps)
    rows = np.searchsorted(saved, steps)
    if np.any(rows >= len(saved)) or not np.array_equal(saved[rows], steps):
        raise ValueError(
            "the prediction did not save every step the training run saved: evaluate the "
            "closed form at the run's saved_steps"
        )
    return rows


def _ratio_gap(estimate: np.ndarray, reference: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """``|log(estimate / reference)|``, with values below ``floor`` raised to it (so two
    values at rounding level agree), and 0 where both are 0."""
    estimate = np.maximum(np.asarray(estimate, float), floor)
    reference = np.maximum(np.asarray(reference, float), floor)
    both_zero = (estimate == 0) & (reference == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.abs(np.log(estimate / reference))
    return np.where(both_zero, 0.0, gap)


@dataclasses.dataclass(frozen=True)
class Agreement:
    """The agreement of a predicted run with an observed one (module docstring)."""

    final_loss_rel_err: float
    final_loss_ratio: float
    log_loss_gap: float
    agent_loss_rel_err: np.ndarray
    consensus_rel_err: float
    test_loss_rel_err: float | None
    test_accuracy_gap: float | None

    @property
    def worst_agent_loss_rel_err(self) -> float:
        """The largest of the agents' final local-loss relative errors."""
        return float(np.max(self.agent_loss_rel_err))


def agreement(predicted: Trajectory, observed: Trajectory) -> Agreement:
    """Compare ``predicted`` with ``observed`` at the steps ``observed`` saved.

    Example:
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.zeros((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.ones((2, 1)))
        >>> def run(last):
        ...     scale = np.array([1.0, 0.5, last])[:, None, None, None]
        ...     return Trajectory.build(p, algorithm="dgd", lr=0.1, method="primal",
        ...         steps=np.arange(3), predictions=np.ones((3, 2, 2, 1)) * scale,
        ...         consensus_distance=np.arange(3.0), param_distance=np.zeros((3, 2)))
        >>> a = agreement(run(0.5), run(0.25))
        >>> round(a.final_loss_rel_err, 6), round(a.log_loss_gap, 6)
        (3.0, 1.386294)
    """
    steps = np.asarray(observed.saved_steps)
    rows = _rows(predicted, steps)
    predicted_loss = predicted.mean_global_loss[rows]
    observed_loss = observed.mean_global_loss
    local_rows = np.searchsorted(predicted.steps, observed.steps[-1])
    final_local = predicted.local_loss[local_rows]
    agent = np.abs(final_local - observed.local_loss[-1]) / observed.local_loss[-1]
    consensus = np.linalg.norm(predicted.consensus_distance[rows] - observed.consensus_distance)
    scale = np.linalg.norm(observed.consensus_distance)
    test_loss = test_accuracy = None
    if predicted.test_loss is not None and observed.test_loss is not None:
        final_test = predicted.test_loss[rows[-1]].mean()
        test_loss = float(
            abs(final_test - observed.test_loss[-1].mean()) / observed.test_loss[-1].mean()
        )
    if predicted.test_accuracy is not None and observed.test_accuracy is not None:
        gap = predicted.test_accuracy[rows[-1]].mean() - observed.test_accuracy[-1].mean()
        test_accuracy = float(abs(gap))
    return Agreement(
        final_loss_rel_err=float(abs(predicted_loss[-1] - observed_loss[-1]) / observed_loss[-1]),
        final_loss_ratio=float(predicted_loss[-1] / observed_loss[-1]),
        log_loss_gap=float(log_loss_gaps(predicted, observed).max()),
        agent_loss_rel_err=agent,
        consensus_rel_err=float(consensus / scale) if scale > 0 else float(consensus),
        test_loss_rel_err=test_loss,
        test_accuracy_gap=test_accuracy,
    )


def log_loss_gaps(predicted: Trajectory, observed: Trajectory) -> np.ndarray:
    """``|log(L^_k / L_k)|`` of the global loss (mean over agents of ``L(theta_q)``) at
    each step ``observed`` saved; its running maximum is the log-loss gap up to a horizon.

    Example:
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.zeros((1, 1)), partition=[np.array([0])],
        ...             kernel=np.eye(1), f0=np.ones((1, 1)))
        >>> def run(scale):
        ...     preds = np.sqrt(np.array([1.0, scale]))[:, None, None, None]
        ...     return Trajectory.build(p, algorithm="dgd", lr=0.1, method="primal",
        ...         steps=np.arange(2), predictions=preds, consensus_distance=np.zeros(2),
        ...         param_distance=np.zeros((2, 1)))
        >>> log_loss_gaps(run(np.e), run(1.0)).round(6).tolist()
        [0.0, 1.0]
    """
    rows = _rows(predicted, np.asarray(observed.saved_steps))
    return _ratio_gap(predicted.mean_global_loss[rows], observed.mean_global_loss)


def log_loss_gap_until(
    predicted: Trajectory, observed: Trajectory, horizons: Sequence[int]
) -> np.ndarray:
    """The log-loss gap up to each horizon k: the largest ``|log(L^_j / L_j)|`` over the
    steps ``j <= k`` that ``observed`` saved (each horizon must be one of them).

    Example:
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.zeros((1, 1)), partition=[np.array([0])],
        ...             kernel=np.eye(1), f0=np.ones((1, 1)))
        >>> def run(*scales):
        ...     preds = np.sqrt(np.array(scales))[:, None, None, None]
        ...     return Trajectory.build(p, algorithm="dgd", lr=0.1, method="primal",
        ...         steps=np.arange(3), predictions=preds, consensus_distance=np.zeros(3),
        ...         param_distance=np.zeros((3, 1)))
        >>> log_loss_gap_until(run(1.0, np.e, 1.0), run(1.0, 1.0, 1.0), [0, 2]).tolist()
        [0.0, 1.0]
    """
    saved = np.asarray(observed.saved_steps)
    at = np.searchsorted(saved, horizons)
    if np.any(at >= len(saved)) or not np.array_equal(saved[at], horizons):
        raise ValueError(
            f"horizons {list(horizons)} must be steps the run saved (it saved "
            f"{saved[0]}..{saved[-1]}, {len(saved)} steps): pick them from observed.saved_steps"
        )
    return np.maximum.accumulate(log_loss_gaps(predicted, observed))[at]


def prediction_error(predicted: Trajectory, observed: Trajectory) -> float:
    """``||F^ - F|| / ||F||`` of every agent's training predictions over the steps
    ``observed`` saved: how well one prediction describes one trained network, output by
    output rather than through a loss.

    Example:
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.zeros((1, 1)), partition=[np.array([0])],
        ...             kernel=np.eye(1), f0=np.ones((1, 1)))
        >>> def run(*values):
        ...     return Trajectory.build(p, algorithm="dgd", lr=0.1, method="primal",
        ...         steps=np.arange(2), predictions=np.array(values)[:, None, None, None],
        ...         consensus_distance=np.zeros(2), param_distance=np.zeros((2, 1)))
        >>> prediction_error(run(1.0, 1.1), run(1.0, 1.0))
        0.0707...
    """
    rows = _rows(predicted, np.asarray(observed.saved_steps))
    return relative_error(predicted.predictions[rows], observed.predictions)


def graph_distance(predicted: Trajectory, observed: Trajectory) -> float:
    """A distance that sees the graph: the mean over agents and saved steps of
    ``|log(L^_q / L_q)|`` of the local losses, plus the mean over saved steps after the
    first of ``|log(c^ / c)|`` of the consensus distance.

    The mean global loss barely depends on the graph; which agent fits its data how well,
    and how far the agents drift apart, do. Consensus distances below ``1e-9`` times the
    largest distance any agent travelled count as zero: on a graph that averages exactly
    (ATC on the complete graph with uniform weights) training leaves rounding where the
    closed form has exact zeros.
    """
    steps = np.asarray(observed.saved_steps)
    rows = _rows(predicted, steps)
    local_rows = np.searchsorted(predicted.steps, steps)
    observed_local = observed.local_loss[np.searchsorted(observed.steps, steps)]
    local = _ratio_gap(predicted.local_loss[local_rows], observed_local).mean()
    floor = 1e-9 * float(np.max(observed.param_distance, initial=0.0))
    consensus = _ratio_gap(predicted.consensus_distance[rows], observed.consensus_distance, floor)
    return float(local + consensus[1:].mean())


def confusion(
    predicted: Mapping[str, Trajectory],
    observed: Mapping[str, Trajectory],
    distance: Callable[[Trajectory, Trajectory], float] = graph_distance,
) -> dict[str, dict[str, float]]:
    """``confusion[trained][candidate]``: ``distance`` (by default :func:`graph_distance`)
    of the closed form of ``candidate`` to the run trained on ``trained``. The graph is
    predicted when, for every trained graph, its own closed form is the closest
    (:func:`identified`).
    """
    return {
        trained: {name: distance(form, run) for name, form in predicted.items()}
        for trained, run in observed.items()
    }


def loss_curve_distance(predicted: Trajectory, observed: Trajectory) -> float:
    """The relative L2 error of the mean local-loss curve at the observed saved steps: the
    whole-curve measure that the first steps dominate, kept as a weak control."""
    rows = np.searchsorted(predicted.steps, observed.steps)
    return relative_error(predicted.mean_local_loss[rows], observed.mean_local_loss)


def identified(table: Mapping[str, Mapping[str, float]]) -> bool:
    """Whether every trained graph's own closed form is strictly the closest.

    Example:
        >>> identified({"a": {"a": 0.1, "b": 0.5}, "b": {"a": 0.4, "b": 0.2}})
        True
    """
    return all(
        all(row[trained] < value for name, value in row.items() if name != trained)
        for trained, row in table.items()
    )


def agent_kernels(
    network: Model | Callable[..., Any], stacked_params: Any, inputs: np.ndarray
) -> list[np.ndarray]:
    """The empirical NTK at each agent's parameters (a pytree stacked over agents, as
    training returns them)."""
    count = len(jax.tree_util.tree_leaves(stacked_params)[0])
    return [
        ntk.empirical_ntk(
            network, jax.tree_util.tree_map(lambda leaf, q=q: leaf[q], stacked_params), inputs
        )
        for q in range(count)
    ]


def kernel_drift(
    network: Model | Callable[..., Any], stacked_params: Any, inputs: np.ndarray, kernel: np.ndarray
) -> np.ndarray:
    """``||K(theta_q) - K_0||_F / ||K_0||_F`` for each agent's parameters, with
    ``K_0 = kernel`` the NTK at ``theta_0``."""
    moved = agent_kernels(network, stacked_params, inputs)
    return np.array([np.linalg.norm(k - kernel) / np.linalg.norm(kernel) for k in moved])


def ordering(predicted: Trajectory, observed: Trajectory) -> tuple[float, float]:
    """Over the observed steps after the first, the fraction at which the predicted local
    losses rank the agents exactly as the observed ones do, and the fraction at which they
    name the same worst agent.

    Example:
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.zeros((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.ones((2, 1)))
        >>> preds = np.ones((2, 2, 2, 1)) * np.array([[1.0], [2.0]])[None, :, :, None]
        >>> t = Trajectory.build(p, algorithm="dgd", lr=0.1, method="primal",
        ...     steps=np.arange(2), predictions=preds, consensus_distance=np.zeros(2),
        ...     param_distance=np.zeros((2, 2)))
        >>> ordering(t, t)
        (1.0, 1.0)
    """
    steps = np.asarray(observed.steps)[1:]
    estimate = predicted.local_loss[np.searchsorted(predicted.steps, steps)]
    actual = observed.local_loss[1:]
    full = np.all(np.argsort(estimate, axis=1) == np.argsort(actual, axis=1), axis=1)
    worst = estimate.argmax(axis=1) == actual.argmax(axis=1)
    return float(full.mean()), float(worst.mean())


def flat_parameters(stacked_params: Any) -> np.ndarray:
    """A pytree stacked over agents as one (Q, P) array."""
    leaves = jax.tree_util.tree_leaves(stacked_params)
    return np.concatenate([np.reshape(np.asarray(leaf), (len(leaf), -1)) for leaf in leaves], 1)


def pairwise_distances(stacked_params: Any) -> np.ndarray:
    """(Q, Q) distances ``||theta_q - theta_r||`` of parameters stacked over agents.

    Example:
        >>> pairwise_distances({"a": np.array([[0.0, 0.0], [3.0, 4.0]])}).tolist()
        [[0.0, 5.0], [5.0, 0.0]]
    """
    flat = flat_parameters(stacked_params)
    return np.linalg.norm(flat[:, None] - flat[None], axis=-1)


def rank_correlation(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation of ``y`` with ``x`` (ties get average ranks).

    Example:
        >>> round(rank_correlation([1, 2, 3, 4], [0.9, 0.5, 0.6, 0.1]), 12)
        -0.8
    """
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(
            f"rank correlation needs two sequences of the same length >= 3, got {len(x)} and "
            f"{len(y)}"
        )
    ranks_x, ranks_y = scipy.stats.rankdata(x), scipy.stats.rankdata(y)
    return float(np.corrcoef(ranks_x, ranks_y)[0, 1])


def fall_factor(values: Sequence[float] | np.ndarray) -> float:
    """How many times smaller the last value is than the first.

    Example:
        >>> fall_factor([0.8, 0.5, 0.2])
        4.0
    """
    if len(values) < 2 or not values[-1] > 0:
        raise ValueError(
            f"fall_factor needs at least two values ending in a positive one, got {list(values)!r}"
        )
    return float(values[0] / values[-1])


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """``(median, minimum, maximum)`` of values over seeds.

    Example:
        >>> spread([3.0, 1.0, 2.0])
        (2.0, 1.0, 3.0)
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise ValueError(
            f"spread needs a non-empty list of finite values (one per seed), got {values!r}"
        )
    return float(np.median(array)), float(array.min()), float(array.max())
