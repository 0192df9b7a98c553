"""Input validation shared by the package.

Every check raises `ValueError` naming the offending entry and how to fix it, so a wrong
call fails at the door instead of deep inside a scan. Tolerances are stated in messages.
Mixing matrices are validated by `companion.graphs.validate_mixing`, algorithms by
`companion.algorithms.get`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

SYMMETRY_TOL = 1e-8  # kernel symmetry, relative to max |K|
PSD_TOL = 1e-10  # most negative kernel eigenvalue allowed, relative to the largest


def check_float64(what: str) -> None:
    """Refuse to compute ``what`` when JAX computes in float32: the exactness claims
    (closed form equals training to 1e-10) would then hold only to about 1e-7."""
    if jax.dtypes.canonicalize_dtype(np.float64) != np.float64:
        raise ValueError(
            f"{what} needs float64, but JAX is computing in float32 (jax_enable_x64 is "
            "off): call jax.config.update('jax_enable_x64', True) before computing "
            "(importing companion does it; something has turned it off since)"
        )


def check_lr_value(lr: Any) -> float:
    """Return `lr` as a float if it is a positive finite number."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    return value


def check_steps(steps: Any) -> int:
    """Return `steps` if it is a positive integer."""
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be a positive integer (number of updates), got {steps!r}")
    return int(steps)


def check_matrix(value: Any, shape: tuple[int, ...], name: str, hint: str) -> np.ndarray:
    """Return `value` as a finite float array of exactly `shape`."""
    array = np.asarray(value, dtype=float)
    if array.shape != tuple(shape):
        raise ValueError(f"{name} has shape {array.shape}, expected {tuple(shape)}: {hint}")
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        where = ", ".join(map(str, bad[0]))
        raise ValueError(
            f"{name} has {len(bad)} non-finite entries, first at [{where}]: "
            f"recompute it in float64 and check for overflow"
        )
    return array


def check_targets(targets: Any, name: str = "targets") -> np.ndarray:
    """Return targets as a finite (n, C) float array."""
    array = np.asarray(targets, dtype=float)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n, C), got shape {array.shape}: "
            f"reshape a vector with {name}[:, None]"
        )
    return check_matrix(array, array.shape, name, "")


def check_kernel(
    kernel: Any, shape: tuple[int, int], name: str = "kernel", *, symmetric: bool = True
) -> np.ndarray:
    """Return a finite kernel of `shape`; a train-train kernel must also be symmetric.

    A test-train kernel K(X*, X) is square when n_test == n but not symmetric: callers pass
    `symmetric=False` for it.
    """
    hint = "pass the full-output NTK in sample-major order (row i*C + c)"
    array = check_matrix(kernel, shape, name, hint)
    if symmetric:
        gap = np.abs(array - array.T)
        scale = max(1.0, float(np.abs(array).max()))
        if gap.max() > SYMMETRY_TOL * scale:
            i, j = np.unravel_index(gap.argmax(), gap.shape)
            raise ValueError(
                f"{name} is not symmetric: |K[{i}, {j}] - K[{j}, {i}]| = {gap[i, j]:.3g} "
                f"(tolerance {SYMMETRY_TOL:g} x max|K|); pass the train-train NTK J J^T"
            )
        _check_semidefinite(array, name)
    return array


def _check_semidefinite(kernel: np.ndarray, name: str) -> None:
    """A Cholesky factorization of ``K + PSD_TOL * bound * I``, with ``bound`` >= the
    largest eigenvalue, exists exactly when no eigenvalue of K is below ``-PSD_TOL * bound``
    (to rounding); the eigenvalues are computed only to word the refusal."""
    bound = float(np.abs(kernel).sum(axis=1).max())
    if bound == 0:
        return
    try:
        np.linalg.cholesky(kernel + PSD_TOL * bound * np.eye(len(kernel)))
    except np.linalg.LinAlgError:
        eigenvalues = np.linalg.eigvalsh(kernel)
        raise ValueError(
            f"{name} is not positive semi-definite: its smallest eigenvalue is "
            f"{eigenvalues[0]:.3g}, {abs(eigenvalues[0]) / eigenvalues[-1]:.2g} times its "
            f"largest (tolerance {PSD_TOL:g}); a tangent kernel J J^T has none below 0 "
            "(recompute it in float64)"
        ) from None


def check_partition(partition: Any, num_samples: int) -> list[np.ndarray]:
    """Return the partition as a list of int arrays: non-empty, in range, disjoint."""
    if isinstance(partition, np.ndarray) or not isinstance(partition, Sequence):
        raise ValueError(
            "partition must be a list of integer index arrays, one per agent, "
            f"got {type(partition).__name__}"
        )
    if len(partition) == 0:
        raise ValueError("partition is empty: give at least one agent a list of rows")
    owner = np.full(num_samples, -1)
    checked = []
    for q, rows in enumerate(partition):
        rows = np.asarray(rows)
        if rows.ndim != 1 or rows.size == 0:
            raise ValueError(
                f"partition[{q}] has shape {rows.shape}: every agent needs a non-empty "
                "1-D array of row indices"
            )
        if not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(
                f"partition[{q}] has dtype {rows.dtype}: pass integer row indices "
                "(e.g. np.flatnonzero(mask) instead of a boolean mask)"
            )
        outside = rows[(rows < 0) | (rows >= num_samples)]
        if outside.size:
            raise ValueError(
                f"partition[{q}] index {outside[0]} is out of range for {num_samples} "
                f"training rows: indices must lie in [0, {num_samples - 1}]"
            )
        values, counts = np.unique(rows, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"partition[{q}] lists row {values[counts > 1][0]} more than once: "
                "remove duplicate indices"
            )
        taken = rows[owner[rows] >= 0]
        if taken.size:
            raise ValueError(
                f"row {taken[0]} is in both partition[{owner[taken[0]]}] and "
                f"partition[{q}]: agents must hold disjoint rows"
            )
        owner[rows] = q
        checked.append(rows.astype(int))
    return checked
