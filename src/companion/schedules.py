"""Mixing that changes from step to step: schedules of doubly stochastic matrices W(k).

A schedule gives the mixing matrix of every step. Deterministic schedules repeat a list of
matrices (:func:`periodic`, :func:`one_peer_exponential`). Random schedules draw W(k)
independently at every step from a seeded generator (:func:`random_links`,
:func:`randomized_gossip`); they also know the law of one draw exactly: its expectation
``E[W]`` (:attr:`RandomSchedule.expected`) and, for small graphs, every realization with
its probability (:meth:`RandomSchedule.support`), from which any ``E[f(W)]`` follows.

The closed forms (:func:`companion.dynamics.closed_form`) and training
(:func:`companion.simulate.train`) accept a schedule wherever they accept one matrix, and
:meth:`Schedule.matrices` gives both the same realization for the same seed.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np
import scipy.stats

from companion.graphs import gossip, validate_mixing

__all__ = [
    "PeriodicSchedule",
    "RandomSchedule",
    "Schedule",
    "consensus_by_messages",
    "metropolis",
    "one_peer_exponential",
    "periodic",
    "random_links",
    "randomized_gossip",
    "static_exponential",
]

SUPPORT_LIMIT = 2**12  # largest number of realizations enumerated for exact moments


def metropolis(adjacency: np.ndarray) -> np.ndarray:
    """Metropolis-Hastings weights ``1 / (1 + max(deg q, deg r))`` on the edges of any
    graph, connected or not (isolated agents keep their value).

    Example:
        >>> metropolis(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]])).tolist()
        [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    """
    adjacency = np.asarray(adjacency, dtype=float)
    degree = adjacency.sum(axis=1)
    weights = adjacency / (1.0 + np.maximum.outer(degree, degree))
    return weights + np.diag(1.0 - weights.sum(axis=1))


def require_matrix(mixing: object, *, where: str, fix: str) -> None:
    """Refuses a schedule where only one fixed mixing matrix is supported.

    Example:
      >>> require_matrix(one_peer_exponential(4), where="f", fix="pass one matrix")
      Traceback (most recent call last):
      ...
      ValueError: f takes one fixed mixing matrix, got the schedule 'one-peer exponential': ...
    """
    if isinstance(mixing, Schedule):
        raise ValueError(
            f"{where} takes one fixed mixing matrix, got the schedule {mixing.name!r}: {fix}"
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Schedule(abc.ABC):
    """W(k) for every step k; :meth:`matrices` validates every matrix it returns.

    Attributes:
        num_agents: Q.
        name: how figures and messages call it.
    """

    num_agents: int
    name: str

    def check_agents(self, num_agents: int) -> None:
        """Refuse a problem with another number of agents."""
        if self.num_agents != num_agents:
            raise ValueError(
                f"the schedule '{self.name}' has {self.num_agents} agents but the problem has "
                f"{num_agents}: build the schedule for one node per agent"
            )

    @abc.abstractmethod
    def _draw(self, steps: int) -> np.ndarray:
        """(steps, Q, Q): W(0), ..., W(steps - 1), unvalidated."""

    def matrices(self, steps: int) -> np.ndarray:
        """``W(0), ..., W(steps - 1)``, shape (steps, Q, Q); the first k of ``matrices(n)``
        are ``matrices(k)``, so runs of different lengths share their beginning.

        Raises:
            ValueError: naming the step and the entry of a matrix that is not a valid
                mixing matrix.
        """
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        drawn = self._draw(int(steps))
        for k, mixing in enumerate(drawn):
            validate_mixing(
                mixing, num_agents=self.num_agents, require_connected=False, name=f"W({k})"
            )
        return drawn


@dataclasses.dataclass(frozen=True, kw_only=True)
class PeriodicSchedule(Schedule):
    """``W(k) = cycle[k mod period]``."""

    cycle: tuple[np.ndarray, ...]

    @property
    def period(self) -> int:
        """How many steps before the matrices repeat."""
        return len(self.cycle)

    def _draw(self, steps: int) -> np.ndarray:
        return np.stack([self.cycle[k % self.period] for k in range(steps)])

    def average_gap(self, length: int, start: int = 0) -> float:
        """Largest entry of ``|W(start + length - 1) ... W(start) - 11^T / Q|``: zero when
        those ``length`` steps average exactly.

        Example:
            >>> one_peer_exponential(4).average_gap(2), one_peer_exponential(4).average_gap(1)
            (0.0, 0.25)
        """
        if isinstance(length, bool) or not isinstance(length, int) or length < 1 or start < 0:
            raise ValueError(
                f"length={length!r}, start={start!r}: give a product of length >= 1 steps "
                "starting at a step >= 0"
            )
        chosen = list(self.matrices(start + length)[start:][::-1])
        product = chosen[0] if len(chosen) == 1 else np.linalg.multi_dot(chosen)
        return float(np.abs(product - 1 / self.num_agents).max())


@dataclasses.dataclass(frozen=True, kw_only=True)
class RandomSchedule(Schedule):
    """Independent draws of W(k), one per step.

    Attributes:
        edges: the base graph's edges, the only links a draw can use.
        kind: ``"links"`` (every edge up independently) or ``"gossip"`` (one edge).
        probability: for link failures, the probability that a link is up.
        seed: seeds the sequence of draws.
    """

    edges: tuple[tuple[int, int], ...]
    kind: str
    probability: float = 1.0
    seed: int = 0

    def _one(self, up: np.ndarray) -> np.ndarray:
        """The mixing matrix when the links flagged in ``up`` (or the one edge) are used."""
        adjacency = np.zeros((self.num_agents, self.num_agents))
        for (q, r), on in zip(self.edges, up, strict=True):
            adjacency[q, r] = adjacency[r, q] = on
        if self.kind == "links":
            return metropolis(adjacency)
        return np.eye(self.num_agents) - 0.5 * (np.diag(adjacency.sum(1)) - adjacency)

    def _draw(self, steps: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        count = len(self.edges)
        if self.kind == "links":
            ups = rng.random((steps, count)) < self.probability
        else:
            ups = np.eye(count, dtype=bool)[rng.integers(0, count, steps)]
        return np.stack([self._one(up) for up in ups])

    def reseeded(self, seed: int) -> RandomSchedule:
        """The same law with another seed: another realization."""
        return dataclasses.replace(self, seed=int(seed))

    @property
    def support_size(self) -> int:
        """How many realizations one draw has (edges for gossip, 2^edges for links)."""
        return len(self.edges) if self.kind == "gossip" else 2 ** len(self.edges)

    def support(self) -> list[tuple[float, np.ndarray]]:
        """Every realization of one draw with its probability (exact moments).

        Raises:
            ValueError: when there are more than ``SUPPORT_LIMIT`` realizations.
        """
        count = len(self.edges)
        if self.kind == "gossip":
            return [(1.0 / count, self._one(up)) for up in np.eye(count, dtype=bool)]
        if 2**count > SUPPORT_LIMIT:
            raise ValueError(
                f"{2**count} realizations of {count} random links exceed {SUPPORT_LIMIT}: "
                "exact moments over all of them are for small graphs; use Monte Carlo"
            )
        p = self.probability
        return [
            (float(np.prod(np.where(up, p, 1 - p))), self._one(np.array(up)))
            for up in itertools.product([False, True], repeat=count)
        ]

    @property
    def expected(self) -> np.ndarray:
        """``E[W]``, exactly, for any graph size.

        Gossip: ``I - L / (2 |E|)`` with L the Laplacian of the base graph. Link failures:
        an edge (q, r) is up with probability p, and then its weight is
        ``1 / (1 + max(1 + B_q, 1 + B_r))`` with ``B_q ~ Binomial(deg q - 1, p)`` and
        ``B_r`` the same for r, independent (they count disjoint sets of other edges).
        Neither ``p W + (1 - p) I`` nor the base graph's Metropolis matrix is E[W]: the
        degrees are random too.
        """
        q = self.num_agents
        adjacency = np.zeros((q, q))
        for a, b in self.edges:
            adjacency[a, b] = adjacency[b, a] = 1.0
        degree = adjacency.sum(1).astype(int)
        if self.kind == "gossip":
            laplacian = np.diag(degree) - adjacency
            return np.eye(q) - laplacian / (2 * len(self.edges))
        p, weights = self.probability, np.zeros((q, q))
        for a, b in self.edges:
            others_a = scipy.stats.binom.pmf(np.arange(degree[a]), degree[a] - 1, p)
            others_b = scipy.stats.binom.pmf(np.arange(degree[b]), degree[b] - 1, p)
            joint = np.outer(others_a, others_b)
            larger = 1 + np.maximum.outer(np.arange(degree[a]), np.arange(degree[b]))
            weights[a, b] = weights[b, a] = p * float(np.sum(joint / (1 + larger)))
        return weights + np.diag(1.0 - weights.sum(1))


def periodic(matrices: Sequence[np.ndarray]) -> PeriodicSchedule:
    """The schedule that repeats ``matrices`` in order.

    Example:
        >>> s = periodic([np.eye(2), np.full((2, 2), 0.5)])
        >>> s.period, s.matrices(3)[2].tolist()
        (2, [[1.0, 0.0], [0.0, 1.0]])
    """
    if len(matrices) == 0:
        raise ValueError("a periodic schedule needs at least one mixing matrix")
    cycle = tuple(np.asarray(m, dtype=float) for m in matrices)
    for k, mixing in enumerate(cycle):
        validate_mixing(mixing, num_agents=len(cycle[0]), require_connected=False, name=f"W({k})")
    return PeriodicSchedule(num_agents=len(cycle[0]), name="periodic", cycle=cycle)


def _exponential_shifts(num_agents: int) -> list[np.ndarray]:
    """The permutations ``i -> (i + 2^j) mod Q``, j = 0..log2 Q - 1, for Q a power of two."""
    if (
        isinstance(num_agents, bool)
        or not isinstance(num_agents, int | np.integer)
        or num_agents < 2
        or num_agents & (num_agents - 1)
    ):
        raise ValueError(
            f"the exponential graphs need a power of two of agents (2, 4, 8, ...), "
            f"got {num_agents!r}"
        )
    agents = np.arange(num_agents)
    shifts = []
    for j in range(int(math.log2(num_agents))):
        shift = np.zeros((num_agents, num_agents))
        shift[agents, (agents + 2**j) % num_agents] = 1.0
        shifts.append(shift)
    return shifts


def one_peer_exponential(num_agents: int) -> PeriodicSchedule:
    """The one-peer exponential graph (Ying et al. 2021): at step k every agent i averages
    with agent ``(i + 2^(k mod log2 Q)) mod Q``, ``W(k) = (I + P_k) / 2`` with P_k that
    shift. For Q a power of two, any ``log2 Q`` consecutive steps multiply to ``11^T / Q``.
    Each agent sends one message per step.

    Example:
        >>> w = one_peer_exponential(4).matrices(2)
        >>> bool(np.all(w[1] @ w[0] == 0.25))
        True
    """
    cycle = tuple((np.eye(num_agents) + shift) / 2 for shift in _exponential_shifts(num_agents))
    return PeriodicSchedule(num_agents=num_agents, name="one-peer exponential", cycle=cycle)


def static_exponential(num_agents: int) -> np.ndarray:
    """The static exponential graph's mixing matrix (Ying et al. 2021): every agent i
    averages, with equal weights ``1 / (1 + log2 Q)``, itself and the agents
    ``i + 2^j mod Q``; each agent sends ``log2 Q`` messages per step.

    Example:
        >>> static_exponential(4).round(3)[0].tolist()
        [0.333, 0.333, 0.333, 0.0]
    """
    shifts = _exponential_shifts(num_agents)
    return (np.eye(num_agents) + sum(shifts)) / (1 + len(shifts))


def _edges(graph: nx.Graph) -> tuple[tuple[int, int], ...]:
    if graph.number_of_edges() == 0:
        raise ValueError("the base graph has no edges: a random schedule needs links to draw")
    return tuple((int(a), int(b)) for a, b in graph.edges())


def random_links(graph: nx.Graph, probability: float, *, seed: int = 0) -> RandomSchedule:
    """Random link failures (Kar and Moura 2008): each edge of ``graph`` is up with
    ``probability``, independently at every step; W(k) is the Metropolis-Hastings matrix
    of the links that are up, so it stays doubly stochastic.

    Example:
        >>> from companion.graphs import topology
        >>> s = random_links(topology("cycle", 4), 0.7)
        >>> round(float(s.expected[0, 1]), 5)
        0.24383
    """
    if not isinstance(probability, int | float) or not 0 <= probability <= 1:
        raise ValueError(f"link probability p={probability!r} must lie in [0, 1]")
    return RandomSchedule(
        num_agents=graph.number_of_nodes(),
        name=f"random links, p = {probability:g}",
        edges=_edges(graph),
        kind="links",
        probability=float(probability),
        seed=seed,
    )


def randomized_gossip(graph: nx.Graph, *, seed: int = 0) -> RandomSchedule:
    """Randomized gossip (Boyd et al. 2006): at every step one edge of ``graph``, drawn
    uniformly, averages its two agents.

    Example:
        >>> from companion.graphs import topology
        >>> randomized_gossip(topology("path", 3)).expected.round(3).tolist()
        [[0.75, 0.25, 0.0], [0.25, 0.5, 0.25], [0.0, 0.25, 0.75]]
    """
    return RandomSchedule(
        num_agents=graph.number_of_nodes(),
        name="randomized gossip",
        edges=_edges(graph),
        kind="gossip",
        seed=seed,
    )


def consensus_by_messages(
    mixings: Mapping[str, tuple[np.ndarray | Schedule, int]], start: np.ndarray, budget: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Plain consensus ``x <- W(k) x`` from ``start`` (:func:`companion.graphs.gossip`)
    against the messages each agent has sent, for a fair comparison at equal communication.

    Args:
        mixings: name -> (one mixing matrix or a schedule, messages per agent per step).
        start: the initial values, one per agent.
        budget: messages per agent; each graph runs ``budget // cost`` steps.

    Returns:
        name -> (messages sent after each step, disagreement after each step).

    Example:
        >>> curves = consensus_by_messages(
        ...     {"one-peer": (one_peer_exponential(4), 1)}, np.arange(4.0), 2)
        >>> curves["one-peer"][0].tolist(), curves["one-peer"][1].round(6).tolist()
        ([0, 1, 2], [1.0, 0.632456, 0.0])
    """
    out = {}
    for name, (mixing, cost) in mixings.items():
        if isinstance(cost, bool) or not isinstance(cost, int) or not 1 <= cost <= budget:
            raise ValueError(
                f"{name}: {cost!r} messages per step with a budget of {budget!r}: give a "
                "whole number of messages between 1 and the budget"
            )
        rounds = budget // cost
        ws = mixing.matrices(rounds) if isinstance(mixing, Schedule) else mixing
        out[name] = (cost * np.arange(rounds + 1), gossip(ws, start, rounds))
    return out
