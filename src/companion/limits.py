"""Where decentralized learning ends up in the NTK regime.

For a positive definite NTK ``K`` on a connected graph, DGD, ATC and CTA (when stable)
all converge to the same point: every agent holds the centralized minimum-norm
interpolating solution of the linearized model,

- dual coefficients ``alpha* = K^{-1} (y - f_0)`` (so ``F_q = f_0 + K alpha* = y``),
- parameters ``theta* - theta_0 = J^T alpha*`` with ``||theta* - theta_0||^2 =
  (y - f_0)^T K^{-1} (y - f_0)``, the smallest norm among all interpolants,
- test predictions ``f_0(X*) + K(X*, X) K^{-1} (y - f_0)``: centralized NTK regression.

:func:`approach` measures how far each agent is from that limit at steps 2**j, through
the closed form of the dual recursion raised to powers by repeated squaring.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from collections.abc import Sequence

import numpy as np
import scipy.linalg

from companion import data, dynamics, linear, models, simulate
from companion.dynamics import ClosedForm
from companion.problem import Problem, from_dataset
from companion.trajectory import relative_error

__all__ = [
    "Approach",
    "affine_rank",
    "approach",
    "bias",
    "bias_sweep",
    "centralized",
    "contraction",
    "fixed_point",
    "min_norm_coefficients",
    "min_norm_distance",
    "ntk_regression",
    "projected_digits",
    "steps_to_limit",
    "trained_limit",
]


def min_norm_coefficients(kernel: np.ndarray, targets: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """``alpha* = K^{-1} (y - f_0)``, flattened sample-major (length m = n*C).

    Args:
        kernel: full-output NTK (m, m), positive definite.
        targets, f0: (n, C) targets and predictions at theta_0.

    Raises:
        ValueError: if K is not positive definite (P < m, or duplicated inputs): then no
            unique interpolant exists and the limit depends on the algorithm's path.

    Example:
        >>> min_norm_coefficients(2 * np.eye(2), np.ones((2, 1)), np.zeros((2, 1)))
        array([0.5, 0.5])
    """
    rhs = (np.asarray(targets, float) - np.asarray(f0, float)).ravel()
    kernel = np.asarray(kernel, float)
    if kernel.shape != (rhs.size, rhs.size):
        raise ValueError(f"kernel has shape {kernel.shape}, expected {(rhs.size,) * 2}")
    try:
        factor = scipy.linalg.cho_factor(kernel)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the kernel is not positive definite, so the minimum-norm interpolant is not "
            "unique: use a wider model or fewer training samples (P must exceed m = n*C)"
        ) from None
    return scipy.linalg.cho_solve(factor, rhs)


def min_norm_distance(kernel: np.ndarray, targets: np.ndarray, f0: np.ndarray) -> float:
    """``||theta* - theta_0|| = sqrt((y - f_0)^T K^{-1} (y - f_0))``, the smallest
    parameter change that interpolates the training data with the linearized model.

    Example:
        >>> round(min_norm_distance(4 * np.eye(1), np.ones((1, 1)), np.zeros((1, 1))), 6)
        0.5
    """
    alpha = min_norm_coefficients(kernel, targets, f0)
    return float(np.sqrt(alpha @ np.asarray(kernel, float) @ alpha))


def ntk_regression(
    kernel: np.ndarray,
    kernel_test: np.ndarray,
    targets: np.ndarray,
    f0: np.ndarray,
    f0_test: np.ndarray,
) -> np.ndarray:
    """Centralized NTK regression ``f_0(X*) + K(X*, X) K^{-1} (y - f_0)``, shape (n*, C).

    Args:
        kernel: (m, m) train-train NTK. kernel_test: (n* C, m) test-train NTK.
        targets, f0: (n, C). f0_test: (n*, C) test predictions at theta_0.

    Example:
        >>> ntk_regression(np.eye(1), np.array([[0.5]]), np.ones((1, 1)), np.zeros((1, 1)),
        ...                np.zeros((1, 1)))
        array([[0.5]])
    """
    alpha = min_norm_coefficients(kernel, targets, f0)
    f0_test, kernel_test = np.asarray(f0_test, float), np.asarray(kernel_test, float)
    if kernel_test.shape != (f0_test.size, alpha.size):
        raise ValueError(
            f"kernel_test has shape {kernel_test.shape}, expected ({f0_test.size}, "
            f"{alpha.size}): the test-train NTK K(X*, X), one row per test output"
        )
    return f0_test + (kernel_test @ alpha).reshape(f0_test.shape)


@dataclasses.dataclass(frozen=True)
class Approach:
    """Distance of every agent from the centralized limit, at chosen steps.

    All gaps are relative and equal 1 at step 0 (every agent at theta_0).

    Attributes:
        steps: (K,) step indices.
        train_gap: (K, Q) ``||F_q(k) - y|| / ||f_0 - y||`` (interpolation).
        test_gap: (K, Q) ``||F*_q(k) - f_ntk|| / ||f_0(X*) - f_ntk||`` (NTK regression), or
            None without test data.
        norm_gap: (K, Q) ``| ||theta_q(k) - theta_0|| - ||theta* - theta_0|| | /
            ||theta* - theta_0||`` (minimum norm).
    """

    steps: np.ndarray
    train_gap: np.ndarray
    test_gap: np.ndarray | None
    norm_gap: np.ndarray

    @property
    def worst(self) -> np.ndarray:
        """(K,) largest gap over agents and over the three measures."""
        gaps = [self.train_gap, self.norm_gap] + (
            [self.test_gap] if self.test_gap is not None else []
        )
        return np.max([g.max(axis=1) for g in gaps], axis=0)


def approach(form: ClosedForm, *, doublings: int = 30) -> Approach:
    """How far each agent of a closed form is from the centralized limit, at steps
    0, 1, 2, 4, ..., 2**doublings.

    The dual coefficients follow the affine map of the closed form
    (:attr:`companion.dynamics.ClosedForm.matrix`); :func:`companion.linear.powers` raises
    it to powers of two by repeated squaring, so step 2**30 costs 30 matrix products, no
    loop over steps and no eigendecomposition (whose eigenvectors are ill-conditioned for
    DGD).

    Args:
        form: from :func:`companion.dynamics.closed_form`.
        doublings: the last step is ``2**doublings``.

    Example:
        >>> from companion import dynamics, models, problem
        >>> p = problem.digits(models.affine(10), num_agents=2, samples_per_agent=1)
        >>> form = dynamics.closed_form(p, "atc", np.full((2, 2), 0.5), lr=0.5 / p.curvature)
        >>> a = approach(form, doublings=20)
        >>> a.steps[[0, 1, -1]].tolist(), float(a.worst[0]), bool(a.worst[-1] < 1e-8)
        ([0, 1, 1048576], 1.0, True)
    """
    if isinstance(doublings, bool) or not isinstance(doublings, int | np.integer) or doublings < 1:
        raise ValueError(
            f"doublings must be an integer >= 1 (the last step is 2**doublings), got {doublings!r}"
        )
    p = form.problem
    y, f0, kernel = p.targets, p.f0, p.kernel
    steps = np.concatenate([[0], 2 ** np.arange(doublings + 1)])
    alpha = linear.powers(form.matrix, form.offset, steps).reshape(len(steps), p.num_agents, -1)
    change = alpha @ kernel  # F_q - f_0 on the training inputs
    train_gap = np.linalg.norm(change + (f0 - y).ravel(), axis=-1) / np.linalg.norm(f0 - y)
    target_norm = min_norm_distance(kernel, y, f0)
    distance = np.sqrt(np.clip(np.sum(alpha * change, axis=-1), 0, None))
    norm_gap = np.abs(distance - target_norm) / target_norm
    test_gap = None
    kernel_test, f0_test = p.kernel_test, p.f0_test
    if kernel_test is not None and f0_test is not None:
        reference = ntk_regression(kernel, kernel_test, y, f0, f0_test)
        delta = f0_test.ravel() - reference.ravel()
        test_gap = np.linalg.norm(alpha @ kernel_test.T + delta, axis=-1) / np.linalg.norm(delta)
    return Approach(steps=steps, train_gap=train_gap, test_gap=test_gap, norm_gap=norm_gap)


def centralized(problem: Problem) -> np.ndarray:
    """Where centralized gradient descent on the global loss ``L = (1/Q) sum_q L_q`` from
    ``theta_0`` ends, on the training inputs, shape (n, C).

    The limit minimizes ``L`` among predictions ``f_0 + K alpha``, that is ``f_0 + U gamma``
    with U the range of K: the weighted least-squares fit ``U^T D U gamma = U^T D (y - f_0)``
    with ``D = (1/Q) sum_q D_q``. With ``K`` positive definite it is the targets themselves
    (interpolation).

    Example:
        >>> p = Problem(targets=np.array([[1.0], [3.0]]), partition=[np.array([0, 1])],
        ...             kernel=np.ones((2, 2)), f0=np.zeros((2, 1)))
        >>> centralized(p).round(12).ravel().tolist()  # one shared direction: the mean
        [2.0, 2.0]
    """
    basis, weights = problem.kernel_range[1], problem.output_weights.mean(axis=0)
    residual = (problem.targets - problem.f0).ravel()
    weighted = basis.T * weights  # U^T D; every output has a positive weight
    gamma = np.linalg.solve(weighted @ basis, weighted @ residual)
    return problem.f0 + (basis @ gamma).reshape(problem.f0.shape)


@dataclasses.dataclass(frozen=True)
class _RangeStep:
    """One closed form's prediction step restricted to the deviations ``F_q - f_0`` in the
    range of K: ``z <- matrix z + drift``, with ``F_q = f_0 + basis z_q``."""

    matrix: np.ndarray  # (Q r, Q r)
    drift: np.ndarray  # (Q r,)
    basis: np.ndarray  # (m, r), orthonormal: the range of K

    @functools.cached_property
    def radius(self) -> float:
        return float(np.abs(np.linalg.eigvals(self.matrix)).max())


# Each closed form's restricted step, built once however many limits are asked of it.
_STEPS: weakref.WeakKeyDictionary[ClosedForm, _RangeStep] = weakref.WeakKeyDictionary()


def _range_step(form: ClosedForm) -> _RangeStep:
    """The step on the range of K, assembled from r x r blocks.

    With ``K = U diag(lambda) U^T`` on its range, agent q's gradient at ``f_0 + U z_q`` is
    ``U (A_q z_q + b_q)``, ``A_q = diag(lambda) U_q^T D_q U_q`` and ``b_q = diag(lambda)
    U_q^T D_q (f_0 - y)_q`` over its own outputs, and mixing commutes with ``I (x) U``
    (all agents start at ``f_0``, which mixing keeps): the algorithm's step in ``z`` is the
    step in ``F`` restricted, without forming the (Qm, Qm) one.
    """
    if form in _STEPS:
        return _STEPS[form]
    p = form.problem
    mixing = form.fixed_mixing("the limit of a closed form")
    evals, basis = p.kernel_range
    q, r = p.num_agents, basis.shape[1]
    residual = (p.f0 - p.targets).ravel()
    blocks, offset = np.zeros((q, r, r)), np.zeros((q, r))
    for agent, (own, w) in enumerate(zip(*p.own_outputs, strict=True)):
        own, w = own[w > 0], w[w > 0]
        rows = basis[own]
        blocks[agent] = evals[:, None] * (rows.T @ (w[:, None] * rows))
        offset[agent] = evals * (rows.T @ (w * residual[own]))

    def gradient(state: np.ndarray) -> np.ndarray:
        return np.einsum("qij,qjk->qik", blocks, state.reshape(q, r, -1)).reshape(state.shape)

    matrix, drift = form.algorithm.affine_map(
        mix=linear.mixer(mixing, r), linear=gradient, offset=offset.ravel(), lr=form.lr
    )
    _STEPS[form] = _RangeStep(matrix, drift, basis)
    return _STEPS[form]


def fixed_point(form: ClosedForm) -> np.ndarray:
    """The predictions every agent of a stable closed form converges to, shape (Q, n, C),
    solved exactly rather than iterated.

    The deviations ``F_q - f_0`` stay in the range of K (an update adds ``K`` times
    something, and mixing averages such vectors). On that subspace, with a connected graph,
    the step ``F <- M F + c`` has no eigenvalue 1, so ``(I - M) F = c`` has one solution
    there; outside the interpolation regime it is biased away from :func:`centralized`.

    Example:
        >>> p = Problem(targets=np.array([[1.0], [3.0]]),
        ...             partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> w = np.full((2, 2), 0.5)
        >>> fixed_point(dynamics.closed_form(p, "atc", w, lr=0.5)).round(6).ravel().tolist()
        [1.0, 3.0, 1.0, 3.0]
    """
    p = form.problem
    step = _range_step(form)
    if step.radius >= 1:
        raise ValueError(
            f"the recursion does not converge at lr={form.lr:g} (spectral radius "
            f"{step.radius:.6g} >= 1 on the range of K), so it has no limit to solve for: take "
            "lr below companion.stability.max_stable_lr"
        )
    deviation = np.linalg.solve(np.eye(len(step.matrix)) - step.matrix, step.drift)
    deviation = deviation.reshape(p.num_agents, -1) @ step.basis.T
    return (p.f0.ravel() + deviation).reshape(p.num_agents, *p.targets.shape)


def bias(form: ClosedForm) -> np.ndarray:
    """Each agent's distance from the centralized limit, ``||F*_q - F_c|| / ||F_c - f_0||``,
    shape (Q,): zero in the interpolation regime (the limit statement), of order the step
    size outside it.

    Example:
        >>> p = Problem(targets=np.array([[1.0], [3.0]]),
        ...             partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> bias(dynamics.closed_form(p, "dgd", np.full((2, 2), 0.5), lr=0.5)).round(6).tolist()
        [0.0, 0.0]
    """
    p = form.problem
    central = centralized(p)
    gap = fixed_point(form) - central
    return np.linalg.norm(gap, axis=(1, 2)) / np.linalg.norm(central - p.f0)


def contraction(form: ClosedForm) -> float:
    """The factor by which the distance to :func:`fixed_point` shrinks per step, in the
    long run: the spectral radius of the step on the range of K.

    Example:
        >>> p = Problem(targets=np.ones((1, 1)), partition=[np.array([0])],
        ...             kernel=np.eye(1), f0=np.zeros((1, 1)))
        >>> contraction(dynamics.closed_form(p, "dgd", np.eye(1), lr=0.25))
        0.75
    """
    return _range_step(form).radius


def steps_to_limit(form: ClosedForm, shrink: float = 1e-12) -> int:
    """Steps for the distance to :func:`fixed_point` to shrink by ``shrink`` at the long-run
    rate :func:`contraction`: ``ceil(log(shrink) / log(contraction))``.

    Example:
        >>> p = Problem(targets=np.ones((1, 1)), partition=[np.array([0])],
        ...             kernel=np.eye(1), f0=np.zeros((1, 1)))
        >>> steps_to_limit(dynamics.closed_form(p, "dgd", np.eye(1), lr=0.5), 1e-3)  # 2**-10
        10
    """
    if not 0 < shrink < 1:
        raise ValueError(f"shrink is the factor the distance shrinks by, in (0, 1): {shrink=}")
    return int(np.ceil(np.log(shrink) / np.log(contraction(form))))


def bias_sweep(
    problem: Problem, algorithm: str, mixing: np.ndarray, scales: Sequence[float]
) -> dict[str, list[float]]:
    """Where the closed form ends at each step size ``scale / L_max``: the worst agent's
    ``"bias"``, the ``"disagreement"`` ``||F* - mean_q F*_q|| / ||F_c - f_0||`` and the
    ``"excess loss"`` of the agents' mean limit over the centralized one's global loss.

    Example:
        >>> p = Problem(targets=np.array([[1.0], [3.0]]),
        ...             partition=[np.array([0]), np.array([1])],
        ...             kernel=np.ones((2, 2)), f0=np.zeros((2, 1)))
        >>> sweep = bias_sweep(p, "dgd", np.full((2, 2), 0.5), [0.001, 0.002])
        >>> round(float(sweep["bias"][1] / sweep["bias"][0]), 2)  # first order in the step
        2.0
    """
    sweep: dict[str, list[float]] = {"bias": [], "disagreement": [], "excess loss": []}
    for scale in scales:
        form = dynamics.closed_form(problem, algorithm, mixing, lr=scale / problem.curvature)
        end, central = fixed_point(form), centralized(form.problem)
        unit = np.linalg.norm(central - form.problem.f0)
        sweep["bias"].append(float(bias(form).max()))
        sweep["disagreement"].append(float(np.linalg.norm(end - end.mean(0)) / unit))
        loss = form.problem.global_loss
        sweep["excess loss"].append(float(loss(end.mean(0)) - loss(central)))
    return sweep


def affine_rank(problem: Problem) -> int:
    """``rank [X, 1]`` of the training inputs: the affine model's kernel has rank C times
    this, so it interpolates (the limit statement applies) exactly when n is at most it.
    """
    if problem.inputs is None:
        raise ValueError("affine_rank needs a problem with inputs (problem.digits, from_dataset)")
    ones = np.ones((problem.num_samples, 1))
    return int(np.linalg.matrix_rank(np.hstack([problem.inputs, ones])))


def trained_limit(form: ClosedForm, shrink: float = 1e-12) -> tuple[int, float]:
    """A solved limit against the iteration it solves: the form's problem trained (the real
    model, by :func:`companion.simulate.train`) for :func:`steps_to_limit` steps, and the
    relative error of its last predictions against :func:`fixed_point`.
    """
    steps, w = steps_to_limit(form, shrink), form.fixed_mixing("a trained limit")
    last = {"save_at": simulate.SaveAt(steps=(steps,)), "chunk": 1000, "progress": False}
    run = simulate.train(form.problem, form.algorithm, w, lr=form.lr, steps=steps, **last)
    return steps, relative_error(run.predictions[-1], fixed_point(form))


def projected_digits(
    model: models.Model, *, num_agents: int, samples_per_agent: int, dims: int, seed: int = 0
) -> Problem:
    """Digits on their ``dims`` leading principal components, split i.i.d.: ``rank [X, 1] =
    dims + 1`` (:func:`affine_rank`), so the affine model interpolates its ``n = num_agents *
    samples_per_agent`` samples exactly when ``n <= dims + 1``, and outside that regime its
    limits are reached in thousands of steps, not the millions the raw pixels need.
    """
    dataset = data.load_digits_dataset(
        num_agents * samples_per_agent, seed=seed, center_targets=True
    )
    partition = data.partition_indices(dataset.labels_train, num_agents, seed=seed)
    return from_dataset(model, data.principal_components(dataset, dims), partition, seed=seed)
