"""Closed-form learning dynamics of DGD, ATC and CTA for the linearized model.

All agents start at ``theta_0``, so ``theta_q(k) - theta_0 = J^T alpha_q(k)`` and the
predictions are ``F_q = f_0 + K alpha_q`` (the dual form derived on the book's page
"Closed forms"). :func:`closed_form` validates a problem, an algorithm, a mixing matrix
and a step size once and returns a :class:`ClosedForm`, which answers many queries:

- :meth:`ClosedForm.steps`: the recursion for steps 0..k (dual, or primal on
  ``theta - theta_0`` with the Jacobian in place of K), recording only the steps asked
  for (:mod:`companion.recursion`);
- :meth:`ClosedForm.at`: any steps, from one eigendecomposition of the iteration matrix;
- :meth:`ClosedForm.flow`: the gradient flow at any times, from the same one;
- :meth:`ClosedForm.transition`: the state-transition matrix ``Phi(t, t0)``.

The handle computes its iteration matrix and its eigendecomposition on first use and keeps
them, so repeated queries never factorize again.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.sparse.linalg
from numpy.typing import ArrayLike

from companion import algorithms, linear, recursion, schedule_stability, stability
from companion._checks import check_float64, check_lr_value, check_steps
from companion.agents import STACKED, Stacked, schedule_tables
from companion.graphs import validate_mixing
from companion.problem import Problem
from companion.schedules import Schedule
from companion.trajectory import SaveAt, Trajectory

__all__ = ["ClosedForm", "closed_form"]

SPECTRAL_LIMIT = stability.DENSE_LIMIT  # largest Q*m for the eigendecomposition paths
CONDITION_LIMIT = 1e7  # eigenvector condition number above which spectral results lose 1e-9
# Beyond this many steps the fallback jumps by matrix powers (O(size^3 log k), constant
# memory) instead of storing every step of the recursion.
POWER_STEPS = 10_000


def _log1p(d: np.ndarray) -> np.ndarray:
    """Complex log(1 + d), accurate for small |d| (numpy's complex log1p is not)."""
    x, y = np.real(d), np.imag(d)
    return 0.5 * np.log1p(2 * x + x * x + y * y) + 1j * np.arctan2(y, 1 + x)


def _expm1(z: np.ndarray) -> np.ndarray:
    """Complex exp(z) - 1, accurate for small |z|."""
    a, b = np.real(z), np.imag(z)
    return np.expm1(a) * np.cos(b) - 2 * np.sin(b / 2) ** 2 + 1j * np.exp(a) * np.sin(b)


def closed_form(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray | Schedule,
    *,
    lr: float,
    strict: bool = False,
    check: bool = True,
    layout: Stacked = STACKED,
) -> ClosedForm:
    """Validate once, then query the closed form of ``algorithm`` on ``problem`` many times.

    Args:
        problem: a :class:`companion.problem.Problem`.
        algorithm: "dgd", "atc" or "cta".
        mixing: doubly stochastic Q x Q W (connectivity is not required: W = I models no
            communication), or a :class:`companion.schedules.Schedule` of W(k); with a
            schedule the closed form is the recursion (:meth:`ClosedForm.steps`), whose
            step k multiplies by the iteration matrix of W(k).
        lr: step size eta.
        strict: raise instead of warning when lr is above the exact stability threshold
            (:func:`companion.stability.check_lr`, or
            :func:`companion.schedule_stability.check_schedule` for a schedule).
        check: check lr against that threshold (skip it when the caller already has;
            as :func:`companion.simulate.train`).
        layout: where the recursion of :meth:`ClosedForm.steps` runs
            (:mod:`companion.agents`): every agent on one device (default), or sharded over
            devices (:func:`companion.sharded.closed_form`).

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> form = closed_form(p, "dgd", np.full((2, 2), 0.5), lr=0.5)
        >>> t = form.steps(3)
        >>> t.local_loss.shape, t.method
        ((4, 2), 'dual-recursion')
    """
    check_float64("the closed form")
    algorithm = algorithms.get(algorithm)
    lr = check_lr_value(lr)
    if isinstance(mixing, Schedule):
        mixing.check_agents(problem.num_agents)
        schedule_tables(layout, mixing.matrices(1))  # refuses a sharded layout
        if check:
            schedule_stability.check_schedule(problem, algorithm, mixing, lr, strict=strict)
        return ClosedForm(problem, algorithm, mixing, lr, layout)
    mixing = validate_mixing(mixing, num_agents=problem.num_agents, require_connected=False)
    if check:
        stability.check_lr(problem, algorithm, mixing, lr, strict=strict)
    return ClosedForm(problem, algorithm, mixing, lr, layout)


@dataclasses.dataclass(frozen=True, eq=False)
class ClosedForm:
    """The closed form of one algorithm on one problem, mixing matrix and step size.

    Build it with :func:`closed_form`, which validates the arguments.
    """

    problem: Problem
    algorithm: algorithms.Algorithm
    mixing: np.ndarray | Schedule
    lr: float
    layout: Stacked = STACKED

    def fixed_mixing(self, query: str = "this query") -> np.ndarray:
        """The one mixing matrix W, or a refusal naming ``query`` when the closed form runs a
        schedule."""
        if isinstance(self.mixing, Schedule):
            raise ValueError(
                f"{query} needs one mixing matrix, but this closed form runs the schedule "
                f"'{self.mixing.name}', whose W(k) changes with k: use .steps(k), the "
                "recursion through every W(k)"
            )
        return self.mixing

    @functools.cached_property
    def _map(self) -> tuple[np.ndarray, np.ndarray]:
        mixing = self.fixed_mixing("the iteration matrix")
        return linear.iteration_map(self.problem, self.algorithm, mixing, self.lr)

    @property
    def matrix(self) -> np.ndarray:
        """M, the (Qm, Qm) iteration matrix of the dual coefficients: ``alpha <- M alpha +
        c``."""
        return self._map[0]

    @property
    def offset(self) -> np.ndarray:
        """c, the (Qm,) offset of the dual recursion."""
        return self._map[1]

    def _trajectory(self, steps, u, distance, consensus, test, method) -> Trajectory:
        """Add f_0 back to the output changes and score them."""
        p = self.problem
        if test is not None and p.f0_test is not None:
            test = np.asarray(test).reshape(len(steps), -1, *p.f0_test.shape) + p.f0_test
        return Trajectory.build(
            p,
            algorithm=self.algorithm.name,
            lr=self.lr,
            method=method,
            steps=steps,
            predictions=np.asarray(u).reshape(len(steps), -1, *p.targets.shape) + p.f0,
            consensus_distance=consensus,
            param_distance=distance,
            test_predictions=test,
        )

    def _recursion(self, kept: np.ndarray, *, dual: bool = True) -> tuple:
        """(u, distance, consensus, test) after each of the sorted, distinct ``kept`` steps."""
        return recursion.run(
            self.problem, self.algorithm, self.mixing, self.lr, kept, dual=dual, layout=self.layout
        )

    def steps(self, steps: int, *, form: str = "dual", save_at: SaveAt | None = None) -> Trajectory:
        """The trajectory for steps 0..``steps`` by the recursion.

        Args:
            steps: number of updates.
            form: ``"dual"`` (dual coefficients, O(m^2 + Q^2 m) per step) or ``"primal"``
                (``theta - theta_0``, with the Jacobian of the problem's model; for small
                models, where P < m).
            save_at: the steps to return (default: every step); the recursion still takes
                every step, but records only these (:mod:`companion.recursion`).
        """
        steps = check_steps(steps)
        if form not in ("dual", "primal"):
            raise ValueError(f"unknown form {form!r}: use 'dual' or 'primal'")
        at = np.arange(steps + 1) if save_at is None else save_at.resolve(steps)
        u, distance, consensus, test = self._recursion(at, dual=form == "dual")
        method = "dual-recursion" if form == "dual" else "primal"
        return self._trajectory(at, u, distance, consensus, test, method)

    def at(self, steps: Sequence[int]) -> Trajectory:
        """The trajectory at arbitrary steps, without a loop over steps.

        Eigendecomposes the Qm x Qm iteration matrix once, then costs one product per
        requested step. Falls back (and says so in ``method``) to matrix powers or to the
        recursion when Q m exceeds ``SPECTRAL_LIMIT`` or the eigenvectors are
        ill-conditioned.

        Example:
            >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]),
            ...             np.array([1])], kernel=np.eye(2), f0=np.zeros((2, 1)))
            >>> t = closed_form(p, "atc", np.full((2, 2), 0.5), lr=0.5).at([0, 50])
            >>> t.method, t.local_loss.round(6).tolist()
            ('dual-spectral', [[0.5, 0.5], [0.0, 0.0]])
        """
        self.fixed_mixing(".at(steps)")
        at = np.asarray(steps)
        if at.ndim != 1 or at.size == 0 or not np.issubdtype(at.dtype, np.integer) or at.min() < 0:
            raise ValueError(f"steps must be a 1-D array of step indices >= 0, got {steps!r}")
        return self._spectral(at, flow=False)

    def flow(self, times: ArrayLike) -> Trajectory:
        """The gradient flow ``d alpha/dt = ((M - I)/lr) alpha + c/lr`` at ``times``.

        ``t = k lr`` and ``Phi(t, t0) = expm(A (t - t0))`` with ``A = (M - I)/lr``; with
        Q = 1 this is ``F(t) = y + expm(-K t / n)(f_0 - y)``. ``Trajectory.steps`` holds
        ``t / lr``.

        Example:
            >>> p = Problem(targets=np.ones((1, 1)), partition=[np.array([0])],
            ...             kernel=np.eye(1), f0=np.zeros((1, 1)))
            >>> t = closed_form(p, "dgd", np.eye(1), lr=0.1).flow([0.0, 1.0])
            >>> round(float(t.predictions[1, 0, 0, 0]), 6)  # 1 - exp(-1)
            0.632121
        """
        self.fixed_mixing(".flow(times)")
        at = np.asarray(times, dtype=float)
        if at.ndim != 1 or at.size == 0 or not np.all(np.isfinite(at)) or at.min() < 0:
            raise ValueError(f"times must be a 1-D array of finite times >= 0, got {at!r}")
        return self._spectral(at, flow=True)

    def parameters(self, step: int) -> Any:
        """Every agent's parameters after ``step`` updates, ``theta_0 + J^T alpha_q``, as a
        pytree stacked over agents (like training's ``final_params``): one vector-Jacobian
        product per agent, never the Jacobian itself.

        Example:
            >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]),
            ...             np.array([1])], inputs=np.eye(2), params={"a": np.zeros((2, 1))},
            ...             apply_fn=lambda params, x: x @ params["a"])
            >>> theta = closed_form(p, "atc", np.full((2, 2), 0.5), lr=0.5).parameters(60)
            >>> theta["a"].round(6).tolist()  # both agents fit both targets
            [[[1.0], [1.0]], [[1.0], [1.0]]]
        """
        p = self.problem
        self.fixed_mixing(".parameters(step)")
        alpha = linear.powers(self.matrix, self.offset, [step])[0]
        alpha = alpha.reshape(p.num_agents, *p.targets.shape)
        _, pullback = jax.vjp(lambda params: p.network_fn(params, p.inputs), p.params)
        moves = [pullback(jnp.asarray(a))[0] for a in alpha]
        return jax.tree_util.tree_map(
            lambda start, *move: np.stack([np.asarray(start) + np.asarray(m) for m in move]),
            p.params,
            *moves,
        )

    def transition(self, t: float, t0: float = 0.0) -> np.ndarray:
        """``Phi(t, t0) = expm(A (t - t0))``, ``A = (M_F - I)/lr``, on the stacked
        predictions: ``F(t) - F* = Phi(t, t0) (F(t0) - F*)`` at a fixed point ``F*``.

        Example:
            >>> p = Problem(targets=np.ones((1, 1)), partition=[np.array([0])],
            ...             kernel=np.eye(1), f0=np.zeros((1, 1)))
            >>> phi = closed_form(p, "dgd", np.eye(1), lr=0.1).transition(1.0)
            >>> round(float(phi[0, 0]), 6)  # exp(-1)
            0.367879
        """
        if not (np.isfinite(t) and np.isfinite(t0) and 0 <= t0 <= t):
            raise ValueError(
                f"transition needs finite times 0 <= t0 <= t, got t={t!r}, t0={t0!r}: the flow "
                "runs forward from t0"
            )
        mixing = self.fixed_mixing("the state-transition matrix")
        matrix = stability.iteration_matrix(self.problem, self.algorithm, mixing, self.lr)
        return scipy.linalg.expm((matrix - np.eye(len(matrix))) * ((t - t0) / self.lr))

    def _spectral(self, at: np.ndarray, flow: bool) -> Trajectory:
        """alpha at steps (or times) `at` from one eigendecomposition of the alpha map.

        `alpha(k) = V diag(g_k(lambda)) V^{-1} c` with `alpha(0) = 0` and
        `g_k = sum_{j<k} lambda^j` (= k at lambda = 1). The flow uses
        `g_t = expm1(t (lambda - 1)/lr) / (lambda - 1)` (= t/lr at lambda = 1).
        """
        if self.matrix.shape[0] > SPECTRAL_LIMIT or not self._eigen[3] < CONDITION_LIMIT:
            return self._fallback(at, flow)
        evals, evecs, coeffs, _ = self._eigen
        d = np.asarray(evals - 1)  # exact in floating point near 1, keeps g accurate there
        s = np.asarray(at, dtype=float)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            if not flow:
                small = np.abs(d) <= 0.5
                g = np.where(small, _expm1(s * _log1p(d)) / d, (evals**s - 1) / d)
                g = np.where(d == 0, s, g)
            else:
                g = np.where(d == 0, s / self.lr, _expm1(s * d / self.lr) / d)
        alpha = np.real((g * coeffs) @ evecs.T)
        return self._from_alpha(at, alpha, "flow-spectral" if flow else "dual-spectral", flow)

    @functools.cached_property
    def _eigen(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(eigenvalues, eigenvectors, offset in the eigenbasis, eigenvector condition
        number) of M: one eigendecomposition per closed form, whatever the queries."""
        matrix = self.matrix
        with stability.blas_threads(matrix.shape[0]):
            evals, evecs = np.linalg.eig(matrix)
            condition = float(np.linalg.cond(evecs))
        # complex, so that powers of negative real eigenvalues stay defined
        return evals.astype(complex), evecs, np.linalg.solve(evecs, self.offset), condition

    def _from_alpha(self, at, alpha, method: str, flow: bool) -> Trajectory:
        p = self.problem
        alpha = alpha.reshape(len(at), p.num_agents, -1)
        u = alpha @ p.kernel
        test_readout = None if p.kernel_test is None else p.kernel_test.T
        steps = np.asarray(at, dtype=float) / self.lr if flow else at
        distance, consensus, test = recursion.summaries(alpha, u, test_readout, True)
        return self._trajectory(steps, u, distance, consensus, test, method)

    def _fallback(self, at: np.ndarray, flow: bool) -> Trajectory:
        """Matrix powers or the recursion (steps), or Krylov `expm_multiply` (times), when
        eig is too big or unstable."""
        matrix, offset = self.matrix, self.offset
        size = matrix.shape[0]
        if not flow and int(np.max(at)) > POWER_STEPS and size <= SPECTRAL_LIMIT:
            return self._from_alpha(at, linear.powers(matrix, offset, at), "dual-powers", flow)
        if not flow:  # the distinct steps only, each recorded once
            kept, order = np.unique(at, return_inverse=True)
            u, distance, consensus, test = (
                None if o is None else o[order] for o in self._recursion(kept)
            )
            return self._trajectory(at, u, distance, consensus, test, "dual-recursion")
        generator = np.zeros((size + 1, size + 1))  # [[A, b], [0, 0]] carries the offset
        generator[:size, :size] = (matrix - np.eye(size)) / self.lr
        generator[:size, size] = offset / self.lr
        start = np.eye(size + 1)[size]
        gaps = np.diff(at)
        if len(at) > 2 and gaps[0] > 0 and np.allclose(gaps, gaps[0], rtol=1e-12, atol=0):
            # one Krylov sweep over an evenly spaced grid instead of one call per time
            alpha = scipy.sparse.linalg.expm_multiply(
                generator, start, start=at[0], stop=at[-1], num=len(at), endpoint=True
            )
        else:
            alpha = np.stack([scipy.sparse.linalg.expm_multiply(t * generator, start) for t in at])
        return self._from_alpha(at, alpha[:, :size], "flow-expm", flow)
