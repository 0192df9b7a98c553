"""Exact moments of the dynamics when the mixing matrix is drawn at random every step.

With the linearized model one step is ``F <- M(W) F + c(W)`` on the stacked predictions,
and both ``M`` and ``c`` are affine in W for all three algorithms: DGD mixes the state,
ATC mixes the state after the gradient step (so the offset is mixed too), CTA mixes before
the gradient. When the W(k) are independent and identically distributed, W(k) is
independent of ``F_k``, which depends only on W(0), ..., W(k-1). Hence

- the mean follows the same recursion with ``E[W]``,
  ``E[F_{k+1}] = M(E[W]) E[F_k] + c(E[W])``, exactly (:func:`mean`);
- the second moment of the augmented state ``z = [F; 1]``, ``S = E[z z^T]``, follows
  ``S_{k+1} = E[A S_k A^T]`` with ``A = [[M, c], [0, 1]]``, exactly, summed over the
  realizations of one draw (:func:`second_moment`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import networkx as nx
import numpy as np

from companion import algorithms, dynamics, graphs, limits, linear, stability
from companion._checks import check_steps
from companion.problem import Problem
from companion.schedules import RandomSchedule
from companion.trajectory import Trajectory, relative_error

__all__ = [
    "ExpectedLimit",
    "expected_limit",
    "mean",
    "naive_mean",
    "realization_blocks",
    "realizations",
    "second_moment",
]

SECOND_MOMENT_LIMIT = 400  # largest Q m whose (Q m)^2 second moment is propagated


def mean(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    schedule: RandomSchedule,
    *,
    lr: float,
    steps: int,
) -> Trajectory:
    """``E[F_k]`` for k = 0..steps: the closed form with the expected mixing matrix
    (:attr:`companion.schedules.RandomSchedule.expected`).

    Its predictions are exact expectations; its losses are the losses of the mean, not
    the mean of the losses.
    """
    return dynamics.closed_form(problem, algorithm, schedule.expected, lr=lr).steps(steps)


def _augmented(problem: Problem, algorithm, mixing: np.ndarray, lr: float) -> np.ndarray:
    matrix, offset = linear.iteration_map(problem, algorithm, mixing, lr, space="predictions")
    size = len(matrix)
    out = np.zeros((size + 1, size + 1))
    out[:size, :size], out[:size, size], out[size, size] = matrix, offset, 1.0
    return out


def second_moment(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    schedule: RandomSchedule,
    *,
    lr: float,
    steps: int,
) -> np.ndarray:
    """``E[F_k * F_k]`` (entrywise) for k = 0..steps, shape (steps + 1, Q, n, C), exactly,
    over every realization of one draw
    (:meth:`companion.schedules.RandomSchedule.support`).

    Cost: ``steps * |support| * (Q m)^3`` operations, for small problems.

    Raises:
        ValueError: when Q m exceeds ``SECOND_MOMENT_LIMIT``.
    """
    steps = check_steps(steps)
    size = problem.output_weights.size
    if size > SECOND_MOMENT_LIMIT:
        raise ValueError(
            f"the second moment propagates a (Q m)^2 matrix, Q m = {size} here; it is "
            f"computed only up to Q m = {SECOND_MOMENT_LIMIT}: use fewer agents or samples, "
            "or Monte Carlo"
        )
    maps = [(p, _augmented(problem, algorithm, w, lr)) for p, w in schedule.support()]
    z = np.append(np.tile(problem.f0.ravel(), problem.num_agents), 1.0)
    moment = np.outer(z, z)
    diagonals = [np.diag(moment)[:-1]]
    for _ in range(steps):
        moment = sum(p * a @ moment @ a.T for p, a in maps)
        diagonals.append(np.diag(moment)[:-1])
    return np.stack(diagonals).reshape(steps + 1, problem.num_agents, *problem.targets.shape)


def realizations(form: dynamics.ClosedForm, steps: int, seeds: Sequence[int]) -> np.ndarray:
    """Monte Carlo: the predictions of ``form`` (a closed form on a random schedule) with
    the schedule re-seeded by each of ``seeds``, shape (len(seeds), steps + 1, Q, n, C).

    The form was validated once; each realization reruns only its recursion, which is
    exact for that realization.
    """
    schedule = form.mixing
    if not isinstance(schedule, RandomSchedule):
        raise ValueError(
            f"realizations need a closed form on a random schedule, got mixing {schedule!r}: "
            "build it with closed_form(problem, algorithm, random_links(...), lr=...)"
        )
    return np.stack(
        [
            dataclasses.replace(form, mixing=schedule.reseeded(seed)).steps(steps).predictions
            for seed in seeds
        ]
    )


@dataclasses.dataclass(frozen=True)
class ExpectedLimit:
    """Where the expected dynamics go and how fast.

    Attributes:
        rate: spectral radius of the iteration map with ``E[W]``, the long-run rate of
            the mean.
        limit_error: worst relative error of any agent's exact fixed point of the mean
            against the training targets (zero to rounding in the interpolating regime).
    """

    rate: float
    limit_error: float


def expected_limit(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    schedule: RandomSchedule,
    *,
    lr: float,
) -> ExpectedLimit:
    """The rate (:func:`companion.stability.spectral_radius`) and the exact fixed point
    (:func:`companion.limits.fixed_point`) of the expected dynamics, the closed form with
    ``E[W]``; the fixed point is compared with the targets.

    Example:
        >>> from companion import graphs, schedules
        >>> p = Problem(targets=np.ones((3, 1)), partition=[np.array([0]), np.array([1]),
        ...             np.array([2])], kernel=np.eye(3), f0=np.zeros((3, 1)))
        >>> s = schedules.random_links(graphs.topology("cycle", 3), 0.5)
        >>> e = expected_limit(p, "dgd", s, lr=0.5)
        >>> e.limit_error < 1e-12, 0 < e.rate < 1
        (True, True)
    """
    if not isinstance(schedule, RandomSchedule):
        raise ValueError(
            f"expected_limit needs a random schedule, got {schedule!r}: build one with "
            "random_links(...) or randomized_gossip(...)"
        )
    form = dynamics.closed_form(problem, algorithm, schedule.expected, lr=lr)
    rate = stability.spectral_radius(problem, algorithm, schedule.expected, lr)
    error = max(relative_error(point, problem.targets) for point in limits.fixed_point(form))
    return ExpectedLimit(rate=float(rate), limit_error=error)


def realization_blocks(
    form: dynamics.ClosedForm, steps: int, *, size: int, blocks: int
) -> list[np.ndarray]:
    """``blocks`` independent Monte Carlo blocks of :func:`realizations`, ``size`` each:
    block b re-seeds the schedule with ``b * size, ..., (b + 1) * size - 1``.

    Example:
        >>> from companion import graphs, schedules
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> s = schedules.random_links(graphs.topology("path", 2), 0.5)
        >>> b = realization_blocks(dynamics.closed_form(p, "dgd", s, lr=0.5), 3, size=4, blocks=2)
        >>> len(b), b[0].shape
        (2, (4, 4, 2, 2, 1))
    """
    if size < 2 or blocks < 1:
        raise ValueError(
            f"size={size!r}, blocks={blocks!r}: a block needs at least 2 realizations and "
            "there must be at least one block"
        )
    return [realizations(form, steps, range(b * size, (b + 1) * size)) for b in range(blocks)]


def naive_mean(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    graph: nx.Graph,
    probability: float,
    *,
    lr: float,
    steps: int,
) -> Trajectory:
    """The rival of :func:`mean` under random link failures: the closed form with
    ``p W + (1 - p) I`` (W the base graph's Metropolis matrix), the guess that ignores how
    an edge's weight depends on the random degrees of its ends; not ``E[W]``."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability={probability!r}: a link probability lies in [0, 1]")
    naive = probability * graphs.mixing_matrix(graph) + (1 - probability) * np.eye(
        graph.number_of_nodes()
    )
    return dynamics.closed_form(problem, algorithm, naive, lr=lr).steps(steps)
