"""The record of one decentralized training run, shared by closed forms and simulation.

`companion.dynamics` (closed forms) and `companion.simulate` (real training) both return a
`Trajectory`; the loss formulas live only here (`agent_weights`, `losses`), so a predicted
and an observed run are scored by the same code. Loss scaling is MATH.md "Setting":
`L_q = 1 / (2 n_q) sum_{i in q} ||f(x_i) - y_i||^2` and `L = (1/Q) sum_q L_q`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["Trajectory", "agent_weights", "losses", "relative_error"]


def agent_weights(partition: Sequence[np.ndarray], num_samples: int) -> np.ndarray:
    """Per-agent sample weights `w_q[i] = 1/n_q` on agent q's rows and 0 elsewhere.

    With these weights every agent's local loss (MATH.md "Setting") is a weighted sum over
    all `n` samples, so agents with uneven data sizes share one array shape.

    Args:
        partition: Q integer index arrays into the training rows.
        num_samples: number of training rows `n`.

    Returns:
        Array of shape (Q, n).

    Example:
        >>> agent_weights([np.array([0, 1]), np.array([2])], 3)
        array([[0.5, 0.5, 0. ],
               [0. , 0. , 1. ]])
    """
    weights = np.zeros((len(partition), num_samples))
    for q, rows in enumerate(partition):
        weights[q, np.asarray(rows)] = 1.0 / len(rows)
    return weights


def losses(
    predictions: np.ndarray, targets: np.ndarray, partition: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Local and global losses of each agent's predictions (MATH.md "Setting").

    Args:
        predictions: shape (..., Q, n, C), agent q's predictions on all n training inputs.
        targets: shape (n, C).
        partition: Q integer index arrays into the training rows.

    Returns:
        `(local, global_)`, both of shape (..., Q): `local[..., q] = L_q(theta_q)` and
        `global_[..., q] = (1/Q) sum_r L_r(theta_q)`.

    Example:
        >>> preds = np.array([[[1.0], [0.0]], [[0.0], [0.0]]])  # (Q=2, n=2, C=1)
        >>> local, glob = losses(preds, np.zeros((2, 1)), [np.array([0]), np.array([1])])
        >>> local.tolist(), glob.tolist()
        ([0.5, 0.0], [0.25, 0.0])
    """
    weights = agent_weights(partition, targets.shape[0])
    half_sq = 0.5 * np.sum((np.asarray(predictions) - targets) ** 2, axis=-1)
    local = np.einsum("...qi,qi->...q", half_sq, weights)
    global_ = np.einsum("...qi,i->...q", half_sq, weights.mean(axis=0))
    return local, global_


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Relative L2 error `||estimate - reference|| / ||reference||` over whole arrays.

    This is the book's measure of agreement between a closed form and a training run.

    Example:
        >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
        0.0
    """
    reference = np.asarray(reference)
    return float(np.linalg.norm(np.asarray(estimate) - reference) / np.linalg.norm(reference))


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Losses, distances and predictions of Q agents along a run.

    Row `k` of every per-step array is the state after `steps[k]` updates; row 0 of a
    full run is the common initialization `theta_0`.

    Attributes:
        algorithm: "dgd", "atc" or "cta".
        lr: step size eta.
        steps: step indices, shape (K,). For the gradient flow, `t / lr` (not integers).
        local_loss: (K, Q) `L_q(theta_q)`.
        global_loss: (K, Q) `L(theta_q) = (1/Q) sum_r L_r(theta_q)`.
        consensus_distance: (K,) `sqrt((1/Q) sum_q ||theta_q - mean_r theta_r||^2)`.
        param_distance: (K, Q) `||theta_q - theta_0||`.
        predictions: (K, Q, n, C) each agent's predictions on all training inputs.
        method: which path computed it ("dual-recursion", "dual-spectral", "dual-powers", "primal",
            "flow-spectral", "flow-expm", "simulation", "linearized-simulation").
        test_predictions: (K, Q, n_test, C) or None.
        test_loss: (K, Q) `1/(2 n_test) sum ||f - y||^2` or None.
        test_accuracy: (K, Q) argmax accuracy, or None (no test targets, or C = 1).
    """

    algorithm: str
    lr: float
    steps: np.ndarray
    local_loss: np.ndarray
    global_loss: np.ndarray
    consensus_distance: np.ndarray
    param_distance: np.ndarray
    predictions: np.ndarray
    method: str
    test_predictions: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None

    @classmethod
    def from_predictions(
        cls,
        *,
        algorithm: str,
        lr: float,
        steps: np.ndarray,
        predictions: np.ndarray,
        targets: np.ndarray,
        partition: Sequence[np.ndarray],
        consensus_distance: np.ndarray,
        param_distance: np.ndarray,
        method: str,
        test_predictions: np.ndarray | None = None,
        targets_test: np.ndarray | None = None,
    ) -> Trajectory:
        """Score predictions with `losses` and pack everything into a `Trajectory`.

        Example:
            >>> t = Trajectory.from_predictions(algorithm="dgd", lr=0.1, steps=np.arange(1),
            ...     predictions=np.ones((1, 1, 2, 1)), targets=np.zeros((2, 1)),
            ...     partition=[np.arange(2)], consensus_distance=np.zeros(1),
            ...     param_distance=np.zeros((1, 1)), method="primal")
            >>> t.mean_loss.tolist()
            [0.5]
        """
        predictions = np.asarray(predictions)
        local, global_ = losses(predictions, targets, partition)
        test_loss = test_accuracy = None
        if test_predictions is not None:
            test_predictions = np.asarray(test_predictions)
        if test_predictions is not None and targets_test is not None:
            diff = test_predictions - targets_test
            test_loss = 0.5 * np.sum(diff**2, axis=(-2, -1)) / targets_test.shape[0]
            if targets_test.shape[1] > 1:
                hits = test_predictions.argmax(-1) == targets_test.argmax(-1)
                test_accuracy = hits.mean(axis=-1)
        return cls(
            algorithm=algorithm,
            lr=float(lr),
            steps=np.asarray(steps),
            local_loss=local,
            global_loss=global_,
            consensus_distance=np.asarray(consensus_distance),
            param_distance=np.asarray(param_distance),
            predictions=predictions,
            method=method,
            test_predictions=test_predictions,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
        )

    @property
    def mean_loss(self) -> np.ndarray:
        """Mean over agents of the local loss, shape (K,): the global loss of the network."""
        return self.local_loss.mean(axis=1)

    @property
    def time(self) -> np.ndarray:
        """Gradient-flow time `t = k * lr` of each row (MATH.md "Algorithms")."""
        return self.steps * self.lr
