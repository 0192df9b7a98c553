"""The topology experiments' vocabulary: the paper's graphs, a grid of comparisons, and
the agreement table.

A :class:`Comparison` puts the closed form (:func:`companion.dynamics.closed_form`) next to
training (:func:`companion.simulate.train`) for one algorithm and one mixing matrix;
:func:`grid` runs it for every (topology, algorithm) pair, and :func:`table` tabulates
any per-comparison quantities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from companion import dynamics, graphs, simulate
from companion.problem import Problem
from companion.trajectory import Trajectory, relative_error

__all__ = ["PAPER_TOPOLOGIES", "Comparison", "compare", "grid", "mixings", "table"]

#: The three graphs of the paper's experiments.
PAPER_TOPOLOGIES = ("cycle", "star", "complete")


def mixings(
    num_agents: int, names: Sequence[str] = PAPER_TOPOLOGIES, rule: str = "metropolis"
) -> dict[str, np.ndarray]:
    """Mixing matrices by topology name (:func:`companion.graphs.mixing_matrix`).

    Example:
        >>> {k: w.shape for k, w in mixings(4).items()}
        {'cycle': (4, 4), 'star': (4, 4), 'complete': (4, 4)}
    """
    return {n: graphs.mixing_matrix(graphs.topology(n, num_agents), rule) for n in names}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The closed form and a training run of the same algorithm on the same problem."""

    predicted: Trajectory
    observed: Trajectory

    @property
    def mean_loss_error(self) -> float:
        """Relative L2 error of the predicted mean local-loss curve against the observed."""
        return relative_error(self.predicted.mean_loss, self.observed.mean_loss)

    @property
    def max_rel_err(self) -> float:
        """Worst relative error over per-agent losses and predictions (exactness checks)."""
        saved = self.observed.saved_steps
        return max(
            relative_error(self.predicted.local_loss, self.observed.local_loss),
            relative_error(self.predicted.predictions[saved], self.observed.predictions),
        )


def compare(
    problem: Problem,
    algorithm: str,
    mixing: np.ndarray,
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    progress: bool = False,
) -> Comparison:
    """Closed form against training for one algorithm and one mixing matrix."""
    predicted = dynamics.closed_form(problem, algorithm, mixing, lr=lr).steps(steps)
    observed = simulate.train(
        problem, algorithm, mixing, lr=lr, steps=steps, linearize=linearize, progress=progress
    )
    return Comparison(predicted=predicted, observed=observed)


def grid(
    problem: Problem,
    mixings: Mapping[str, np.ndarray],
    algorithms: Sequence[str],
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    progress: bool = True,
) -> dict[tuple[str, str], Comparison]:
    """:func:`compare` for every (topology, algorithm) pair, with one progress bar."""
    pairs = [(t, a) for t in mixings for a in algorithms]
    return {
        (topo, alg): compare(problem, alg, mixings[topo], lr=lr, steps=steps, linearize=linearize)
        for topo, alg in tqdm(pairs, desc="topology x algorithm", disable=not progress)
    }


def table(
    comparisons: Mapping[tuple[str, str], Comparison],
    columns: Mapping[str, Callable[[Comparison], float]],
) -> pd.DataFrame:
    """One row per (topology, algorithm) cell, one column per named quantity.

    Example:
        >>> t = table({}, {"error": lambda c: c.max_rel_err})
        >>> list(t.columns), list(t.index.names)
        (['error'], ['topology', 'algorithm'])
    """
    rows = {cell: {name: f(c) for name, f in columns.items()} for cell, c in comparisons.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(columns))
    frame.index = pd.MultiIndex.from_tuples(list(rows), names=["topology", "algorithm"])
    return frame
