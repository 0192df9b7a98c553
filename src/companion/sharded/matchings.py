"""How mixing along a graph becomes collectives on a line of devices.

Agents ``0 .. Q-1`` sit on D devices in blocks of ``A = Q / D``: device d holds agents
``d A .. d A + A - 1``. Row q of ``(W (x) I) x`` reads the state of every agent r with
``W[q, r] > 0``; when r sits on another device d than q's device e, device d must send
it. All rows that d sends to e form one *arc* ``d -> e``.

The arcs are coloured so that within a colour every device sends at most one buffer and
receives at most one: each colour is a matching of the bipartite graph of senders and
receivers, and becomes one ``jax.lax.ppermute``. By König's line-colouring theorem the arcs
of a bipartite graph can be coloured with as many colours as its largest degree, the
largest number of devices one device exchanges with, and no fewer will do, since a device
receives one buffer per ppermute. :func:`colour_arcs` finds such a colouring by alternating
paths. A circulant graph gets one colour per shift (the cycle: +1 and -1). Every device's
buffer in one ppermute has one shape, the most rows any arc of that colour carries; shorter
arcs are padded.

The all-gather rule: when the busiest device would receive at least as many rows by
matchings as an all-gather delivers to every device, ``(D - 1) A``, the matchings do the
all-gather's work on the critical path in more collectives, and one ``all_gather`` is used
instead (a star's hub, a complete graph).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterable

import numpy as np

from companion import graphs

__all__ = ["EXCHANGES", "Plan", "Schedule", "colour_arcs", "plan"]

#: How devices exchange rows: ``"auto"`` applies the all-gather rule, the others force one.
EXCHANGES = ("auto", "matchings", "allgather")


def colour_arcs(arcs: Iterable[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Arcs ``(source, destination)`` grouped into rounds in which no node sends twice or
    receives twice, with as many rounds as the largest in- or out-degree (König).

    Arcs are coloured one at a time with the smallest colour ``a`` free at the source; when
    ``a`` is taken at the destination and ``b`` is free there, the path from the
    destination alternating ``a`` and ``b`` is recoloured ``b``/``a`` (it cannot reach the
    source in a bipartite graph), which frees ``a``.

    Example:
        >>> colour_arcs([(d, (d + s) % 5) for d in range(5) for s in (1, -1)])  # two shifts
        [[(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)], [(0, 4), (1, 0), (2, 1), (3, 2), (4, 3)]]
    """
    sent: dict[int, dict[int, int]] = {}  # source -> colour -> destination
    received: dict[int, dict[int, int]] = {}  # destination -> colour -> source
    for source, destination in sorted(set(arcs)):
        out, into = sent.setdefault(source, {}), received.setdefault(destination, {})
        a = next(c for c in itertools.count() if c not in out)
        b = next(c for c in itertools.count() if c not in into)
        if a in into:
            path, node, receiving, colour = [], destination, True, a
            while True:  # destination <-a- x -b-> y <-a- ...
                table = received if receiving else sent
                other = table.get(node, {}).get(colour)
                if other is None:
                    break
                path.append((other, node, colour) if receiving else (node, other, colour))
                node, receiving, colour = other, not receiving, b if colour == a else a
            for s, d, c in path:
                del sent[s][c], received[d][c]
            for s, d, c in path:
                swapped = b if c == a else a
                sent[s][swapped], received[d][swapped] = d, s
        out[a], into[a] = destination, source
    count = max((max(c) + 1 for c in sent.values() if c), default=0)
    rounds: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    for source, colours in sent.items():
        for colour, destination in colours.items():
            rounds[colour].append((source, destination))
    return [sorted(r) for r in rounds]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """What the compiled program depends on: the devices' ppermutes (or the all-gather).

    Attributes:
        num_agents: Q. num_devices: D.
        rounds: per ppermute, its ``(source, destination)`` device pairs.
        widths: per ppermute, the rows in every device's buffer.
        allgather: exchange by one all-gather instead.
    """

    num_agents: int
    num_devices: int
    rounds: tuple[tuple[tuple[int, int], ...], ...]
    widths: tuple[int, ...]
    allgather: bool

    @property
    def agents_per_device(self) -> int:
        """A = Q / D."""
        return self.num_agents // self.num_devices

    @property
    def allgather_rows(self) -> int:
        """Rows an all-gather moves per mixing: every device receives everyone else's."""
        return self.num_devices * (self.num_devices - 1) * self.agents_per_device

    @property
    def rows_moved(self) -> int:
        """Rows (padding included) all devices together receive per mixing."""
        if self.allgather:
            return self.allgather_rows
        return sum(len(r) * w for r, w in zip(self.rounds, self.widths, strict=True))

    @property
    def collectives(self) -> int:
        """Collectives per mixing: one per ppermute, or the one all-gather."""
        return int(self.num_devices > 1) if self.allgather else len(self.rounds)


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """A :class:`Schedule` and the tables each device reads.

    Attributes:
        schedule: the collectives.
        index: (Q, S) for each agent's neighbour slots (those of
            :func:`companion.graphs.neighbours`), the row of its device's *source* array:
            its own A rows, then each ppermute's buffer in turn (or all Q rows after an
            all-gather).
        weight: (Q, S) the weights of those slots.
        sends: per ppermute, (D * width,) the local rows each device sends (0-padded).
        arcs: the agents each arc ``(source, destination)`` carries.
    """

    schedule: Schedule
    index: np.ndarray
    weight: np.ndarray
    sends: tuple[np.ndarray, ...]
    arcs: dict[tuple[int, int], tuple[int, ...]]

    @property
    def degree(self) -> int:
        """The most devices one device sends to, or receives from: the fewest ppermutes
        any schedule of these arcs needs (König)."""
        ends = Counter(("send", s) for s, _ in self.arcs)
        ends.update(("receive", d) for _, d in self.arcs)
        return max(ends.values(), default=0)


def _check_split(num_agents: int, num_devices: int) -> None:
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"the number of devices must be a positive integer, got {num_devices!r}")
    if num_agents % num_devices:
        fits = [d for d in range(1, num_devices + 1) if num_agents % d == 0]
        raise ValueError(
            f"{num_agents} agents cannot be split evenly over {num_devices} devices (every "
            f"device holds the same number of agents): use a device count that divides "
            f"{num_agents} (devices=k with k in {fits}), or a multiple of {num_devices} agents"
        )


def plan(mixing: np.ndarray, num_devices: int, exchange: str = "auto") -> Plan:
    """The exchange of ``mixing``'s rows between ``num_devices`` devices.

    Args:
        mixing: a Q x Q mixing matrix; only its nonzero pattern and weights are read.
        num_devices: D, which must divide Q.
        exchange: ``"auto"`` (matchings unless the all-gather rule says otherwise),
            ``"matchings"`` or ``"allgather"``.

    Example:
        >>> p = plan(graphs.mixing_matrix(graphs.topology("cycle", 8)), 4)
        >>> p.arcs[(1, 0)], p.arcs[(3, 0)]  # device 0 holds agents 0, 1 and needs 2 and 7
        ((2,), (7,))
        >>> p.schedule.rounds  # two ppermutes, each swapping rows within pairs of devices
        (((0, 3), (1, 2), (2, 1), (3, 0)), ((0, 1), (1, 0), (2, 3), (3, 2)))
        >>> p.schedule.widths, p.schedule.rows_moved, p.schedule.allgather_rows
        ((1, 1), 8, 24)
    """
    if exchange not in EXCHANGES:
        raise ValueError(f"unknown exchange {exchange!r}: use one of {', '.join(EXCHANGES)}")
    weight_matrix = np.asarray(mixing, dtype=float)
    q = len(weight_matrix)
    _check_split(q, num_devices)
    per = q // num_devices
    device = np.arange(q) // per
    index, weight = graphs.neighbours(weight_matrix)
    needs: dict[tuple[int, int], set[int]] = {}
    for agent, r in zip(*np.nonzero(device[index] != device[:, None]), strict=True):
        needs.setdefault((int(device[index[agent, r]]), int(device[agent])), set()).add(
            int(index[agent, r])
        )
    arcs = {arc: tuple(sorted(rows)) for arc, rows in sorted(needs.items())}
    rounds = colour_arcs(arcs)
    widths = [max(len(arcs[arc]) for arc in r) for r in rounds]
    received = np.zeros(num_devices, dtype=int)
    for r, w in zip(rounds, widths, strict=True):
        received[[d for _, d in r]] += w
    busiest = int(received.max(initial=0))
    gather = exchange == "allgather" or (
        exchange == "auto" and num_devices > 1 and busiest >= (num_devices - 1) * per
    )
    schedule = Schedule(
        q,
        num_devices,
        () if gather else tuple(map(tuple, rounds)),
        () if gather else tuple(widths),
        gather,
    )
    if gather:
        return Plan(schedule, index, weight, (), arcs)
    # where each agent's row sits in its destination device's source array
    position: dict[tuple[int, int], int] = {
        (int(e), r): r - int(e) * per for r, e in enumerate(device)
    }
    sends = []
    start = per
    for r, w in zip(rounds, widths, strict=True):
        send = np.zeros((num_devices, w), dtype=int)
        for source, destination in r:
            rows = arcs[(source, destination)]
            send[source, : len(rows)] = np.asarray(rows) - source * per
            position.update({(destination, row): start + i for i, row in enumerate(rows)})
        sends.append(send.ravel())
        start += w
    local = np.array([[position[(int(device[a]), int(r))] for r in index[a]] for a in range(q)])
    return Plan(schedule, local, weight, tuple(sends), arcs)
