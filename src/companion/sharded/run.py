"""Training and the closed form with the agents sharded over devices.

Both are the one-device code (:func:`companion.simulate.train`,
:func:`companion.dynamics.closed_form`) run on an :class:`~companion.sharded.mesh.AgentMesh`
layout: the same step function, the same :meth:`companion.algorithms.Algorithm.update`,
the same `Trajectory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from companion import algorithms, dynamics, schedules, simulate
from companion._checks import check_float64
from companion.graphs import validate_mixing
from companion.problem import Problem
from companion.sharded.mesh import agent_mesh
from companion.trajectory import Trajectory

# The mesh exchanges states along one fixed graph's matchings, planned once.
_ONE_DEVICE = (
    "a schedule's graph changes every step, which the mesh does not re-plan; run it on one "
    "device with companion.simulate.train or companion.dynamics.closed_form"
)

__all__ = ["closed_form", "train"]


def train(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    *,
    lr: float,
    steps: int,
    devices: int | Sequence[Any] | None = None,
    exchange: str = "auto",
    linearize: bool = False,
    save_at: simulate.SaveAt | None = None,
    chunk: int = 100,
    progress: bool = True,
    check: bool = True,
    strict: bool = False,
) -> Trajectory:
    """:func:`companion.simulate.train` with the agents sharded over ``devices``.

    Each device holds Q / D agents and computes their gradients; mixing sends rows only
    along the graph's edges (:mod:`companion.sharded.matchings`). The result equals the
    one-device run to rounding.

    Args:
        problem, algorithm, mixing, lr, steps: as :func:`companion.simulate.train`.
        devices: None (all devices), a count (the first k) or a list of devices; their
            number D must divide Q.
        exchange: ``"auto"``, ``"matchings"`` or ``"allgather"``.
        linearize, save_at, chunk, progress, check, strict: as
            :func:`companion.simulate.train`.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.ones((2, 1)), apply_fn=lambda p, x: x @ p["a"],
        ...             params={"a": np.zeros((1, 1))})
        >>> t = train(p, "atc", np.full((2, 2), 0.5), lr=0.5, steps=2, devices=1,
        ...           progress=False)
        >>> t.mean_local_loss.round(4).tolist(), t.method
        ([0.5, 0.125, 0.0312], 'simulation')
    """
    check_float64("sharded training")
    schedules.require_matrix(mixing, where="companion.sharded.train", fix=_ONE_DEVICE)
    mixing = validate_mixing(mixing, num_agents=problem.num_agents, require_connected=False)
    return simulate.train(
        problem,
        algorithm,
        mixing,
        lr=lr,
        steps=steps,
        linearize=linearize,
        save_at=save_at,
        chunk=chunk,
        progress=progress,
        check=check,
        strict=strict,
        layout=agent_mesh(mixing, devices=devices, exchange=exchange),
    )


def closed_form(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    *,
    lr: float,
    devices: int | Sequence[Any] | None = None,
    exchange: str = "auto",
    strict: bool = False,
) -> dynamics.ClosedForm:
    """:func:`companion.dynamics.closed_form` whose recursion (:meth:`ClosedForm.steps`)
    runs sharded: each device holds its agents' rows of K (and of the test kernel) and
    their dual states, and one step exchanges states along the graph's edges.

    The spectral and flow queries (``at``, ``flow``) eigendecompose the Qm x Qm iteration
    matrix on one device, as before.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> closed_form(p, "dgd", np.full((2, 2), 0.5), lr=0.5, devices=1).steps(3).method
        'dual-recursion'
    """
    check_float64("the sharded closed form")
    schedules.require_matrix(mixing, where="companion.sharded.closed_form", fix=_ONE_DEVICE)
    mixing = validate_mixing(mixing, num_agents=problem.num_agents, require_connected=False)
    layout = agent_mesh(mixing, devices=devices, exchange=exchange)
    return dynamics.closed_form(problem, algorithm, mixing, lr=lr, strict=strict, layout=layout)
