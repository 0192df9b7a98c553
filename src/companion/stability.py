"""Step-size stability of DGD, ATC and CTA for the linearized model.

Each algorithm is an affine map ``F <- M F + c`` of the stacked predictions
(:func:`companion.linear.iteration_map`). It converges from every start exactly when the
spectral radius of ``M`` is below 1; with a positive definite kernel there is no
eigenvalue 1 (eigenvalue 1 appears only along null directions of a singular K).

Write ``D_q = diag(w_q)`` (1/n_q on agent q's outputs), ``G_q = K^{1/2} D_q K^{1/2}`` and
``L_max = max_q lambda_max(K_qq / n_q)`` (the largest eigenvalue of any ``G_q``). Because
``W (x) I`` commutes with ``I (x) K^{1/2}``, ``M`` is similar to ``W (x) I - eta G`` (DGD)
and to ``(W (x) I)(I - eta G)`` (ATC; CTA is the reverse product). Hence:

- DGD, symmetric W: eigenvalues are real and at most 1; the smallest decreases with eta,
  so the exact threshold is ``1 / lambda_max((W+I)^{-1/2} G (W+I)^{-1/2})``, one symmetric
  eigenproblem. A sufficient (not necessary) bound is ``(1 + lambda_min(W)) / L_max``.
- ATC and CTA, any doubly stochastic W (``||W||_2 = 1``): stable for ``eta < 2 / L_max``
  (sufficient). With W symmetric positive semidefinite, ``(W (x) I)(I - eta G)`` has the
  eigenvalues of the symmetric ``W^{1/2} (I - eta G) W^{1/2}`` (times I), at most 1 and
  decreasing in eta: the exact threshold is where -1 first becomes an eigenvalue,
  ``1 / lambda_max((W+I)^{-1/2} W^{1/2} G W^{1/2} (W+I)^{-1/2})``. Otherwise (W indefinite,
  as for the cycle's Metropolis weights) a complex pair can leave the unit circle first,
  and the threshold is found by scanning and bisecting the spectral radius.

Both symmetric eigenproblems are (Qm x Qm) but of the form ``B^T (f(W) (x) I) B`` with
``B B^T = G`` of rank m: their nonzero eigenvalues are those of the m x m matrix
``f(W)[a(i), a(j)] * Khat[i, j]``, where ``a(i)`` is the agent that owns output i,
``Khat = D^{1/2} K D^{1/2}`` and ``f(W) = (W+I)^{-1}`` (DGD) or ``W (W+I)^{-1}``
(ATC/CTA). So the exact threshold costs one m x m eigenvalue, whatever Q.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.linalg
from threadpoolctl import ThreadpoolController

from companion import algorithms, linear, metrics
from companion._checks import check_lr_value
from companion.graphs import validate_mixing
from companion.problem import Problem
from companion.trajectory import Trajectory, relative_error

__all__ = [
    "check_lr",
    "crossing_error",
    "iteration_matrix",
    "kernel_at_end",
    "symmetric_lambda_min",
    "max_stable_lr",
    "minus_one_crossing",
    "spectral_radius",
    "sufficient_lr_bound",
    "threshold_table",
]

DENSE_LIMIT = 3000  # largest Q*m for a dense eigendecomposition (seconds on 2 cores)
RADIUS_TOL = 1e-9  # spectral radius up to 1 + RADIUS_TOL counts as stable
SMALL = 1000  # below this size, threaded BLAS makes eigendecompositions slower, not faster


def blas_threads(size: int) -> contextlib.AbstractContextManager:
    """One BLAS thread for small matrices: OpenBLAS threads made a 140 x 140 `eig` 50x
    slower on a busy 2-core machine (spinning workers), and bisection calls it often."""
    if size >= SMALL:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """The loaded BLAS libraries (numpy's and scipy's, both imported with this module),
    found once: finding them, which ``threadpool_limits`` does on every call, took 6 ms, a
    fifth of the 320 x 320 ``eigvals`` it wrapped."""
    return ThreadpoolController()


def _mixing(problem: Problem, mixing: np.ndarray) -> np.ndarray:
    return validate_mixing(mixing, num_agents=problem.num_agents, require_connected=False)


def _symmetric(mixing: np.ndarray) -> bool:
    return bool(np.allclose(mixing, mixing.T, rtol=0, atol=1e-12))


def symmetric_lambda_min(mixing: np.ndarray) -> float | None:
    """The smallest eigenvalue of a symmetric W, None for a W that is not symmetric."""
    return float(np.linalg.eigvalsh(mixing)[0]) if _symmetric(mixing) else None


def iteration_matrix(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    lr: float,
    *,
    space: str = "predictions",
) -> np.ndarray:
    """The Qm x Qm matrix M of ``F <- M F + c`` (``space="predictions"``) or of
    ``alpha <- M alpha + c`` (``space="coefficients"``).

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> iteration_matrix(p, "dgd", np.full((2, 2), 0.5), 0.5).shape
        (4, 4)
    """
    mixing, lr = _mixing(problem, mixing), check_lr_value(lr)
    return linear.iteration_map(problem, algorithm, mixing, lr, space=space)[0]


def spectral_radius(
    problem: Problem, algorithm: str | algorithms.Algorithm, mixing: np.ndarray, lr: float
) -> float:
    """Largest eigenvalue modulus of :func:`iteration_matrix` (dense eigendecomposition).

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> spectral_radius(p, "atc", np.full((2, 2), 0.5), 0.5)
        0.75
    """
    matrix = iteration_matrix(problem, algorithm, mixing, lr)
    with blas_threads(len(matrix)):
        return float(np.abs(np.linalg.eigvals(matrix)).max())


def sufficient_lr_bound(
    problem: Problem, mixing: np.ndarray, *, algorithm: str | algorithms.Algorithm = "dgd"
) -> float:
    """A step size below which the algorithm is stable: sufficient, not necessary.

    DGD (symmetric W): ``(1 + lambda_min(W)) / L_max``, the paper's condition.
    ATC, CTA: ``2 / L_max``. Never above :func:`max_stable_lr`.

    Example:
        >>> w = np.array([[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]]) / 3
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.array([i]) for i in range(4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> round(sufficient_lr_bound(p, w), 6)
        0.666667
    """
    algorithm = algorithms.get(algorithm)
    mixing = _mixing(problem, mixing)
    bound = algorithm.theory.sufficient_bound(problem.curvature, symmetric_lambda_min(mixing))
    if bound is None:
        raise ValueError(
            f"the sufficient {algorithm.title} bound needs a symmetric mixing matrix; use "
            "max_stable_lr"
        )
    return float(bound)


def minus_one_crossing(
    problem: Problem, algorithm: str | algorithms.Algorithm, mixing: np.ndarray
) -> float:
    """The smallest step size at which -1 is an eigenvalue of the iteration matrix, for
    symmetric W, from one m x m symmetric eigenvalue (module docstring).

    It is the exact threshold for DGD, and for ATC and CTA when W is positive
    semidefinite (:func:`max_stable_lr` uses it there). For ATC and CTA with an indefinite
    W a complex pair of eigenvalues can leave the unit circle at a smaller step size, so
    there it is only where the real eigenvalue -1 first appears.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> round(minus_one_crossing(p, "dgd", np.full((2, 2), 0.5)), 6)  # 1 / 0.75
        1.333333
    """
    algorithm = algorithms.get(algorithm)
    mixing = _mixing(problem, mixing)
    if not _symmetric(mixing):
        raise ValueError("the -1 crossing needs a symmetric mixing matrix; use max_stable_lr")
    evals, evecs = np.linalg.eigh(mixing)
    if evals[0] <= -1 + 1e-12:  # W has eigenvalue -1: some disagreement mode never contracts
        return 0.0
    factor = algorithm.theory.crossing_factor(evals)
    coupling = (evecs * factor) @ evecs.T
    weights = problem.output_weights
    owner, scale = weights.argmax(0), np.sqrt(weights.sum(0))
    reduced = coupling[np.ix_(owner, owner)] * (scale[:, None] * problem.kernel * scale)
    size = len(reduced)
    with blas_threads(size):
        top = scipy.linalg.eigh(reduced, eigvals_only=True, subset_by_index=[size - 1, size - 1])
    return float(1.0 / top[0]) if top[0] > 0 else np.inf


def crossing_error(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    lr: float,
    *,
    points: int = 20,
) -> float:
    """How far ``lr`` is from being the exact threshold: the larger of ``|rho(lr) - 1|``
    and the largest excess of the spectral radius over 1 at ``points`` step sizes evenly
    spaced below ``lr`` (dense; small problems). Zero up to rounding exactly when the
    radius first reaches 1 at ``lr``.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> w = np.full((2, 2), 0.5)
        >>> crossing_error(p, "dgd", w, 4 / 3) < 1e-12  # the threshold
        True
        >>> round(crossing_error(p, "dgd", w, 1.0), 6)  # radius 1/sqrt(2) there
        0.292893
    """
    radius = [
        spectral_radius(problem, algorithm, mixing, f * lr)
        for f in np.linspace(1 / points, 1, points)
    ]
    return max(abs(radius[-1] - 1), max(radius[:-1], default=0.0) - 1)


def _reduced_threshold(
    problem: Problem, algorithm: algorithms.Algorithm, mixing: np.ndarray
) -> float | None:
    """The exact threshold where it is the -1 crossing (:func:`minus_one_crossing`), or
    None (W not symmetric; ATC/CTA with W indefinite)."""
    lambda_min = symmetric_lambda_min(mixing)
    if lambda_min is None or not algorithm.theory.crossing_is_threshold(True, lambda_min):
        return None
    return minus_one_crossing(problem, algorithm, mixing)


def max_stable_lr(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    *,
    tol: float = 1e-6,
) -> float:
    """Largest step size with spectral radius at most ``1 + 1e-9``: the exact threshold.

    DGD with symmetric W, and ATC or CTA with symmetric positive semidefinite W, are
    solved exactly by one m x m symmetric eigenvalue (module docstring). Otherwise the
    spectral radius is scanned upward from the sufficient bound in factors of 1.25 and
    the first crossing is bisected to relative precision ``tol``, with dense eigenvalues
    of the Qm x Qm iteration matrix (refused above ``DENSE_LIMIT``).

    Example:
        >>> w = np.array([[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]]) / 3
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.array([i]) for i in range(4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> round(max_stable_lr(p, "dgd", w), 6)  # 8/7
        1.142857
    """
    algorithm = algorithms.get(algorithm)
    mixing = _mixing(problem, mixing)
    size = problem.output_weights.size
    reduced = _reduced_threshold(problem, algorithm, mixing)
    if reduced is not None:
        return reduced
    if size > DENSE_LIMIT:
        raise ValueError(
            f"the exact threshold of {algorithm.name} with this mixing matrix (not symmetric "
            f"positive semidefinite) needs dense eigenvalues of the Qm x Qm iteration matrix, "
            f"and Qm = {size} > {DENSE_LIMIT}: use a positive semidefinite mixing rule "
            "(graphs.mixing_matrix(..., 'lazy')), DGD, or fewer agents or samples"
        )
    with blas_threads(size):
        return _bisect_threshold(problem, algorithm, mixing, tol)


def _bisect_threshold(
    problem: Problem, algorithm: algorithms.Algorithm, mixing: np.ndarray, tol: float
) -> float:
    """First crossing of spectral radius 1, scanning up from a stable step size."""

    def stable(lr: float) -> bool:
        matrix = linear.iteration_map(problem, algorithm, mixing, lr, space="predictions")[0]
        return np.abs(np.linalg.eigvals(matrix)).max() <= 1 + RADIUS_TOL

    low = algorithm.theory.bisection_start(problem.curvature)
    high = low * 1.25
    for _ in range(200):
        if not stable(high):
            break
        low, high = high, high * 1.25
    else:
        return np.inf
    while high - low > tol * high:
        middle = 0.5 * (low + high)
        low, high = (middle, high) if stable(middle) else (low, middle)
    return low


def check_lr(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    lr: float,
    *,
    strict: bool = False,
) -> None:
    """Warn (``UserWarning``) or, with ``strict=True``, raise ``ValueError`` if lr is above
    the exact stability threshold.

    Cheap first: below the sufficient bound nothing else is computed.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> check_lr(p, "dgd", np.full((2, 2), 0.5), 3.0, strict=True)
        Traceback (most recent call last):
        ...
        ValueError: lr=3 exceeds the largest stable step size 1.33333 of dgd on this problem ...
    """
    algorithm = algorithms.get(algorithm)
    lr = check_lr_value(lr)
    mixing = _mixing(problem, mixing)
    bound = algorithm.theory.sufficient_bound(problem.curvature, symmetric_lambda_min(mixing))
    if bound is not None and lr <= bound:
        return
    size = problem.output_weights.size
    reduced = _reduced_threshold(problem, algorithm, mixing)
    if reduced is None and size > DENSE_LIMIT:
        message = (
            f"lr={lr:.6g} is above the sufficient stability bound and Q*m = {size} is too "
            f"large (> {DENSE_LIMIT}) for an exact check: call companion.stability."
            "spectral_radius to check it"
        )
        threshold = None
    else:
        threshold = max_stable_lr(problem, algorithm, mixing) if reduced is None else reduced
        if lr <= threshold:
            return
        message = (
            f"lr={lr:.6g} exceeds the largest stable step size {threshold:.6g} of "
            f"{algorithm.name} on this problem (spectral radius of the iteration matrix > 1): "
            f"the linearized dynamics diverge. Use lr below {threshold:.6g}"
        )
    if strict and threshold is not None:
        raise ValueError(message)
    warnings.warn(message, UserWarning, stacklevel=3)


def threshold_table(
    problem: Problem, mixings: Mapping[str, np.ndarray], names: Sequence[str]
) -> pd.DataFrame:
    """Per topology (rows): ``lambda_min(W)``, then for each algorithm its
    :func:`sufficient_lr_bound` and its exact threshold (:func:`max_stable_lr`), both in
    units of ``1 / L_max``; columns ``"<NAME> sufficient"``, ``"<NAME> exact"``.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> threshold_table(p, {"pair": np.full((2, 2), 0.5)}, ["dgd"]).round(6).to_dict("list")
        {'lambda_min(W)': [0.0], 'DGD sufficient': [1.0], 'DGD exact': [1.333333]}
    """
    if not mixings or not names:
        raise ValueError(f"threshold_table needs topologies and algorithms, got {names=}")
    curvature, rows = problem.curvature, {}
    for topology, mixing in mixings.items():
        lambda_min = symmetric_lambda_min(_mixing(problem, mixing))
        row = rows[topology] = {"lambda_min(W)": np.nan if lambda_min is None else lambda_min + 0}
        for name in names:
            title = algorithms.get(name).name.upper()
            bound = sufficient_lr_bound(problem, mixing, algorithm=name)
            row[f"{title} sufficient"] = bound * curvature
            row[f"{title} exact"] = max_stable_lr(problem, name, mixing) * curvature
    return pd.DataFrame(rows).T


def kernel_at_end(
    problem: Problem, run: Trajectory, mixing: np.ndarray, *, unit: float = 1.0
) -> dict[str, float]:
    """Where a network run left the NTK: ``"kernel drift"``, the relative distance of each
    agent's end kernel from ``problem.kernel`` (at theta_0) averaged over agents, and
    ``"end threshold"``, the exact threshold of the run's algorithm for the agents' mean
    end kernel (:func:`max_stable_lr`) in units of ``unit`` (the threshold at theta_0, say).

    Example:
        >>> from companion import models, problem as problems, simulate
        >>> p = problems.digits(models.mlp(16, 1, 10), num_agents=2, samples_per_agent=1)
        >>> w = np.full((2, 2), 0.5)
        >>> limit = max_stable_lr(p, "dgd", w)
        >>> run = simulate.train(p, "dgd", w, lr=0.5 * limit, steps=3, progress=False)
        >>> end = kernel_at_end(p, run, w, unit=limit)
        >>> 0 < end["kernel drift"] < 1, 0.5 < end["end threshold"] < 2
        (True, True)
    """
    if run.final_params is None or problem.inputs is None or not np.isfinite(unit) or unit <= 0:
        raise ValueError(
            "kernel_at_end needs a training run with final_params (simulate.train), a problem "
            f"with inputs and a positive finite unit: got {unit=}"
        )
    kernels = metrics.agent_kernels(problem.network, run.final_params, problem.inputs)
    drift = np.mean([relative_error(k, problem.kernel) for k in kernels])
    end = problem.replace(kernel=np.mean(kernels, axis=0))
    threshold = max_stable_lr(end, run.algorithm, mixing) / unit
    return {"kernel drift": float(drift), "end threshold": float(threshold)}
