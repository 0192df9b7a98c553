"""The linearized algorithms as affine maps, and the one routine that raises them to powers.

For the linearized model every algorithm of :mod:`companion.algorithms` is an affine map
of the stacked dual coefficients (``theta_q - theta_0 = J^T alpha_q``, agent-major
``alpha[q*m + j]``) and, equivalently, of the stacked predictions ``F_q = f_0 + K alpha_q``:

- coefficients: ``alpha <- M alpha + c``, the gradient being
  ``r_q = D_q K alpha_q + D_q (f_0 - y)``;
- predictions: ``F <- M_F F + c_F``, the gradient being ``g_q = K D_q F_q - K D_q y``;

with ``D_q = diag(1/n_q on agent q's outputs)``. :func:`iteration_map` builds ``(M, c)``
by running the algorithm's own update on an augmented identity, and :func:`powers`
evaluates ``x_k`` at any steps from the binary powers of ``[[M, c], [0, 1]]``.
:func:`primal_dual_gap` checks the same map run on the parameters ``theta_q - theta_0``
(the primal form) against its run on the coefficients (the dual form).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from companion import algorithms
from companion.problem import Problem
from companion.trajectory import Trajectory, relative_error

if TYPE_CHECKING:  # dynamics builds on this module
    from companion.dynamics import ClosedForm

__all__ = ["FORM_FIELDS", "SPACES", "iteration_map", "mixer", "powers", "primal_dual_gap"]

SPACES = ("coefficients", "predictions")
#: What the primal and the dual forms both compute, compared by :func:`primal_dual_gap`.
FORM_FIELDS = ("local_loss", "predictions", "test_predictions", "param_distance")


def mixer(mixing: np.ndarray, size: int) -> Callable[[np.ndarray], np.ndarray]:
    """``S -> (W (x) I_size) S`` on the columns of an agent-major (Q size, k) array."""
    q = len(mixing)

    def mix(state: np.ndarray) -> np.ndarray:
        blocks = state.reshape(q, size, -1)
        return np.einsum("qr,rjk->qjk", mixing, blocks).reshape(state.shape)

    return mix


def iteration_map(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    lr: float,
    *,
    space: str = "coefficients",
) -> tuple[np.ndarray, np.ndarray]:
    """``(M, c)`` of one step, ``x <- M x + c``, for the dual coefficients or predictions.

    ``M`` is (Qm, Qm): DGD ``W(x)I - eta G``, ATC ``(W(x)I)(I - eta G)``, CTA
    ``(I - eta G)(W(x)I)``, with ``G = blockdiag_q(D_q K)`` for coefficients and
    ``blockdiag_q(K D_q)`` for predictions (the two are similar when K is invertible).

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> m, c = iteration_map(p, "atc", np.full((2, 2), 0.5), 0.5)
        >>> m[:2].tolist()
        [[0.25, 0.0, 0.5, 0.0], [0.0, 0.5, 0.0, 0.25]]
    """
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}: use 'coefficients' or 'predictions'")
    kernel, targets, f0 = problem.kernel, problem.targets.ravel(), problem.f0.ravel()
    q, m = problem.num_agents, kernel.shape[0]
    index, weight = problem.own_outputs

    def linear(state: np.ndarray) -> np.ndarray:
        out = np.zeros_like(state)
        blocks, grads = state.reshape(q, m, -1), out.reshape(q, m, -1)
        for agent, (own, w) in enumerate(zip(index, weight, strict=True)):
            own, w = own[w > 0], w[w > 0, None]
            if space == "coefficients":
                grads[agent, own] = w * (kernel[own] @ blocks[agent])
            else:
                grads[agent] = kernel[:, own] @ (w * blocks[agent, own])
        return out

    offset = np.zeros((q, m))
    for agent, (own, w) in enumerate(zip(index, weight, strict=True)):
        own, w = own[w > 0], w[w > 0]
        if space == "coefficients":
            offset[agent, own] = w * (f0 - targets)[own]
        else:
            offset[agent] = -kernel[:, own] @ (w * targets[own])
    return algorithms.get(algorithm).affine_map(
        mix=mixer(mixing, m), linear=linear, offset=offset.ravel(), lr=lr
    )


def powers(matrix: np.ndarray, offset: np.ndarray, steps: Sequence[int] | np.ndarray) -> np.ndarray:
    """States of ``x <- M x + c`` from ``x_0 = 0`` at ``steps``, shape (len(steps), size).

    The augmented matrix ``A = [[M, c], [0, 1]]`` is squared ``log2(max(at))`` times, and
    each state ``x_k = (A^k e)[:size]`` collects the squares of the set bits of ``k``, one
    matrix-vector product each: no loop over steps, constant memory in the number of
    steps, and no eigendecomposition (whose eigenvectors can be ill-conditioned).

    Example:
        >>> powers(np.array([[0.5]]), np.array([1.0]), [0, 1, 2, 40]).round(6).tolist()
        [[0.0], [1.0], [1.5], [2.0]]
    """
    at = np.asarray(steps, dtype=int)
    if at.ndim != 1 or at.size == 0 or at.min() < 0:
        raise ValueError(f"steps must be a 1-D array of step indices >= 0, got {at!r}")
    size = matrix.shape[0]
    square = np.zeros((size + 1, size + 1))
    square[:size, :size], square[:size, size], square[size, size] = matrix, offset, 1.0
    states = np.zeros((size + 1, at.size))
    states[size] = 1.0
    top = int(at.max()).bit_length()
    for bit in range(top):
        chosen = (at >> bit) & 1 == 1
        if chosen.any():
            states[:, chosen] = square @ states[:, chosen]
        if bit + 1 < top:
            square = square @ square
    return states[:size].T


def primal_dual_gap(form: ClosedForm, dual: Trajectory) -> float:
    """The worst relative error between ``form``'s primal recursion (on ``theta - theta_0``,
    with the model's Jacobian) and ``dual``, its dual trajectory for the same steps, over
    :data:`FORM_FIELDS` (the test predictions where the problem has a test side): one
    affine map in two coordinates, so the gap is rounding.

    Example:
        >>> from companion import dynamics, models, problem
        >>> p = problem.digits(models.affine(10), num_agents=2, samples_per_agent=1)
        >>> form = dynamics.closed_form(p, "atc", np.full((2, 2), 0.5), lr=0.5 / p.curvature)
        >>> primal_dual_gap(form, form.steps(5)) < 1e-12
        True
    """
    steps = np.asarray(dual.steps)
    every = np.arange(steps.size)
    if not (np.array_equal(steps, every) and np.array_equal(dual.saved_steps, every)):
        raise ValueError(
            f"dual must hold every step 0..k (ClosedForm.steps(k), no save_at), got saved steps "
            f"{np.asarray(dual.saved_steps)[:5]}...: run the dual form again without save_at"
        )
    primal = form.steps(steps.size - 1, form="primal")
    gaps = [
        relative_error(getattr(primal, f), getattr(dual, f))
        for f in FORM_FIELDS
        if getattr(dual, f) is not None
    ]
    return max(gaps)
