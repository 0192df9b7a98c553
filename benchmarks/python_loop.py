"""The baseline of ``simulate.speedup_vs_python_loop``: decentralized training written the
way most code writes it, one Python iteration per step and per agent.

Each agent takes a jitted gradient step on its own samples, then averages its neighbours'
parameters leaf by leaf with the weights of W. The arithmetic is the same DGD update as
``companion.simulate.train`` (``theta_q <- sum_r W[q, r] theta_r - lr * grad L_q(theta_q)``
with ``L_q = 1/(2 n_q) sum_i ||f(x_i) - y_i||^2``), so both give the same parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def train_loop(
    apply_fn: Callable,
    params: Any,
    *,
    inputs: np.ndarray,
    targets: np.ndarray,
    partition: Sequence[np.ndarray],
    mixing: np.ndarray,
    lr: float,
    steps: int,
) -> tuple[list[Any], np.ndarray]:
    """DGD by a per-agent, per-step Python loop; returns the agents' parameters and the
    (steps, Q) local losses logged at every step."""

    def local_loss(theta, x, y):
        return 0.5 * jnp.sum((apply_fn(theta, x) - y) ** 2) / x.shape[0]

    grad_fn = jax.jit(jax.value_and_grad(local_loss))
    shards = [(jnp.asarray(inputs[rows]), jnp.asarray(targets[rows])) for rows in partition]
    neighbours = [
        [(r, float(mixing[q, r])) for r in np.flatnonzero(row)] for q, row in enumerate(mixing)
    ]
    thetas = [params] * len(partition)
    losses = []
    for _ in range(steps):
        values, grads = zip(
            *(grad_fn(thetas[q], *shards[q]) for q in range(len(thetas))), strict=True
        )
        new = []
        for q, grad in enumerate(grads):
            mixed = jax.tree_util.tree_map(
                lambda *leaves, q=q: sum(w * leaves[r] for r, w in neighbours[q]), *thetas
            )
            new.append(jax.tree_util.tree_map(lambda a, g: a - lr * g, mixed, grad))
        thetas = new
        losses.append([float(v) for v in values])
    return thetas, np.asarray(losses)
