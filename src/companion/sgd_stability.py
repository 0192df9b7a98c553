"""Mean-square stability of mini-batch DGD, ATC and CTA for the linearized model.

The second moment of the dual coefficients follows ``S <- T(S)`` with the linear operator

    ``T(S) = Abar S Abar^T + eta^2 Lhat N(Rhat S Rhat^T) Lhat^T``

on the (Qm x Qm) matrices (:mod:`companion.sgd_moments`, without the offset). The
iterates are mean-square stable, ``E[||theta_q(k) - theta^*||^2]`` bounded and falling to
its limit, exactly when the spectral radius of ``T`` is below 1. ``T`` maps positive
semidefinite matrices to positive semidefinite ones, so its spectral radius is itself an
eigenvalue (Krein-Rutman): the radius crosses 1 through the eigenvalue 1, never through a
complex pair. Because the sampling term is positive semidefinite, ``T(S) >= Abar S Abar^T``
and ``rho(T) >= rho(Abar)^2``: the mean-square threshold is at most the full-batch threshold
(:func:`companion.stability.max_stable_lr`), with equality for the full batch.

:func:`radius` uses ARPACK on ``T`` as an operator (one application costs one step of the
second moment) and dense eigenvalues up to ``DENSE_SIZE``. Its eigenvalues cluster near 1
(the slow modes of the kernel), so ARPACK needs hundreds of applications. The threshold
uses a smaller operator instead: for positive operators with ``rho(Abar) < 1``,
``rho(T) < 1`` exactly when the *noise gain* ``rho((I - Abar (.) Abar^T)^{-1} Pi) < 1``,
``Pi`` the sampling term, and ``rho(T) = 1`` exactly when the gain is 1. The gain's
nonzero spectrum is that of an operator on the agents' diagonal blocks (Q (n_q C)^2
numbers), applied in the eigenbasis of ``Abar`` (one Qm x Qm eigendecomposition per step
size, ``Gamma_ij = 1 / (1 - lambda_i lambda_j)``). :func:`mean_square_lr` scans the step
size up to the full-batch threshold and solves gain = 1 on the first bracket by Brent's
method; :func:`radius` at the result is 1 to rounding (the chapter checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.optimize
import scipy.sparse.linalg

from companion import algorithms, sampling, stability
from companion._checks import check_lr_value
from companion.problem import Problem
from companion.sampling import Sampler
from companion.sgd_moments import Operators

__all__ = [
    "BatchThresholds",
    "dense_operator",
    "mean_square_lr",
    "noise_gain",
    "operator",
    "radius",
    "stability_map",
    "thresholds_by_batch",
]

DENSE_SIZE = 24  # largest Qm whose (Qm)^2 square operator is built densely
#: Fractions of the full-batch threshold scanned for the first unstable one before Brent.
SCAN = (2.0**-8, 2.0**-6, 2.0**-4, 0.125, 0.25, 0.5, 0.75, 0.9, 0.99, 1 - 1e-6)
RADIUS_TOL = 1e-12  # ARPACK's relative tolerance on the largest eigenvalue
CONDITION_LIMIT = 1e8  # eigenvector condition of Abar above which the gain uses T itself


class _Operator(scipy.sparse.linalg.LinearOperator):
    """A square linear operator on float vectors from its matrix-vector product."""

    def __init__(self, apply, size: int):
        super().__init__(dtype=np.dtype(float), shape=(size, size))
        self._apply = apply

    def _matvec(self, x):
        return self._apply(np.real(np.ravel(x)))


def _top(apply: _Operator, start: np.ndarray, ncv: int) -> float:
    """The largest eigenvalue modulus by ARPACK, from ``start``."""
    options = {"k": 1, "which": "LM", "v0": start, "tol": RADIUS_TOL}
    values = scipy.sparse.linalg.eigs(apply, ncv=min(apply.shape[0] - 1, ncv), **options)[0]
    return float(np.abs(values).max())


def operator(
    problem: Problem, algorithm, mixing: np.ndarray, lr: float, sampler: Sampler
) -> _Operator:
    """``T`` as an operator on the (Qm)^2 vector of a Qm x Qm matrix (row-major)."""
    ops = Operators(problem, algorithm, mixing, check_lr_value(lr), sampler)
    size = problem.output_weights.size

    def apply(vector: np.ndarray) -> np.ndarray:
        moment = np.zeros((size + 1, size + 1))
        moment[:-1, :-1] = np.real(vector).reshape(size, size)
        return ops.step(moment)[:-1, :-1].ravel()

    return _Operator(apply, size**2)


def dense_operator(problem: Problem, algorithm, mixing: np.ndarray, lr: float, sampler: Sampler):
    """``T`` as a dense (Qm)^2 x (Qm)^2 matrix, for tiny problems (tests).

    Raises:
        ValueError: above ``DENSE_SIZE``.
    """
    size = problem.output_weights.size
    if size > DENSE_SIZE:
        raise ValueError(
            f"the dense second-moment operator has (Qm)^2 = {size**2} columns; it is built "
            f"only up to Qm = {DENSE_SIZE}: use operator() with ARPACK"
        )
    apply = operator(problem, algorithm, mixing, lr, sampler)
    return np.stack([apply.matvec(column) for column in np.eye(size**2)], axis=1)


def radius(problem: Problem, algorithm, mixing: np.ndarray, lr: float, sampler: Sampler) -> float:
    """The spectral radius of ``T``: mean-square stable exactly when below 1.

    Example:
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.arange(2), np.arange(2, 4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> w = np.full((2, 2), 0.5)
        >>> full = radius(p, "dgd", w, 0.5, sampling.full_batch(p))
        >>> round(full, 6), round(stability.spectral_radius(p, "dgd", w, 0.5) ** 2, 6)
        (0.792791, 0.792791)
        >>> radius(p, "dgd", w, 0.5, sampling.fixed_size(p, 1)) > full
        True
    """
    size = problem.output_weights.size
    if size <= DENSE_SIZE:
        matrix = dense_operator(problem, algorithm, mixing, lr, sampler)
        with stability.blas_threads(len(matrix)):
            return float(np.abs(np.linalg.eigvals(matrix)).max())
    apply = operator(problem, algorithm, mixing, lr, sampler)
    start = np.eye(size).ravel()  # inside the cone: overlaps the Perron eigenvector
    with stability.blas_threads(size):
        return _top(apply, start, 24)


def noise_gain(
    problem: Problem, algorithm, mixing: np.ndarray, lr: float, sampler: Sampler
) -> float:
    """``rho((I - Abar (.) Abar^T)^{-1} Pi)``: mean-square stable exactly when below 1 (and
    the mean stable, ``rho(Abar) < 1``); ``inf`` where the mean is not stable.

    Raises:
        ValueError: when the eigenvectors of ``Abar`` are too ill-conditioned (use
            :func:`radius`).

    Example:
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.arange(2), np.arange(2, 4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> w, half = np.full((2, 2), 0.5), sampling.fixed_size(p, 1)
        >>> gain = noise_gain(p, "dgd", w, 0.5, half)
        >>> bool(gain < 1), bool(radius(p, "dgd", w, 0.5, half) < 1)
        (True, True)
    """
    ops = Operators(problem, algorithm, mixing, check_lr_value(lr), sampler)
    size = problem.output_weights.size
    basis = np.eye(size + 1, size)
    with stability.blas_threads(size):
        evals, vectors = np.linalg.eig(ops.mean_step(basis)[:-1])
        if np.abs(evals).max() >= 1 - 1e-12:
            return np.inf
        if np.linalg.cond(vectors) > CONDITION_LIMIT:
            raise ValueError(
                "the full-batch map's eigenvectors are ill-conditioned here: judge mean-square "
                "stability by radius(), the second-moment operator itself"
            )
        own = len(ops.noise_cov)
        inward = np.linalg.solve(vectors, ops.inject(np.eye(own))[:-1])  # V^-1 (-eta Lhat)
        outward = ops.probe(basis) @ vectors  # Rhat V
        gamma = 1.0 / (1.0 - np.outer(evals, evals))

        def apply(vector: np.ndarray) -> np.ndarray:
            inner = (inward @ vector.reshape(own, own) @ inward.T) * gamma
            return (ops.noise_cov * np.real(outward @ inner @ outward.T)).ravel()

        return _top(_Operator(apply, own**2), ops.noise_cov.ravel(), 20)


def mean_square_lr(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    sampler: Sampler,
    *,
    xtol: float = 1e-13,
) -> float:
    """The exact mean-square threshold: the smallest step size where ``rho(T) = 1``, at most
    :func:`companion.stability.max_stable_lr` (equal to it for the full batch).

    Scans the fractions ``SCAN`` of the full-batch threshold for the first with
    :func:`noise_gain` at least 1, then solves gain = 1 on that bracket by Brent's method to
    relative ``xtol`` (with :func:`radius` in place of the gain where ``Abar``'s eigenvectors
    are ill-conditioned).

    Example:
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.arange(2), np.arange(2, 4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> w = np.full((2, 2), 0.5)
        >>> full = stability.max_stable_lr(p, "dgd", w)
        >>> round(mean_square_lr(p, "dgd", w, sampling.full_batch(p)) / full, 9)
        1.0
        >>> round(mean_square_lr(p, "dgd", w, sampling.fixed_size(p, 1)) / full, 6)
        0.651388
    """
    algorithm = algorithms.get(algorithm)
    full = stability.max_stable_lr(problem, algorithm, mixing)
    if sampler.is_full or not np.isfinite(full):
        return full

    def excess(lr: float) -> float:
        try:
            return noise_gain(problem, algorithm, mixing, lr, sampler) - 1.0
        except ValueError:
            return radius(problem, algorithm, mixing, lr, sampler) - 1.0

    low = 0.0
    for lr in full * np.asarray(SCAN):
        if excess(lr) >= 0:
            if low == 0.0:
                raise ValueError(
                    f"{algorithm.name} with {sampler.name} is not mean-square stable even at "
                    f"{lr:.3g} ({SCAN[0]:g} of the full-batch threshold): use larger batches"
                )
            found = scipy.optimize.root_scalar(
                excess, bracket=(low, lr), method="brentq", xtol=xtol * lr, rtol=1e-15
            )
            return float(found.root)
        low = lr
    return full  # stable up to the full-batch threshold (to the scan's last fraction)


def stability_map(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    batches: list[int],
    fractions: list[float],
) -> np.ndarray:
    """``rho(T)`` on a grid: batch size ``b`` (the same for every agent, rows) by step
    size as a fraction of the full-batch threshold (columns)."""
    full = stability.max_stable_lr(problem, algorithm, mixing)
    return np.array(
        [
            [
                radius(problem, algorithm, mixing, f * full, sampling.fixed_size(problem, b))
                for f in fractions
            ]
            for b in batches
        ]
    )


@dataclasses.dataclass(frozen=True)
class BatchThresholds:
    """The exact mean-square threshold of every algorithm by batch size, over its full-batch
    threshold, keyed ``"<algorithm>_b<batch>"`` (algorithms in
    :data:`companion.algorithms.ALGORITHMS` order, then batch sizes).

    Attributes:
        ratios: the threshold over the full-batch one, for every key.
        radius_gap: ``|rho(T) - 1|`` at the threshold, for every key but the full batch's
            (whose threshold is :func:`companion.stability.max_stable_lr`'s, exactly).
        full: the keys of the full batch.
    """

    ratios: dict[str, float]
    radius_gap: dict[str, float]
    full: tuple[str, ...]

    @property
    def largest_gap(self) -> float:
        """The largest ``|rho(T) - 1|`` over the thresholds checked (0 if none was)."""
        return max(self.radius_gap.values(), default=0.0)

    @property
    def largest_ratio(self) -> float:
        """The largest threshold over its full-batch threshold (at most 1 in theory)."""
        return max(self.ratios.values())

    @property
    def full_batch_recovered(self) -> bool:
        """Whether every full batch's ratio is exactly 1."""
        return all(self.ratios[key] == 1 for key in self.full)

    def consistent(self, tol: float, slack: float = 1e-12) -> bool:
        """What theory requires of the thresholds: ``rho(T)`` is 1 at each to ``tol``, none
        exceeds its full-batch threshold by more than ``slack``, and the full batch gives
        that threshold back exactly."""
        return (
            self.largest_gap <= tol
            and self.largest_ratio <= 1 + slack
            and self.full_batch_recovered
        )

    def by_algorithm(self) -> dict[str, dict[int, float]]:
        """``{algorithm: {batch: ratio}}``, the right panel of the stability map."""
        out: dict[str, dict[int, float]] = {}
        for key, ratio in self.ratios.items():
            name, batch = key.rsplit("_b", 1)
            out.setdefault(name, {})[int(batch)] = ratio
        return out

    def table(self) -> dict[str, dict[str, float]]:
        """The two columns, ready for ``pandas.DataFrame``."""
        return {"threshold / full batch": self.ratios, "|rho(T) - 1| there": self.radius_gap}


def thresholds_by_batch(
    problem: Problem, mixing: np.ndarray, batches: Sequence[int]
) -> BatchThresholds:
    """:func:`mean_square_lr` with :func:`companion.sampling.fixed_size` batches of each
    size (the same for every agent), for every algorithm, over
    :func:`companion.stability.max_stable_lr`; and :func:`radius` at each threshold below
    the full batch, which must be 1 there.

    Raises:
        ValueError: without batch sizes (and from the sampler, for a size it cannot draw).

    Example:
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.arange(2), np.arange(2, 4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> found = thresholds_by_batch(p, np.full((2, 2), 0.5), [1, 2])
        >>> round(found.ratios["dgd_b1"], 6), found.ratios["dgd_b2"], found.full_batch_recovered
        (0.651388, 1.0, True)
        >>> found.consistent(1e-10), found.by_algorithm()["dgd"] == {
        ...     1: found.ratios["dgd_b1"], 2: 1.0}
        (True, True)
    """
    if len(batches) == 0:
        raise ValueError("batches is empty: give at least one batch size, e.g. [1, 2]")
    ratios, radius_gap, full_keys = {}, {}, []
    for name in algorithms.ALGORITHMS:
        full = stability.max_stable_lr(problem, name, mixing)
        for b in batches:
            sampler, key = sampling.fixed_size(problem, b), f"{name}_b{b}"
            threshold = mean_square_lr(problem, name, mixing, sampler)
            ratios[key] = threshold / full
            if sampler.is_full:  # the full batch's threshold is stability's, exactly
                full_keys.append(key)
                continue
            radius_gap[key] = abs(radius(problem, name, mixing, threshold, sampler) - 1)
    return BatchThresholds(ratios, radius_gap, tuple(full_keys))
