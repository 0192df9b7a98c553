"""A second benchmark against digits: the same validation by width on two data sets.

Every claim of the book's first chapters rests on scikit-learn's 8x8 digits. This module
runs the closed form's validation on MNIST-1D (Greydanus 2020) and on digits at
the same sizes, side by side: one seed ensemble of trained MLPs per (data set, width) and
graph (:class:`Training`, :func:`companion.experiments.ensemble`), then the reductions the
comparison needs, each paired over initializations against the closed form at 1.2 times
the step size (:func:`companion.rivals.margin`):

- :func:`margins` and :func:`margin_table`: one agreement metric per (data set, width);
- :func:`width_claim`: a metric by width judged at the largest width;
- :func:`validity`: the validity map of the infinite-width chapter (the log-loss gap up to
  each horizon, against ``log 1.05``) and the fraction of horizons within it;
- :func:`fall_factors` and :func:`verdict_table`: how the error changes with width.

Sweeps are dictionaries keyed by ``(data set name, width)`` in the order they were run, so
"the smallest" and "the largest" width are the first and last of that order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from companion import data as data_lib
from companion import experiments, graph_effect, metrics, models, rivals, twins
from companion import problem as problem_lib
from companion.data import Dataset
from companion.experiments import SeedRuns
from companion.trajectory import SaveAt

__all__ = [
    "NAMES",
    "WITHIN",
    "Training",
    "Validity",
    "datasets",
    "describe",
    "effects",
    "fall_factors",
    "gaps",
    "margin_table",
    "margins",
    "medians",
    "partitions",
    "validity",
    "verdict_table",
    "width_claim",
]

#: The two data sets, the harder one first.
NAMES = ("MNIST-1D", "digits")
#: The validity map's tolerance on the log-loss gap: the curves within 5% of each other.
WITHIN = float(np.log(1.05))

Sweep = Mapping[tuple[str, int], SeedRuns]
Table = Mapping[tuple[str, int], rivals.Margin]


def datasets(n_train: int, n_test: int, *, seed: int, generated: int = 5000) -> dict[str, Dataset]:
    """MNIST-1D (from ``generated`` signals of its package's generator) and digits, each
    with ``n_train`` training and ``n_test`` test samples drawn by ``seed``, targets centred
    (one-hot minus 1/10), keyed by :data:`NAMES`.

    Example:
        >>> sets = datasets(20, 10, seed=0, generated=100)
        >>> {name: d.x_train.shape for name, d in sets.items()}
        {'MNIST-1D': (20, 40), 'digits': (20, 64)}
    """
    return {
        "MNIST-1D": data_lib.load_mnist1d_dataset(
            n_train, n_test, seed=seed, center_targets=True, generated=generated
        ),
        "digits": data_lib.load_digits_dataset(n_train, n_test, seed=seed, center_targets=True),
    }


def partitions(
    sets: Mapping[str, Dataset], num_agents: int, *, seed: int
) -> dict[str, list[np.ndarray]]:
    """Each data set's i.i.d. split of its training rows over ``num_agents`` agents
    (:func:`companion.data.partitioner` with ``seed``)."""
    return {name: data_lib.partitioner(d, seed=seed)(num_agents) for name, d in sets.items()}


def describe(sets: Mapping[str, Dataset]) -> pd.DataFrame:
    """Features, training and test samples and classes of each data set, one column each.

    Example:
        >>> describe(datasets(20, 10, seed=0, generated=100))["MNIST-1D"].tolist()
        [40, 20, 10, 10]
    """
    return pd.DataFrame(
        {
            name: {
                "features": d.x_train.shape[1],
                "train": len(d.x_train),
                "test": len(d.x_test),
                "classes": d.num_classes,
            }
            for name, d in sets.items()
        }
    )


@dataclasses.dataclass(frozen=True)
class Training:
    """How every ensemble of the benchmark is trained: ``seeds`` ReLU MLPs of ``depth``
    hidden layers (NTK parameterization) from ``theta_0`` drawn by seeds ``0..seeds-1``,
    trained with ``algorithm`` for ``steps`` steps at ``lr_scale`` over the first network's
    largest local curvature ``L_max``, predictions saved every ``save_every`` steps, each
    beside its closed form and the closed form at 1.2 times the step size."""

    depth: int
    seeds: int
    lr_scale: float
    steps: int
    save_every: int
    algorithm: str = "dgd"

    def __post_init__(self) -> None:
        for name in ("depth", "seeds", "steps", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name}={getattr(self, name)} must be at least 1: give a positive count"
                )
        if not self.lr_scale > 0:
            raise ValueError(
                f"lr_scale={self.lr_scale} must be positive: give eta times L_max, e.g. 0.5"
            )

    def runs(
        self, dataset: Dataset, partition: Sequence[np.ndarray], width: int, graph: str
    ) -> SeedRuns:
        """The seed ensemble of one data set, width and graph (a topology name of
        :func:`companion.graphs.topology` on ``len(partition)`` agents, Metropolis weights):
        :func:`companion.experiments.ensemble`."""
        mixing = experiments.mixings(len(partition), [graph])[graph]
        model = models.mlp(width, self.depth, dataset.num_classes)
        problems = [
            problem_lib.from_dataset(model, dataset, partition, seed=s) for s in range(self.seeds)
        ]
        return experiments.ensemble(
            problems.__getitem__,
            self.algorithm,
            mixing,
            lr=self.lr_scale / problems[0].curvature,
            steps=self.steps,
            seeds=range(self.seeds),
            save_at=SaveAt(every=self.save_every),
        )

    def sweep(
        self,
        sets: Mapping[str, Dataset],
        splits: Mapping[str, Sequence[np.ndarray]],
        widths: Sequence[int],
        graph: str,
    ) -> dict[tuple[str, int], SeedRuns]:
        """:meth:`runs` for every data set of ``sets`` (split by ``splits``) and width, on
        one graph, keyed by ``(name, width)``."""
        if not widths:
            raise ValueError("widths is empty: give at least one hidden width")
        return {
            (name, width): self.runs(dataset, splits[name], width, graph)
            for name, dataset in sets.items()
            for width in widths
        }

    def over_graphs(
        self,
        dataset: Dataset,
        partition: Sequence[np.ndarray],
        width: int,
        graphs: Sequence[str],
        known: Mapping[str, SeedRuns] | None = None,
    ) -> dict[str, SeedRuns]:
        """:meth:`runs` on every graph of ``graphs`` from the same initializations; a graph
        of ``known`` (runs this training already made on it, at this width and on this
        data) is taken from there instead of trained again."""
        known = dict(known or {})
        if unknown := sorted(set(known) - set(graphs)):
            raise ValueError(
                f"known runs on {unknown} are not among the graphs {list(graphs)}: give known "
                "runs only for graphs that are compared"
            )
        return {
            g: known[g] if g in known else self.runs(dataset, partition, width, g) for g in graphs
        }


def effects(by_graph: Mapping[str, SeedRuns]) -> graph_effect.GraphEffect:
    """The graph's effect on the final global loss (:func:`companion.graph_effect.effects`)
    between every pair of graphs of ``by_graph`` (graph -> runs from the same
    initializations), predicted by the closed forms and shown by training."""
    return graph_effect.effects(
        {g: r.predicted for g, r in by_graph.items()},
        {g: r.observed for g, r in by_graph.items()},
    )


def _widths(table: Mapping[tuple[str, int], object]) -> list[int]:
    """The widths of a sweep or table, in the order they were run."""
    return list(dict.fromkeys(width for _, width in table))


def _names(table: Mapping[tuple[str, int], object]) -> list[str]:
    """The data sets of a sweep or table, in the order they were run."""
    return list(dict.fromkeys(name for name, _ in table))


def margins(sweep: Sweep, names: Sequence[str]) -> dict[str, Table]:
    """Per metric of ``names`` (fields of :class:`companion.metrics.Agreement`) and per
    ``(data set, width)``: the closed form's metric against the 1.2x rival's, paired over
    seeds (:func:`companion.rivals.margin`)."""
    fields = {f.name for f in dataclasses.fields(metrics.Agreement)}
    if not names or (unknown := sorted(set(names) - fields)):
        raise ValueError(
            f"metrics {unknown or 'none'} are not fields of companion.metrics.Agreement: "
            "name at least one, e.g. 'final_loss_rel_err' or 'log_loss_gap'"
        )
    return {m: {key: _margin(runs, m) for key, runs in sweep.items()} for m in names}


def _margin(runs: SeedRuns, metric: str) -> rivals.Margin:
    return rivals.margin(
        [getattr(a, metric) for a in runs.agreements()],
        [getattr(a, metric) for a in runs.control_agreements()],
    )


def margin_table(by_metric: Mapping[str, Table]) -> pd.DataFrame:
    """One row per ``(data, width)``; per metric of ``by_metric`` (metric -> the
    :func:`margins` table) the columns ``ours``, ``rival`` and ``margin``."""
    frame = pd.DataFrame(
        {
            (m, col): {k: getattr(v, col) for k, v in table.items()}
            for m, table in by_metric.items()
            for col in ("ours", "rival", "margin")
        }
    )
    return frame.rename_axis(["data", "width"])


def medians(table: Table, name: str) -> dict[int, float]:
    """Our median of one data set's :func:`margins` table, by width.

    Example:
        >>> m = rivals.margin([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
        >>> medians({("digits", 32): m, ("other", 32): m}, "digits")
        {32: 0.2}
    """
    if name not in _names(table):
        raise ValueError(f"data set {name!r} is not in the table {_names(table)}: pick one of them")
    return {w: table[name, w].ours for w in _widths(table)}


def width_claim(table: Table, name: str, *, bound: float) -> dict[str, object]:
    """The fields of :func:`companion.book.report.record` for one data set's metric by
    width, lower is better: ``value`` (ours by width), ``rival_value`` (the rival by width),
    the margin and interval at the largest width, and ``passed`` when ours is at most
    ``bound`` there and its interval lies above zero.

    Example:
        >>> m = rivals.margin([0.1, 0.1, 0.1], [0.3, 0.3, 0.3])
        >>> f = width_claim({("digits", 32): m}, "digits", bound=0.15)
        >>> f["value"], f["rival_value"], f["passed"]
        ({32: 0.1}, {32: 0.3}, True)
    """
    ours = medians(table, name)
    top = table[name, _widths(table)[-1]]
    return {
        "value": ours,
        "passed": bool(top.ours <= bound and top.beats),
        **top.fields() | {"rival_value": {w: table[name, w].rival for w in ours}},
    }


def gaps(
    runs: SeedRuns, horizons: Sequence[int] | np.ndarray, *, control: bool = False
) -> np.ndarray:
    """(seeds, horizons): each seed's log-loss gap up to each horizon
    (:func:`companion.metrics.log_loss_gap_until`), of the closed form or, with ``control``,
    of the 1.2x rival."""
    predictions, steps = runs.control if control else runs.predicted, [int(h) for h in horizons]
    return np.array(
        [
            metrics.log_loss_gap_until(p, o, steps)
            for p, o in zip(predictions, runs.observed, strict=True)
        ]
    )


@dataclasses.dataclass(frozen=True)
class Validity:
    """Where the closed form stays within :data:`WITHIN` of training.

    Attributes:
        horizons: the saved steps up to which the gaps are taken.
        maps: per data set, (widths, horizons) medians over seeds of the log-loss gap up to
            each horizon.
        fractions: per data set and width, the fraction of horizons whose median is within.
        judged: the data set the claim is about.
        rival_fractions: the same fractions of ``judged`` for the 1.2x rival, by width.
        margin: at ``judged``'s largest width, each seed's fraction within against the
            rival's, paired over seeds (higher is better).
    """

    horizons: np.ndarray
    maps: dict[str, np.ndarray]
    fractions: dict[str, dict[int, float]]
    judged: str
    rival_fractions: dict[int, float]
    margin: rivals.Margin

    def claim(self, least: float) -> dict[str, object]:
        """The fields of :func:`companion.book.report.record` for ``judged``'s fractions by
        width: ``passed`` when at least ``least`` at the largest width and ahead of the
        rival there, per seed."""
        ours = self.fractions[self.judged]
        top = ours[list(ours)[-1]]
        return {
            "value": ours,
            "passed": bool(top >= least and self.margin.beats),
            **self.margin.fields() | {"rival_value": self.rival_fractions},
        }


def validity(sweep: Sweep, count: int, *, judged: str = NAMES[0]) -> Validity:
    """The validity map of every data set of ``sweep`` at about ``count`` horizons (saved
    steps after step 0 evenly spread up to the last, :func:`companion.twins.horizons`), its
    fractions of horizons within :data:`WITHIN`, and ``judged``'s against the 1.2x rival."""
    names, widths = _names(sweep), _widths(sweep)
    if judged not in names:
        raise ValueError(f"judged={judged!r} is not a data set of the sweep {names}: pick one")
    horizons = twins.horizons(sweep[judged, widths[0]].observed[0].saved_steps, count)
    maps = {n: np.stack([np.median(gaps(sweep[n, w], horizons), 0) for w in widths]) for n in names}
    fractions = {
        n: {w: float(np.mean(maps[n][i] <= WITHIN)) for i, w in enumerate(widths)} for n in names
    }
    rival_fractions = {
        w: float(np.mean(np.median(gaps(sweep[judged, w], horizons, control=True), 0) <= WITHIN))
        for w in widths
    }
    per_seed = [
        np.mean(gaps(sweep[judged, widths[-1]], horizons, control=c) <= WITHIN, 1)
        for c in (False, True)
    ]
    margin = rivals.margin(*per_seed, higher_is_better=True)
    return Validity(horizons, maps, fractions, judged, rival_fractions, margin)


def fall_factors(table: Table) -> dict[str, float]:
    """Per data set, how many times smaller our median is at the largest width than at the
    smallest (below 1: it grows with width).

    Example:
        >>> a, b = (rivals.margin([e] * 3, [1.0] * 3) for e in (0.2, 0.05))
        >>> fall_factors({("digits", 32): a, ("digits", 512): b})
        {'digits': 4.0}
    """
    widths = _widths(table)
    return {n: table[n, widths[0]].ours / table[n, widths[-1]].ours for n in _names(table)}


def verdict_table(table: Table, fractions: Mapping[str, Mapping[int, float]]) -> pd.DataFrame:
    """By width (rows), per data set, our median (the ``final-loss error`` of a
    final-loss table) and the fraction of horizons ``within 5%`` (:attr:`Validity.fractions`).
    """
    return pd.DataFrame(
        {
            (name, what): values
            for name in _names(table)
            for what, values in (
                ("final-loss error", medians(table, name)),
                ("within 5%", fractions[name]),
            )
        }
    ).rename_axis("width")
