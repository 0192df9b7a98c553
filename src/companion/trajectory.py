"""The record of one decentralized run, shared by closed forms and training.

`companion.dynamics` (closed forms) and `companion.simulate` (training) both return a
`Trajectory`, scored by the same code (`companion.problem.Problem.losses`), so a predicted
and an observed run are always compared like with like. Three losses are kept apart:

- the local loss `L_q(theta_q)`, each agent on its own data;
- the paper's global loss `L(theta_q) = (1/Q) sum_r L_r(theta_q)`, a function of one
  parameter vector, for each agent, and `L(theta_bar)` at the network average;
- the mean local loss `(1/Q) sum_q L_q(theta_q)`, which is neither: without
  communication it falls to zero while `L(theta_q)` does not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from companion.problem import Problem

__all__ = ["SaveAt", "Trajectory", "relative_error"]


@dataclasses.dataclass(frozen=True)
class SaveAt:
    """Which steps record every agent's predictions on all inputs (and the global and test
    losses computed from them) and the parameter distances, as diffrax's ``SaveAt``.
    Training (:func:`companion.simulate.train`) records local losses at every step
    regardless; the closed form's recursion (:meth:`companion.dynamics.ClosedForm.steps`)
    returns only the saved steps.

    Attributes:
        steps: explicit step indices, or None.
        every: with ``steps=None``, record steps 0, every, 2 every, ... and the last.

    Example:
        >>> SaveAt(every=4).resolve(10).tolist(), SaveAt(steps=(10, 0)).resolve(10).tolist()
        ([0, 4, 8, 10], [0, 10])
    """

    steps: tuple[int, ...] | None = None
    every: int = 1

    def resolve(self, total: int) -> np.ndarray:
        """The sorted step indices in 0..total to record."""
        if self.steps is not None:
            at = np.unique(np.asarray(self.steps, dtype=int))
            if at.size == 0 or at.min() < 0 or at.max() > total:
                raise ValueError(
                    f"SaveAt steps must lie in [0, {total}] (the run has {total} steps), "
                    f"got {list(self.steps)}"
                )
            return at
        if not (isinstance(self.every, int) and self.every >= 1):
            raise ValueError(f"SaveAt every must be a positive integer, got {self.every!r}")
        return np.unique(np.append(np.arange(0, total + 1, self.every), total))


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Relative L2 error `||estimate - reference|| / ||reference||` over whole arrays.

    Example:
        >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
        0.0
    """
    reference = np.asarray(reference)
    return float(np.linalg.norm(np.asarray(estimate) - reference) / np.linalg.norm(reference))


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Losses, distances and predictions of Q agents along a run.

    Row `k` of `local_loss` is the state after `steps[k]` updates (row 0 of a full run is
    the common initialization `theta_0`). Predictions, what is computed from them, and the
    parameter distances are kept at `saved_steps`, a subset of `steps` (all of them unless
    training was asked to save fewer, `companion.simulate.SaveAt`).

    Attributes:
        algorithm: "dgd", "atc" or "cta".
        lr: step size eta.
        method: which path computed it ("dual-recursion", "dual-spectral", "dual-powers",
            "primal", "flow-spectral", "flow-expm", "simulation", "linearized-simulation").
        steps: (K,) step indices. For the gradient flow, `t / lr` (not integers).
        local_loss: (K, Q) `L_q(theta_q)`.
        saved_steps: (S,) the steps of the rows of the fields below.
        consensus_distance: (S,) `sqrt((1/Q) sum_q ||theta_q - mean_r theta_r||^2)`.
        param_distance: (S, Q) `||theta_q - theta_0||`.
        predictions: (S, Q, n, C) each agent's predictions on all training inputs.
        global_loss: (S, Q) `L(theta_q) = (1/Q) sum_r L_r(theta_q)`, the paper's global
            loss at each agent's parameters.
        average_loss: (S,) `L(theta_bar)`, the global loss at the network average.
        test_predictions: (S, Q, n_test, C) or None.
        test_loss: (S, Q) `1/(2 n_test) sum ||f - y||^2` or None.
        test_accuracy: (S, Q) argmax accuracy, or None (no test targets, or C = 1).
        final_params: every agent's parameters after the last step (a pytree stacked over
            agents), for training runs; None for closed forms.
    """

    algorithm: str
    lr: float
    method: str
    steps: np.ndarray
    local_loss: np.ndarray
    consensus_distance: np.ndarray
    param_distance: np.ndarray
    saved_steps: np.ndarray
    predictions: np.ndarray
    global_loss: np.ndarray
    average_loss: np.ndarray
    test_predictions: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None
    final_params: Any = None

    @classmethod
    def build(
        cls,
        problem: Problem,
        *,
        algorithm: str,
        lr: float,
        method: str,
        steps: np.ndarray,
        consensus_distance: np.ndarray,
        param_distance: np.ndarray,
        predictions: np.ndarray,
        test_predictions: np.ndarray | None = None,
        saved_steps: np.ndarray | None = None,
        local_loss: np.ndarray | None = None,
        average_predictions: np.ndarray | None = None,
        final_params: Any = None,
    ) -> Trajectory:
        """Score predictions with `problem.losses` and pack everything.

        `local_loss` is computed from the predictions unless given (training that saves
        predictions at fewer steps passes the per-step losses it already has).
        `average_predictions`, the predictions at `theta_bar`, default to the mean of the
        agents' predictions, which they are exactly for the linearized model.

        Example:
            >>> p = Problem(targets=np.zeros((2, 1)), partition=[np.arange(2)],
            ...             kernel=np.eye(2), f0=np.ones((2, 1)))
            >>> t = Trajectory.build(p, algorithm="dgd", lr=0.1, method="primal",
            ...     steps=np.arange(1), predictions=np.ones((1, 1, 2, 1)),
            ...     consensus_distance=np.zeros(1), param_distance=np.zeros((1, 1)))
            >>> t.mean_local_loss.tolist(), t.average_loss.tolist()
            ([0.5], [0.5])
        """
        predictions = np.asarray(predictions)
        local, global_ = problem.losses(predictions)
        average = problem.global_loss(
            predictions.mean(axis=-3)
            if average_predictions is None
            else np.asarray(average_predictions)
        )
        test_loss = test_accuracy = None
        if test_predictions is not None:
            test_predictions = np.asarray(test_predictions)
            targets_test = problem.targets_test
            if targets_test is not None:
                diff = test_predictions - targets_test
                test_loss = 0.5 * np.sum(diff**2, axis=(-2, -1)) / targets_test.shape[0]
                if targets_test.shape[1] > 1:
                    hits = test_predictions.argmax(-1) == targets_test.argmax(-1)
                    test_accuracy = hits.mean(axis=-1)
        steps = np.asarray(steps)
        return cls(
            algorithm=algorithm,
            lr=float(lr),
            method=method,
            steps=steps,
            local_loss=local if local_loss is None else np.asarray(local_loss),
            consensus_distance=np.asarray(consensus_distance),
            param_distance=np.asarray(param_distance),
            saved_steps=steps if saved_steps is None else np.asarray(saved_steps),
            predictions=predictions,
            global_loss=global_,
            average_loss=average,
            test_predictions=test_predictions,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
            final_params=final_params,
        )

    @property
    def mean_local_loss(self) -> np.ndarray:
        """(K,) mean over agents of the local loss, `(1/Q) sum_q L_q(theta_q)`: not the
        paper's global loss (module docstring)."""
        return self.local_loss.mean(axis=1)

    @property
    def mean_global_loss(self) -> np.ndarray:
        """(S,) mean over agents of the paper's global loss, `(1/Q) sum_q L(theta_q)`."""
        return self.global_loss.mean(axis=1)

    @property
    def time(self) -> np.ndarray:
        """Gradient-flow time `t = k * lr` of each saved row."""
        return self.saved_steps * self.lr
