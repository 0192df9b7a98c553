"""Real decentralized training of Q copies of a model (MATH.md "Algorithms").

Every agent starts from the same `theta_0`. The Q parameter copies are stacked along a
leading axis; `jax.vmap` runs the agents and `jax.lax.scan` the steps, in chunks of one
compiled length. Agent q's gradient of `L_q = 1/(2 n_q) sum_{i in q} ||f(x_i) - y_i||^2`
runs over its own rows only, padded to the largest agent with weight 0 so uneven
partitions share one shape; a forward-only pass on all n inputs records the predictions.
The result is the same `Trajectory` the closed forms return.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

from companion import stability
from companion._checks import check_kernel, check_problem, check_targets
from companion.trajectory import Trajectory

__all__ = ["DivergenceError", "train"]

CHEAP_JACOBIAN = 2_000_000  # m * P entries up to which the NTK for an error message is cheap


class DivergenceError(ValueError):
    """Training produced a non-finite value; the message names step, lr and the bound."""


def _linearized(apply_fn: Callable, theta0: Any) -> Callable:
    """`f_lin(x; theta) = f(x; theta_0) + J (theta - theta_0)` by one jvp, as in
    `neural_tangents.linearize`."""

    def model(params, x):
        delta = jax.tree_util.tree_map(jnp.subtract, params, theta0)
        out, tangent = jax.jvp(lambda p: apply_fn(p, x), (theta0,), (delta,))
        return out + tangent

    return model


def _distances(theta: Any, theta0: Any) -> tuple[jax.Array, jax.Array]:
    """`||theta_q - theta_0||` per agent and the consensus distance of stacked parameters."""
    leaves, origin = jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(theta0)
    pairs = zip(leaves, origin, strict=True)
    drift = sum(jnp.sum((a - b).reshape(len(a), -1) ** 2, 1) for a, b in pairs)
    # relative to agent 0 first, so identical agents give exactly zero spread
    spread = sum(jnp.sum(((a - a[0]) - (a - a[0]).mean(0)) ** 2) for a in leaves)
    return jnp.sqrt(drift), jnp.sqrt(spread / len(leaves[0]))


def _own_rows(partition: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each agent's rows padded to the largest agent, shape (Q, max n_q), with weights
    1/n_q on real rows and 0 on pads, so uneven partitions share one shape under vmap."""
    width = max(len(rows) for rows in partition)
    own = np.zeros((len(partition), width), dtype=int)
    weights = np.zeros((len(partition), width))
    for q, rows in enumerate(partition):
        own[q, : len(rows)] = rows
        weights[q, : len(rows)] = 1.0 / len(rows)
    return own, weights


@functools.lru_cache(maxsize=32)
def _chunk_runner(apply_fn: Callable, algorithm: str, linearize: bool, length: int) -> Callable:
    """Jitted scan of `length` steps; cached so each shape compiles once per process."""

    def run(theta, theta0, mixing, lr, rows, weights, x, y, x_test):
        model = _linearized(apply_fn, theta0) if linearize else apply_fn

        def local_grads(params, own, w):
            # Backpropagate through the agent's own rows only; pads carry weight 0.
            out, pullback = jax.vjp(lambda p: model(p, x[own]), params)
            return pullback(w[:, None] * (out - y[own]))[0]

        def mix(tree):
            return jax.tree_util.tree_map(lambda leaf: jnp.tensordot(mixing, leaf, 1), tree)

        def step(tree, grads):
            return jax.tree_util.tree_map(lambda a, g: a - lr * g, tree, grads)

        def body(theta, _):
            preds = jax.vmap(model, (0, None))(theta, x)  # forward only, for the record
            grads = jax.vmap(local_grads)(theta, rows, weights)
            distance, consensus = _distances(theta, theta0)
            test = None if x_test is None else jax.vmap(model, (0, None))(theta, x_test)
            if algorithm == "dgd":
                theta = step(mix(theta), grads)
            elif algorithm == "atc":
                theta = mix(step(theta, grads))
            else:
                mixed = mix(theta)
                theta = step(mixed, jax.vmap(local_grads)(mixed, rows, weights))
            return theta, (preds, distance, consensus, test)

        return jax.lax.scan(body, theta, None, length=length)

    return jax.jit(run)


def _cheap_kernel(apply_fn: Callable, params: Any, inputs: np.ndarray) -> np.ndarray | None:
    """Empirical NTK J J^T at theta_0 when the Jacobian is small, else None."""
    flat, unravel = ravel_pytree(params)
    outputs = np.asarray(apply_fn(params, inputs)).size
    if outputs * flat.size > CHEAP_JACOBIAN:
        return None
    jacobian = jax.jacrev(lambda p: apply_fn(unravel(p), inputs).ravel())(flat)
    return np.asarray(jacobian @ jacobian.T)


def _divergence(algorithm, lr, step, kernel, apply_fn, params, inputs, partition, mixing, c):
    if kernel is None:
        kernel = _cheap_kernel(apply_fn, params, inputs)
    if kernel is None:
        bound = "run companion.stability.max_stable_lr on the NTK to find the stable step size"
    else:
        limit = stability.max_stable_lr(algorithm, kernel, partition, mixing, num_outputs=c)
        bound = (
            f"the largest stable step size of the linearized dynamics on this problem is "
            f"{limit:.6g} (companion.stability.max_stable_lr)"
        )
    return DivergenceError(
        f"{algorithm} diverged: values are not finite at step {step} with lr={lr:.6g}; {bound}"
    )


def train(
    algorithm: str,
    apply_fn: Callable,
    params: Any,
    *,
    inputs: np.ndarray,
    targets: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    steps: int,
    linearize: bool = False,
    inputs_test: np.ndarray | None = None,
    targets_test: np.ndarray | None = None,
    chunk: int = 100,
    progress: bool = True,
    kernel: np.ndarray | None = None,
    strict: bool = False,
) -> Trajectory:
    """Train Q agents with DGD, ATC or CTA from a common `params` (MATH.md "Algorithms").

    Args:
        algorithm: "dgd", "atc" or "cta".
        apply_fn: `apply_fn(params, x) -> (len(x), C)`, e.g. a stax or `companion.models`
            model.
        params: theta_0, a pytree, shared by all agents.
        inputs, targets: (n, ...) and (n, C) training data. partition: Q index arrays.
        mixing: doubly stochastic Q x Q W. lr: step size. steps: number of updates.
        linearize: train `f_lin` (the NTK regime) instead of the network.
        inputs_test, targets_test: optional test data, scored at every step.
        chunk: steps per compiled scan; the run stops after the first chunk with a
            non-finite value. progress: show a tqdm bar.
        kernel: the NTK (n*C, n*C), if known: checks lr before training
            (`stability.check_lr`, raising with `strict=True`) and names the bound if the
            run diverges. Otherwise the bound is computed only on divergence, when cheap.

    Raises:
        DivergenceError: a prediction or parameter became non-finite.

    Example:
        >>> def apply_fn(p, x):
        ...     return x @ p["a"]
        >>> t = train("atc", apply_fn, {"a": np.zeros((1, 1))}, inputs=np.ones((2, 1)),
        ...           targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...           mixing=np.full((2, 2), 0.5), lr=0.5, steps=2, progress=False)
        >>> t.mean_loss.round(4).tolist(), t.method
        ([0.5, 0.125, 0.0312], 'simulation')
    """
    algorithm, targets, partition, mixing, lr = check_problem(
        algorithm, targets, partition, mixing, lr, steps
    )
    n, c = targets.shape
    if np.shape(inputs)[0] != n:
        raise ValueError(f"inputs has {np.shape(inputs)[0]} rows but targets has {n}")
    if inputs_test is None and targets_test is not None:
        raise ValueError("targets_test needs inputs_test")
    if targets_test is not None:
        targets_test = check_targets(targets_test, "targets_test")
        if targets_test.shape != (np.shape(inputs_test)[0], c):
            raise ValueError(
                f"targets_test has shape {targets_test.shape}, expected "
                f"({np.shape(inputs_test)[0]}, {c}) to match inputs_test and targets"
            )
    if kernel is not None:
        kernel = check_kernel(kernel, (n * c, n * c))
        stability.check_lr(algorithm, kernel, partition, mixing, lr, strict=strict, num_outputs=c)
    if not (isinstance(chunk, int) and chunk > 0):
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")

    # Balanced chunks cover the steps + 1 observations with at most one compiled length.
    count = math.ceil((steps + 1) / chunk)
    length = math.ceil((steps + 1) / count)
    run = _chunk_runner(apply_fn, algorithm, bool(linearize), length)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    theta = jax.tree_util.tree_map(lambda p: jnp.stack([p] * len(partition)), params)
    args = (
        jnp.asarray(mixing),
        lr,
        *map(jnp.asarray, _own_rows(partition)),
        jnp.asarray(inputs),
        jnp.asarray(targets),
        None if inputs_test is None else jnp.asarray(inputs_test),
    )
    records = []
    with tqdm(total=steps, desc=f"{algorithm} training", disable=not progress) as bar:
        for i in range(count):
            theta, observed = run(theta, params, *args)
            kept = min(length, steps + 1 - i * length)  # the last chunk may run past steps
            observed = [None if o is None else np.asarray(o)[:kept] for o in observed]
            finite = np.isfinite(observed[0]).all(axis=(1, 2, 3)) & np.isfinite(observed[1]).all(1)
            if not finite.all():
                step = i * length + int(np.argmin(finite))
                raise _divergence(algorithm, lr, step, kernel, apply_fn, params, inputs,
                                  partition, mixing, c)  # fmt: skip
            records.append(observed)
            bar.update(min(length, steps - bar.n))
    preds, distance, consensus, test = (
        None if records[0][j] is None else np.concatenate([r[j] for r in records]) for j in range(4)
    )
    return Trajectory.from_predictions(
        algorithm=algorithm,
        lr=lr,
        steps=np.arange(steps + 1),
        predictions=preds,
        targets=targets,
        partition=partition,
        consensus_distance=consensus,
        param_distance=distance,
        method="linearized-simulation" if linearize else "simulation",
        test_predictions=test,
        targets_test=targets_test,
    )
