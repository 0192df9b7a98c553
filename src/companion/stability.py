"""Step-size stability of DGD, ATC and CTA for the linearized model (MATH.md fact 3).

The dual recursion (MATH.md "Primal and dual forms") is an affine map `F <- M F + c` of the
stacked predictions (agent-major, `F[q*m + j]`); it is stable when the spectral radius of
`M` is at most 1. An eigenvalue exactly 1 comes from the consensus average or from null
directions of a singular kernel, and is benign.

Write `D_q = diag(w_q)` (1/n_q on agent q's outputs), `G_q = K^{1/2} D_q K^{1/2}` and
`L_max = max_q lambda_max(K_qq / n_q)` (the largest eigenvalue of any `G_q`). Because
`W (x) I` commutes with `I (x) K^{1/2}`, `M` is similar to `W (x) I - eta G` (DGD) and to
`(W (x) I)(I - eta G)` (ATC; CTA is the reverse product). Hence:

- DGD, symmetric W: eigenvalues are real and at most 1; the smallest decreases with eta,
  so the exact threshold is `1 / lambda_max((W+I)^{-1/2} G (W+I)^{-1/2})`, one symmetric
  eigenproblem. The sufficient bound is `(1 + lambda_min(W)) / L_max`.
- ATC and CTA, any doubly stochastic W (`||W||_2 = 1`): stable for `eta <= 2 / L_max`;
  beyond that the threshold is found by scanning and bisecting the spectral radius.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
from threadpoolctl import threadpool_limits

from companion._checks import (
    check_algorithm,
    check_kernel,
    check_lr_value,
    check_mixing,
    check_partition,
)

__all__ = [
    "check_lr",
    "iteration_matrix",
    "max_stable_lr",
    "spectral_radius",
    "sufficient_lr_bound",
]

DENSE_LIMIT = 3000  # largest Q*m for a dense eigendecomposition (seconds on 2 cores)
RADIUS_TOL = 1e-9  # spectral radius up to 1 + RADIUS_TOL counts as stable
SMALL = 1000  # below this size, threaded BLAS makes eigendecompositions slower, not faster


def blas_threads(size: int) -> contextlib.AbstractContextManager:
    """One BLAS thread for small matrices: OpenBLAS threads made a 140 x 140 `eig` 50x
    slower on a busy 2-core machine (spinning workers), and bisection calls it often."""
    return threadpool_limits(1, user_api="blas") if size < SMALL else contextlib.nullcontext()


def output_weights(
    kernel: np.ndarray, partition: Sequence[np.ndarray], num_outputs: int | None
) -> tuple[np.ndarray, int]:
    """Per-agent weights on the m = n*C flattened outputs, shape (Q, m), and C.

    With `num_outputs=None` the partition must cover rows 0..n-1 exactly, so C = m / n.
    """
    m = kernel.shape[0]
    if num_outputs is None:
        covered = np.sort(np.concatenate(partition))
        if not (np.array_equal(covered, np.arange(covered.size)) and m % covered.size == 0):
            raise ValueError(
                "cannot infer the number of outputs C: the partition does not cover rows "
                f"0..n-1 with n dividing the kernel size {m}; pass num_outputs=C"
            )
        num_outputs = m // covered.size
    n = m // num_outputs
    partition = check_partition(partition, n)
    weights = np.zeros((len(partition), n))
    for q, rows in enumerate(partition):
        weights[q, rows] = 1.0 / rows.size
    return np.repeat(weights, num_outputs, axis=1), num_outputs


def _prepare(kernel, partition, mixing, num_outputs):
    """Validated kernel, output weights (Q, m), mixing, and the number of outputs C."""
    kernel = np.asarray(kernel, dtype=float)
    kernel = check_kernel(kernel, (len(kernel),) * 2)
    weights, num_outputs = output_weights(kernel, partition, num_outputs)
    return kernel, weights, check_mixing(mixing, weights.shape[0]), num_outputs


def iteration_matrix(
    algorithm: str,
    kernel: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    *,
    num_outputs: int | None = None,
    state: str = "predictions",
) -> np.ndarray:
    """The Qm x Qm matrix M of the dual recursion `F <- M F + c` (MATH.md dual form).

    `state="predictions"` gives M for the stacked predictions F (DGD: `W(x)I - eta K D`,
    ATC: `(W(x)I)(I - eta K D)`, CTA: `(I - eta K D)(W(x)I)`); `state="coefficients"` gives
    the same map for the dual coefficients alpha (`K D` becomes `D K`).

    Example:
        >>> iteration_matrix("dgd", np.eye(2), [np.array([0]), np.array([1])],
        ...                  np.full((2, 2), 0.5), 0.5, num_outputs=1).shape
        (4, 4)
    """
    algorithm = check_algorithm(algorithm)
    kernel, weights, mixing, num_outputs = _prepare(kernel, partition, mixing, num_outputs)
    lr = check_lr_value(lr)
    if state == "predictions":
        grads = lr * kernel[None] * weights[:, None, :]
    elif state == "coefficients":
        grads = lr * weights[:, :, None] * kernel[None]
    else:
        raise ValueError(f"unknown state {state!r}: use 'predictions' or 'coefficients'")
    q, m = weights.shape
    local = np.eye(m) - grads  # per-agent gradient step I - eta K D_q
    if algorithm == "dgd":
        blocks = mixing[:, :, None, None] * np.eye(m)
        blocks[np.arange(q), np.arange(q)] -= grads
    elif algorithm == "atc":
        blocks = mixing[:, :, None, None] * local[None]
    else:
        blocks = mixing[:, :, None, None] * local[:, None]
    return blocks.transpose(0, 2, 1, 3).reshape(q * m, q * m)


def spectral_radius(
    algorithm: str,
    kernel: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    *,
    num_outputs: int | None = None,
) -> float:
    """Largest eigenvalue modulus of `iteration_matrix` (dense eigendecomposition).

    Example:
        >>> w = np.full((2, 2), 0.5)
        >>> spectral_radius("atc", np.eye(2), [np.array([0]), np.array([1])], w, 0.5)
        0.75
    """
    matrix = iteration_matrix(algorithm, kernel, partition, mixing, lr, num_outputs=num_outputs)
    with blas_threads(len(matrix)):
        return float(np.abs(np.linalg.eigvals(matrix)).max())


def _local_lipschitz(kernel: np.ndarray, weights: np.ndarray) -> float:
    """`L_max = max_q lambda_max(K_qq / n_q)` from agent q's own kernel block."""
    tops = []
    for w in weights:
        rows = np.flatnonzero(w)
        block = kernel[np.ix_(rows, rows)] * w[rows[0]]
        tops.append(scipy.linalg.eigvalsh(block, subset_by_index=[rows.size - 1] * 2)[0])
    return float(max(tops))


def sufficient_lr_bound(
    kernel: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    *,
    algorithm: str = "dgd",
    num_outputs: int | None = None,
) -> float:
    """Step size below which the algorithm is stable (MATH.md fact 3 for DGD).

    DGD (symmetric W): `(1 + lambda_min(W)) / max_q lambda_max(K_qq / n_q)`.
    ATC, CTA: `2 / max_q lambda_max(K_qq / n_q)`. Never above `max_stable_lr`.

    Example:
        >>> w = np.array([[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]]) / 3
        >>> round(sufficient_lr_bound(np.eye(4), [np.array([i]) for i in range(4)], w), 6)
        0.666667
    """
    algorithm = check_algorithm(algorithm)
    kernel, weights, mixing, num_outputs = _prepare(kernel, partition, mixing, num_outputs)
    lipschitz = _local_lipschitz(kernel, weights)
    if algorithm != "dgd":
        return 2.0 / lipschitz
    if not np.allclose(mixing, mixing.T, rtol=0, atol=1e-12):
        raise ValueError("the sufficient DGD bound (MATH.md fact 3) needs a symmetric mixing")
    return float((1 + np.linalg.eigvalsh(mixing)[0]) / lipschitz)


def _dgd_threshold(kernel: np.ndarray, weights: np.ndarray, mixing: np.ndarray) -> float:
    """Exact DGD threshold for symmetric W: `1 / lambda_max(S G S)`, `S = (W+I)^{-1/2}`."""
    evals, evecs = np.linalg.eigh(mixing + np.eye(len(mixing)))
    if evals[0] <= 1e-12:  # W has eigenvalue -1: some disagreement mode never contracts
        return 0.0
    s = (evecs / np.sqrt(evals)) @ evecs.T
    k_evals, k_evecs = np.linalg.eigh(kernel)
    root = (k_evecs * np.sqrt(np.clip(k_evals, 0, None))) @ k_evecs.T
    grams = np.einsum("ij,qj,jk->qik", root, weights, root)  # G_q = K^1/2 D_q K^1/2
    q, m = weights.shape
    if q * m <= DENSE_LIMIT:
        full = np.einsum("qs,sij,sr->qirj", s, grams, s).reshape(q * m, q * m)
        top = np.linalg.eigvalsh(full)[-1]
    else:

        def matvec(x):
            y = np.einsum("qij,qj->qi", grams, s @ x.reshape(q, m))
            return (s @ y).ravel()

        op = scipy.sparse.linalg.LinearOperator((q * m, q * m), matvec=matvec, dtype=float)
        top = scipy.sparse.linalg.eigsh(op, k=1, which="LA", return_eigenvectors=False)[0]
    return float(1.0 / top) if top > 0 else np.inf


def max_stable_lr(
    algorithm: str,
    kernel: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    *,
    tol: float = 1e-6,
    num_outputs: int | None = None,
) -> float:
    """Largest step size with spectral radius at most `1 + 1e-9` (MATH.md fact 3).

    DGD with symmetric W is solved exactly by one symmetric eigenproblem. Otherwise the
    spectral radius is scanned upward from the sufficient bound in factors of 1.25 and
    the first crossing is bisected to relative precision `tol`.

    Example:
        >>> w = np.array([[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]]) / 3
        >>> parts = [np.array([i]) for i in range(4)]
        >>> round(max_stable_lr("dgd", np.eye(4), parts, w), 6)  # 8/7
        1.142857
    """
    algorithm = check_algorithm(algorithm)
    kernel, weights, mixing, num_outputs = _prepare(kernel, partition, mixing, num_outputs)
    symmetric = np.allclose(mixing, mixing.T, rtol=0, atol=1e-12)
    with blas_threads(weights.size):
        if algorithm == "dgd" and symmetric:
            return _dgd_threshold(kernel, weights, mixing)
        return _bisect_threshold(algorithm, kernel, partition, mixing, weights, num_outputs, tol)


def _bisect_threshold(algorithm, kernel, partition, mixing, weights, num_outputs, tol) -> float:
    """First crossing of spectral radius 1, scanning up from a stable step size."""

    def stable(lr: float) -> bool:
        matrix = iteration_matrix(algorithm, kernel, partition, mixing, lr, num_outputs=num_outputs)
        return np.abs(np.linalg.eigvals(matrix)).max() <= 1 + RADIUS_TOL

    lipschitz = _local_lipschitz(kernel, weights)
    low = 2.0 / lipschitz if algorithm != "dgd" else 2.0**-10 / lipschitz
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
    algorithm: str,
    kernel: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    *,
    strict: bool = False,
    num_outputs: int | None = None,
) -> None:
    """Warn (`UserWarning`) or, with `strict=True`, raise `ValueError` if lr is unstable.

    Cheap first: below the sufficient bound nothing else is computed.

    Example:
        >>> w = np.full((2, 2), 0.5)
        >>> check_lr("dgd", np.eye(2), [np.array([0]), np.array([1])], w, 3.0, strict=True)
        Traceback (most recent call last):
        ...
        ValueError: lr=3 exceeds the largest stable step size 1.33333 of dgd on this problem ...
    """
    algorithm = check_algorithm(algorithm)
    lr = check_lr_value(lr)
    kernel, weights, mixing, num_outputs = _prepare(kernel, partition, mixing, num_outputs)
    symmetric = np.allclose(mixing, mixing.T, rtol=0, atol=1e-12)
    if algorithm != "dgd" or symmetric:
        args = (kernel, partition, mixing)
        if lr <= sufficient_lr_bound(*args, algorithm=algorithm, num_outputs=num_outputs):
            return
    size = kernel.shape[0] * weights.shape[0]
    if not (algorithm == "dgd" and symmetric) and size > DENSE_LIMIT:
        message = (
            f"lr={lr:.6g} is above the sufficient stability bound and Q*m = {size} is too "
            f"large (> {DENSE_LIMIT}) for an exact check: call companion.stability."
            "spectral_radius to check it"
        )
        threshold = None
    else:
        threshold = max_stable_lr(algorithm, kernel, partition, mixing, num_outputs=num_outputs)
        if lr <= threshold:
            return
        message = (
            f"lr={lr:.6g} exceeds the largest stable step size {threshold:.6g} of {algorithm} "
            "on this problem (spectral radius of the iteration matrix > 1, MATH.md fact 3): "
            f"the linearized dynamics diverge. Use lr below {threshold:.6g}"
        )
    if strict and threshold is not None:
        raise ValueError(message)
    warnings.warn(message, UserWarning, stacklevel=3)
