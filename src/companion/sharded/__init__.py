"""Agents on a device mesh, and across processes, with JAX's own runtime.

The Q agents are sharded over a 1-D mesh (axis ``"agents"``), A = Q / D per device, with
``shard_map``. Mixing exchanges rows only along the graph's edges: the arcs between devices
are coloured into matchings, one ``lax.ppermute`` each (:mod:`companion.sharded.matchings`),
with one ``lax.all_gather`` instead when a stated rule says the graph is dense. Training
and the closed form are the one-device code on that layout (:mod:`companion.agents`), so
the algorithms stay defined once (:mod:`companion.algorithms`). Several processes (hosts)
join with :func:`initialize`.
"""

from companion.sharded.distributed import initialize
from companion.sharded.matchings import EXCHANGES, Plan, Schedule, colour_arcs, plan
from companion.sharded.mesh import AXIS, AgentMesh, agent_mesh, resolve_devices
from companion.sharded.run import closed_form, train

__all__ = [
    "AXIS",
    "EXCHANGES",
    "AgentMesh",
    "Plan",
    "Schedule",
    "agent_mesh",
    "closed_form",
    "colour_arcs",
    "initialize",
    "plan",
    "resolve_devices",
    "train",
]
