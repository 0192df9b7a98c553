"""The experiments' vocabulary: the paper's graphs, comparisons, seeds and tables.

A :class:`Comparison` puts the closed form (:func:`companion.dynamics.closed_form`) next to
training (:func:`companion.simulate.train`) for one algorithm and one mixing matrix;
:func:`grid` runs it for every (topology, algorithm) pair, :func:`over_seeds` for several
initializations of one setting (with a deliberately wrong prediction beside each),
:func:`over_graphs` on every graph, :func:`ensemble` with one step size and the networks
trained together, and :func:`table` tabulates any per-comparison quantities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from companion import dynamics, graphs, metrics, simulate
from companion.problem import Problem
from companion.trajectory import Trajectory, relative_error

__all__ = [
    "PAPER_TOPOLOGIES",
    "Comparison",
    "SeedRuns",
    "compare",
    "confusions",
    "ensemble",
    "grid",
    "identified",
    "mixings",
    "over_graphs",
    "over_seeds",
    "rival_agreements",
    "table",
]

Cell = TypeVar("Cell")

#: The three graphs of the paper's experiments.
PAPER_TOPOLOGIES = ("cycle", "star", "complete")
#: The agreement metrics a seed summary tabulates.
SUMMARY = (
    "final_loss_rel_err",
    "log_loss_gap",
    "worst_agent_loss_rel_err",
    "consensus_rel_err",
    "test_loss_rel_err",
    "test_accuracy_gap",
)


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
    def agreement(self) -> metrics.Agreement:
        """The discriminating agreement metrics (:func:`companion.metrics.agreement`)."""
        return metrics.agreement(self.predicted, self.observed)

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


@dataclasses.dataclass(frozen=True)
class SeedRuns:
    """One setting over several initializations: for each seed the closed form, the
    training run, and a deliberately wrong prediction (the closed form at a step size off
    by ``control_factor``).

    Attributes:
        seeds: the initialization seeds.
        problems: one problem per seed.
        predicted, observed, control: one trajectory per seed each.
        control_factor: the wrong prediction's step size relative to the trained one.
    """

    seeds: tuple[int, ...]
    problems: tuple[Problem, ...]
    predicted: tuple[Trajectory, ...]
    observed: tuple[Trajectory, ...]
    control: tuple[Trajectory, ...]
    control_factor: float

    def agreements(self) -> list[metrics.Agreement]:
        """The agreement of each seed's closed form with its training run."""
        pairs = zip(self.predicted, self.observed, strict=True)
        return [metrics.agreement(p, o) for p, o in pairs]

    def control_agreements(self) -> list[metrics.Agreement]:
        """The same metrics for the wrong prediction."""
        pairs = zip(self.control, self.observed, strict=True)
        return [metrics.agreement(c, o) for c, o in pairs]

    def orderings(self) -> np.ndarray:
        """(seeds, 2): for each seed, :func:`companion.metrics.ordering` of the closed form
        against the run (how often the full order of the agents' local losses agrees, and
        how often the worst agent does)."""
        pairs = zip(self.predicted, self.observed, strict=True)
        return np.array([metrics.ordering(p, o) for p, o in pairs])

    def kernel_drift(self) -> list[float]:
        """For each seed, :func:`companion.metrics.kernel_drift` of the trained network
        averaged over agents: how far its tangent kernel moved from ``K_0`` in training."""
        drifts = []
        for p, o in zip(self.problems, self.observed, strict=True):
            if p.inputs is None or p.network is None or o.final_params is None:
                raise ValueError(
                    "kernel_drift needs each seed's model, inputs and trained parameters: "
                    "train the networks themselves (linearized runs keep no final_params)"
                )
            drifts.append(
                float(metrics.kernel_drift(p.network, o.final_params, p.inputs, p.kernel).mean())
            )
        return drifts

    def median(self, metric: str, *, control: bool = False) -> float:
        """The median over seeds of one :class:`companion.metrics.Agreement` field."""
        runs = self.control_agreements() if control else self.agreements()
        return metrics.spread([getattr(a, metric) for a in runs])[0]

    def agreements_against(
        self, mixing: np.ndarray, wrong: Callable[[Problem], Problem] | None = None
    ) -> list[metrics.Agreement]:
        """The agreement with each seed's run of another prediction: the closed form of
        ``wrong(problem)`` (the problem itself if ``wrong`` is None) with the run's
        algorithm and step size on ``mixing``. The rival "the graph does not matter" is
        the complete graph's ``mixing``; a wrong partition is a ``wrong`` problem."""
        values = []
        for problem, run in zip(self.problems, self.observed, strict=True):
            other = problem if wrong is None else wrong(problem)
            form = dynamics.closed_form(other, run.algorithm, mixing, lr=run.lr)
            values.append(metrics.agreement(form.steps(int(run.steps[-1])), run))
        return values

    def median_against(
        self, wrong: Callable[[Problem], Problem], mixing: np.ndarray, metric: str
    ) -> float:
        """The median over seeds of one agreement metric for another deliberately wrong
        prediction (:meth:`agreements_against`)."""
        runs = self.agreements_against(mixing, wrong)
        return metrics.spread([getattr(a, metric) for a in runs])[0]

    def summary(self) -> pd.DataFrame:
        """Median, minimum and maximum over seeds of every agreement metric, for the closed
        form and for the wrong prediction."""
        rows = {}
        for label, runs in (
            ("closed form", self.agreements()),
            (f"step size x{self.control_factor:g}", self.control_agreements()),
        ):
            for name in SUMMARY:
                values = [getattr(a, name) for a in runs]
                if all(v is not None for v in values):
                    rows[label, name] = metrics.spread(values)
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=["median", "min", "max"])
        frame.index = pd.MultiIndex.from_tuples(list(rows), names=["prediction", "metric"])
        return frame


def over_seeds(
    problem_for: Callable[[int], Problem],
    algorithm: str,
    mixing: np.ndarray,
    *,
    lr_scale: float,
    steps: int,
    seeds: Sequence[int],
    control_factor: float = 1.2,
    save_at: simulate.SaveAt | None = None,
    progress: bool = False,
) -> SeedRuns:
    """Closed form, training and a wrong prediction for each seed's problem.

    The step size is ``lr_scale / L_max`` of each seed's own kernel, as in the chapters.
    """
    if len(seeds) == 0:
        raise ValueError("seeds is empty: give at least one initialization seed")
    problems, predicted, observed, control = [], [], [], []
    for seed in tqdm(seeds, desc=f"{algorithm} over seeds", disable=not progress):
        problem = problem_for(seed)
        lr = lr_scale / problem.curvature
        problems.append(problem)
        predicted.append(_closed_form(problem, algorithm, mixing, lr, steps))
        control.append(_closed_form(problem, algorithm, mixing, control_factor * lr, steps))
        observed.append(
            simulate.train(
                problem, algorithm, mixing, lr=lr, steps=steps, save_at=save_at, progress=False
            )
        )
    return SeedRuns(
        tuple(seeds),
        tuple(problems),
        tuple(predicted),
        tuple(observed),
        tuple(control),
        control_factor,
    )


def over_graphs(
    problem_for: Callable[[int], Problem],
    algorithm: str,
    mixings: Mapping[str, np.ndarray],
    **over_seeds_args: Any,
) -> dict[str, SeedRuns]:
    """:func:`over_seeds` on every graph of ``mixings`` (name -> mixing matrix) with the same
    problems, seeds and step-size rule (``over_seeds_args``): the runs that one level of a
    :class:`companion.graph_effect.GraphGrid` holds."""
    if not mixings:
        raise ValueError("mixings is empty: give at least one graph's mixing matrix")
    return {n: over_seeds(problem_for, algorithm, w, **over_seeds_args) for n, w in mixings.items()}


def ensemble(
    problem_for: Callable[[int], Problem],
    algorithm: str,
    mixing: np.ndarray,
    *,
    lr: float,
    steps: int,
    seeds: Sequence[int],
    control_factor: float = 1.2,
    save_at: simulate.SaveAt | None = None,
) -> SeedRuns:
    """:func:`over_seeds` with one step size ``lr`` for every seed, the networks trained
    together (:func:`companion.simulate.train_ensemble`, vmapped over seeds).

    The problems of ``problem_for`` must share data, partition and model, and differ only
    in ``params``: a seed ensemble of one setting, whose spread over initializations is
    what :mod:`companion.infinite` predicts.
    """
    problems = [problem_for(seed) for seed in seeds]
    observed = simulate.train_ensemble(
        problems[0],
        [p.params for p in problems],
        algorithm,
        mixing,
        lr=lr,
        steps=steps,
        save_at=save_at,
        progress=False,
    )
    return SeedRuns(
        tuple(seeds),
        tuple(problems),
        tuple(_closed_form(p, algorithm, mixing, lr, steps) for p in problems),
        observed,
        tuple(_closed_form(p, algorithm, mixing, control_factor * lr, steps) for p in problems),
        control_factor,
    )


def _closed_form(problem: Problem, algorithm: str, mixing: np.ndarray, lr: float, steps: int):
    """The closed form's trajectory over steps 0..steps."""
    return dynamics.closed_form(problem, algorithm, mixing, lr=lr).steps(steps)


def confusions(
    runs: Mapping[str, SeedRuns],
    distance: Callable[[Trajectory, Trajectory], float] = metrics.graph_distance,
) -> list[dict[str, dict[str, float]]]:
    """For each seed, :func:`companion.metrics.confusion` of the closed forms of every graph
    against the networks trained on every graph; ``runs`` maps a graph's name to one
    algorithm's :class:`SeedRuns` on it, all over the same seeds."""
    counts = {len(r.seeds) for r in runs.values()}
    if len(counts) != 1:
        raise ValueError(f"the graphs' runs cover different numbers of seeds: {sorted(counts)}")
    return [
        metrics.confusion(
            {name: r.predicted[i] for name, r in runs.items()},
            {name: r.observed[i] for name, r in runs.items()},
            distance,
        )
        for i in range(counts.pop())
    ]


def rival_agreements(
    runs: Mapping[str, SeedRuns], rival: str
) -> dict[str, list[metrics.Agreement]]:
    """For each graph's runs, the agreement with each trained network of the closed form of
    the graph ``rival`` (one of ``runs``) on the same seed: "the graph does not matter",
    with the rival's closed forms already computed. Every graph's runs must share the
    seeds' problems and step sizes."""
    if rival not in runs:
        raise ValueError(f"rival graph {rival!r} is not among the runs' graphs {list(runs)}")
    forms = runs[rival].predicted
    out = {}
    for name, r in runs.items():
        if r.seeds != runs[rival].seeds or any(
            not np.isclose(f.lr, o.lr, rtol=1e-12) for f, o in zip(forms, r.observed, strict=True)
        ):
            raise ValueError(
                f"graph {name!r} was run on other seeds or step sizes than the rival "
                f"{rival!r}: run every graph over the same seeds and lr_scale"
            )
        out[name] = [metrics.agreement(f, o) for f, o in zip(forms, r.observed, strict=True)]
    return out


def identified(
    runs: Mapping[str, SeedRuns],
    distance: Callable[[Trajectory, Trajectory], float] = metrics.graph_distance,
) -> list[bool]:
    """For each seed, whether every network's own graph has the closest closed form
    (:func:`companion.metrics.identified` of :func:`confusions`)."""
    return [metrics.identified(table) for table in confusions(runs, distance)]


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
    comparisons: Mapping[tuple[str, str], Cell],
    columns: Mapping[str, Callable[[Cell], float]],
) -> pd.DataFrame:
    """One row per (topology, algorithm) cell (a :class:`Comparison` or :class:`SeedRuns`),
    one column per named quantity.

    Example:
        >>> t = table({}, {"error": lambda c: c.max_rel_err})
        >>> list(t.columns), list(t.index.names)
        (['error'], ['topology', 'algorithm'])
    """
    rows = {cell: {name: f(c) for name, f in columns.items()} for cell, c in comparisons.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(columns))
    frame.index = pd.MultiIndex.from_tuples(list(rows), names=["topology", "algorithm"])
    return frame
