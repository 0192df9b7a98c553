"""Infinite width: the distribution over initializations of every agent's predictions.

In the NTK parameterization, as the hidden widths grow, the initial outputs ``f_0`` on
any inputs become a centred Gaussian process with the NNGP kernel ``Sigma (x) I_C``
(independent across outputs) and the NTK becomes the deterministic ``Theta (x) I_C``
(Lee et al., NeurIPS 2019). The linearized recursion of DGD, ATC and CTA is then affine in
the initial outputs: with ``z = [f_0; f_0*]`` on the training and test inputs, every
agent's predictions after k steps are ``A_k z + b_k``. Hence, over initializations,

- the mean ``b_k`` is the closed form (:func:`companion.dynamics.closed_form`) started from
  ``f_0 = 0`` with the analytic NTK;
- the covariance is ``A_k (Sigma (x) I_C) A_k^T``;
- the expected local loss is the loss of the mean plus ``C / (2 n_q)`` times the summed
  variances of agent q's own outputs; every other expected squared quantity
  (``L(theta_q)``, ``L(theta_bar)``, the test loss, the squared consensus and parameter
  distances) is the same quadratic form of the mean plus a trace: exact, with no sampling.

Every output behaves alike, so the fluctuations are carried for one output, as
``X_k = A_k Phi`` with ``Sigma = Phi Phi^T``. Each agent holds rows for its training
predictions, its test predictions and its dual coefficients alpha (the gradient of agent q
reads its own training rows through ``Theta``, ``Theta(X*, X)`` and, for alpha, the
identity), and one column per factor of ``Sigma``. A step is
:meth:`companion.algorithms.Algorithm.update` on ``X``; only per-step summaries are kept,
and covariance blocks only at the steps asked for.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from companion import algorithms, analytic, dynamics, schedules
from companion._checks import check_steps
from companion.models import MLPSpec
from companion.problem import Problem
from companion.trajectory import Trajectory

__all__ = [
    "InfiniteWidth",
    "Moments",
    "analytic_problem",
    "closed_form",
]


def _update(state, readout_own, own, own_weights, mixing, lr, algorithm):
    """One step of the algorithm on the fluctuation state (Q, rows, columns)."""
    agents = jnp.arange(own.shape[0])[:, None]

    def gradient(x):
        residual = own_weights[..., None] * x[agents, own]  # (Q, L, columns); pads weigh 0
        return jnp.einsum("qrl,qlc->qrc", readout_own, residual)

    return algorithm.update(
        state,
        mix=lambda x: jnp.einsum("qp,prc->qrc", mixing, x),
        gradient=gradient,
        step=lambda x, g: x - lr * g,
    )


@functools.partial(jax.jit, static_argnames="algorithm")
def _advance(state, count, readout_own, own, own_weights, mixing, lr, *, algorithm):
    """The state after ``count`` more steps (one compilation serves every count)."""
    args = (readout_own, own, own_weights, mixing, lr, algorithm)
    return jax.lax.fori_loop(0, count, lambda _, x: _update(x, *args), state)


@functools.partial(jax.jit, static_argnames=("algorithm", "length", "train", "test"))
def _summaries(state, readout_own, own, own_weights, mixing, lr, *, algorithm, length, train, test):
    """Per step: the variance of every prediction per agent (Q, train + test) and at the
    network average (train + test,), and the traces that fluctuations add to the squared
    consensus distance (scalar) and parameter distances (Q,), for one output.

    The rows after the ``train + test`` prediction rows are alpha, and ``Theta alpha_q``
    is the change of agent q's training rows since step 0.
    """
    start = state[:, :train]

    def body(x, _):
        values, alpha = x[:, : train + test], x[:, train + test :]
        moved = values[:, :train] - start
        spread = alpha - alpha.mean(0, keepdims=True)
        moved_spread = moved - moved.mean(0, keepdims=True)
        observed = (
            jnp.sum(values**2, -1),
            jnp.sum(values.mean(0) ** 2, -1),
            jnp.mean(jnp.sum(spread * moved_spread, (1, 2))),
            jnp.sum(alpha * moved, (1, 2)),
        )
        return _update(x, readout_own, own, own_weights, mixing, lr, algorithm), observed

    return jax.lax.scan(body, state, None, length=length)[1]


def _factor(covariance: np.ndarray) -> np.ndarray:
    """``Phi`` with ``Phi Phi^T = covariance`` (symmetric square root; rounding-level
    negative eigenvalues of a positive semidefinite kernel are set to zero)."""
    values, vectors = np.linalg.eigh(covariance)
    keep = values > values[-1] * 1e-15
    return vectors[:, keep] * np.sqrt(values[keep])


@dataclasses.dataclass(frozen=True)
class Moments:
    """Mean and spread over initializations of an infinitely wide network's run.

    Attributes:
        mean: the predictions averaged over initializations, at every step; its losses are
            the losses *of the mean*.
        variance: (K, Q, n) variance of each agent's prediction on each training input
            (the same for every output).
        test_variance: (K, Q, n_test), or None without a test side.
        expected: the same predictions with every loss replaced by its expectation over
            initializations (``local_loss``, ``global_loss``, ``average_loss``,
            ``test_loss``), and the distances by the square roots of their expected
            squares (``consensus_distance``, ``param_distance``). ``test_accuracy`` is
            None: it is not a moment.
        targets: (n, C) training targets, and test_targets (n_test, C) or None.
    """

    mean: Trajectory
    variance: np.ndarray
    test_variance: np.ndarray | None
    expected: Trajectory
    targets: np.ndarray
    test_targets: np.ndarray | None


def _inputs(problem: Problem) -> np.ndarray:
    """The training inputs, then the test inputs when there are any."""
    return np.concatenate(
        [np.asarray(x) for x in (problem.inputs, problem.inputs_test) if x is not None]
    )


def analytic_problem(problem: Problem) -> Problem:
    """The problem whose closed form is the mean over initializations: the same targets,
    partition and test side, the analytic NTK ``Theta (x) I_C`` and ``f_0 = 0``.

    Raises:
        ValueError: for a problem without a model or inputs, a model without analytic
            kernels (naming those that have them), or an MLP in the standard
            parameterization.
    """
    model = problem.model
    if model is None or problem.inputs is None:
        raise ValueError(
            "the infinite-width closed form needs a problem built from a model with inputs "
            f"(model= and inputs=); supported models: {analytic.SUPPORTED}"
        )
    if isinstance(model.spec, MLPSpec) and model.spec.parameterization != "ntk":
        raise ValueError(
            f"the MLP uses the {model.spec.parameterization!r} parameterization, whose NTK "
            "grows with the width: the infinite-width limit here is that of the NTK "
            "parameterization; build the model with companion.models.mlp(..., "
            "parameterization='ntk')"
        )
    n, c = problem.num_samples, problem.num_outputs
    theta = analytic.ntk(model, _inputs(problem), problem.inputs, out_dim=1)
    has_test = problem.inputs_test is not None
    return Problem(
        targets=problem.targets,
        partition=problem.partition,
        kernel=np.kron(theta[:n], np.eye(c)),
        f0=np.zeros((n, c)),
        targets_test=problem.targets_test if has_test else None,
        kernel_test=np.kron(theta[n:], np.eye(c)) if has_test else None,
        f0_test=np.zeros((len(theta) - n, c)) if has_test else None,
    )


def closed_form(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    *,
    lr: float,
    strict: bool = False,
) -> InfiniteWidth:
    """The infinite-width closed form of ``algorithm`` on the problem's data and model.

    Uses the problem's inputs, targets, partition, test side and model (its analytic NTK
    and NNGP kernels, :func:`companion.analytic.ntk` and
    :func:`companion.analytic.nngp`); the problem's empirical kernel and ``f_0`` are
    not used, so ``problem.params`` may be any initialization.

    Args:
        problem: a :class:`companion.problem.Problem` built from a model of
            :mod:`companion.models` (NTK parameterization for MLPs).
        algorithm, mixing, lr, strict: as for :func:`companion.dynamics.closed_form`; the
            step size is checked against the analytic NTK.

    Raises:
        ValueError: for a problem without a model or inputs, a model without analytic
            kernels (naming those that have them), an MLP in the standard
            parameterization, or a bad algorithm, mixing matrix or step size.

    Example:
        >>> from companion import models
        >>> p = Problem(targets=np.eye(2), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.eye(2), model=models.affine(2), params=None,
        ...             kernel=np.eye(4), f0=np.zeros((2, 2)))
        >>> form = closed_form(p, "atc", np.full((2, 2), 0.5), lr=0.2)
        >>> m = form.steps(3)
        >>> m.variance.shape, bool(np.all(m.expected.local_loss >= m.mean.local_loss))
        ((4, 2, 2), True)
    """
    schedules.require_matrix(
        mixing,
        where="companion.infinite.closed_form",
        fix="the covariance over initializations is derived for one W; run a schedule's mean "
        "with companion.dynamics.closed_form on the analytic problem "
        "(companion.infinite.analytic_problem), or pass one mixing matrix W",
    )
    mean_problem = analytic_problem(problem)
    form = dynamics.closed_form(mean_problem, algorithm, mixing, lr=lr, strict=strict)
    c = problem.num_outputs  # the scalar kernels are every C-th entry of K (x) I_C
    kernels = [
        k[::c, ::c] for k in (mean_problem.kernel, mean_problem.kernel_test) if k is not None
    ]
    nngp = analytic.nngp(problem.model, _inputs(problem), out_dim=1)  # type: ignore[arg-type]
    return InfiniteWidth(problem=problem, form=form, ntk=np.concatenate(kernels), nngp=nngp)


@dataclasses.dataclass(frozen=True, eq=False)
class InfiniteWidth:
    """The infinite-width closed form of one algorithm on one problem, mixing matrix and
    step size. Build it with :func:`closed_form`.

    Attributes:
        problem: the problem it was built from (data, partition, model).
        form: the closed form of the mean (analytic NTK, ``f_0 = 0``).
        ntk: (N, n) scalar analytic NTK of the N = n + n_test training and test inputs
            against the training inputs.
        nngp: (N, N) scalar NNGP kernel of the training and test inputs.
    """

    problem: Problem
    form: dynamics.ClosedForm
    ntk: np.ndarray
    nngp: np.ndarray

    @property
    def algorithm(self) -> algorithms.Algorithm:
        """The algorithm."""
        return self.form.algorithm

    @property
    def lr(self) -> float:
        """The step size eta."""
        return self.form.lr

    @functools.cached_property
    def _operands(self) -> tuple:
        """The gradient's readout of every agent's own rows, the own rows and weights."""
        n = self.problem.num_samples
        readout = np.concatenate([self.ntk, np.eye(n)])  # predictions, then alpha
        own, weights = self.problem.own_rows
        readout_own = np.moveaxis(readout[:, own], 1, 0)  # (Q, rows, L)
        return tuple(map(jnp.asarray, (readout_own, own, weights, self.form.mixing)))

    def _start(self, columns: np.ndarray) -> jax.Array:
        """Every agent's state at step 0: ``columns`` on the prediction rows, alpha = 0."""
        rows = np.concatenate([columns, np.zeros((self.problem.num_samples, columns.shape[1]))])
        return jnp.asarray(np.broadcast_to(rows, (self.problem.num_agents, *rows.shape)))

    def steps(self, steps: int) -> Moments:
        """Mean, variances and expected losses at every step 0..``steps``.

        Costs the mean's closed form plus, per step, one update of the Q x (2n + n_test)
        x rank(Sigma) fluctuation state.
        """
        steps = check_steps(steps)
        p, c = self.problem, self.problem.num_outputs
        n = p.num_samples
        mean = self.form.steps(steps)
        variance, average, consensus, distance = map(
            np.asarray,
            _summaries(
                self._start(_factor(self.nngp)),
                *self._operands,
                self.lr,
                algorithm=self.algorithm,
                length=steps + 1,
                train=n,
                test=len(self.nngp) - n,
            ),
        )
        train, test = variance[..., :n], variance[..., n:]
        weights = p.agent_weights
        extra_global = 0.5 * c * np.einsum("kqi,i->kq", train, weights.mean(0))
        expected = dataclasses.replace(
            mean,
            method="infinite-width-expectation",
            local_loss=mean.local_loss + 0.5 * c * np.einsum("kqi,qi->kq", train, weights),
            global_loss=mean.global_loss + extra_global,
            average_loss=mean.average_loss
            + 0.5 * c * np.einsum("ki,i->k", average[:, :n], weights.mean(0)),
            test_loss=None if mean.test_loss is None else mean.test_loss + 0.5 * c * test.mean(-1),
            test_accuracy=None,
            consensus_distance=np.sqrt(np.maximum(mean.consensus_distance**2 + c * consensus, 0)),
            param_distance=np.sqrt(np.maximum(mean.param_distance**2 + c * distance, 0)),
        )
        test = test if test.shape[-1] else None
        return Moments(mean, train, test, expected, p.targets, p.targets_test)

    def covariance(self, steps: Sequence[int], *, joint: bool = False) -> np.ndarray:
        """Covariance over initializations of the predictions on the training then test
        inputs, for one output (every output alike, outputs independent), at ``steps``.

        Returns:
            (len(steps), Q, N, N): each agent's block; with ``joint``, (len(steps), Q, N,
            Q, N), every pair of agents.
        """
        values = self.response(_factor(self.nngp), steps)
        if joint:
            return np.einsum("kqic,krjc->kqirj", values, values)
        return np.einsum("kqic,kqjc->kqij", values, values)

    def response(self, initial: np.ndarray, steps: Sequence[int] | np.ndarray) -> np.ndarray:
        """``A_k z`` at ``steps``: the part of every agent's predictions (training then test
        inputs) that initial outputs ``z`` drive, for one output, column by column. The
        predictions of an infinitely wide network whose initial outputs are ``z`` are this
        plus the mean.

        Args:
            initial: (N, m) initial outputs on the training then test inputs, m columns
                (outputs, or draws).

        Returns:
            (len(steps), Q, N, m).
        """
        at = np.asarray(steps)
        if at.ndim != 1 or at.size == 0 or not np.issubdtype(at.dtype, np.integer) or at.min() < 0:
            raise ValueError(f"steps must be a 1-D array of step indices >= 0, got {steps!r}")
        outputs = len(self.nngp)
        if np.ndim(initial) != 2 or np.shape(initial)[0] != outputs:
            raise ValueError(
                f"initial outputs must have shape ({outputs}, m): one row per training then "
                f"test input, got shape {np.shape(initial)}"
            )
        state, done, values = self._start(np.asarray(initial, dtype=float)), 0, {}
        for step in np.unique(at):
            state = _advance(
                state, int(step - done), *self._operands, self.lr, algorithm=self.algorithm
            )
            done = int(step)
            values[done] = np.asarray(state[:, :outputs])
        return np.stack([values[int(s)] for s in at])

    def paired(self, runs: Sequence[Trajectory]) -> np.ndarray:
        """For each run, ``A_k z_s`` at the steps it saved, from its own initial outputs
        ``z_s`` (its predictions at step 0 on the training then test inputs): what the same
        draw drives in an infinitely wide network. Its mean over initializations is zero
        (the initial outputs are centred), so subtracting it from each run leaves the
        ensemble's expected mean unchanged and removes most of the spread of the draws: a
        control variate for :func:`companion.ensembles.errors`.

        Returns:
            (S, K, Q, N, C), runs first; N covers the test inputs when the runs have them.
        """
        at = np.asarray(runs[0].saved_steps)
        if at[0] != 0:
            raise ValueError("the runs must save step 0, where their initial outputs are read")
        initial = [
            np.concatenate(
                [r.predictions[0, 0]]
                + [np.asarray(t)[0, 0] for t in [r.test_predictions] if t is not None]
            )
            for r in runs
        ]
        z = np.concatenate(initial, -1)  # (N, S C): draws and outputs side by side
        values = self.response(z, at)
        return np.moveaxis(values.reshape(*values.shape[:3], len(runs), -1), 3, 0)
