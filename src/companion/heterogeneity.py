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
from collections.abc import Mapping

import numpy as np

from companion import dynamics, metrics, rivals
from companion.experiments import SeedRuns
from companion.problem import Problem
from companion.trajectory import Trajectory

__all__ = ["RIVALS", "Judged", "judge", "rescored"]

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
