"""One decentralized regression problem, validated once.

A :class:`Problem` holds what every closed form and every training run shares: the
targets split across agents, the kernel (the empirical NTK at ``theta_0``), the initial
predictions ``f_0``, optionally a test side, and, for training, the inputs, the model's
``apply_fn`` and ``theta_0``. Everything per agent (weights, own rows, curvature, losses)
is derived here and nowhere else. The loss scaling is the paper's:
``L_q = 1/(2 n_q) sum_{i in q} ||f(x_i) - y_i||^2`` and ``L = (1/Q) sum_q L_q``.

A kernel, ``f_0`` or a test kernel that is not given is computed from the model on first
use, so a problem can be built cheaply and its NTK timed separately.

The builders of a problem from a data set, :func:`digits` and :func:`from_dataset`, live in
:mod:`companion._problem_builders` and are re-exported here: call them as
``companion.problem.digits`` and ``companion.problem.from_dataset``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from companion import ntk
from companion._checks import check_kernel, check_matrix, check_partition, check_targets
from companion._problem_builders import digits, from_dataset
from companion.models import Model

__all__ = ["Problem", "digits", "from_dataset"]

JACOBIAN_LIMIT = 50_000_000  # m * P entries up to which the Jacobian is formed
#: Eigenvalues of K below this fraction of the largest count as zero: the range of K.
RANGE_RTOL = 1e-10


def _padded(groups: Sequence[np.ndarray], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Index groups padded with index 0 and weight 0 to the longest, as (Q, L) arrays."""
    width = max(len(g) for g in groups)
    index = np.zeros((len(groups), width), dtype=int)
    weight = np.zeros((len(groups), width))
    for q, (group, value) in enumerate(zip(groups, values, strict=True)):
        index[q, : len(group)] = group
        weight[q, : len(group)] = value
    return index, weight


class Problem:
    """Targets split across agents, a kernel and initial predictions; optionally a test
    side and a model to train.

    Args:
        targets: (n, C) training targets.
        partition: Q disjoint, non-empty integer index arrays into the n rows.
        kernel: (n C, n C) full-output NTK, sample-major (row ``i*C + c``); computed from
            the model if omitted.
        f0: (n, C) predictions at ``theta_0``; computed from the model if omitted.
        inputs: (n, d) training inputs (needed for training and to compute the kernel).
        model: a :class:`companion.models.Model` (its ``apply_fn`` is used).
        apply_fn: ``apply_fn(params, x) -> (len(x), C)``, when there is no ``model``.
        params: ``theta_0``, shared by every agent.
        inputs_test, targets_test: the test side, (n_test, d) and (n_test, C).
        kernel_test, f0_test: (n_test C, n C) and (n_test, C); computed if omitted.

    Raises:
        ValueError: naming the inconsistent or malformed argument and the fix.

    Example:
        >>> p = Problem(targets=np.ones((3, 1)), partition=[np.array([0, 1]), np.array([2])],
        ...             kernel=np.eye(3), f0=np.zeros((3, 1)))
        >>> p.num_agents, p.agent_weights.tolist()
        (2, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    """

    def __init__(
        self,
        *,
        targets: Any,
        partition: Sequence[Any],
        kernel: Any = None,
        f0: Any = None,
        inputs: Any = None,
        model: Model | None = None,
        apply_fn: Callable[..., Any] | None = None,
        params: Any = None,
        inputs_test: Any = None,
        targets_test: Any = None,
        kernel_test: Any = None,
        f0_test: Any = None,
    ) -> None:
        self.targets = check_targets(targets)
        n, c = self.targets.shape
        self.partition = tuple(check_partition(partition, n))
        self.model = model
        self.apply_fn = model.apply_fn if model is not None and apply_fn is None else apply_fn
        self.params = params
        self.inputs = None if inputs is None else self._inputs(inputs, n, "inputs")
        computable = self.apply_fn is not None and params is not None and inputs is not None
        if kernel is not None:
            self.__dict__["kernel"] = check_kernel(kernel, (n * c, n * c))
        elif not computable:
            raise ValueError(
                "pass kernel= (the NTK at theta_0), or model= (or apply_fn=), params= and "
                "inputs= to compute it"
            )
        if f0 is not None:
            self.__dict__["f0"] = check_matrix(
                f0, (n, c), "f0", "pass f(X; theta_0) on the training inputs"
            )
        elif not computable:
            raise ValueError("pass f0= (predictions at theta_0), or a model to compute them")
        self._test(inputs_test, targets_test, kernel_test, f0_test, computable)

    def _inputs(self, inputs: Any, rows: int, name: str) -> np.ndarray:
        array = np.asarray(inputs, dtype=float)
        if array.ndim < 2 or array.shape[0] != rows:
            raise ValueError(
                f"{name} has shape {array.shape}, expected ({rows}, ...): one row per target"
            )
        return check_matrix(array, array.shape, name, "")

    def _test(self, inputs_test, targets_test, kernel_test, f0_test, computable) -> None:
        given = kernel_test is not None or f0_test is not None
        if given and (kernel_test is None or f0_test is None) and inputs_test is None:
            raise ValueError("test predictions need both kernel_test and f0_test")
        if targets_test is not None and not given and inputs_test is None:
            raise ValueError("targets_test needs kernel_test and f0_test (or inputs_test)")
        self.has_test = given or inputs_test is not None
        self.inputs_test: np.ndarray | None = None
        self.targets_test: np.ndarray | None = None
        if not self.has_test:
            return
        if (kernel_test is None or f0_test is None) and not computable:
            raise ValueError("inputs_test needs a model, params and inputs to compute f0_test")
        c = self.num_outputs
        if f0_test is not None:
            f0_test = check_targets(f0_test, "f0_test")
            if f0_test.shape[1] != c:
                raise ValueError(f"f0_test has {f0_test.shape[1]} outputs, expected {c}")
            self.__dict__["f0_test"] = f0_test
        rows = len(f0_test) if f0_test is not None else len(np.asarray(inputs_test))
        if inputs_test is not None:
            self.inputs_test = self._inputs(inputs_test, rows, "inputs_test")
        if kernel_test is not None:
            self.__dict__["kernel_test"] = check_kernel(
                kernel_test, (rows * c, self.num_samples * c), "kernel_test", symmetric=False
            )
        if targets_test is not None:
            self.targets_test = check_matrix(targets_test, (rows, c), "targets_test", "")

    # --- sizes -----------------------------------------------------------------------

    @property
    def num_agents(self) -> int:
        """Q."""
        return len(self.partition)

    @property
    def num_samples(self) -> int:
        """n, the number of training rows."""
        return self.targets.shape[0]

    @property
    def num_outputs(self) -> int:
        """C, the outputs per sample."""
        return self.targets.shape[1]

    # --- quantities computed from the model on first use ------------------------------

    @property
    def network(self) -> Model | Callable[..., Any]:
        """The model, or its ``apply_fn`` when there is no model (for the NTK)."""
        return self.model if self.model is not None else self.network_fn

    @property
    def network_fn(self) -> Callable[..., Any]:
        """``apply_fn(params, x)``; raises when the problem has no model."""
        if self.apply_fn is None:
            raise ValueError("this problem has no model: pass model= or apply_fn=")
        return self.apply_fn

    @functools.cached_property
    def kernel(self) -> np.ndarray:
        """The full-output empirical NTK ``J J^T`` at ``theta_0`` on the training inputs."""
        return ntk.empirical_ntk(self.network, self.params, self.inputs)

    @functools.cached_property
    def f0(self) -> np.ndarray:
        """(n, C) predictions at ``theta_0``."""
        return np.asarray(self.network_fn(self.params, self.inputs))

    @functools.cached_property
    def kernel_test(self) -> np.ndarray | None:
        """(n_test C, n C) test-train NTK, or None without a test side."""
        if not self.has_test:
            return None
        return ntk.empirical_ntk(self.network, self.params, self.inputs_test, self.inputs)

    @functools.cached_property
    def f0_test(self) -> np.ndarray | None:
        """(n_test, C) test predictions at ``theta_0``, or None."""
        if not self.has_test:
            return None
        return np.asarray(self.network_fn(self.params, self.inputs_test))

    @functools.cached_property
    def jacobian(self) -> np.ndarray:
        """(n C, P) Jacobian of the flattened training outputs at ``theta_0`` (small
        models: the primal closed form needs it)."""
        return self._jacobian(self.inputs)

    @functools.cached_property
    def jacobian_test(self) -> np.ndarray | None:
        """(n_test C, P) Jacobian on the test inputs, or None."""
        return None if self.inputs_test is None else self._jacobian(self.inputs_test)

    def _jacobian(self, inputs: np.ndarray | None) -> np.ndarray:
        if self.apply_fn is None or self.params is None or inputs is None:
            raise ValueError("the Jacobian needs a model, params and inputs")
        flat, unravel = ravel_pytree(self.params)
        size = np.asarray(self.apply_fn(self.params, inputs[:1])).size * len(inputs) * flat.size
        if size > JACOBIAN_LIMIT:
            raise ValueError(
                f"the Jacobian would have {size:.3g} entries (limit {JACOBIAN_LIMIT:.0e}): use "
                "the dual closed form, whose cost does not depend on the number of parameters"
            )
        apply_fn = self.apply_fn
        return np.asarray(jax.jacrev(lambda p: apply_fn(unravel(p), inputs).ravel())(flat))

    # --- per-agent bookkeeping --------------------------------------------------------

    @functools.cached_property
    def agent_weights(self) -> np.ndarray:
        """(Q, n) weights ``1/n_q`` on agent q's rows and 0 elsewhere: the local loss is a
        weighted sum over all rows, so uneven partitions share one shape."""
        weights = np.zeros((self.num_agents, self.num_samples))
        for q, rows in enumerate(self.partition):
            weights[q, rows] = 1.0 / len(rows)
        return weights

    @functools.cached_property
    def output_weights(self) -> np.ndarray:
        """(Q, m) the agent weights on the m = n C flattened outputs."""
        return np.repeat(self.agent_weights, self.num_outputs, axis=1)

    @functools.cached_property
    def own_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Each agent's rows padded to the largest agent, (Q, L), with weights ``1/n_q``
        on real rows and 0 on pads: the only rows an agent's gradient touches."""
        return _padded(self.partition, [1.0 / len(rows) for rows in self.partition])

    @functools.cached_property
    def own_outputs(self) -> tuple[np.ndarray, np.ndarray]:
        """As :attr:`own_rows`, on the flattened outputs (Q, L C)."""
        c = self.num_outputs
        groups = [(rows[:, None] * c + np.arange(c)).ravel() for rows in self.partition]
        return _padded(groups, [1.0 / len(rows) for rows in self.partition])

    @functools.cached_property
    def kernel_range(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lambda, U)``: the eigenvalues of K above ``RANGE_RTOL`` times the largest, (r,),
        and their orthonormal eigenvectors, (m, r), so ``K = U diag(lambda) U^T`` on its
        range (where the deviations ``F - f_0`` of every algorithm stay)."""
        evals, evecs = np.linalg.eigh(self.kernel)
        keep = evals > RANGE_RTOL * evals.max()
        return evals[keep], evecs[:, keep]

    @functools.cached_property
    def curvature(self) -> float:
        """``L_max = max_q lambda_max(K_qq / n_q)``, the largest local curvature in function
        space; the book quotes step sizes in units of ``1 / L_max``."""
        c = self.num_outputs
        tops = []
        for rows in self.partition:
            index = (rows[:, None] * c + np.arange(c)).ravel()
            tops.append(np.linalg.eigvalsh(self.kernel[np.ix_(index, index)] / len(rows))[-1])
        return float(max(tops))

    def losses(self, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local and global losses of each agent's predictions on all training inputs.

        Args:
            predictions: shape (..., Q, n, C).

        Returns:
            ``(local, global_)``, both (..., Q): ``local[..., q] = L_q(theta_q)`` and
            ``global_[..., q] = L(theta_q) = (1/Q) sum_r L_r(theta_q)``.

        Example:
            >>> p = Problem(targets=np.zeros((2, 1)), partition=[np.array([0]),
            ...             np.array([1])], kernel=np.eye(2), f0=np.zeros((2, 1)))
            >>> local, glob = p.losses(np.array([[[1.0], [0.0]], [[0.0], [0.0]]]))
            >>> local.tolist(), glob.tolist()
            ([0.5, 0.0], [0.25, 0.0])
        """
        predictions = np.asarray(predictions)
        if predictions.ndim < 3 or predictions.shape[-3:] != (self.num_agents, *self.targets.shape):
            raise ValueError(
                f"predictions have shape {predictions.shape}, expected (..., "
                f"{self.num_agents}, {', '.join(map(str, self.targets.shape))}): every agent's "
                "predictions on all training inputs"
            )
        half_sq = 0.5 * np.sum((predictions - self.targets) ** 2, axis=-1)
        local = np.einsum("...qi,qi->...q", half_sq, self.agent_weights)
        return local, self.global_loss(predictions)

    def global_loss(self, predictions: np.ndarray) -> np.ndarray:
        """The paper's global loss ``L = (1/Q) sum_r L_r`` of predictions (..., n, C) on all
        training inputs, shape (...).

        Example:
            >>> p = Problem(targets=np.zeros((2, 1)), partition=[np.array([0]),
            ...             np.array([1])], kernel=np.eye(2), f0=np.zeros((2, 1)))
            >>> float(p.global_loss(np.array([[1.0], [0.0]])))
            0.25
        """
        half_sq = 0.5 * np.sum((np.asarray(predictions) - self.targets) ** 2, axis=-1)
        return np.einsum("...i,i->...", half_sq, self.agent_weights.mean(axis=0))

    def replace(self, **changes: Any) -> Problem:
        """A copy with some arguments changed (e.g. another ``partition``); the kernel and
        the initial predictions are reused, not recomputed."""
        args: dict[str, Any] = dict(
            targets=self.targets,
            partition=self.partition,
            kernel=self.kernel,
            f0=self.f0,
            inputs=self.inputs,
            model=self.model,
            apply_fn=self.apply_fn,
            params=self.params,
            inputs_test=self.inputs_test,
            targets_test=self.targets_test,
            kernel_test=self.kernel_test,
            f0_test=self.f0_test,
        )
        unknown = sorted(set(changes) - set(args))
        if unknown:
            raise ValueError(
                f"Problem has no argument {', '.join(map(repr, unknown))}; replace one of "
                f"{', '.join(args)}"
            )
        return Problem(**(args | changes))
