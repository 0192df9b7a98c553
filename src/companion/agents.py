"""Where the Q agents live, and the only ways their states meet.

Training (:mod:`companion.simulate`) and the dual recursion (:mod:`companion.dynamics`)
hold every agent's state in arrays stacked along a leading agent axis. Their step functions
touch other agents only through a layout: :meth:`Stacked.mix` (``W (x) I`` along the
graph's edges) and the reductions over all agents (:meth:`Stacked.first`,
:meth:`Stacked.mean`, :meth:`Stacked.sum`). A layout also compiles the step function and
moves arrays to and from where it runs.

:class:`Stacked` keeps all agents on one device, where those are plain array operations.
:class:`companion.sharded.AgentMesh` shards the agents over a device mesh and implements
the same operations with collectives, so both run one step function, and the algorithms
stay defined once (:mod:`companion.algorithms`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from companion import graphs

__all__ = ["STACKED", "Stacked", "edge_mix", "schedule_tables"]


def edge_mix(source: jax.Array, index: jax.Array, weight: jax.Array) -> jax.Array:
    """``sum_d weight[q, d] * source[index[q, d]]``: row q of ``(W (x) I) x`` read along
    the edges, with ``(index, weight)`` from :func:`companion.graphs.neighbours`.

    One gather per neighbour slot, summed in slot order (the agent itself first), so every
    layout that reads the same rows in the same order adds them in the same order.

    Example:
        >>> index, weight = graphs.neighbours(np.full((2, 2), 0.5))
        >>> edge_mix(jnp.array([[0.0], [2.0]]), index, weight).tolist()
        [[1.0], [1.0]]
    """
    shape = (-1,) + (1,) * (source.ndim - 1)
    terms = (weight[:, d].reshape(shape) * source[index[:, d]] for d in range(index.shape[1]))
    return functools.reduce(jnp.add, terms)


def keep_in_place(weight: jax.Array) -> jax.Array:
    """Mixing weights ``[1, 0, ..., 0]`` of the same shape: every agent keeps itself (slot 0
    is always the agent itself)."""
    return jnp.zeros_like(weight).at[:, 0].set(1.0)


@dataclasses.dataclass(frozen=True)
class Stacked:
    """All Q agents on one device, stacked along the agent axis and run by ``vmap``.

    Example:
        >>> x = jnp.array([[1.0, 2.0], [3.0, 6.0]])
        >>> STACKED.first(x).tolist(), STACKED.mean(x).tolist(), STACKED.count(x)
        ([[1.0, 2.0]], [2.0, 4.0], 2)
    """

    def first(self, x: jax.Array, axis: int = 0) -> jax.Array:
        """Agent 0's slice of ``x`` along the agent ``axis``, keeping that axis."""
        return jax.lax.slice_in_dim(x, 0, 1, axis=axis)

    def mean(self, x: jax.Array, axis: int = 0, keepdims: bool = False) -> jax.Array:
        """The mean over all agents along the agent ``axis``."""
        return x.mean(axis, keepdims=keepdims)

    def sum(self, x: jax.Array) -> jax.Array:
        """The sum of every entry of ``x``, over all agents."""
        return jnp.sum(x)

    def count(self, x: jax.Array, axis: int = 0) -> int:
        """Q, the number of agents (``x`` holds them along ``axis``)."""
        return x.shape[axis]

    def tables(self, mixing: np.ndarray) -> tuple:
        """The arrays :meth:`mix` reads: each agent's neighbours and weights."""
        return graphs.neighbours(mixing)

    def mix(self, tree: Any, tables: tuple, weight: jax.Array) -> Any:
        """``(W (x) I)`` applied to every leaf of ``tree`` (stacked over agents), with
        ``weight`` in place of the tables' weights (training swaps in
        :func:`keep_in_place` past the run's end)."""
        index = tables[0]
        return jax.tree_util.tree_map(lambda leaf: edge_mix(leaf, index, weight), tree)

    def compile(self, fn: Callable, in_axes: tuple, out_axes: Any) -> Callable:
        """``fn`` jitted. ``in_axes``/``out_axes`` name the agent axis of each argument and
        output (None: the same for all agents); one device needs no placement."""
        del in_axes, out_axes
        return jax.jit(fn)

    def put(self, tree: Any, axis: int | None = None) -> Any:
        """Host arrays onto the device (``axis``: their agent axis, or None)."""
        del axis
        return jax.tree_util.tree_map(jnp.asarray, tree)

    def fetch(self, tree: Any) -> Any:
        """Device arrays back as NumPy arrays."""
        return jax.tree_util.tree_map(np.asarray, tree)


#: The default layout: every agent on the default device.
STACKED = Stacked()


def schedule_tables(layout: Stacked, matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour slots for a schedule's W(0), ..., W(S-1) (shape (S, Q, Q)): ``(index,
    weights)`` with ``index`` (Q, D) covering every link any W(k) uses and ``weights``
    (S, Q, D) the weights of W(k) in those slots (0 where W(k) has no such link).

    Schedules run on one device: the sharded layout sends rows along one graph's matchings.

    Example:
        >>> w = np.stack([np.eye(2), np.full((2, 2), 0.5)])
        >>> index, weights = schedule_tables(STACKED, w)
        >>> index.tolist(), weights[:, 0].tolist()
        ([[0, 1], [1, 0]], [[1.0, 0.0], [0.5, 0.5]])
    """
    if type(layout) is not Stacked:
        raise ValueError(
            f"a schedule of mixing matrices runs on one device, not on {type(layout).__name__}:"
            " the sharded layout sends rows along the matchings of one graph; pass one mixing "
            "matrix, or run the schedule without layout="
        )
    index = graphs.neighbours(np.abs(matrices).sum(0))[0]
    own = np.arange(len(index))[:, None]
    padding = (index == own) & (np.arange(index.shape[1]) > 0)
    weights = np.where(padding, 0.0, np.take_along_axis(matrices, index[None], 2))
    return index, weights
