"""Communication graphs and mixing matrices.

Agents sit on the nodes of a connected undirected graph and mix parameters with a matrix
``W`` whose entry ``W[q, r]`` is positive only on edges and on the diagonal, and whose rows
and columns sum to one (doubly stochastic). Every function here returns plain NumPy arrays
and ``networkx`` graphs whose nodes are ``0 .. Q-1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np

#: Tolerance on row and column sums when checking double stochasticity. Float64 sums of
#: at most a few hundred entries that are each exact to 1 ulp stay far inside it.
STOCHASTIC_TOL = 1e-10


def _grid_side(num_agents: int, name: str) -> int:
    side = math.isqrt(num_agents)
    if side * side != num_agents:
        raise ValueError(
            f"topology {name!r} needs a square number of agents, got {num_agents}; "
            f"use {side * side} or {(side + 1) ** 2}"
        )
    return side


def _grid(num_agents: int, seed: int, periodic: bool) -> nx.Graph:
    side = _grid_side(num_agents, "torus" if periodic else "grid")
    graph = nx.grid_2d_graph(side, side, periodic=periodic)
    return nx.convert_node_labels_to_integers(graph, ordering="sorted")


def _erdos_renyi(num_agents: int, seed: int, p: float = 0.5) -> nx.Graph:
    if not 0 <= p <= 1:
        raise ValueError(f"edge probability p={p!r} must lie in [0, 1]")
    return nx.gnp_random_graph(num_agents, p, seed=seed)


def _random_geometric(num_agents: int, seed: int, radius: float = 0.5) -> nx.Graph:
    if not radius > 0:
        raise ValueError(
            f"radius={radius!r} must be > 0 (nodes closer than it in the unit square are linked)"
        )
    return nx.random_geometric_graph(num_agents, radius, seed=seed)


_BUILDERS: dict[str, Callable[..., nx.Graph]] = {
    "cycle": lambda q, seed: nx.cycle_graph(q),
    "star": lambda q, seed: nx.star_graph(q - 1),
    "complete": lambda q, seed: nx.complete_graph(q),
    "path": lambda q, seed: nx.path_graph(q),
    "grid": lambda q, seed: _grid(q, seed, periodic=False),
    "torus": lambda q, seed: _grid(q, seed, periodic=True),
    "erdos_renyi": _erdos_renyi,
    "random_geometric": _random_geometric,
}

#: Names accepted by :func:`topology`.
TOPOLOGIES = tuple(_BUILDERS)
#: Rules accepted by :func:`mixing_matrix`.
MIXING_RULES = ("metropolis", "max_degree", "laplacian", "uniform", "lazy")

_MIN_AGENTS = {"cycle": 3, "star": 2, "torus": 9}


def topology(name: str, num_agents: int, *, seed: int = 0, **options: float) -> nx.Graph:
    """Builds a communication graph on ``num_agents`` nodes labelled ``0 .. Q-1``.

    Args:
      name: one of :data:`TOPOLOGIES`. The star's hub is node 0.
      num_agents: number of agents Q.
      seed: seed of the random topologies (``erdos_renyi``, ``random_geometric``).
      **options: ``p`` (edge probability) for ``erdos_renyi``, ``radius`` for
        ``random_geometric``.

    Returns:
      The graph. Random graphs are returned as drawn, connected or not: pass them to
      :func:`check_connected` (or :func:`mixing_matrix`) to insist on connectivity.

    Example:
      >>> sorted(topology("star", 4).degree())
      [(0, 3), (1, 1), (2, 1), (3, 1)]
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown topology {name!r}; choose one of {', '.join(TOPOLOGIES)}")
    if not isinstance(num_agents, int | np.integer) or num_agents < _MIN_AGENTS.get(name, 1):
        raise ValueError(
            f"topology {name!r} needs an integer number of agents >= "
            f"{_MIN_AGENTS.get(name, 1)}, got {num_agents!r}"
        )
    graph = _BUILDERS[name](int(num_agents), seed, **options)
    graph.graph["name"] = name
    return graph


def check_connected(graph: nx.Graph) -> None:
    """Raises ``ValueError`` naming the components when ``graph`` is not connected.

    Consensus (every agent reaching the same model) is impossible across components.

    Example:
      >>> check_connected(nx.Graph([(0, 1), (2, 3)]))
      Traceback (most recent call last):
      ...
      ValueError: graph is disconnected: 2 components ([0, 1], [2, 3]); ...
    """
    if graph.number_of_nodes() == 0:
        raise ValueError("graph has no nodes; build one with companion.graphs.topology")
    if not nx.is_connected(graph):
        parts = sorted(sorted(c) for c in nx.connected_components(graph))
        shown = ", ".join(str(p) for p in parts[:4])
        raise ValueError(
            f"graph is disconnected: {len(parts)} components ({shown}); consensus needs a "
            "connected graph: add edges, or raise the edge probability or radius, or change "
            "the seed"
        )


def _check_simple(graph: nx.Graph) -> None:
    loops = list(nx.selfloop_edges(graph))
    if loops:
        raise ValueError(
            f"graph has a self-loop at node {loops[0][0]}; self-weights live on W's diagonal, "
            "remove the loop edge"
        )
    nodes = sorted(graph.nodes)
    if nodes != list(range(len(nodes))):
        raise ValueError(
            "graph nodes must be labelled 0 .. Q-1; relabel with "
            "networkx.convert_node_labels_to_integers"
        )


def mixing_matrix(
    graph: nx.Graph, rule: str = "metropolis", *, eps: float | None = None
) -> np.ndarray:
    """Builds a symmetric doubly stochastic mixing matrix for ``graph``.

    Rules:

    * ``metropolis``: ``W[q, r] = 1 / (1 + max(deg q, deg r))`` on edges.
    * ``max_degree``: ``W[q, r] = 1 / (1 + max_degree)`` on edges.
    * ``laplacian``: ``W = I - eps * L`` with ``0 < eps < 1 / max_degree``
      (default ``eps = 1 / (1 + max_degree)``, which reproduces the ``max_degree`` rule).
    * ``uniform``: ``W = 11^T / Q``; only for the complete graph.
    * ``lazy``: ``(I + W_metropolis) / 2``, positive semidefinite on every graph (half of
      each step's weight stays home).

    The diagonal fills each row to one.

    Example:
      >>> mixing_matrix(topology("cycle", 4)).round(3)
      array([[0.333, 0.333, 0.   , 0.333],
             [0.333, 0.333, 0.333, 0.   ],
             [0.   , 0.333, 0.333, 0.333],
             [0.333, 0.   , 0.333, 0.333]])
    """
    _check_simple(graph)
    check_connected(graph)
    q = graph.number_of_nodes()
    degree = np.array([graph.degree(i) for i in range(q)], dtype=float)
    # weight=None: every edge counts 1 whatever its attributes (networkx's stub says str)
    adjacency = nx.to_numpy_array(graph, nodelist=range(q), weight=None)  # pyright: ignore[reportArgumentType]
    if rule == "metropolis":
        weights = adjacency / (1.0 + np.maximum.outer(degree, degree))
    elif rule == "max_degree":
        weights = adjacency / (1.0 + degree.max())
    elif rule == "laplacian":
        bound = 1.0 / degree.max()
        step = 1.0 / (1.0 + degree.max()) if eps is None else float(eps)
        if not 0.0 < step < bound:
            raise ValueError(
                f"laplacian rule needs 0 < eps < 1/max_degree = {bound:.4g}, got eps={step}"
            )
        weights = step * adjacency
    elif rule == "lazy":
        return 0.5 * (np.eye(q) + mixing_matrix(graph, "metropolis"))
    elif rule == "uniform":
        if adjacency.sum() != q * (q - 1):
            raise ValueError(
                "the uniform rule W = 11^T/Q needs the complete graph; use 'metropolis' here"
            )
        return np.full((q, q), 1.0 / q)
    else:
        raise ValueError(f"unknown mixing rule {rule!r}; choose one of {', '.join(MIXING_RULES)}")
    return weights + np.diag(1.0 - weights.sum(axis=1))


def validate_mixing(
    mixing: Any,
    graph: nx.Graph | None = None,
    *,
    num_agents: int | None = None,
    require_connected: bool = True,
    name: str = "mixing",
) -> np.ndarray:
    """Checks that ``mixing`` is a valid mixing matrix and returns it as float64.

    The one validator of mixing matrices: the closed forms, training and stability all call
    it. Checks, in order: square 2-D shape (with ``num_agents`` rows, and ``Q`` nodes when
    ``graph`` is given), finite and non-negative entries, rows and columns summing to one
    within :data:`STOCHASTIC_TOL`, nonzeros only on the diagonal and on edges of ``graph``,
    and a connected support (otherwise consensus is impossible).

    Args:
      mixing: the Q x Q matrix W.
      graph: if given, W may only put weight on its edges.
      num_agents: if given, the number of agents W must serve.
      require_connected: refuse a W whose support is disconnected.
      name: how messages call the matrix (e.g. ``"mixing at step 3"``).

    Raises:
      ValueError: naming the offending row, entry or edge and the fix.

    Example:
      >>> validate_mixing([[0.5, 0.5], [0.4, 0.6]])
      Traceback (most recent call last):
      ...
      ValueError: column 0 of mixing sums to 0.9, not 1 (tolerance 1e-10): W must be ...
    """
    try:
        w = np.asarray(mixing, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be a Q x Q matrix of numbers, got {type(mixing).__name__}: pass one "
            "mixing matrix W (companion.graphs.mixing_matrix)"
        ) from error
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"{name} must be a square Q x Q matrix, got shape {w.shape}")
    q = w.shape[0]
    if num_agents is not None and q != num_agents:
        raise ValueError(
            f"{name} is {q} x {q} but the problem has {num_agents} agents: build W for a "
            "graph with one node per agent"
        )
    if graph is not None and graph.number_of_nodes() != q:
        raise ValueError(f"{name} is {q} x {q} but the graph has {graph.number_of_nodes()} nodes")
    bad = np.argwhere(~np.isfinite(w))
    if bad.size:
        i, j = bad[0]
        raise ValueError(
            f"{name} has {len(bad)} non-finite entries, first at [{i}, {j}]: every weight "
            "must be a finite number"
        )
    bad = np.argwhere(w < -STOCHASTIC_TOL)
    if bad.size:
        i, j = bad[0]
        raise ValueError(
            f"{name}[{i}, {j}] = {w[i, j]:.4g} is negative: mixing weights must be "
            "non-negative (use companion.graphs.mixing_matrix)"
        )
    for axis, kind in ((1, "row"), (0, "column")):
        sums = w.sum(axis=axis)
        off = np.flatnonzero(np.abs(sums - 1.0) > STOCHASTIC_TOL)
        if off.size:
            i = off[0]
            raise ValueError(
                f"{kind} {i} of {name} sums to {sums[i]:.12g}, not 1 (tolerance "
                f"{STOCHASTIC_TOL:g}): W must be doubly stochastic; "
                "companion.graphs.mixing_matrix builds one for any undirected graph"
            )
    if graph is not None:
        _check_simple(graph)
        for i, j in np.argwhere(w > 0):
            if i != j and not graph.has_edge(int(i), int(j)):
                raise ValueError(
                    f"{name} does not match the graph: W[{i}, {j}] = {w[i, j]:.4g} > 0 "
                    f"but ({i}, {j}) is not an edge; zero it or add the edge"
                )
    if require_connected:
        support = nx.from_numpy_array(((w + w.T) > 0) & ~np.eye(q, dtype=bool))
        check_connected(support)
    return w


def neighbours(mixing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each agent's neighbours and their weights, the agent itself first (even at weight
    0), padded to the largest neighbourhood with the agent itself at weight 0:
    ``(index, weight)``, both (Q, D).

    Mixing then reads only along edges, ``(W x)_q = sum_d weight[q, d] x[index[q, d]]``,
    and weights ``[1, 0, ..., 0]`` leave every agent where it is.

    Example:
      >>> index, weight = neighbours(mixing_matrix(topology("path", 3)))
      >>> index.tolist()
      [[0, 1, 0], [1, 0, 2], [2, 1, 2]]
      >>> weight.round(3).tolist()
      [[0.667, 0.333, 0.0], [0.333, 0.333, 0.333], [0.667, 0.333, 0.0]]
    """
    w = np.asarray(mixing, dtype=float)
    support = [[q] + [r for r in np.flatnonzero(row) if r != q] for q, row in enumerate(w)]
    width = max(len(s) for s in support)
    index = np.array([s + [q] * (width - len(s)) for q, s in enumerate(support)])
    weight = np.take_along_axis(w, index, axis=1)
    for q, s in enumerate(support):
        weight[q, len(s) :] = 0.0
    return index, weight


def spectrum(mixing) -> np.ndarray:
    """Eigenvalues of a symmetric mixing matrix, in decreasing order.

    Example:
      >>> spectrum(mixing_matrix(topology("cycle", 4))).round(4)
      array([ 1.    ,  0.3333,  0.3333, -0.3333])
    """
    w = validate_mixing(mixing, require_connected=False)
    if not np.allclose(w, w.T, atol=STOCHASTIC_TOL):
        raise ValueError("spectrum() needs a symmetric mixing matrix (undirected graph)")
    return np.linalg.eigvalsh(w)[::-1]


def second_largest_modulus(mixing) -> float:
    """``max(|lambda_2|, |lambda_Q|)``: the per-step contraction of ``x <- W x``.

    Disagreement ``x - mean(x)`` shrinks at least as fast as this number to the power k.

    Example:
      >>> round(second_largest_modulus(mixing_matrix(topology("complete", 5), "uniform")), 12)
      0.0
    """
    eig = spectrum(mixing)
    return float(max(abs(eig[1]), abs(eig[-1]))) if eig.size > 1 else 0.0


def gossip(mixing, x0, steps: int) -> np.ndarray:
    """Runs plain consensus ``x <- W x`` and returns the disagreement at each step.

    ``mixing`` is one W, or a stack (steps, Q, Q) of W(0), W(1), ... (a schedule's
    ``matrices(steps)``), applied in turn.

    Returns:
      Array of length ``steps + 1``: ``||x_k - mean(x0)|| / ||x0 - mean(x0)||``.

    Example:
      >>> w = mixing_matrix(topology("complete", 4), "uniform")
      >>> gossip(w, [1.0, 0.0, 0.0, 0.0], 2).round(6)
      array([1., 0., 0.])
    """
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0 (mixing rounds), got {steps!r}")
    if np.ndim(mixing) == 3:  # a schedule: each W(k) alone need not be connected
        if len(mixing) < steps:
            raise ValueError(f"{len(mixing)} mixing matrices for {steps} steps: give one per step")
        ws = [
            validate_mixing(w, require_connected=False, name=f"W({k})")
            for k, w in enumerate(mixing[: max(steps, 1)])
        ]
    else:
        ws = [validate_mixing(mixing)]
    w = ws[0]
    x = np.asarray(x0, dtype=float)
    if x.shape[0] != w.shape[0]:
        raise ValueError(
            f"x0 has {x.shape[0]} entries but the matrix is {w.shape[0]} x {w.shape[0]}"
        )
    mean = x.mean(axis=0)
    scale = np.linalg.norm(x - mean)
    if scale == 0:
        raise ValueError("x0 is already in consensus; start from unequal values")
    out = [1.0]
    for k in range(steps):
        x = ws[k % len(ws)] @ x
        out.append(float(np.linalg.norm(x - mean) / scale))
    return np.array(out)


def observed_rate(disagreement, floor: float = 1e-10) -> float:
    """Geometric mean contraction per step of a decaying curve, before it hits ``floor``.

    Used to compare consensus measured with :func:`gossip` against the predicted rate
    :func:`second_largest_modulus`. A curve that drops below ``floor`` in one step has rate 0.

    Example:
      >>> observed_rate([1.0, 0.5, 0.25, 0.125])
      0.5
    """
    d = np.asarray(disagreement, dtype=float)
    if d.ndim != 1 or d.size < 2 or not np.isfinite(d).all() or d[0] <= floor:
        raise ValueError(
            "disagreement must be a finite 1-D curve of at least 2 steps starting above "
            f"floor={floor:g}, as companion.graphs.gossip returns"
        )
    above = np.flatnonzero(d > floor)
    last = int(above[-1])
    if last == 0:
        return 0.0
    # Skip the first half: the slowest mode dominates only after the others have decayed.
    first = last // 2
    return float((d[last] / d[first]) ** (1.0 / (last - first)))
