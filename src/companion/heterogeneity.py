"""Heterogeneous data judged against its rivals.

The closed form credits the partition: it predicts each agent's dynamics from the rows that
agent holds. Two cheap explanations do without that credit, and a claim about skewed data
must beat both on the same trained networks:

- ``"step"``: the closed form at a step size off by 20% (the deliberately wrong prediction
  :func:`companion.experiments.over_seeds` already computes). Where it is as close to
  training as the closed form, the metric cannot resolve the dynamics at all.
- ``"iid"``: the closed form of the i.i.d. partition of the same data, run with the same
  step size and initialization, and scored on the agents' *actual* rows: "heterogeneity
  does not matter; the networks learn what they would learn from i.i.d. shares". For the
  i.i.d. partition itself this rival is the closed form, so it is judged there by the
  step rival alone.

The units are (partition, seed) pairs, paired across the two predictions
(:func:`companion.rivals.margin`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from companion import data, dynamics, experiments, limits, metrics, models, rivals
from companion import problem as problem_lib
from companion.experiments import SeedRuns
from companion.problem import Problem
from companion.trajectory import Trajectory, relative_error

__all__ = [
    "RIVALS",
    "BiasedFits",
    "Judged",
    "biased_fits",
    "consensus_table",
    "error_spreads",
    "interpolation_gap",
    "judge",
    "judged_tables",
    "network_runs",
    "partitions",
    "rescored",
    "schemes",
]

#: The rivals, in words, by the key :class:`Judged` uses.
RIVALS = {
    "step": "the closed form at 1.2 times the trained step size",
    "iid": "the closed form of the i.i.d. partition of the same data (same step size and "
    "initialization), scored on each agent's own rows",
}


def rescored(trajectory: Trajectory, problem: Problem) -> Trajectory:
    """The same predictions scored on ``problem``'s partition: each agent's local loss on
    the rows it holds in ``problem``, whatever partition produced the predictions.

    Example:
        >>> p = Problem(targets=np.zeros((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.array([[1.0], [0.0]]))
        >>> t = dynamics.closed_form(p, "dgd", np.eye(2), lr=0.5).steps(1)
        >>> swapped = p.replace(partition=[np.array([1]), np.array([0])])
        >>> rescored(t, swapped).local_loss[0].tolist()  # agent 0 now holds row 1
        [0.0, 0.5]
    """
    return Trajectory.build(
        problem,
        algorithm=trajectory.algorithm,
        lr=trajectory.lr,
        method=trajectory.method,
        steps=trajectory.steps,
        consensus_distance=trajectory.consensus_distance,
        param_distance=trajectory.param_distance,
        predictions=trajectory.predictions,
        test_predictions=trajectory.test_predictions,
    )


@dataclasses.dataclass(frozen=True)
class Judged:
    """One metric per (partition, seed) for the closed form and each rival, at one width.

    Attributes:
        ours: partition -> the closed form's metric, one value per seed.
        rivals: rival key (:data:`RIVALS`) -> partition -> the rival's metric per seed;
            the ``"iid"`` rival leaves out the i.i.d. partition (where it is the closed
            form).
    """

    ours: dict[str, tuple[float, ...]]
    rivals: dict[str, dict[str, tuple[float, ...]]]

    def margin(self, rival: str) -> rivals.Margin:
        """Paired margin over the rival, over every (partition, seed) it applies to."""
        if rival not in self.rivals:
            raise ValueError(f"unknown rival {rival!r}: use one of {', '.join(self.rivals)}")
        names = list(self.rivals[rival])
        ours = [v for n in names for v in self.ours[n]]
        theirs = [v for n in names for v in self.rivals[rival][n]]
        return rivals.margin(ours, theirs)

    @property
    def strongest(self) -> str:
        """The rival whose margin's interval starts lowest: the one the claim must beat."""
        return min(self.rivals, key=lambda r: self.margin(r).interval[0])

    def fields(self) -> dict[str, object]:
        """What :func:`companion.book.report.record` takes for this width's rivals: both
        rivals in words, each one's median over its units, and the margin (with its
        interval) over the strongest, which a claim must beat to beat both."""
        strongest = self.margin(self.strongest)
        return {
            "rival": "the stronger of two rivals, "
            + "; ".join(f"{key}: {words}" for key, words in RIVALS.items())
            + f" (here {self.strongest})",
            "rival_value": {key: self.margin(key).rival for key in self.rivals},
            "margin": strongest.margin,
            "margin_interval": list(strongest.interval),
        }

    def medians(self, rival: str | None = None) -> dict[str, float]:
        """Median over seeds by partition, of ours (``rival=None``) or of a rival."""
        table = self.ours if rival is None else self.rivals[rival]
        return {name: float(np.median(v)) for name, v in table.items()}


def judge(
    runs: Mapping[str, SeedRuns],
    iid: str,
    mixing: np.ndarray,
    metric: str = "worst_agent_loss_rel_err",
) -> Judged:
    """Scores the closed form and both rivals against the trained networks of one width.

    Args:
        runs: partition name -> the :class:`SeedRuns` of that partition (same seeds, same
            data, same initializations across partitions).
        iid: the name of the i.i.d. partition in ``runs``.
        mixing: the mixing matrix the networks were trained with.
        metric: a per-run field of :class:`companion.metrics.Agreement`.

    Trained examples (linearized and real networks) are in ``tests/test_heterogeneity.py``.
    """
    if iid not in runs:
        raise ValueError(
            f"iid={iid!r} is not one of the partitions {list(runs)}: name the "
            "i.i.d. split, the heterogeneity rival's partition"
        )
    seeds = {len(r.seeds) for r in runs.values()}
    if len(seeds) != 1 or seeds.pop() < 2:
        raise ValueError("every partition needs the same number (>= 2) of seeds to be paired")
    reference = runs[iid].problems

    def scores(pairs) -> tuple[float, ...]:
        return tuple(float(getattr(metrics.agreement(p, o), metric)) for p, o in pairs)

    def iid_rival(r: SeedRuns) -> tuple[float, ...]:
        predicted = []
        for problem, other, run in zip(r.problems, reference, r.observed, strict=True):
            form = dynamics.closed_form(
                problem.replace(partition=other.partition), run.algorithm, mixing, lr=run.lr
            )
            predicted.append(rescored(form.steps(int(run.steps[-1])), problem))
        return scores(zip(predicted, r.observed, strict=True))

    return Judged(
        ours={n: scores(zip(r.predicted, r.observed, strict=True)) for n, r in runs.items()},
        rivals={
            "step": {n: scores(zip(r.control, r.observed, strict=True)) for n, r in runs.items()},
            "iid": {n: iid_rival(r) for n, r in runs.items() if n != iid},
        },
    )


def schemes(alphas: Sequence[float]) -> dict[str, dict[str, object]]:
    """The partitions of a label-skew sweep, by name: one per-class Dirichlet split per
    concentration (``"alpha = 0.1"``) and the i.i.d. split (``"iid"``), as keyword
    arguments of :func:`companion.data.partition_indices`.

    Example:
        >>> list(schemes([0.1, 10.0]))
        ['alpha = 0.1', 'alpha = 10', 'iid']
    """
    if len(alphas) == 0:
        raise ValueError("alphas is empty: give at least one Dirichlet concentration")
    out: dict[str, dict[str, object]] = {
        f"alpha = {a:g}": dict(scheme="dirichlet", alpha=a) for a in alphas
    }
    out["iid"] = dict(scheme="iid")
    return out


def partitions(
    labels: np.ndarray,
    num_agents: int,
    scheme_set: Mapping[str, Mapping[str, object]],
    *,
    seed: int,
    num_classes: int = 10,
) -> dict[str, list[np.ndarray]]:
    """Each scheme's split of the rows with ``labels`` across ``num_agents`` agents
    (:func:`companion.data.partition_indices`, seeded ``seed``).

    Example:
        >>> split = partitions(np.arange(8) % 2, 2, schemes([1.0]), seed=0, num_classes=2)
        >>> sorted(np.concatenate(split["iid"]).tolist()) == list(range(8))
        True
    """
    if not scheme_set:
        raise ValueError("scheme_set is empty: pass schemes(alphas) or name one split")
    return {
        name: data.partition_indices(
            labels,
            num_agents,
            seed=seed,
            num_classes=num_classes,
            **kw,  # type: ignore[arg-type]
        )
        for name, kw in scheme_set.items()
    }


def consensus_table(
    problems: Mapping[str, Problem], transients: Mapping[str, Trajectory]
) -> pd.DataFrame:
    """Each partition's largest local curvature ``L_max`` and its consensus distance at its
    peak and at the last step, largest peak first."""
    table = pd.DataFrame(
        {
            "L_max": {n: p.curvature for n, p in problems.items()},
            "consensus distance, peak": {
                n: t.consensus_distance.max() for n, t in transients.items()
            },
            "consensus distance, last step": {
                n: t.consensus_distance[-1] for n, t in transients.items()
            },
        }
    )
    return table.sort_values("consensus distance, peak", ascending=False)


@dataclasses.dataclass(frozen=True)
class BiasedFits:
    """Outside interpolation, by partition: the bias of the DGD fixed point from the
    centralized fit, the agents' sizes, and how far the centralized fit itself moved from
    the i.i.d. split's (``shift``, the i.i.d. split left out)."""

    bias: dict[str, float]
    sizes: dict[str, list[int]]
    shift: dict[str, float]


def biased_fits(
    model: models.Model,
    dataset: data.Dataset,
    split: Mapping[str, Sequence[np.ndarray]],
    mixing: np.ndarray,
    *,
    iid: str = "iid",
    lr_scale: float = 0.25,
    seed: int = 0,
) -> BiasedFits:
    """DGD's exact fixed point (step ``lr_scale / L_max``) against the centralized fit
    (:func:`companion.limits.centralized`) of every partition of ``split``; ``model`` at
    ``theta_0`` seeded ``seed`` on ``dataset``. Examples are in ``tests/test_heterogeneity.py``.
    """
    if iid not in split:
        raise ValueError(
            f"iid={iid!r} is not one of the partitions {list(split)}: name the i.i.d. split"
        )
    fits = {}
    for name, parts in split.items():
        p = problem_lib.from_dataset(model, dataset, parts, seed=seed)
        form = dynamics.closed_form(p, "dgd", mixing, lr=lr_scale / p.curvature)
        fits[name] = (limits.fixed_point(form), limits.centralized(p))
    return BiasedFits(
        bias={
            name: relative_error(point, np.broadcast_to(central, point.shape))
            for name, (point, central) in fits.items()
        },
        sizes={name: [len(r) for r in parts] for name, parts in split.items()},
        shift={
            name: relative_error(central, fits[iid][1])
            for name, (_, central) in fits.items()
            if name != iid
        },
    )


def network_runs(
    dataset: data.Dataset,
    split: Mapping[str, Sequence[np.ndarray]],
    widths: Sequence[int],
    mixing: np.ndarray,
    *,
    lr_scale: float,
    steps: int,
    seeds: int,
    seed: int = 0,
) -> dict[tuple[str, int], SeedRuns]:
    """DGD on ``mixing`` for every (partition, width): a ReLU MLP of two hidden layers,
    trained from ``seeds`` initializations (seeded ``seed``, ``seed + 1``, ...) beside its
    closed form and the 1.2x step-size rival (:func:`companion.experiments.over_seeds`)."""
    if len(widths) == 0 or seeds < 1:
        raise ValueError(f"widths={widths!r}, seeds={seeds!r}: give a width and seeds >= 1")

    def runs(name: str, width: int) -> SeedRuns:
        net = models.mlp(width, 2, 10)
        return experiments.over_seeds(
            lambda s: problem_lib.from_dataset(net, dataset, split[name], seed=seed + s),
            "dgd",
            mixing,
            lr_scale=lr_scale,
            steps=steps,
            seeds=range(seeds),
        )

    return {(name, w): runs(name, w) for name in split for w in widths}


def judged_tables(judged: Mapping[int, Judged]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables of :class:`Judged` by width: the medians over seeds of the closed form
    and of each rival by (partition, width), and each rival's paired margin by (width,
    rival)."""
    if not judged:
        raise ValueError("judged is empty: judge at least one width")
    names = list(next(iter(judged.values())).ours)
    medians = pd.DataFrame(
        {
            (name, w): {"closed form": j.medians()[name]}
            | {key: j.medians(key).get(name, np.nan) for key in j.rivals}
            for name in names
            for w, j in judged.items()
        }
    ).T.rename_axis(["partition", "width"])
    margins = pd.DataFrame(
        {(w, key): vars(j.margin(key)) for w, j in judged.items() for key in j.rivals}
    ).T.rename_axis(["width", "rival"])
    return medians, margins


def error_spreads(
    runs: Mapping[tuple[str, int], SeedRuns], metric: str = "worst_agent_loss_rel_err"
) -> dict[str, dict[int, tuple[float, float, float]]]:
    """``(median, min, max)`` over seeds of one agreement ``metric``, by partition and width
    (what :func:`companion.plotting.error_by_partition` draws)."""
    out: dict[str, dict[int, tuple[float, float, float]]] = {}
    for (name, width), r in runs.items():
        values = [getattr(a, metric) for a in r.agreements()]
        out.setdefault(name, {})[width] = metrics.spread(values)
    return out


def interpolation_gap(problems: Mapping[str, Problem], mixing: np.ndarray, *, lr: float) -> float:
    """The worst relative error of any agent's exact DGD fixed point
    (:func:`companion.limits.fixed_point`) against the training targets, over every
    partition's problem: zero to rounding when the kernel is positive definite, whatever
    the partition (the centralized interpolant)."""
    if not problems:
        raise ValueError("problems is empty: give at least one partition's problem")
    return max(
        relative_error(point, p.targets)
        for p in problems.values()
        for point in limits.fixed_point(dynamics.closed_form(p, "dgd", mixing, lr=lr))
    )
