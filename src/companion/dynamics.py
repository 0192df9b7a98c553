"""Closed-form learning dynamics of DGD, ATC and CTA for the linearized model.

Implements MATH.md "Primal (parameter space) and dual (function space) forms". All agents
start at `theta_0`, so `theta_q(k) - theta_0 = J^T alpha_q(k)` and the predictions are
`F_q = f_0 + K alpha_q`. The dual coefficients follow (with `r_q = D_q (F_q - y)`,
`D_q = diag(1/n_q on agent q's outputs)`):

- DGD: `alpha_q <- sum_r W[q,r] alpha_r - eta r_q`
- ATC: `alpha <- (W (x) I)(alpha - eta r)`
- CTA: `alpha <- alpha' - eta r(alpha')` with `alpha' = (W (x) I) alpha`

which is MATH.md's recursion for `F` multiplied through by K, and it also gives
`||theta_q - theta_0||^2 = alpha_q^T K alpha_q` and the consensus distance. The primal form
runs the same recursion on `theta - theta_0` with the Jacobian in place of K.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from companion import stability
from companion._checks import (
    check_kernel,
    check_matrix,
    check_problem,
    check_steps,
    check_targets,
)
from companion.trajectory import Trajectory, agent_weights

__all__ = ["flow", "predict", "predict_at", "state_transition"]

SPECTRAL_LIMIT = stability.DENSE_LIMIT  # largest Q*m for the eigendecomposition paths
CONDITION_LIMIT = 1e7  # eigenvector condition number above which spectral results lose 1e-9
# Beyond this many steps the fallback jumps by matrix powers (O(size^3 log k), constant
# memory) instead of storing every step of the recursion.
POWER_STEPS = 10_000


def _summaries(x, u, test_readout, dual: bool):
    """Parameter distances and test outputs of state x with train output change u = x B."""
    sq = (lambda a, b: jnp.sum(a * b, -1)) if dual else (lambda a, b: jnp.sum(a * a, -1))
    distance = jnp.sqrt(jnp.clip(sq(x, u), 0))
    dx, du = x - x[..., :1, :], u - u[..., :1, :]  # identical agents give exactly zero spread
    spread = sq(dx - dx.mean(-2, keepdims=True), du - du.mean(-2, keepdims=True))
    consensus = jnp.sqrt(jnp.clip(spread.mean(-1), 0))
    test = None if test_readout is None else x @ test_readout
    return distance, consensus, test


def _own_outputs(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each agent's output indices (Q, L), padded with index 0 and weight 0 to the largest
    agent, with their weights 1/n_q: the only outputs an agent's gradient touches."""
    rows = [np.flatnonzero(w) for w in weights]
    width = max(len(r) for r in rows)
    own = np.zeros((len(rows), width), dtype=int)
    own_weights = np.zeros((len(rows), width))
    for q, r in enumerate(rows):
        own[q, : len(r)] = r
        own_weights[q, : len(r)] = weights[q, r]
    return own, own_weights


def _recursion(readout, test_readout, weights, mixing, lr, offset, *, algorithm, length, dual):
    """Scan the affine recursion; state x is alpha (dual) or theta - theta_0 (primal).

    `readout` maps the state to the change of training outputs (K, or J^T for the primal
    form); `offset = f_0 - y`, flattened. The output changes u = x readout (and the test
    outputs) are carried along by the same linear updates rather than recomputed: agent
    q's gradient step touches only its own n_q C outputs, so in the dual form one step
    costs O(m^2 + Q^2 m) instead of O(Q m^2) (MATH.md, "Cost per step").
    """
    own, own_weights = _own_outputs(np.asarray(weights))
    return _scan(
        readout, test_readout, own, own_weights, mixing, lr, offset,
        algorithm=algorithm, length=length, dual=dual,
    )  # fmt: skip


@functools.partial(jax.jit, static_argnames=("algorithm", "length", "dual"))
def _scan(readout, test_readout, own, own_weights, mixing, lr, offset, *, algorithm, length, dual):
    agents = jnp.arange(own.shape[0])[:, None]
    readout_own = readout[own] if dual else None  # (Q, L, m): rows of K per agent
    test_own = None if test_readout is None or not dual else test_readout[own]

    def mix(*arrays):
        return tuple(None if a is None else mixing @ a for a in arrays)

    def body(carry, _):
        x, u, t = carry
        obs = (u, *_summaries(x, u, None, dual)[:2], t)
        if algorithm == "cta":
            x, u, t = mix(x, u, t)
        residual = own_weights * (jnp.take_along_axis(u, own, 1) + offset[own])
        if dual:
            dx = jnp.zeros_like(x).at[agents, own].add(residual)
            du = jnp.einsum("ql,qlm->qm", residual, readout_own)
            dt = None if t is None else jnp.einsum("ql,qlm->qm", residual, test_own)
        else:
            dx = jnp.zeros_like(u).at[agents, own].add(residual) @ readout.T
            du = dx @ readout
            dt = None if t is None else dx @ test_readout
        if algorithm == "dgd":
            x, u, t = mix(x, u, t)
        x, u = x - lr * dx, u - lr * du
        t = None if t is None else t - lr * dt
        if algorithm == "atc":
            x, u, t = mix(x, u, t)
        return (x, u, t), obs

    q = own.shape[0]
    start = (
        jnp.zeros((q, readout.shape[0])),
        jnp.zeros((q, readout.shape[1])),
        None if test_readout is None else jnp.zeros((q, test_readout.shape[1])),
    )
    return jax.lax.scan(body, start, None, length=length)[1]


class _Problem(NamedTuple):
    """A validated dual problem; `weights` are the per-agent weights on the m outputs."""

    algorithm: str
    kernel: np.ndarray
    targets: np.ndarray
    partition: list[np.ndarray]
    mixing: np.ndarray
    lr: float
    f0: np.ndarray
    kernel_test: np.ndarray | None
    f0_test: np.ndarray | None
    targets_test: np.ndarray | None
    weights: np.ndarray

    @property
    def offset(self) -> np.ndarray:
        return (self.f0 - self.targets).ravel()

    @property
    def test_readout(self) -> np.ndarray | None:
        return None if self.kernel_test is None else self.kernel_test.T

    def check_lr(self, strict: bool) -> None:
        args = (self.algorithm, self.kernel, self.partition, self.mixing, self.lr)
        stability.check_lr(*args, strict=strict, num_outputs=self.targets.shape[1])


def _problem(
    algorithm, kernel, targets, partition, mixing, lr, f0, kernel_test, f0_test, targets_test
) -> _Problem:
    """Validate the arguments shared by `predict`, `predict_at` and `flow`."""
    algorithm, targets, partition, mixing, lr = check_problem(
        algorithm, targets, partition, mixing, lr
    )
    n, c = targets.shape
    kernel = check_kernel(kernel, (n * c, n * c))
    f0 = check_matrix(f0, (n, c), "f0", "pass f(X; theta_0) on the training inputs")
    if (kernel_test is None) != (f0_test is None):
        raise ValueError("test predictions need both kernel_test and f0_test")
    if kernel_test is None and targets_test is not None:
        raise ValueError("targets_test needs kernel_test and f0_test")
    if kernel_test is not None:
        f0_test = check_targets(f0_test, "f0_test")
        kernel_test = check_kernel(
            kernel_test, (f0_test.size, n * c), "kernel_test", symmetric=False
        )
        if targets_test is not None:
            targets_test = check_matrix(targets_test, f0_test.shape, "targets_test", "")
    weights = np.repeat(agent_weights(partition, n), c, axis=1)
    return _Problem(algorithm, kernel, targets, partition, mixing, lr, f0, kernel_test, f0_test,
                    targets_test, weights)  # fmt: skip


def _trajectory(p: _Problem, steps, u, distance, consensus, test, method) -> Trajectory:
    """Add f_0 back to the output changes and score them."""
    if test is not None:
        test = np.asarray(test).reshape(len(steps), -1, *p.f0_test.shape) + p.f0_test
    return Trajectory.from_predictions(
        algorithm=p.algorithm,
        lr=p.lr,
        steps=steps,
        predictions=np.asarray(u).reshape(len(steps), -1, *p.targets.shape) + p.f0,
        targets=p.targets,
        partition=p.partition,
        consensus_distance=consensus,
        param_distance=distance,
        method=method,
        test_predictions=test,
        targets_test=p.targets_test,
    )


def predict(
    algorithm: str,
    *,
    kernel: np.ndarray | None = None,
    targets: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    steps: int,
    f0: np.ndarray,
    kernel_test: np.ndarray | None = None,
    f0_test: np.ndarray | None = None,
    targets_test: np.ndarray | None = None,
    method: str = "auto",
    jacobian: np.ndarray | None = None,
    jacobian_test: np.ndarray | None = None,
    strict: bool = False,
) -> Trajectory:
    """Exact trajectory of the linearized model for steps 0..`steps` (MATH.md dual form).

    Args:
        algorithm: "dgd", "atc" or "cta".
        kernel: full-output empirical NTK (n*C, n*C), sample-major. May be omitted when
            `jacobian` is given (then K = J J^T).
        targets: (n, C). partition: Q index arrays. mixing: doubly stochastic Q x Q W.
        lr: step size. steps: number of updates. f0: (n, C) predictions at theta_0.
        kernel_test, f0_test, targets_test: (n_test*C, n*C), (n_test, C), (n_test, C).
        method: "dual" (recursion on alpha), "primal" (recursion on theta, needs
            `jacobian`), "spectral" (`predict_at` every step) or "auto" (primal when a
            jacobian with P < m parameters is given, else dual).
        jacobian, jacobian_test: (n*C, P) and (n_test*C, P) Jacobians at theta_0.
        strict: raise instead of warning when lr is unstable (`stability.check_lr`).

    Example:
        >>> t = predict("dgd", kernel=np.eye(2), targets=np.ones((2, 1)), steps=3,
        ...             partition=[np.array([0]), np.array([1])], mixing=np.full((2, 2), 0.5),
        ...             lr=0.5, f0=np.zeros((2, 1)))
        >>> t.local_loss.shape, t.method
        ((4, 2), 'dual-recursion')
    """
    check_steps(steps)
    n_outputs = np.size(targets)
    if jacobian is not None:
        jacobian = check_matrix(jacobian, (n_outputs, np.shape(jacobian)[-1]), "jacobian", "")
        kernel = jacobian @ jacobian.T if kernel is None else kernel
    if kernel is None:
        raise ValueError("pass kernel= (the NTK), or jacobian= for the primal form")
    wants_test = kernel_test is not None or jacobian_test is not None
    if method == "auto":
        small = jacobian is not None and jacobian.shape[1] < n_outputs
        method = "primal" if small and (jacobian_test is not None or not wants_test) else "dual"
    if method not in ("dual", "primal", "spectral"):
        raise ValueError(f"unknown method {method!r}: use 'auto', 'dual', 'primal' or 'spectral'")
    if jacobian_test is not None and kernel_test is None:
        kernel_test = np.asarray(jacobian_test) @ jacobian.T
    p = _problem(algorithm, kernel, targets, partition, mixing, lr, f0, kernel_test, f0_test,
                 targets_test)  # fmt: skip
    p.check_lr(strict)
    if method == "spectral":
        return _spectral(p, np.arange(steps + 1), flow_lr=None)
    if method == "primal":
        if jacobian is None or (wants_test and jacobian_test is None):
            raise ValueError("method='primal' needs jacobian= (and jacobian_test= for tests)")
        test_map = None if jacobian_test is None else np.asarray(jacobian_test).T
        readout, test_readout, dual = jacobian.T, test_map, False
    else:
        readout, test_readout, dual = p.kernel, p.test_readout, True
    observed = _recursion(
        readout, test_readout, p.weights, p.mixing, p.lr, p.offset,
        algorithm=p.algorithm, length=steps + 1, dual=dual,
    )  # fmt: skip
    return _trajectory(p, np.arange(steps + 1), *observed, "dual-recursion" if dual else "primal")


def _log1p(d: np.ndarray) -> np.ndarray:
    """Complex log(1 + d), accurate for small |d| (numpy's complex log1p is not)."""
    x, y = d.real, d.imag
    return 0.5 * np.log1p(2 * x + x * x + y * y) + 1j * np.arctan2(y, 1 + x)


def _expm1(z: np.ndarray) -> np.ndarray:
    """Complex exp(z) - 1, accurate for small |z|."""
    a, b = z.real, z.imag
    return np.expm1(a) * np.cos(b) - 2 * np.sin(b / 2) ** 2 + 1j * np.exp(a) * np.sin(b)


def _spectral(p: _Problem, at: np.ndarray, flow_lr: float | None) -> Trajectory:
    """alpha at steps (or times) `at` from one eigendecomposition of the alpha map.

    `alpha(k) = V diag(g_k(lambda)) V^{-1} a` with `alpha(0) = 0`, offset `a` and
    `g_k = sum_{j<k} lambda^j` (= k at lambda = 1). The flow (`flow_lr` set) uses
    `g_t = expm1(t (lambda - 1)/lr) / (lambda - 1)` (= t/lr at lambda = 1).
    """
    args = (p.algorithm, p.kernel, p.partition, p.mixing, p.lr)
    matrix = stability.iteration_matrix(*args, num_outputs=p.targets.shape[1], state="coefficients")
    offset = -p.lr * p.weights * p.offset
    offset = (p.mixing @ offset if p.algorithm == "atc" else offset).ravel()
    size = matrix.shape[0]
    if size <= SPECTRAL_LIMIT:
        with stability.blas_threads(size):
            evals, evecs = np.linalg.eig(matrix)
            evals = evals.astype(complex)  # powers of negative real eigenvalues stay defined
            well_posed = np.linalg.cond(evecs) < CONDITION_LIMIT
    if size > SPECTRAL_LIMIT or not well_posed:
        return _fallback(p, at, flow_lr, matrix, offset)
    coeffs = np.linalg.solve(evecs, offset)
    d = evals - 1  # exact in floating point near 1, which keeps g accurate there
    s = np.asarray(at, dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if flow_lr is None:
            small = np.abs(d) <= 0.5
            g = np.where(small, _expm1(s * _log1p(d)) / d, (evals**s - 1) / d)
            g = np.where(d == 0, s, g)
        else:
            g = np.where(d == 0, s / flow_lr, _expm1(s * d / flow_lr) / d)
    alpha = ((g * coeffs) @ evecs.T).real.reshape(len(at), len(p.mixing), -1)
    u = alpha @ p.kernel
    summaries = _summaries(alpha, u, p.test_readout, True)
    if flow_lr is None:
        return _trajectory(p, at, u, *summaries, "dual-spectral")
    return _trajectory(p, s[:, 0] / flow_lr, u, *summaries, "flow-spectral")


def _powers(matrix: np.ndarray, offset: np.ndarray, at: np.ndarray) -> np.ndarray:
    """States of `x <- M x + offset` from `x_0 = 0` at steps `at`, by jumping between the
    requested steps with powers of the augmented matrix `[[M, offset], [0, 1]]`."""
    size = matrix.shape[0]
    augmented = np.eye(size + 1)
    augmented[:size, :size] = matrix
    augmented[:size, size] = offset
    state = np.eye(size + 1)[size]
    out = np.empty((len(at), size))
    previous = 0
    for i in np.argsort(at, kind="stable"):
        state = np.linalg.matrix_power(augmented, int(at[i]) - previous) @ state
        previous = int(at[i])
        out[i] = state[:size]
    return out


def _fallback(p: _Problem, at, flow_lr, matrix, offset) -> Trajectory:
    """Recursion or matrix powers (steps), or Krylov `expm_multiply` (times), when eig is
    too big or unstable."""
    if flow_lr is None and int(np.max(at)) > POWER_STEPS and matrix.shape[0] <= SPECTRAL_LIMIT:
        alpha = _powers(matrix, offset, at).reshape(len(at), len(p.mixing), -1)
        u = alpha @ p.kernel
        return _trajectory(p, at, u, *_summaries(alpha, u, p.test_readout, True), "dual-powers")
    if flow_lr is None:
        observed = _recursion(
            p.kernel, p.test_readout, p.weights, p.mixing, p.lr, p.offset,
            algorithm=p.algorithm, length=int(np.max(at)) + 1, dual=True,
        )  # fmt: skip
        picked = [None if o is None else np.asarray(o)[at] for o in observed]
        return _trajectory(p, at, *picked, "dual-recursion")
    size = matrix.shape[0]
    generator = np.zeros((size + 1, size + 1))  # [[A, b], [0, 0]] carries the offset
    generator[:size, :size] = (matrix - np.eye(size)) / p.lr
    generator[:size, size] = offset / p.lr
    start = np.eye(size + 1)[size]
    alpha = np.stack([scipy.sparse.linalg.expm_multiply(t * generator, start) for t in at])
    alpha = alpha[:, :size].reshape(len(at), len(p.mixing), -1)
    u = alpha @ p.kernel
    return _trajectory(p, at / p.lr, u, *_summaries(alpha, u, p.test_readout, True), "flow-expm")


def predict_at(
    algorithm: str,
    *,
    kernel: np.ndarray,
    targets: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    steps_at: Sequence[int],
    f0: np.ndarray,
    kernel_test: np.ndarray | None = None,
    f0_test: np.ndarray | None = None,
    targets_test: np.ndarray | None = None,
    strict: bool = False,
) -> Trajectory:
    """Closed form at arbitrary steps without a loop (MATH.md "Closed form at any step").

    Eigendecomposes the Qm x Qm iteration matrix of the alpha map once, then costs one
    product per requested step. Falls back to the recursion (and says so in `method`) when
    Q*m exceeds `SPECTRAL_LIMIT` or the eigenvectors are ill-conditioned. Arguments are as
    in `predict`; `steps_at` are non-negative step indices.

    Example:
        >>> t = predict_at("atc", kernel=np.eye(2), targets=np.ones((2, 1)), steps_at=[0, 50],
        ...                partition=[np.array([0]), np.array([1])],
        ...                mixing=np.full((2, 2), 0.5), lr=0.5, f0=np.zeros((2, 1)))
        >>> t.method, t.local_loss.round(6).tolist()
        ('dual-spectral', [[0.5, 0.5], [0.0, 0.0]])
    """
    at = np.asarray(steps_at)
    if at.ndim != 1 or at.size == 0 or not np.issubdtype(at.dtype, np.integer) or at.min() < 0:
        raise ValueError(f"steps_at must be a 1-D array of step indices >= 0, got {steps_at!r}")
    p = _problem(algorithm, kernel, targets, partition, mixing, lr, f0, kernel_test, f0_test,
                 targets_test)  # fmt: skip
    p.check_lr(strict)
    return _spectral(p, at, flow_lr=None)


def flow(
    algorithm: str,
    *,
    kernel: np.ndarray,
    targets: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    times: Sequence[float],
    f0: np.ndarray,
    kernel_test: np.ndarray | None = None,
    f0_test: np.ndarray | None = None,
    targets_test: np.ndarray | None = None,
) -> Trajectory:
    """Continuous-time limit `d alpha/dt = ((M - I)/lr) alpha + a/lr` at `times`.

    MATH.md "Algorithms": `t = k * lr`; the state-transition matrix is
    `Phi(t, t0) = expm(A (t - t0))` with `A = (M - I) / lr` (see `state_transition`). With
    Q = 1 this is `F(t) = y + expm(-K t / n)(f_0 - y)`. `Trajectory.steps` holds `t / lr`.

    Example:
        >>> t = flow("dgd", kernel=np.eye(1), targets=np.ones((1, 1)), times=[0.0, 1.0],
        ...          partition=[np.array([0])], mixing=np.eye(1), lr=0.1, f0=np.zeros((1, 1)))
        >>> round(float(t.predictions[1, 0, 0, 0]), 6)  # 1 - exp(-1)
        0.632121
    """
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)) or times.min() < 0:
        raise ValueError(f"times must be a 1-D array of finite times >= 0, got {times!r}")
    p = _problem(algorithm, kernel, targets, partition, mixing, lr, f0, kernel_test, f0_test,
                 targets_test)  # fmt: skip
    return _spectral(p, times, flow_lr=p.lr)


def state_transition(
    algorithm: str,
    *,
    kernel: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    t: float,
    t0: float = 0.0,
    num_outputs: int | None = None,
) -> np.ndarray:
    """`Phi(t, t0) = expm(A (t - t0))`, `A = (M - I)/lr`, on the stacked predictions.

    The paper's state-transition matrix, here in function space (Qm x Qm): the homogeneous
    part of the flow of `F`, i.e. `F(t) - F* = Phi(t, t0) (F(t0) - F*)` at a fixed point F*.

    Example:
        >>> phi = state_transition("dgd", kernel=np.eye(1), partition=[np.array([0])],
        ...                        mixing=np.eye(1), lr=0.1, t=1.0)
        >>> round(float(phi[0, 0]), 6)  # exp(-1)
        0.367879
    """
    matrix = stability.iteration_matrix(
        algorithm, kernel, partition, mixing, lr, num_outputs=num_outputs
    )
    return scipy.linalg.expm((matrix - np.eye(len(matrix))) * ((t - t0) / lr))
