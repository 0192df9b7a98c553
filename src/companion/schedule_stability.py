"""Stability of the linearized dynamics when the mixing changes every step.

A schedule multiplies step maps ``M(W(k))`` that need not commute, so no single spectral
radius decides it (:mod:`companion.stability` is the one-matrix case). The long-run rate per
step is exact for a periodic schedule (the period product's radius) and, for i.i.d. draws,
exact in mean square while ``E[M (x) M]`` is small enough to form; beyond that only the
rate of the mean is computed, which is necessary, not sufficient.
"""

from __future__ import annotations

import warnings

import numpy as np

from companion import algorithms, linear, stability
from companion._checks import check_lr_value
from companion.problem import Problem
from companion.schedules import PeriodicSchedule, RandomSchedule, Schedule

__all__ = ["check_schedule", "schedule_rate"]

KRONECKER_LIMIT = 40  # largest Q*m for which E[M (x) M], (Q m)^2 square, is formed
SUPPORT_TERMS = 256  # most realizations of one random draw summed into E[M (x) M]


def _prediction_map(problem, algorithm, mixing, lr) -> np.ndarray:
    return linear.iteration_map(problem, algorithm, mixing, lr, space="predictions")[0]


def schedule_rate(
    problem: Problem, algorithm: str | algorithms.Algorithm, schedule: Schedule, lr: float
) -> tuple[float, str]:
    """The long-run contraction factor per step of the linearized dynamics under a
    schedule, and which condition it is: ``(rate, kind)``; stable when ``rate < 1``.

    - periodic schedules: ``rho(M(W(T-1)) ... M(W(0)))^(1/T)`` over one period T, the
      exact condition;
    - random schedules with Q m up to ``KRONECKER_LIMIT`` and at most ``SUPPORT_TERMS``
      realizations: the mean-square rate ``sqrt(rho(E[M (x) M]))``, exact for mean-square
      stability;
    - larger random schedules: ``rho(M(E[W]))``, the rate of the mean, a necessary
      condition only (the mean can converge while single runs do not).

    Example:
        >>> from companion.schedules import one_peer_exponential
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.array([i]) for i in range(4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> rate, kind = schedule_rate(p, "atc", one_peer_exponential(4), 0.5)
        >>> round(rate, 6), kind
        (0.890388, 'period product (exact)')
    """
    algorithm, lr = algorithms.get(algorithm), check_lr_value(lr)
    schedule.check_agents(problem.num_agents)
    size = problem.output_weights.size
    with stability.blas_threads(size):
        return _schedule_rate(problem, algorithm, schedule, lr, size)


def _schedule_rate(problem, algorithm, schedule, lr, size) -> tuple[float, str]:
    if isinstance(schedule, PeriodicSchedule):
        product = np.eye(size)
        for mixing in schedule.matrices(schedule.period):
            product = _prediction_map(problem, algorithm, mixing, lr) @ product
        radius = np.abs(np.linalg.eigvals(product)).max()
        return float(radius ** (1 / schedule.period)), "period product (exact)"
    if not isinstance(schedule, RandomSchedule):
        raise TypeError(f"unknown schedule {schedule!r}: use a periodic or random schedule")
    if size <= KRONECKER_LIMIT and schedule.support_size <= SUPPORT_TERMS:
        second = sum(
            p * np.kron(m, m)
            for p, m in (
                (p, _prediction_map(problem, algorithm, w, lr)) for p, w in schedule.support()
            )
        )
        return float(np.sqrt(np.abs(np.linalg.eigvals(second)).max())), "mean-square (exact)"
    mean = _prediction_map(problem, algorithm, schedule.expected, lr)
    return float(np.abs(np.linalg.eigvals(mean)).max()), "mean (necessary only)"


def _uniform_bound(problem: Problem, algorithm, schedule: Schedule) -> float:
    """The smallest :func:`companion.stability.sufficient_lr_bound` over the matrices a
    schedule can draw, or 0 when they cannot all be listed (or a DGD one is not symmetric)."""
    theory = algorithms.get(algorithm).theory
    if not theory.bound_needs_symmetric:
        return float(theory.sufficient_bound(problem.curvature, None))  # type: ignore[arg-type]
    if isinstance(schedule, PeriodicSchedule):
        matrices = list(schedule.cycle)
    elif isinstance(schedule, RandomSchedule) and schedule.support_size <= SUPPORT_TERMS:
        matrices = [w for _, w in schedule.support()]
    else:
        return 0.0
    lowest = [stability.symmetric_lambda_min(w) for w in matrices]
    if any(value is None for value in lowest):
        return 0.0
    return min(theory.sufficient_bound(problem.curvature, v) for v in lowest)  # type: ignore[type-var]


def check_schedule(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    schedule: Schedule,
    lr: float,
    *,
    strict: bool = False,
) -> None:
    """:func:`companion.stability.check_lr` for a schedule: warn (or raise,
    ``strict=True``) when :func:`schedule_rate` exceeds 1.

    Cheap first: below the sufficient bound (:func:`companion.stability.sufficient_lr_bound`)
    of every matrix the schedule can draw (each W(k) of a period, or every realization of a
    random draw), each step map has spectral norm at most 1 in the same coordinates (the
    bound's proof holds for every W(k) at once), so their products cannot grow and nothing
    else is computed.
    """
    if lr <= _uniform_bound(problem, algorithm, schedule):
        return
    rate, kind = schedule_rate(problem, algorithm, schedule, lr)
    if rate <= 1 + stability.RADIUS_TOL:
        return
    message = (
        f"lr={lr:.6g} makes {algorithms.get(algorithm).name} on the schedule "
        f"'{schedule.name}' unstable: its {kind} rate is {rate:.6g} > 1, so the linearized "
        "dynamics diverge. Use a smaller lr"
    )
    if strict:
        raise ValueError(message)
    warnings.warn(message, UserWarning, stacklevel=3)
