"""How far the discrete recursion is from its gradient flow.

With step size ``eta`` the closed form's recursion ``F_{k+1} = M(eta) F_k + c(eta)`` is a
first-order discretization of a linear flow in time ``t = k eta``. :func:`flow_gaps`
compares the recursion with the flow of its own step size at the same times, for ``eta``,
``eta/2``, ...; :attr:`FlowGaps.largest_flow` pairs every recursion with the largest step
size's flow instead, the control that assumes the flow does not depend on ``eta``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from companion import dynamics
from companion.problem import Problem
from companion.trajectory import SaveAt

__all__ = ["FlowGaps", "flow_gaps"]


@dataclasses.dataclass(frozen=True)
class FlowGaps:
    """Discrete recursions and their gradient flows at step sizes ``lr``, ``lr/2``, ...,
    compared at the same times (:func:`flow_gaps`).

    Attributes:
        lrs: the step sizes, largest first.
        discrete: per step size, (points, Q, n, C) the recursion's predictions at the times.
        flows: per step size, (points + 1, Q, n, C) its own flow at time 0 and at the times.
    """

    lrs: tuple[float, ...]
    discrete: tuple[np.ndarray, ...]
    flows: tuple[np.ndarray, ...]

    def _gaps(self, flows: Sequence[np.ndarray]) -> dict[float, float]:
        return {
            eta: float(np.linalg.norm(steps - flow[1:]) / np.linalg.norm(flow[1:] - flow[:1]))
            for eta, steps, flow in zip(self.lrs, self.discrete, flows, strict=True)
        }

    @property
    def own(self) -> dict[float, float]:
        """Step size -> ``||F_k - F(k eta)|| / ||F(k eta) - F(0)||`` over the times, every
        agent included, each recursion against the flow of its own step size."""
        return self._gaps(self.flows)

    @property
    def largest_flow(self) -> dict[float, float]:
        """The same gap with every recursion against the flow of the largest step size, as
        if the flow did not depend on eta: a deliberately wrong pairing, computed from the
        same recursions and flows."""
        return self._gaps([self.flows[0]] * len(self.lrs))


def flow_gaps(
    problem: Problem,
    algorithm: str,
    mixing: np.ndarray,
    *,
    lr: float,
    steps: int,
    halvings: int = 3,
    points: int = 10,
) -> FlowGaps:
    """How far the discrete recursion is from its gradient flow, at step sizes ``lr``,
    ``lr/2``, ... (``halvings`` times), over the same horizon ``steps * lr``, at ``points``
    evenly spaced times.

    Each step size builds one closed form, whose recursion records only those times and
    whose flow comes from its one eigendecomposition.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> gaps = flow_gaps(p, "dgd", np.full((2, 2), 0.5), lr=0.2, steps=20, halvings=1)
        >>> [round(g, 4) for g in gaps.own.values()], gaps.lrs  # first order: halves with eta
        ([0.0244, 0.0121], (0.2, 0.1))
    """
    if steps % points:
        raise ValueError(f"steps={steps} must be a multiple of points={points}")
    times = np.arange(1, points + 1) * (steps // points) * lr
    lrs, discrete, flows = [], [], []
    for halving in range(halvings + 1):
        eta = lr / 2**halving
        form = dynamics.closed_form(problem, algorithm, mixing, lr=eta)
        kept = SaveAt(steps=tuple(np.rint(times / eta).astype(int).tolist()))
        lrs.append(eta)
        discrete.append(form.steps(steps * 2**halving, save_at=kept).predictions)
        flows.append(form.flow([0.0, *times.tolist()]).predictions)
    return FlowGaps(tuple(lrs), tuple(discrete), tuple(flows))
