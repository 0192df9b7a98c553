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

import numpy as np

from companion import algorithms, dynamics, linear
from companion._checks import check_steps
from companion.problem import Problem
from companion.schedules import RandomSchedule
from companion.trajectory import Trajectory

__all__ = ["mean", "realizations", "second_moment"]

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
