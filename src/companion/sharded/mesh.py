"""The agents sharded over a 1-D device mesh: the layout of :mod:`companion.agents` made of
JAX's own collectives.

Every device holds A = Q / D consecutive agents. Inside ``shard_map`` a step function sees
only its device's A agents; the layout's operations are where devices meet:

- :meth:`AgentMesh.mix` sends rows along the graph's edges, one ``lax.ppermute`` per
  matching of :func:`companion.sharded.matchings.plan` (or one ``lax.all_gather`` by its rule),
  then mixes each agent's neighbours in the same slot order as the one-device path;
- :meth:`AgentMesh.first` and :meth:`AgentMesh.mean` are ``lax.psum`` reductions (for the
  network average and the consensus distance, at the steps that record them).

Arrays are placed with ``jax.make_array_from_callback`` and read back with
``multihost_utils.process_allgather`` when other processes hold some of their shards, so
the same code runs on one process or on several (:func:`companion.sharded.initialize`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.experimental.shard_map import shard_map
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from companion.agents import Stacked, edge_mix
from companion.graphs import validate_mixing
from companion.sharded.matchings import Schedule, plan

__all__ = ["AXIS", "AgentMesh", "agent_mesh", "resolve_devices"]

#: The name of the mesh axis the agents are sharded along.
AXIS = "agents"


def _spec(axes: Any) -> Any:
    """PartitionSpecs from agent axes: an int k shards dimension k, None replicates."""
    if isinstance(axes, tuple):
        return tuple(_spec(a) for a in axes)
    return P() if axes is None else P(*([None] * axes), AXIS)


@dataclasses.dataclass(frozen=True)
class AgentMesh(Stacked):
    """Q agents on the devices of ``mesh``, exchanging rows as ``schedule`` says.

    Build it with :func:`agent_mesh`. Equal meshes and schedules compile to the same
    program, so a second run on the same graph reuses it.
    """

    mesh: Mesh
    schedule: Schedule

    def first(self, x: jax.Array, axis: int = 0) -> jax.Array:
        own = jax.lax.slice_in_dim(x, 0, 1, axis=axis)  # agent 0 is device 0's first row
        return jax.lax.psum(jnp.where(jax.lax.axis_index(AXIS) == 0, own, 0), AXIS)

    def mean(self, x: jax.Array, axis: int = 0, keepdims: bool = False) -> jax.Array:
        total = jax.lax.psum(x.sum(axis, keepdims=keepdims), AXIS)
        return total / self.schedule.num_agents

    def sum(self, x: jax.Array) -> jax.Array:
        return jax.lax.psum(jnp.sum(x), AXIS)

    def count(self, x: jax.Array, axis: int = 0) -> int:
        return self.schedule.num_agents

    def tables(self, mixing: np.ndarray) -> tuple:
        exchange = "allgather" if self.schedule.allgather else "matchings"
        found = plan(mixing, self.schedule.num_devices, exchange)
        if found.schedule != self.schedule:
            raise ValueError(
                "this mixing matrix needs other collectives than the mesh layout was planned "
                "for (another sparsity pattern): build the layout with "
                "companion.sharded.agent_mesh for this matrix"
            )
        return found.index, found.weight, found.sends

    def mix(self, tree: Any, tables: tuple, weight: jax.Array) -> Any:
        """Every leaf's local rows, exchanged as one (A, size) buffer per collective, then
        mixed along the edges."""
        index, _, sends = tables
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        rows = leaves[0].shape[0]
        flat = jnp.concatenate([leaf.reshape(rows, -1) for leaf in leaves], 1)
        if self.schedule.allgather:
            source = jax.lax.all_gather(flat, AXIS, tiled=True)
        else:
            received = [
                jax.lax.ppermute(flat[send], AXIS, perm)
                for send, perm in zip(sends, self.schedule.rounds, strict=True)
            ]
            source = jnp.concatenate([flat, *received])
        mixed = edge_mix(source, index, weight)
        cuts = np.cumsum([leaf[0].size for leaf in leaves])[:-1]
        parts = jnp.split(mixed, cuts, axis=1)
        shaped = [p.reshape(leaf.shape) for p, leaf in zip(parts, leaves, strict=True)]
        return jax.tree_util.tree_unflatten(treedef, shaped)

    def compile(self, fn: Callable, in_axes: tuple, out_axes: Any) -> Callable:
        specs = dict(in_specs=_spec(in_axes), out_specs=_spec(out_axes))
        # jax 0.4.35 has no replication rule for lax.cond (training records predictions
        # under one), so the check is off; the outputs declared replicated come out of
        # psum and are equal on every device.
        return jax.jit(shard_map(fn, self.mesh, **specs, check_rep=False))

    def put(self, tree: Any, axis: int | None = None) -> Any:
        sharding = NamedSharding(self.mesh, _spec(axis))

        def place(value):
            host = np.asarray(value)
            return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])

        return jax.tree_util.tree_map(place, tree)

    def fetch(self, tree: Any) -> Any:
        def gather(value):
            if value.is_fully_addressable:
                return np.asarray(value)
            return np.asarray(multihost_utils.process_allgather(value, tiled=True))

        return jax.tree_util.tree_map(gather, tree)


def resolve_devices(devices: int | Sequence[Any] | None) -> list[Any]:
    """The devices of the mesh: all of ``jax.devices()`` (None), the first k (an int k),
    or the given ones.

    Example:
        >>> resolve_devices(1) == jax.devices()[:1]
        True
    """
    available = jax.devices()
    if devices is None:
        return list(available)
    if isinstance(devices, int):
        if isinstance(devices, bool) or not 1 <= devices <= len(available):
            raise ValueError(
                f"devices={devices} but JAX sees {len(available)} device(s): pass a count "
                f"from 1 to {len(available)}, a list of jax.devices(), or None for all of them"
            )
        return list(available[:devices])
    chosen = list(devices)
    unknown = [d for d in chosen if d not in available]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise ValueError(
            f"devices must be distinct entries of jax.devices() (got {chosen!r}): pass a "
            "count, a list of jax.devices(), or None for all of them"
        )
    return chosen


def agent_mesh(
    mixing: np.ndarray, *, devices: int | Sequence[Any] | None = None, exchange: str = "auto"
) -> AgentMesh:
    """The layout that shards ``mixing``'s Q agents over ``devices``.

    Args:
        mixing: the doubly stochastic Q x Q mixing matrix the agents will use.
        devices: None (every device JAX sees, on every process), a count (the first k),
            or a list of devices. Their number must divide Q.
        exchange: ``"auto"``, ``"matchings"`` or ``"allgather"``
            (:func:`companion.sharded.matchings.plan`).

    Example:
        >>> from companion import graphs
        >>> layout = agent_mesh(graphs.mixing_matrix(graphs.topology("cycle", 4)), devices=1)
        >>> layout.schedule.agents_per_device, layout.schedule.collectives
        (4, 0)
    """
    mixing = validate_mixing(mixing, require_connected=False)
    chosen = resolve_devices(devices)
    schedule = plan(mixing, len(chosen), exchange).schedule
    return AgentMesh(Mesh(np.array(chosen), (AXIS,)), schedule)
