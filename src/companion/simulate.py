"""Real decentralized training of Q copies of a model.

Every agent starts from the same ``theta_0``. The Q parameter copies are stacked along a
leading axis; ``jax.vmap`` runs the agents and ``jax.lax.scan`` the steps, in chunks of one
compiled length, and the step itself is :meth:`companion.algorithms.Algorithm.update`.
Agent q's gradient of ``L_q = 1/(2 n_q) sum_{i in q} ||f(x_i) - y_i||^2`` runs over its own
rows only, padded to the largest agent with weight 0 so uneven partitions share one shape.
The per-step local losses come from the outputs that gradient already computed; the
predictions on all inputs (a forward pass over Q n samples) and the parameter distances
only at the steps :class:`SaveAt` asks for. The result is the same `Trajectory` the closed
forms return. The step touches other agents only through a layout (:mod:`companion.agents`):
mixing along edges and the reductions for the network average and the consensus distance,
so the same scan runs with the agents sharded over devices (:mod:`companion.sharded`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from companion import algorithms, stability
from companion._checks import check_float64, check_lr_value, check_steps
from companion.agents import STACKED, Stacked, keep_in_place, schedule_tables
from companion.graphs import validate_mixing
from companion.problem import Problem
from companion.schedules import Schedule
from companion.trajectory import SaveAt, Trajectory

__all__ = ["DivergenceError", "SaveAt", "train", "train_ensemble"]


class DivergenceError(ValueError):
    """Training produced a non-finite value; the message names step, lr and the bound."""


def _linearized(apply_fn: Callable, theta0: Any) -> Callable:
    """``f_lin(x; theta) = f(x; theta_0) + J (theta - theta_0)`` by one jvp, as in
    ``neural_tangents.linearize``."""

    def model(params, x):
        delta = jax.tree_util.tree_map(jnp.subtract, params, theta0)
        out, tangent = jax.jvp(lambda p: apply_fn(p, x), (theta0,), (delta,))
        return out + tangent

    return model


def _distances(theta: Any, theta0: Any, layout: Stacked) -> tuple[jax.Array, jax.Array]:
    """``||theta_q - theta_0||`` per agent and the consensus distance of stacked params."""
    leaves, origin = jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(theta0)
    pairs = zip(leaves, origin, strict=True)
    drift = sum(jnp.sum((a - b[None]).reshape(len(a), -1) ** 2, 1) for a, b in pairs)
    # relative to agent 0 first, so identical agents give exactly zero spread
    moved = [a - layout.first(a) for a in leaves]
    spread = sum(layout.sum((d - layout.mean(d, keepdims=True)) ** 2) for d in moved)
    return jnp.sqrt(drift), jnp.sqrt(spread / layout.count(leaves[0]))


def _steps(model, algorithm, layout, tables, theta, theta0, lr, rows, weights, x, y, x_test, flags):
    """The scan over steps for the agents ``layout`` holds (all of them, or one device's
    share): only mixing and the reductions over all agents go through the layout."""
    agents = jax.vmap(model, (0, None))
    stay = keep_in_place(tables[1])

    def local_grads(params, own, w):
        # Backpropagate through the agent's own rows only; pads carry weight 0.
        out, pullback = jax.vjp(lambda p: model(p, x[own]), params)
        return out, pullback(w[:, None] * (out - y[own]))[0]

    def local_loss(out):
        return 0.5 * jnp.sum(weights * jnp.sum((out - y[rows]) ** 2, -1), -1)

    def stepper(step_size):
        return lambda tree, grads: jax.tree_util.tree_map(
            lambda a, g: a - step_size * g, tree, grads
        )

    def record(theta):
        """Predictions on all inputs (each agent's and at the network average) and
        parameter distances, at a saved step."""
        average = jax.tree_util.tree_map(layout.mean, theta)
        test = None if x_test is None else agents(theta, x_test)
        return agents(theta, x), model(average, x), *_distances(theta, theta0, layout), test

    def skip(theta):
        """Zeros of the record's shapes, at a step that saves nothing."""
        return jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(record, theta))

    def body(theta, flag):
        save, active, step_weight = flag  # step_weight: W(k)'s weights, for a schedule
        outputs = []

        def gradient(state):
            out, grads = jax.vmap(local_grads)(state, rows, weights)
            outputs.append(out)
            return grads

        # Steps past the run's end (the last chunk's padding) mix with the identity and
        # step by 0, so the carry ends exactly at the last step.
        weight = jnp.where(active, tables[1] if step_weight is None else step_weight, stay)
        mix = functools.partial(layout.mix, tables=tables, weight=weight)
        step = stepper(jnp.where(active, lr, 0.0))
        new = algorithm.update(theta, mix=mix, gradient=gradient, step=step)
        if not algorithm.gradient_at_start:  # the local losses of theta are not at hand
            outputs[0] = jax.vmap(lambda p, own: model(p, x[own]))(theta, rows)
        saved = jax.lax.cond(save, record, skip, theta)
        return new, (local_loss(outputs[0]), *saved)

    return jax.lax.scan(body, theta, flags)


# The agent axis of each argument of the chunk runner and of its outputs (None: shared).
_IN_AXES = (0, None, 0, None, 0, 0, None, None, None, None)
_OUT_AXES = (0, (1, 1, None, 1, None, 1))


@functools.lru_cache(maxsize=32)
def _chunk_runner(
    apply_fn: Callable,
    algorithm: algorithms.Algorithm,
    linearize: bool,
    length: int,
    layout: Stacked,
    seeds: bool = False,
) -> Callable:
    """Compiled scan of ``length`` steps; cached so each shape compiles once per process.
    With ``seeds``, ``theta`` and ``theta0`` carry a leading axis of initializations and
    the scan is vmapped over it (every other argument is shared); seed ensembles run on
    one device, so the layout must be :data:`~companion.agents.STACKED`."""

    def run(theta, theta0, tables, lr, rows, weights, x, y, x_test, flags):
        model = _linearized(apply_fn, theta0) if linearize else apply_fn
        args = (theta, theta0, lr, rows, weights, x, y, x_test, flags)
        return _steps(model, algorithm, layout, tables, *args)

    del length  # part of the cache key: one compiled program per chunk length
    if seeds:
        return jax.jit(jax.vmap(run, in_axes=(0, 0) + (None,) * 8))
    return layout.compile(run, _IN_AXES, _OUT_AXES)


def _divergence(problem, algorithm, mixing, lr, step) -> DivergenceError:
    start = f"{algorithm.name} diverged: values are not finite at step {step} with lr={lr:.6g}; "
    if isinstance(mixing, Schedule):
        rate, kind = stability.schedule_rate(problem, algorithm, mixing, lr)
        return DivergenceError(
            start + f"the {kind} rate of the linearized dynamics on the schedule "
            f"'{mixing.name}' is {rate:.6g} (companion.stability.schedule_rate)"
        )
    try:
        limit = stability.max_stable_lr(problem, algorithm, mixing)
    except ValueError as refusal:  # no exact threshold at this size: say why
        return DivergenceError(start + f"the stable step size is not known here: {refusal}")
    return DivergenceError(
        start + f"the largest stable step size of the linearized dynamics on this problem is "
        f"{limit:.6g} (companion.stability.max_stable_lr)"
    )


def _tables(layout, mixing, steps: int, total: int) -> tuple[tuple, np.ndarray | None]:
    """The layout's mixing tables, and for a schedule the weights of W(k) at each of
    ``total`` steps (0 past ``steps``: those steps keep every agent in place)."""
    if not isinstance(mixing, Schedule):
        return layout.tables(mixing), None
    index, weights = schedule_tables(layout, mixing.matrices(steps))
    padded = np.zeros((total, *index.shape))
    padded[:steps] = weights
    return (index, weights[0]), padded


def train(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray | Schedule,
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    save_at: SaveAt | None = None,
    chunk: int = 100,
    progress: bool = True,
    check: bool = True,
    strict: bool = False,
    layout: Stacked = STACKED,
) -> Trajectory:
    """Train Q agents with DGD, ATC or CTA from the problem's common ``theta_0``.

    Args:
        problem: a :class:`companion.problem.Problem` with inputs, a model (or
            ``apply_fn``) and ``params``.
        algorithm: "dgd", "atc" or "cta". mixing: doubly stochastic Q x Q W, or a
            :class:`companion.schedules.Schedule` (W(k) at step k, the same draws as the
            closed form's).
        lr: step size. steps: number of updates.
        linearize: train ``f_lin`` (the NTK regime) instead of the network.
        save_at: the steps that record predictions (default: every step).
        chunk: steps per compiled scan; the run stops after the first chunk with a
            non-finite value. progress: show a tqdm bar.
        check: check lr against the exact threshold of the linearized dynamics first
            (computes the NTK if the problem has none yet); ``strict`` raises instead of
            warning.
        layout: where the agents run (:mod:`companion.agents`): all on one device
            (default), or sharded over devices (:func:`companion.sharded.train`).

    Raises:
        DivergenceError: a loss or parameter became non-finite.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.ones((2, 1)), apply_fn=lambda p, x: x @ p["a"],
        ...             params={"a": np.zeros((1, 1))})
        >>> t = train(p, "atc", np.full((2, 2), 0.5), lr=0.5, steps=2, progress=False)
        >>> t.mean_local_loss.round(4).tolist(), t.method
        ([0.5, 0.125, 0.0312], 'simulation')
    """
    algorithm, mixing, lr, steps, saved = _validated(
        problem, algorithm, mixing, lr, steps, chunk, save_at, problem.params
    )
    if check:
        if isinstance(mixing, Schedule):
            stability.check_schedule(problem, algorithm, mixing, lr, strict=strict)
        else:
            stability.check_lr(problem, algorithm, mixing, lr, strict=strict)
    observed, theta = _run(
        problem,
        algorithm,
        mixing,
        problem.params,
        lr,
        steps,
        saved,
        linearize,
        chunk,
        progress,
        layout,
    )
    return _trajectory(problem, algorithm, lr, steps, saved, linearize, observed, theta)


def train_ensemble(
    problem: Problem,
    initializations: Sequence[Any],
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray | Schedule,
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    save_at: SaveAt | None = None,
    chunk: int = 100,
    progress: bool = True,
) -> tuple[Trajectory, ...]:
    """:func:`train` from each of several initializations at once, vmapped over them.

    Every member starts all its agents from its own ``theta_0`` (one entry of
    ``initializations``) and trains with the same algorithm, mixing matrix (or schedule)
    and step size on the problem's data; ``problem.params`` is not used. The runs are
    those of :func:`train` on each initialization alone (to rounding: the batched matrix
    products may sum in another order), in one compiled program on one device. The step
    size is not checked against a stability threshold (each member has its own kernel); a
    member that diverges raises :class:`DivergenceError`.

    Args:
        problem: a :class:`companion.problem.Problem` with inputs and a model (or
            ``apply_fn``).
        initializations: S >= 1 parameter pytrees of the same structure and shapes.
        algorithm, mixing, lr, steps, linearize, save_at, chunk, progress: as for
            :func:`train`.

    Returns:
        One :class:`~companion.trajectory.Trajectory` per initialization, in order.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.ones((2, 1)), apply_fn=lambda p, x: x @ p["a"],
        ...             params={"a": np.zeros((1, 1))})
        >>> starts = [{"a": np.zeros((1, 1))}, {"a": np.ones((1, 1))}]
        >>> runs = train_ensemble(p, starts, "atc", np.full((2, 2), 0.5), lr=0.5, steps=2,
        ...                       progress=False)
        >>> [r.mean_local_loss.round(4).tolist() for r in runs]
        [[0.5, 0.125, 0.0312], [0.0, 0.0, 0.0]]
    """
    if isinstance(initializations, dict) or not isinstance(initializations, Sequence):
        raise ValueError(
            "initializations must be a list of parameter pytrees, one per member, got "
            f"{type(initializations).__name__}"
        )
    if len(initializations) == 0:
        raise ValueError("initializations is empty: pass at least one parameter pytree")
    structures = {jax.tree_util.tree_structure(p) for p in initializations}
    shapes = {
        tuple(np.shape(leaf) for leaf in jax.tree_util.tree_leaves(p)) for p in initializations
    }
    if len(structures) > 1 or len(shapes) > 1:
        raise ValueError(
            "initializations differ in structure or leaf shapes: every member must be the "
            "same model (draw them all with one init_fn)"
        )
    algorithm, mixing, lr, steps, saved = _validated(
        problem, algorithm, mixing, lr, steps, chunk, save_at, initializations[0]
    )
    stacked = jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *initializations)
    observed, theta = _run(
        problem,
        algorithm,
        mixing,
        stacked,
        lr,
        steps,
        saved,
        linearize,
        chunk,
        progress,
        STACKED,
        seeds=True,
    )
    return tuple(
        _trajectory(
            problem,
            algorithm,
            lr,
            steps,
            saved,
            linearize,
            [None if o is None else o[s] for o in observed],
            jax.tree_util.tree_map(lambda leaf, s=s: leaf[s], theta),
        )
        for s in range(len(initializations))
    )


def _validated(problem, algorithm, mixing, lr, steps, chunk, save_at, params):
    """The checked algorithm, mixing matrix (or schedule), step size, steps and saved
    steps."""
    check_float64("training")
    algorithm = algorithms.get(algorithm)
    if problem.apply_fn is None or params is None or problem.inputs is None:
        raise ValueError("training needs a problem with inputs, a model (or apply_fn) and params")
    if isinstance(mixing, Schedule):
        mixing.check_agents(problem.num_agents)
    else:
        mixing = validate_mixing(mixing, num_agents=problem.num_agents, require_connected=False)
    lr, steps = check_lr_value(lr), check_steps(steps)
    if not (isinstance(chunk, int) and chunk > 0):
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    return algorithm, mixing, lr, steps, (save_at or SaveAt()).resolve(steps)


def _run(
    problem,
    algorithm,
    mixing,
    params,
    lr,
    steps,
    saved,
    linearize,
    chunk,
    progress,
    layout,
    seeds=False,
):
    """The compiled chunks from ``params`` (with a leading seed axis when ``seeds``): the
    observations concatenated over steps (step axis after the seed axis) and the final
    parameters, as NumPy arrays."""
    # Balanced chunks cover the steps + 1 observations with at most one compiled length.
    count = math.ceil((steps + 1) / chunk)
    length = math.ceil((steps + 1) / count)
    run = _chunk_runner(problem.apply_fn, algorithm, bool(linearize), length, layout, seeds)
    axis = 1 if seeds else 0  # the step axis of the observations, the agent axis of theta
    stacked = jax.tree_util.tree_map(
        lambda p: np.stack([p] * problem.num_agents, axis=axis), params
    )
    theta, params = layout.put(stacked, axis), layout.put(params)
    save, active = np.zeros(count * length, dtype=bool), np.arange(count * length) < steps
    save[saved] = True
    tables, step_weights = _tables(layout, mixing, steps, count * length)
    args = (layout.put(tables, 0), layout.put(np.float64(lr)), *layout.put(problem.own_rows, 0))
    args += layout.put((problem.inputs, problem.targets, problem.inputs_test))
    records = []
    with tqdm(total=steps, desc=f"{algorithm.name} training", disable=not progress) as bar:
        for i in range(count):
            window = slice(i * length, (i + 1) * length)
            per_step = None if step_weights is None else step_weights[window]
            flags = layout.put((save[window], active[window], per_step))
            theta, observed = run(theta, params, *args, flags)
            kept = np.arange(min(length, steps + 1 - i * length))  # the last chunk may overrun
            observed = [None if o is None else o.take(kept, axis) for o in layout.fetch(observed)]
            # parameters that overflow make the local loss inf
            finite = np.isfinite(np.moveaxis(observed[0], axis, 0)).reshape(len(kept), -1).all(1)
            if not finite.all():
                raise _divergence(
                    problem, algorithm, mixing, lr, i * length + int(np.argmin(finite))
                )
            records.append(observed)
            bar.update(min(length, steps - bar.n))
    observed = [
        None if records[0][j] is None else np.concatenate([r[j] for r in records], axis)
        for j in range(len(records[0]))
    ]
    return observed, layout.fetch(theta)


def _trajectory(problem, algorithm, lr, steps, saved, linearize, observed, theta) -> Trajectory:
    """One run's observations (steps first) as a Trajectory."""
    local, preds, average, distance, consensus, test = observed
    return Trajectory.build(
        problem,
        algorithm=algorithm.name,
        lr=lr,
        method="linearized-simulation" if linearize else "simulation",
        steps=np.arange(steps + 1),
        local_loss=local,
        consensus_distance=consensus[saved],
        param_distance=distance[saved],
        saved_steps=saved,
        predictions=preds[saved],
        average_predictions=average[saved],
        test_predictions=None if test is None else test[saved],
        final_params=theta,
    )
