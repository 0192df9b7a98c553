"""The closed form's recursion, compiled once per layout, algorithm and form, that keeps
only the steps it is asked for.

:meth:`companion.dynamics.ClosedForm.steps` runs the linearized algorithm on the dual
coefficients ``alpha`` (or on ``theta - theta_0``, the primal form) from a common start.
:func:`run` takes the sorted steps to keep and runs an outer scan over them whose body
advances the state to the next kept step by a loop that records nothing, then observes it:
asking for 10 steps of a run of 1600 stores 10 states, not 1600. Since the kept steps are
an argument, not part of the compiled program, runs of any length that keep the same
number of steps share one compilation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from companion import algorithms
from companion.agents import STACKED, Stacked, schedule_tables
from companion.problem import Problem
from companion.schedules import Schedule

__all__ = ["run", "summaries"]


def summaries(x, u, test_readout, dual: bool, layout: Stacked = STACKED):
    """Parameter distances, consensus distance and test outputs of state x with training
    output change u = x B; agents along axis -2."""
    sq = (lambda a, b: jnp.sum(a * b, -1)) if dual else (lambda a, b: jnp.sum(a * a, -1))
    distance = jnp.sqrt(jnp.clip(sq(x, u), 0))
    # relative to agent 0 first, so identical agents give exactly zero spread
    dx, du = x - layout.first(x, -2), u - layout.first(u, -2)
    centred = [d - layout.mean(d, -2, keepdims=True) for d in (dx, du)]
    consensus = jnp.sqrt(jnp.clip(layout.mean(sq(*centred), -1), 0))
    test = None if test_readout is None else x @ test_readout
    return distance, consensus, test


def _steps(
    layout,
    tables,
    readout,
    readout_own,
    test_readout,
    test_own,
    own,
    own_weights,
    lr,
    offset,
    step_weights,
    kept,
    *,
    algorithm,
    dual,
):
    """The recursion for the agents ``layout`` holds; the state x is alpha (dual) or
    theta - theta_0 (primal), observed after ``kept[i]`` updates for each i.

    `readout` maps the state to the change of the training outputs (J^T for the primal
    form); the dual form reads only each agent's own rows of K, `readout_own` (and of the
    test kernel, `test_own`). `offset = f_0 - y`, flattened. The output changes u = x K
    (and the test outputs t) are carried along by the same linear updates rather than
    recomputed: agent q's gradient touches only its own n_q C outputs, so one dual step
    costs O(m^2 + Q^2 m) instead of O(Q m^2).

    `step_weights` is None (the tables' weights at every step) or (steps, Q, D): the
    weights of W(k) at step k, in the tables' neighbour slots (a schedule).
    """
    agents = jnp.arange(own.shape[0])[:, None]

    def gradient(state):
        x, u, t = state
        residual = own_weights * (jnp.take_along_axis(u, own, 1) + offset[own])
        if dual:
            dx = jnp.zeros_like(x).at[agents, own].add(residual)
            du = jnp.einsum("ql,qlm->qm", residual, readout_own)
            dt = None if t is None else jnp.einsum("ql,qlm->qm", residual, test_own)
        else:
            dx = jnp.zeros_like(u).at[agents, own].add(residual) @ readout.T
            du = dx @ readout
            dt = None if t is None else dx @ test_readout
        return dx, du, dt

    def step(state, grad):
        return tuple(None if a is None else a - lr * g for a, g in zip(state, grad, strict=True))

    def mixer(weight):
        return lambda state: layout.mix(state, tables, weight)

    def update(k, state):
        weight = tables[1] if step_weights is None else step_weights[k]
        return algorithm.update(state, mix=mixer(weight), gradient=gradient, step=step)

    def body(carry, target):
        done, state = carry
        state = jax.lax.fori_loop(done, target, update, state)
        x, u, t = state
        return (target, state), (u, *summaries(x, u, None, dual, layout)[:2], t)

    q, m = own.shape[0], offset.shape[0]
    tests = test_own if dual else test_readout
    start = (
        jnp.zeros((q, m if dual else readout.shape[0])),
        jnp.zeros((q, m)),
        None if tests is None else jnp.zeros((q, tests.shape[-1])),
    )
    return jax.lax.scan(body, (jnp.zeros_like(kept[0]), start), kept)[1]


@functools.lru_cache(maxsize=32)
def _runner(layout: Stacked, algorithm: algorithms.Algorithm, dual: bool):
    """The compiled recursion, once per layout, algorithm and form (and, inside jit, once
    per number of kept steps and problem shape)."""

    def run_(*args):
        return _steps(layout, *args, algorithm=algorithm, dual=dual)

    # agent axis of each argument (None: shared by all agents) and of each output
    in_axes = (0, None, 0, None, 0, 0, 0, None, None, None, None)
    return layout.compile(run_, in_axes, (1, 1, None, 1))


def run(
    problem: Problem,
    algorithm: algorithms.Algorithm,
    mixing: np.ndarray | Schedule,
    lr: float,
    kept: np.ndarray,
    *,
    dual: bool = True,
    layout: Stacked = STACKED,
) -> tuple:
    """(u, distance, consensus, test) after each of the ``kept`` numbers of updates (sorted,
    distinct, >= 0), as NumPy arrays with the kept steps along axis 0.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> u = run(p, algorithms.DGD, np.full((2, 2), 0.5), 0.5, np.array([0, 1, 40]))[0]
        >>> u.shape, u[-1].round(3).tolist()
        ((3, 2, 2), [[1.0, 1.0], [1.0, 1.0]])
    """
    put = layout.put
    own, own_weights = problem.own_outputs
    if dual:  # each agent's own rows of K (and of the test kernel), never all of K
        test_own = None if problem.kernel_test is None else problem.kernel_test.T[own]
        readouts = (None, put(problem.kernel[own], 0), None, put(test_own, 0))
    else:
        test = None if problem.jacobian_test is None else problem.jacobian_test.T
        readouts = (put(problem.jacobian.T), None, put(test), None)
    offset = (problem.f0 - problem.targets).ravel()
    if isinstance(mixing, Schedule):  # W(k) for k < the last kept step (and one more)
        index, step_weights = schedule_tables(layout, mixing.matrices(int(kept[-1]) + 1))
        tables, step_weights = put((index, step_weights[0]), 0), put(step_weights)
    else:
        tables, step_weights = put(layout.tables(mixing), 0), None
    args = (*put((own, own_weights), 0), *put((lr, offset)), step_weights, put(kept))
    return layout.fetch(_runner(layout, algorithm, dual)(tables, *readouts, *args))
