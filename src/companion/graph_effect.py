"""The graph's effect: how much the choice of graph changes training, predicted and trained.

Train the same problem from the same ``theta_0`` on two graphs ``a`` and ``b``. The graph's
effect on the final loss is ``log(L_a(T) / L_b(T))``, with ``L`` the paper's global loss
averaged over agents (``Trajectory.mean_global_loss``); its effect on speed is
``log(k_a / k_b)``, with ``k`` the steps to a target loss. The closed forms of ``a`` and
``b`` predict both. The rival, "the graph does not matter" (one closed form for every
graph, the complete graph's), predicts 0 for every pair.

The relative error ``|predicted - observed| / |observed|`` of the rival is exactly 1, so it
cannot compete on that scale; the two are compared on the absolute errors instead,
``|predicted - observed|`` against ``|0 - observed|``, paired over pairs and seeds
(:func:`companion.rivals.margin`); :class:`GraphGrid` tabulates it by setting.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from companion import experiments, metrics, rivals
from companion.trajectory import Trajectory

__all__ = [
    "PREDICTIONS",
    "GraphEffect",
    "GraphGrid",
    "agreement_margin",
    "effects",
    "final_loss",
    "steps_to",
    "target_loss",
]


def final_loss(trajectory: Trajectory) -> float:
    """The global loss averaged over agents, ``(1/Q) sum_q L(theta_q)``, at the last saved
    step."""
    return float(trajectory.mean_global_loss[-1])


def steps_to(trajectory: Trajectory, target: float, at: np.ndarray | None = None) -> float:
    """The first step at which the global loss averaged over agents reaches ``target``, with
    ``log L`` interpolated linearly between saved steps (so a run saved every 10 steps still
    resolves a fraction of a step); ``inf`` if it never does. ``at`` restricts the curve to
    those saved steps (a closed form read at the steps a training run saved, so both are
    interpolated alike).

    Example:
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.zeros((1, 1)), partition=[np.array([0])],
        ...             kernel=np.eye(1), f0=np.ones((1, 1)))
        >>> t = Trajectory.build(p, algorithm="dgd", lr=0.1, method="primal",
        ...     steps=np.array([0, 10]), predictions=np.array([1.0, 0.01])[:, None, None, None],
        ...     consensus_distance=np.zeros(2), param_distance=np.zeros((2, 1)))
        >>> steps_to(t, 0.5 * 1e-2), steps_to(t, 1e-6)
        (5.0, inf)
    """
    steps = np.asarray(trajectory.saved_steps)
    rows = np.arange(len(steps)) if at is None else np.searchsorted(steps, at)
    if at is not None and not np.array_equal(steps[np.minimum(rows, len(steps) - 1)], at):
        raise ValueError("steps_to: the trajectory did not save every step of `at`")
    loss = np.log(np.asarray(trajectory.mean_global_loss, dtype=float)[rows])
    steps = steps[rows].astype(float)
    goal = np.log(target)
    below = np.flatnonzero(loss <= goal)
    if below.size == 0:
        return float("inf")
    k = int(below[0])
    if k == 0:
        return 0.0
    share = (loss[k - 1] - goal) / (loss[k - 1] - loss[k])
    return float(steps[k - 1] + share * (steps[k] - steps[k - 1]))


def target_loss(runs: Sequence[Trajectory]) -> float:
    """The target of :func:`steps_to` for runs from one start: the geometric midpoint of
    the initial loss and the highest final loss among ``runs``, so every run reaches it
    (when every run ends below where it started) half way down in log scale."""
    start = float(runs[0].mean_global_loss[0])
    highest = max(final_loss(run) for run in runs)
    if not highest < start:
        raise ValueError(
            f"a run ends at loss {highest:.3g}, not below its start {start:.3g}: no target "
            "is reached by every run; train longer or with a stable step size"
        )
    return float(np.sqrt(start * highest))


@dataclasses.dataclass(frozen=True)
class GraphEffect:
    """The graph's effect on one quantity, for every pair of graphs and every seed.

    Attributes:
        pairs: the pairs ``(a, b)`` of graph names, in the order of the rows.
        predicted: (pairs, seeds) the closed forms' log ratio ``log(x_a / x_b)``.
        observed: (pairs, seeds) the trained networks' log ratio.
    """

    pairs: tuple[tuple[str, str], ...]
    predicted: np.ndarray
    observed: np.ndarray

    @property
    def errors(self) -> np.ndarray:
        """(pairs, seeds) ``|predicted - observed|``."""
        return np.abs(self.predicted - self.observed)

    @property
    def rival_errors(self) -> np.ndarray:
        """(pairs, seeds) the rival's error ``|0 - observed|``."""
        return np.abs(self.observed)

    def rel_err(self) -> float:
        """Median over pairs and seeds of ``|predicted - observed| / |observed|``."""
        return _relative(self.errors, self.observed)

    def rival_rel_err(self) -> float:
        """The same for the rival (exactly 1 wherever the observed effect is not 0)."""
        return _relative(self.rival_errors, self.observed)

    def margin(self, seed: int = 0) -> rivals.Margin:
        """The paired margin of our absolute errors over the rival's, pairs x seeds as
        units (:func:`companion.rivals.margin`)."""
        return rivals.margin(
            self.errors.ravel().tolist(), self.rival_errors.ravel().tolist(), seed=seed
        )

    def medians(self) -> dict[str, tuple[float, float]]:
        """``"a/b" -> (predicted, observed)``, medians over seeds."""
        return {
            f"{a}/{b}": (float(np.median(p)), float(np.median(o)))
            for (a, b), p, o in zip(self.pairs, self.predicted, self.observed, strict=True)
        }


def _relative(errors: np.ndarray, observed: np.ndarray) -> float:
    scale = np.abs(observed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(scale > 0, errors / scale, np.where(errors > 0, np.inf, 0.0))
    return float(np.median(ratio))


def effects(
    predicted: Mapping[str, Sequence[Trajectory]],
    observed: Mapping[str, Sequence[Trajectory]],
    measure: str = "final_loss",
) -> GraphEffect:
    """The graph's effect on ``measure`` for every pair of graphs.

    Args:
        predicted: graph name -> the closed form's trajectory for each seed.
        observed: graph name -> the trained run for each seed, the same seeds in the same
            order, every graph's seed ``i`` started from the same ``theta_0``.
        measure: ``"final_loss"`` (:func:`final_loss`) or ``"steps"`` (:func:`steps_to` a
            target set per seed by :func:`target_loss` over every graph's predicted and
            trained runs).
    """
    if measure not in _MEASURES:
        raise ValueError(f"unknown measure {measure!r}: use one of {', '.join(_MEASURES)}")
    names = list(observed)
    counts = {len(observed[n]) for n in names} | {len(predicted.get(n, ())) for n in names}
    if len(names) < 2 or len(counts) != 1 or counts == {0}:
        raise ValueError(
            f"effects needs at least two graphs, each with a prediction and a run for the "
            f"same seeds: got graphs {names} with {sorted(counts)} runs"
        )
    seeds = counts.pop()
    table = {}
    for i in range(seeds):
        runs = [predicted[n][i] for n in names] + [observed[n][i] for n in names]
        value = _MEASURES[measure](runs)
        for n in names:
            run = observed[n][i]
            table["p", n, i] = value(predicted[n][i], run.saved_steps)
            table["o", n, i] = value(run, None)
    pairs = tuple(itertools.combinations(names, 2))

    def ratios(kind: str) -> np.ndarray:
        return np.array(
            [
                [np.log(table[kind, a, i] / table[kind, b, i]) for i in range(seeds)]
                for a, b in pairs
            ]
        )

    return GraphEffect(pairs=pairs, predicted=ratios("p"), observed=ratios("o"))


Measure = Callable[[Trajectory, "np.ndarray | None"], float]


def _final(runs: Sequence[Trajectory]) -> Measure:
    """The final loss (both runs end at the same step, whatever each saved)."""
    del runs
    return lambda run, at: final_loss(run)


def _steps(runs: Sequence[Trajectory]) -> Measure:
    """Steps to the target every run of one seed reaches."""
    target = target_loss(runs)
    return lambda run, at: steps_to(run, target, at)


_MEASURES = {"final_loss": _final, "steps": _steps}


def agreement_margin(
    runs: Mapping[str, experiments.SeedRuns], metric: str, rival: str = "complete"
) -> rivals.Margin:
    """One agreement metric (an :class:`companion.metrics.Agreement` field) of each graph's
    closed form against the rival graph's closed form on the same seeds ("the graph does
    not matter", :func:`companion.experiments.rival_agreements`), paired over the runs on
    every graph but the rival's own, where the two predictions coincide."""
    against = experiments.rival_agreements(runs, rival)
    others = [name for name in runs if name != rival]
    ours = [getattr(a, metric) for name in others for a in runs[name].agreements()]
    theirs = [getattr(a, metric) for name in others for a in against[name]]
    return rivals.margin(ours, theirs)


#: What a :class:`GraphGrid` scores against each trained network: its graph's closed form,
#: the rival graph's, and the closed form at a step size off by ``control_factor``.
PREDICTIONS = ("closed form", "rival", "control")


@dataclasses.dataclass(frozen=True)
class GraphGrid:
    """Runs on three named axes, a setting (``axis``: width, algorithm), the graph and the
    seed, reduced over graphs and seeds. The graphs of a level share seeds, initializations
    and step sizes, so the rival graph's closed form scores each of their runs. Pooled
    values run graph by graph (in :attr:`graphs` order), seed by seed within a graph.

    Attributes:
        runs: level -> graph name -> seed runs (:func:`companion.experiments.over_graphs`).
        axis: the name of the setting, the index name of every table.
        rival: the graph whose closed form is the rival "the graph does not matter" (one of
            the graphs, else the rival's reductions refuse to run).
    """

    runs: Mapping[Hashable, Mapping[str, experiments.SeedRuns]]
    axis: str = "width"
    rival: str = "complete"

    def __post_init__(self) -> None:
        orders = {tuple(by_graph) for by_graph in self.runs.values()}
        if len(orders) != 1:
            raise ValueError(
                f"GraphGrid needs one or more levels with the same graphs in the same order, "
                f"got {sorted(orders)}: run every level on every graph"
            )

    @property
    def graphs(self) -> list[str]:
        """The graphs' names, in the order of every level's runs."""
        return list(next(iter(self.runs.values())))

    def __getitem__(self, key: tuple[Hashable, str]) -> experiments.SeedRuns:
        """``grid[level, graph]``: the seed runs of one cell."""
        return self._level(key[0])[key[1]]

    def _level(self, level: Hashable) -> Mapping[str, experiments.SeedRuns]:
        if level not in self.runs:
            raise ValueError(f"no runs at {self.axis} {level!r}: the levels are {list(self.runs)}")
        return self.runs[level]

    def values(self, level: Hashable, metric: str, prediction: str = "closed form") -> list:
        """One :class:`companion.metrics.Agreement` field of ``prediction`` (one of
        :data:`PREDICTIONS`) against every run at one level, pooled over graphs and seeds."""
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}: use one of {PREDICTIONS}")
        runs = self._level(level)
        if prediction == "rival":
            found = experiments.rival_agreements(runs, self.rival)
        else:
            control = prediction == "control"
            found = {
                g: r.control_agreements() if control else r.agreements() for g, r in runs.items()
            }
        return [getattr(a, metric) for g in self.graphs for a in found[g]]

    def pooled(self, metric: str, prediction: str = "closed form") -> np.ndarray:
        """(graphs x seeds, levels): :meth:`values` with one column per level, the layout of
        :func:`companion.plotting.ntk_width_scaling`."""
        return np.transpose([self.values(level, metric, prediction) for level in self.runs])

    def medians(
        self, labels: Mapping[str, str], predictions: Sequence[str] = PREDICTIONS
    ) -> pd.DataFrame:
        """Rows levels, columns ``(label, prediction)``: the median over graphs and seeds of
        each metric of ``labels`` (Agreement field -> label) for each prediction."""
        columns = {
            (label, p): {k: float(np.median(self.values(k, metric, p))) for k in self.runs}
            for metric, label in labels.items()
            for p in predictions
        }
        return pd.DataFrame(columns).rename_axis(self.axis)

    def cells(self) -> dict[tuple[Hashable, str], experiments.SeedRuns]:
        """``(level, graph)`` -> seed runs."""
        return {(k, g): r for k, runs in self.runs.items() for g, r in runs.items()}

    def cell_medians(self, fields: Sequence[str] = experiments.SUMMARY) -> pd.DataFrame:
        """Rows ``(level, graph)``, columns ``(field, "closed form" | "control")``: the
        median over seeds of each Agreement field in every cell
        (:meth:`companion.experiments.SeedRuns.median`)."""
        kinds = {"closed form": False, "control": True}
        rows = {
            cell: {
                (field, kind): r.median(field, control=control)
                for field in fields
                for kind, control in kinds.items()
            }
            for cell, r in self.cells().items()
        }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis([self.axis, "graph"])

    def orderings(self) -> pd.DataFrame:
        """Rows ``(level, graph)``: the median over seeds of the two fractions of
        :func:`companion.metrics.ordering` ("full order" and "worst agent" agree)."""
        medians = {c: np.median(r.orderings(), axis=0) for c, r in self.cells().items()}
        rows = {c: {"full order": m[0], "worst agent": m[1]} for c, m in medians.items()}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis([self.axis, "graph"])

    def _series(self, values: dict, name: str) -> pd.Series:
        return pd.Series(values, name=name).rename_axis(self.axis)

    def identified(
        self, distance: Callable[[Trajectory, Trajectory], float] = metrics.graph_distance
    ) -> pd.Series:
        """By level, the fraction of seeds at which every network's own graph has the
        closest closed form (:func:`companion.experiments.identified`)."""
        found = {k: experiments.identified(r, distance) for k, r in self.runs.items()}
        return self._series({k: float(np.mean(v)) for k, v in found.items()}, "identified")

    def fraction_ahead(self) -> pd.Series:
        """By level, the fraction of runs (graphs x seeds) whose trained final loss is below
        the closed form's (``final_loss_ratio`` above 1: the network trained faster)."""
        ratios = {k: np.array(self.values(k, "final_loss_ratio")) for k in self.runs}
        return self._series({k: float(np.mean(r > 1)) for k, r in ratios.items()}, "ahead")

    def kernel_drift(self, graph: str) -> pd.Series:
        """By level, the median over seeds of the kernel drift on ``graph``
        (:meth:`companion.experiments.SeedRuns.kernel_drift`)."""
        drift = {k: float(np.median(self[k, graph].kernel_drift())) for k in self.runs}
        return self._series(drift, "kernel drift")

    def gap_until(self, horizons: Sequence[int]) -> pd.DataFrame:
        """Rows levels, columns ``horizons``: the median over graphs and seeds of the
        log-loss gap up to each horizon (:func:`companion.metrics.log_loss_gap_until`)."""
        rows = {}
        for level, runs in self.runs.items():
            pairs = [x for r in runs.values() for x in zip(r.predicted, r.observed, strict=True)]
            rows[level] = np.median([metrics.log_loss_gap_until(*x, horizons) for x in pairs], 0)
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(horizons))
        return frame.rename_axis(index=self.axis, columns="horizon")

    def confusion(self, level: Hashable, seed: int = 0) -> pd.DataFrame:
        """Rows the graph a network was trained on, columns the graph of a closed form: the
        graph distance between them at one level and seed index
        (:func:`companion.experiments.confusions`)."""
        table = experiments.confusions(self._level(level))[seed]
        return pd.DataFrame(table).T.loc[self.graphs, self.graphs]

    def effects(self, measure: str = "final_loss") -> dict[Hashable, GraphEffect]:
        """Level -> the graph's effect on ``measure`` (:func:`effects`)."""
        out = {}
        for level, runs in self.runs.items():
            predicted = {g: r.predicted for g, r in runs.items()}
            out[level] = effects(predicted, {g: r.observed for g, r in runs.items()}, measure)
        return out

    def effect_table(self, measure: str = "final_loss") -> pd.DataFrame:
        """Rows the pairs ``"a/b"``, columns ``(level, "predicted" | "trained")``: the
        medians over seeds of the log ratios (:meth:`GraphEffect.medians`)."""
        columns = {
            (level, kind): {pair: m[i] for pair, m in effect.medians().items()}
            for level, effect in self.effects(measure).items()
            for i, kind in enumerate(("predicted", "trained"))
        }
        return pd.DataFrame(columns).rename_axis(index="log ratio", columns=[self.axis, None])

    def effect_errors(self, measures: Sequence[str] = tuple(_MEASURES)) -> pd.DataFrame:
        """Rows levels, columns ``(measure, "closed form" | "rival")``: the relative error of
        the predicted effect (:meth:`GraphEffect.rel_err`, :meth:`GraphEffect.rival_rel_err`)."""
        columns = {}
        for measure in measures:
            found = self.effects(measure)
            columns[measure, "closed form"] = {k: e.rel_err() for k, e in found.items()}
            columns[measure, "rival"] = {k: e.rival_rel_err() for k, e in found.items()}
        return pd.DataFrame(columns).rename_axis(self.axis)

    def margin(self, metric: str, level: Hashable) -> rivals.Margin:
        """:func:`agreement_margin` of one metric at one level, against :attr:`rival`."""
        return agreement_margin(self._level(level), metric, self.rival)
