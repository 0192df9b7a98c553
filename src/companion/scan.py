"""The compiled scan of training steps behind :mod:`companion.simulate`.

``jax.vmap`` runs the agents and ``jax.lax.scan`` the steps, in chunks of one compiled
length; the step itself is :meth:`companion.algorithms.Algorithm.update`. Agent q's
gradient runs over its own rows only, padded to the largest agent with weight 0, with the
weights ``1/n_q`` of the full local loss or, with a sampler, the step's mini-batch weights
(:mod:`companion.sampling`), read like a schedule's mixing weights from the per-step flags.
The local losses (always of the full local sets) come from the outputs the gradient
computed; predictions on all inputs and the parameter distances only at saved steps.

The scan touches other agents only through a layout (:mod:`companion.agents`). It runs
alone, vmapped over initializations (``ensemble="initializations"``) or vmapped over batch
sequences from one ``theta_0`` (``ensemble="batches"``); ensembles run on one device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from companion import algorithms
from companion.agents import Stacked, keep_in_place, schedule_tables
from companion.schedules import Schedule

__all__ = ["ENSEMBLES", "run"]

#: How a run is vmapped: not at all, over initializations, or over batch sequences.
ENSEMBLES = (None, "initializations", "batches")


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
        # step_weight: W(k)'s weights, for a schedule; batch: the step's row weights
        save, active, step_weight, batch = flag
        outputs = []
        grad_weights = weights if batch is None else batch

        def gradient(state):
            out, grads = jax.vmap(local_grads)(state, rows, grad_weights)
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
# The ensemble axis of each argument, per kind of ensemble (flags: save, active, W, batch).
_ENSEMBLE_AXES = {
    "initializations": (0, 0) + (None,) * 8,
    "batches": (0,) + (None,) * 8 + ((None, None, None, 0),),
}


@functools.lru_cache(maxsize=32)
def _chunk_runner(
    apply_fn: Callable,
    algorithm: algorithms.Algorithm,
    linearize: bool,
    length: int,
    layout: Stacked,
    ensemble: str | None = None,
) -> Callable:
    """Compiled scan of ``length`` steps; cached so each shape compiles once per process.
    With an ``ensemble``, ``theta`` carries a leading member axis and the scan is vmapped
    over it and over ``theta0`` (initializations) or the batch weights (batches)."""

    def run(theta, theta0, tables, lr, rows, weights, x, y, x_test, flags):
        model = _linearized(apply_fn, theta0) if linearize else apply_fn
        args = (theta, theta0, lr, rows, weights, x, y, x_test, flags)
        return _steps(model, algorithm, layout, tables, *args)

    del length  # part of the cache key: one compiled program per chunk length
    if ensemble is not None:
        return jax.jit(jax.vmap(run, in_axes=_ENSEMBLE_AXES[ensemble]))
    return layout.compile(run, _IN_AXES, _OUT_AXES)


def _tables(layout, mixing, steps: int, total: int) -> tuple[tuple, np.ndarray | None]:
    """The layout's mixing tables, and for a schedule the weights of W(k) at each of
    ``total`` steps (0 past ``steps``: those steps keep every agent in place)."""
    if not isinstance(mixing, Schedule):
        return layout.tables(mixing), None
    index, weights = schedule_tables(layout, mixing.matrices(steps))
    padded = np.zeros((total, *index.shape))
    padded[:steps] = weights
    return (index, weights[0]), padded


def _padded_batches(batches: np.ndarray | None, steps: int, total: int) -> np.ndarray | None:
    """Per-step row weights (..., steps, Q, L) padded with zeros to ``total`` steps."""
    if batches is None:
        return None
    out = np.zeros((*batches.shape[:-3], total, *batches.shape[-2:]))
    out[..., :steps, :, :] = batches
    return out


def run(
    problem,
    algorithm,
    mixing,
    params,
    lr,
    steps,
    saved,
    *,
    linearize: bool,
    chunk: int,
    progress: bool,
    layout: Stacked,
    diverged: Callable[[int], Exception],
    ensemble: str | None = None,
    batches: np.ndarray | None = None,
):
    """The compiled chunks from ``params``: the observations concatenated over steps (step
    axis after the member axis of an ensemble) and the final parameters, as NumPy arrays.

    Args:
        params: ``theta_0``, with a leading member axis for ``ensemble="initializations"``.
        batches: row weights per step, (steps, Q, L), or (S, steps, Q, L) for
            ``ensemble="batches"``; None: the full local sets.
        diverged: the exception to raise at the first step with a non-finite loss.
    """
    # Balanced chunks cover the steps + 1 observations with at most one compiled length.
    count = math.ceil((steps + 1) / chunk)
    length = math.ceil((steps + 1) / count)
    runner = _chunk_runner(problem.apply_fn, algorithm, bool(linearize), length, layout, ensemble)
    axis = 0 if ensemble is None else 1  # the step axis of the observations
    agent_axis = 1 if ensemble == "initializations" else 0
    stacked = jax.tree_util.tree_map(
        lambda p: np.stack([p] * problem.num_agents, axis=agent_axis), params
    )
    if ensemble == "batches":
        members = len(batches)  # type: ignore[arg-type]
        stacked = jax.tree_util.tree_map(lambda p: np.stack([p] * members), stacked)
    theta, params = layout.put(stacked, agent_axis), layout.put(params)
    save, active = np.zeros(count * length, dtype=bool), np.arange(count * length) < steps
    save[saved] = True
    tables, step_weights = _tables(layout, mixing, steps, count * length)
    batch_weights = _padded_batches(batches, steps, count * length)
    args = (layout.put(tables, 0), layout.put(np.float64(lr)), *layout.put(problem.own_rows, 0))
    args += layout.put((problem.inputs, problem.targets, problem.inputs_test))
    records = []
    with tqdm(total=steps, desc=f"{algorithm.name} training", disable=not progress) as bar:
        for i in range(count):
            window = slice(i * length, (i + 1) * length)
            per_step = None if step_weights is None else step_weights[window]
            batch = None if batch_weights is None else batch_weights[..., window, :, :]
            flags = layout.put((save[window], active[window], per_step, batch))
            theta, observed = runner(theta, params, *args, flags)
            kept = np.arange(min(length, steps + 1 - i * length))  # the last chunk may overrun
            observed = [None if o is None else o.take(kept, axis) for o in layout.fetch(observed)]
            # parameters that overflow make the local loss inf
            finite = np.isfinite(np.moveaxis(observed[0], axis, 0)).reshape(len(kept), -1).all(1)
            if not finite.all():
                raise diverged(i * length + int(np.argmin(finite)))
            records.append(observed)
            bar.update(min(length, steps - bar.n))
    observed = [
        None if records[0][j] is None else np.concatenate([r[j] for r in records], axis)
        for j in range(len(records[0]))
    ]
    return observed, layout.fetch(theta)
