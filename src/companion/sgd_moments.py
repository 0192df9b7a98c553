"""Exact mean and second moment of mini-batch DGD, ATC and CTA for the linearized model.

Every agent starts at ``theta_0``, so ``theta_q(k) - theta_0 = J^T alpha_q(k)`` and the
predictions are ``F_q = f_0 + K alpha_q``, as for the full batch. With a sampler
(:mod:`companion.sampling`) agent q's step-k gradient in these dual coordinates is
``Xi_q(k) e_q``, the residual ``e_q = K alpha_q + f_0 - y`` on its own rows weighted by the
batch weights ``Xi_q(k)`` (``1/b_q`` on the drawn rows), evaluated where the algorithm
takes its gradient (CTA: at the mixed point). One step of ``z = [alpha; 1]`` is
``z <- A(Xi) z``, affine in ``Xi``:

    ``A(Xi) = Abar - eta Lhat (Xi - D) Rhat``,

with ``Abar`` the full-batch step (weights ``D = E[Xi]``, ``1/n_q``), ``Rhat z`` the
residual at the gradient point and ``Lhat`` what the step does to a gradient (DGD, CTA: the
identity; ATC: the mix after the step), both read off the algorithm's own update.

**Theorem (the mean is the full-batch closed form).** If (i) the model is the linearized
network (the kernel does not move), (ii) every agent's weights are unbiased, ``E[Xi_q(k)] =
D_q``, and (iii) the batches of step k are drawn independently of those of earlier steps,
then ``E[z(k)]`` follows the full-batch recursion exactly: ``z(k)`` depends only on the
batches of steps ``0..k-1``, so ``E[A(Xi_k) z(k)] = A(E[Xi_k]) E[z(k)] = Abar E[z(k)]``.

**The second moment** ``S = E[z z^T]`` follows, exactly and with the state-dependent noise,

    ``S(k+1) = Abar S Abar^T + eta^2 Lhat N(Rhat S Rhat^T) Lhat^T``,

``N(V) = blockdiag_q(C_q o V_qq)``: the batches of different agents are independent, so the
sampling term is block-diagonal over agents, and inside agent q's block it is the Hadamard
product with ``C_q``, the covariance of the weighted inclusion indicators
(:meth:`companion.sampling.Sampler.weight_covariance`, kron the C x C ones). The rivals are
``noise="fixed"``, the SDE-style approximation that freezes the gradient-noise covariance at
its value at ``theta_0`` (``Rhat S Rhat^T`` replaced by the outer product of the initial
residuals), and ``noise="ignored"``, the full-batch closed form (zero variance).

**Cost.** The state is ``(Qm + 1)^2`` numbers (8 bytes each: 85 MB at Qm = 3200). A step
applies ``Abar`` on both sides: the mix costs ``2 Q^3 m^2`` and the gradient, which reads
only each agent's own rows, ``4 Q m^3`` (for ``n_q = n / Q``); the sampling term costs the
same order on ``m`` columns. A saved step adds ``Q m^3`` (each agent's diagonal of
``K S_qq K``) and ``Q m_test m^2``. :data:`SECOND_MOMENT_LIMIT` bounds Qm.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from companion import algorithms, stability
from companion._checks import check_float64, check_lr_value, check_steps
from companion.graphs import validate_mixing
from companion.problem import Problem
from companion.sampling import Sampler
from companion.trajectory import SaveAt

__all__ = ["NOISES", "Operators", "SGDMoments", "check_sampler", "moments"]

NOISES = ("exact", "fixed", "ignored")
SECOND_MOMENT_LIMIT = 4000  # largest Q m whose (Q m)^2 second moment is propagated


class Operators:
    """The linear maps of one step on columns of the augmented dual state ``[alpha; 1]``,
    shape (Qm + 1, k), for one problem, algorithm, mixing matrix, step size and sampler."""

    def __init__(self, problem: Problem, algorithm, mixing, lr: float, sampler: Sampler):
        self.problem, self.lr = problem, lr
        self.algorithm = algorithms.get(algorithm)
        self.mixing = validate_mixing(
            mixing, num_agents=problem.num_agents, require_connected=False
        )
        c, (index, weight) = problem.num_outputs, problem.own_outputs
        self.q, self.m = problem.num_agents, problem.kernel.shape[0]
        # each agent's own outputs (pads: weight 0), and where they sit in the state
        self.real = weight > 0
        agents = np.nonzero(self.real)[0]
        self.flat = agents * self.m + index[self.real]
        self.kernel_own = problem.kernel[index] * self.real[:, :, None]
        self.offset_own = (problem.f0 - problem.targets).ravel()[index] * self.real
        self.weight_own = weight
        covariance = np.kron(sampler.padded_covariance(), np.ones((1, c, c)))
        size = covariance.shape[1]
        self.noise_cov = np.zeros((self.q * size, self.q * size))  # blockdiag over agents
        for agent in range(self.q):
            self.noise_cov[agent * size : (agent + 1) * size, agent * size : (agent + 1) * size] = (
                covariance[agent]
            )

    def mix(self, x: np.ndarray) -> np.ndarray:
        blocks = self.mixing @ x[:-1].reshape(self.q, -1)
        return np.concatenate([blocks.reshape(-1, x.shape[1]), x[-1:]])

    def residual(self, x: np.ndarray) -> np.ndarray:
        """(Q, L C, k) each agent's residual ``K alpha_q + f_0 - y`` on its own outputs."""
        alpha = x[:-1].reshape(self.q, self.m, -1)
        return self.kernel_own @ alpha + self.offset_own[:, :, None] * x[-1]

    def scatter(self, own: np.ndarray) -> np.ndarray:
        """Own-output values (Q, L C, k) as a column of the augmented state (0 in the 1)."""
        full = np.zeros((self.q * self.m + 1, own.shape[-1]))
        full[self.flat] = own[self.real]
        return full

    def _update(self, x: np.ndarray, gradient) -> np.ndarray:
        return self.algorithm.update(
            x, mix=self.mix, gradient=gradient, step=lambda s, g: s - self.lr * g
        )

    def mean_step(self, x: np.ndarray) -> np.ndarray:
        """``Abar x``: the full-batch step."""
        return self._update(
            x, lambda s: self.scatter(self.weight_own[:, :, None] * self.residual(s))
        )

    def probe(self, x: np.ndarray) -> np.ndarray:
        """``Rhat x``: the residual where the algorithm takes its gradient, (Q L C, k)."""
        seen = []
        self._update(x, lambda s: seen.append(s) or np.zeros_like(s))
        return self.residual(seen[0]).reshape(-1, x.shape[1])

    def inject(self, own: np.ndarray) -> np.ndarray:
        """``-eta Lhat g`` for own-output gradients ``g`` (Q L C, k): what the step makes
        of a gradient alone."""
        g = self.scatter(own.reshape(self.q, -1, own.shape[-1]))
        return self._update(np.zeros_like(g), lambda s: g)

    def noise(self, residuals: np.ndarray) -> np.ndarray:
        """``eta^2 Lhat N(V) Lhat^T`` for ``V`` the second moment of the residuals at the
        gradient point (Q L C square)."""
        once = self.inject(self.noise_cov * residuals)
        return self.inject(once.T.copy())

    def start(self) -> np.ndarray:
        """``z_0 z_0^T``: every alpha_q = 0."""
        size = self.q * self.m + 1
        out = np.zeros((size, size))
        out[-1, -1] = 1.0
        return out

    @functools.cached_property
    def fixed_noise(self) -> np.ndarray:
        """The sampling term frozen at ``theta_0`` (the rival ``noise="fixed"``)."""
        first = self.probe(self.start()[:, -1:])
        return self.noise(first @ first.T)

    def step(self, moment: np.ndarray, noise: str = "exact") -> np.ndarray:
        """``S <- E[A S A^T]`` (``noise="exact"``) or a rival's version of it."""
        out = self.mean_step(self.mean_step(moment).T.copy())
        if noise == "exact":
            probed = self.probe(moment)
            out += self.noise(self.probe(probed.T.copy()))
        elif noise == "fixed":
            out += self.fixed_noise
        return out


@dataclasses.dataclass(frozen=True)
class SGDMoments:
    """Exact first and second moments over batch sequences at the saved steps.

    Attributes:
        steps: (K,) saved steps. noise: ``"exact"`` or the rival it was computed with.
        mean, second: (K, Q, n, C) ``E[F_q]`` and ``E[F_q^2]`` (entrywise) on the training
            inputs; test_mean, test_second: the same on the test inputs, or None.
        local_loss: (K, Q) ``E[L_q(theta_q)]``; global_loss: (K, Q) ``E[L(theta_q)]``;
            average_loss: (K,) ``E[L(theta_bar)]``.
        consensus: (K,) ``E[(1/Q) sum_q ||theta_q - theta_bar||^2]``, the expected square
            of the trajectory's consensus distance.
    """

    steps: np.ndarray
    noise: str
    mean: np.ndarray
    second: np.ndarray
    test_mean: np.ndarray | None
    test_second: np.ndarray | None
    local_loss: np.ndarray
    global_loss: np.ndarray
    average_loss: np.ndarray
    consensus: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        """(K, Q, n, C) the variance of each training prediction."""
        return np.maximum(self.second - self.mean**2, 0.0)

    @property
    def test_variance(self) -> np.ndarray | None:
        """(K, Q, n_test, C) the variance of each test prediction, or None."""
        if self.test_second is None or self.test_mean is None:
            return None
        return np.maximum(self.test_second - self.test_mean**2, 0.0)


def _readout(problem: Problem, moment: np.ndarray) -> tuple:
    """Predictions' moments, expected losses and consensus from one ``E[z z^T]``."""
    q, (n, c) = problem.num_agents, problem.targets.shape
    m = n * c
    mu = moment[:-1, -1].reshape(q, m)
    blocks = moment[:-1, :-1].reshape(q, m, q, m)
    kernel, f0, y = problem.kernel, problem.f0.ravel(), problem.targets.ravel()

    def moments_of(readout, start, means, squares):
        shift = means @ readout.T
        quadratic = np.einsum("ij,jk,ik->i", readout, squares, readout, optimize=True)
        return start + shift, start**2 + 2 * start * shift + quadratic

    pairs = [moments_of(kernel, f0, mu[a], blocks[a, :, a]) for a in range(q)]
    mean, second = (np.stack(x) for x in zip(*pairs, strict=True))
    test_mean = test_second = None
    if problem.kernel_test is not None and problem.f0_test is not None:
        f0t = problem.f0_test.ravel()
        tests = [moments_of(problem.kernel_test, f0t, mu[a], blocks[a, :, a]) for a in range(q)]
        test_mean, test_second = (np.stack(x).reshape(q, -1, c) for x in zip(*tests, strict=True))
    squared_error = second - 2 * y * mean + y**2
    average_weights = problem.output_weights.mean(0)
    local = 0.5 * np.sum(problem.output_weights * squared_error, 1)
    global_ = 0.5 * squared_error @ average_weights
    bar = blocks.mean((0, 2))
    bar_mean, bar_second = moments_of(kernel, f0, mu.mean(0), bar)
    average = 0.5 * (bar_second - 2 * y * bar_mean + y**2) @ average_weights
    traces = np.einsum("ij,qji->q", kernel, np.stack([blocks[a, :, a] for a in range(q)]))
    consensus = traces.mean() - np.sum(kernel * bar)
    shape = (q, n, c)
    train = (mean.reshape(shape), second.reshape(shape), test_mean, test_second)
    return (*train, local, global_, average, consensus)


def moments(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    *,
    lr: float,
    steps: int,
    sampler: Sampler,
    noise: str = "exact",
    save_at: SaveAt | None = None,
) -> SGDMoments:
    """The exact moments of ``algorithm`` with ``sampler``'s mini-batches, linearized.

    Args:
        problem, algorithm, mixing, lr, steps: as :func:`companion.dynamics.closed_form`
            (one mixing matrix).
        sampler: the mini-batches (:mod:`companion.sampling`), built from ``problem``.
        noise: ``"exact"``; or a rival: ``"fixed"`` (noise covariance frozen at
            ``theta_0``), ``"ignored"`` (the full-batch closed form).
        save_at: the steps to read out (default: every step).

    Example:
        >>> from companion import sampling
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.arange(2), np.arange(2, 4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> w = np.full((2, 2), 0.5)
        >>> full = moments(p, "dgd", w, lr=0.5, steps=2, sampler=sampling.full_batch(p))
        >>> float(full.variance.max()), full.mean[-1, 0, :, 0].tolist()
        (0.0, [0.3125, 0.3125, 0.125, 0.125])
        >>> half = moments(p, "dgd", w, lr=0.5, steps=2, sampler=sampling.fixed_size(p, 1))
        >>> bool(np.allclose(half.mean, full.mean)), bool(half.variance.max() > 0)
        (True, True)
    """
    check_float64("the SGD moments")
    steps, lr = check_steps(steps), check_lr_value(lr)
    if noise not in NOISES:
        raise ValueError(f"unknown noise {noise!r}: use one of {', '.join(NOISES)}")
    size = problem.output_weights.size
    if size > SECOND_MOMENT_LIMIT:
        raise ValueError(
            f"the second moment is a (Q m + 1)^2 matrix, Q m = {size} here; it is propagated "
            f"only up to Q m = {SECOND_MOMENT_LIMIT}: use fewer agents, samples or classes"
        )
    check_sampler(problem, sampler)
    ops = Operators(problem, algorithm, mixing, lr, sampler)
    saved = (save_at or SaveAt()).resolve(steps)
    moment, rows = ops.start(), []
    with stability.blas_threads(size):
        for k in range(steps + 1):
            if k in saved:
                rows.append(_readout(problem, moment))
            if k < steps:
                moment = ops.step(moment, noise)
    fields = [
        np.stack(column) if column[0] is not None else None for column in zip(*rows, strict=True)
    ]
    return SGDMoments(saved, noise, *fields)  # type: ignore[arg-type]


def check_sampler(problem: Problem, sampler: Sampler) -> None:
    """Refuse anything but a :class:`companion.sampling.Sampler` built from ``problem``'s
    partition (the same rows per agent)."""
    sizes = tuple(len(rows) for rows in problem.partition)
    if not isinstance(sampler, Sampler) or sampler.sizes != sizes:
        raise ValueError(
            f"sampler must be a companion.sampling.Sampler built from this problem (agent "
            f"sizes {sizes}), got {sampler!r}"
        )
