"""Seed ensembles of trained networks against the infinite-width prediction.

:func:`errors` puts the sample mean, variance and mean global loss of S networks trained
from independent initializations (:func:`companion.simulate.train_ensemble`) beside the
moments :mod:`companion.infinite` predicts, each error with its noise floor: what S draws
from a correctly predicted distribution would show by chance. A width sweep runs on named
settings, (graph, algorithm) pairs: :func:`predict` builds the prediction of every
setting, :func:`train` the ensembles of every width and setting (:func:`sizes` networks
each), and :func:`sweeps` reduces them to one :class:`Sweep` per error.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from companion import infinite, rivals, simulate
from companion.infinite import InfiniteWidth, Moments
from companion.problem import Problem
from companion.trajectory import SaveAt, Trajectory

__all__ = [
    "NAMES",
    "Bands",
    "EnsembleErrors",
    "Prediction",
    "Sweep",
    "bands",
    "errors",
    "frame",
    "predict",
    "sizes",
    "slope",
    "sweep",
    "sweeps",
    "train",
]

#: The errors of a sweep, by key, and what tables and figures call them.
NAMES = {"mean": "ensemble mean", "variance": "ensemble variance", "loss": "expected loss"}

Setting = tuple[str, str]  # (graph, algorithm)
Runs = Mapping[tuple[int, str, str], Sequence[Trajectory]]  # by (width, graph, algorithm)


@dataclasses.dataclass(frozen=True)
class EnsembleErrors:
    """How far the sample moments of S trained networks are from the predicted moments,
    per saved step (rows) and agent (columns), each beside its noise floor: the error that
    S draws from a correctly predicted distribution would show by chance.

    Attributes:
        steps: (K,) the steps the runs saved.
        mean, mean_floor: ``||F_bar - mu|| / ||y||`` over the training and test
            predictions (``y`` all their targets), and ``sqrt(tr C_hat / S) / ||y||``; with
            a ``drive``, of the runs minus it.
        variance, variance_floor: ``|tr C_hat - tr C| / tr C`` of the summed variances,
            and the standard error of ``tr C_hat`` over ``tr C``.
        loss, loss_floor: ``|mean_s L(theta_q) - E L(theta_q)| / E L(theta_q)`` of the
            paper's global loss, and the standard error of the sample mean over
            ``E L(theta_q)``.
    """

    steps: np.ndarray
    mean: np.ndarray
    mean_floor: np.ndarray
    variance: np.ndarray
    variance_floor: np.ndarray
    loss: np.ndarray
    loss_floor: np.ndarray

    def median(self, name: str) -> float:
        """The median over steps and agents of one error (``"mean"``, ``"variance"``,
        ``"loss"``) or floor (``"mean_floor"``, ...)."""
        return float(np.median(getattr(self, name)))

    def excess(self, name: str) -> float:
        """The median over steps and agents of ``sqrt(max(error^2 - floor^2, 0))``: the part
        of an error that sampling does not explain (both squares are expectations of the
        same sum, so their difference estimates the squared systematic error)."""
        error, floor = getattr(self, name), getattr(self, f"{name}_floor")
        return float(np.median(np.sqrt(np.maximum(error**2 - floor**2, 0))))


def errors(
    moments: Moments, runs: Sequence[Trajectory], drive: np.ndarray | None = None
) -> EnsembleErrors:
    """Sample mean, variance and mean global loss of ``runs`` (one per initialization, all
    saving the same steps) against the predicted ``moments``.

    With ``drive`` (S, K, Q, N, C), each run's predictions minus it enter the sample mean
    (:meth:`companion.infinite.InfiniteWidth.paired`: a zero-mean control variate), so
    the error of the mean and its floor shrink with the part of each run that the
    infinite-width prediction already explains from its own initial outputs.

    Example:
        >>> from companion import models
        >>> from companion.infinite import closed_form
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.eye(2), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.eye(2), model=models.affine(2), params=None,
        ...             kernel=np.eye(4), f0=np.zeros((2, 2)))
        >>> m = closed_form(p, "atc", np.full((2, 2), 0.5), lr=0.2).steps(3)
        >>> errors(m, [m.expected, m.expected]).median("mean")  # no spread at all
        0.0
    """
    if len(runs) < 2 or len({tuple(r.saved_steps) for r in runs}) != 1:
        raise ValueError(
            f"need at least 2 runs that saved the same steps, got {len(runs)} runs saving "
            f"{len({tuple(r.saved_steps) for r in runs})} different sets of steps"
        )
    at = np.asarray(runs[0].saved_steps)
    rows = np.searchsorted(moments.mean.steps, at)
    if rows.max() >= len(moments.mean.steps) or not np.array_equal(moments.mean.steps[rows], at):
        raise ValueError(
            f"the runs saved steps up to {at.max()} but the moments stop at step "
            f"{moments.mean.steps[-1]}: compute the moments over as many steps"
        )
    mean, variance = moments.mean.predictions[rows], moments.variance[rows]
    samples, targets = np.stack([r.predictions for r in runs]), moments.targets
    test = moments.test_targets is not None and runs[0].test_predictions is not None
    if test and moments.test_variance is not None and moments.test_targets is not None:
        mean = np.concatenate([mean, np.asarray(moments.mean.test_predictions)[rows]], -2)
        variance = np.concatenate([variance, moments.test_variance[rows]], -1)
        drawn = np.stack([np.asarray(r.test_predictions) for r in runs])
        samples = np.concatenate([samples, drawn], -2)
        targets = np.concatenate([targets, moments.test_targets])
    count, outputs, scale = len(runs), samples.shape[-1], np.linalg.norm(targets)
    if drive is not None and np.shape(drive) != samples.shape:
        raise ValueError(
            f"drive must have the runs' shape {samples.shape} (runs, steps, agents, inputs, "
            f"outputs), got {np.shape(drive)}: build it with "
            "companion.infinite.InfiniteWidth.paired(runs)"
        )
    centred = samples if drive is None else samples - drive
    squares = np.sum((samples - samples.mean(0)) ** 2, (-2, -1)) * count / (count - 1)
    residual = np.sum((centred - centred.mean(0)) ** 2, (-2, -1)) * count / (count - 1)
    spread, predicted = squares.mean(0), outputs * variance.sum(-1)
    losses, expected = np.stack([r.global_loss for r in runs]), moments.expected.global_loss[rows]
    return EnsembleErrors(
        steps=at,
        mean=np.linalg.norm(centred.mean(0) - mean, axis=(-2, -1)) / scale,
        mean_floor=np.sqrt(residual.mean(0) / count) / scale,
        variance=np.abs(spread - predicted) / predicted,
        variance_floor=squares.std(0, ddof=1) / np.sqrt(count) / predicted,
        loss=np.abs(losses.mean(0) - expected) / expected,
        loss_floor=losses.std(0, ddof=1) / np.sqrt(count) / expected,
    )


def slope(widths: Sequence[float], values: Sequence[float] | np.ndarray) -> float:
    """Least-squares slope of ``log(values)`` against ``log(widths)``: the exponent ``s``
    of a power law ``c w^s``.

    Example:
        >>> round(slope([16, 64, 256], [0.4, 0.2, 0.1]), 3)
        -0.5
    """
    array = np.asarray(values, dtype=float)
    if np.any(array <= 0) or len(array) != len(widths) or len(array) < 2:
        raise ValueError(
            f"a power-law slope needs at least 2 positive values, one per width: got "
            f"{array.tolist()} for widths {list(widths)}"
        )
    return float(np.polyfit(np.log(widths), np.log(array), 1)[0])


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One error of the ensembles by width, for every (graph, algorithm) setting, against
    the right prediction and against a rival prediction. Arrays are (settings, widths):
    per setting and width, the median over steps and agents.

    Attributes:
        widths: the hidden widths, increasing.
        error, floor, excess: the error against the prediction, its noise floor, and the
            part beyond the noise floor (:meth:`EnsembleErrors.excess`).
        rival_error, rival_excess: the same against the rival prediction.
    """

    widths: tuple[int, ...]
    error: np.ndarray
    floor: np.ndarray
    excess: np.ndarray
    rival_error: np.ndarray
    rival_excess: np.ndarray

    def by_width(self, name: str = "excess") -> dict[int, float]:
        """The median over settings of one array, by width."""
        return dict(zip(self.widths, np.median(getattr(self, name), 0).tolist(), strict=True))

    def frame(self) -> pd.DataFrame:
        """By width (rows), the median over settings of the error, its noise floor, the
        excess beyond it, and the rival's excess."""
        columns = {
            "error": "error",
            "floor": "noise floor",
            "excess": "beyond noise",
            "rival_excess": "rival, beyond noise",
        }
        frame = pd.DataFrame({label: self.by_width(name) for name, label in columns.items()})
        return frame.rename_axis("width")

    def halves(self) -> bool:
        """Whether the median excess over settings at the largest width is at most half
        of that at the smallest."""
        excess = np.median(self.excess, 0)
        return bool(excess[-1] <= 0.5 * excess[0])

    def margin(self) -> rivals.Margin:
        """Our excess against the rival's at the largest width, paired over settings."""
        return rivals.margin(self.excess[:, -1].tolist(), self.rival_excess[:, -1].tolist())

    def slopes(self) -> tuple[float, float]:
        """The fitted slope of the median raw error over settings, ours and the rival's."""
        return (
            slope(self.widths, np.median(self.error, 0)),
            slope(self.widths, np.median(self.rival_error, 0)),
        )

    def slope_margin(self) -> rivals.Margin:
        """Each setting's fitted slope of the raw error, ours against the rival's, paired
        over settings (a steeper fall is better)."""
        ours, rival = (
            [slope(self.widths, row) for row in t] for t in (self.error, self.rival_error)
        )
        return rivals.margin(ours, rival)


def sweep(
    ours: Sequence[Sequence[EnsembleErrors]],
    rival: Sequence[Sequence[EnsembleErrors]],
    widths: Sequence[int],
    name: str,
) -> Sweep:
    """Reduces :func:`errors` tables, indexed ``[setting][width]``, to a :class:`Sweep`
    of one error (``"mean"``, ``"variance"`` or ``"loss"``).

    Example:
        >>> from companion import models
        >>> from companion.infinite import closed_form
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.eye(2), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.eye(2), model=models.affine(2), params=None,
        ...             kernel=np.eye(4), f0=np.zeros((2, 2)))
        >>> m = closed_form(p, "atc", np.full((2, 2), 0.5), lr=0.2).steps(3)
        >>> e = errors(m, [m.expected, m.expected])
        >>> sweep([[e, e]], [[e, e]], [16, 64], "mean").by_width()
        {16: 0.0, 64: 0.0}
    """
    if name not in ("mean", "variance", "loss"):
        raise ValueError(f"name must be 'mean', 'variance' or 'loss', got {name!r}")
    shapes = {len(row) for table in (ours, rival) for row in table}
    if shapes != {len(widths)} or len(ours) != len(rival) or list(widths) != sorted(widths):
        raise ValueError(
            f"give one row per setting with one table per width ({len(widths)}, increasing), "
            "for ours and the rival alike"
        )

    def table(tables, how, key=name):
        return np.array([[getattr(e, how)(key) for e in row] for row in tables])

    return Sweep(
        widths=tuple(int(w) for w in widths),
        error=table(ours, "median"),
        floor=table(ours, "median", f"{name}_floor"),
        excess=table(ours, "excess"),
        rival_error=table(rival, "median"),
        rival_excess=table(rival, "excess"),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Prediction:
    """Per (graph, algorithm) setting, the infinite-width closed form and its moments."""

    forms: dict[Setting, InfiniteWidth]
    moments: dict[Setting, Moments]


def predict(
    problem: Problem,
    mixings: Mapping[str, np.ndarray],
    settings: Sequence[Setting],
    *,
    lr: float,
    steps: int,
) -> Prediction:
    """The infinite-width closed form and moments over ``steps`` of each (graph, algorithm)
    setting, the graph's mixing matrix taken from ``mixings``.

    Example:
        >>> from companion import models
        >>> p = Problem(targets=np.eye(2), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.eye(2), model=models.affine(2), params=None,
        ...             kernel=np.eye(4), f0=np.zeros((2, 2)))
        >>> pred = predict(p, {"complete": np.full((2, 2), 0.5)}, [("complete", "atc")],
        ...                lr=0.2, steps=3)
        >>> pred.moments["complete", "atc"].variance.shape
        (4, 2, 2)
    """
    unknown = sorted({graph for graph, _ in settings} - set(mixings))
    if unknown:
        raise ValueError(
            f"no mixing matrix for the graphs {unknown}: give mixings for every graph of the "
            f"settings (companion.experiments.mixings), got {sorted(mixings)}"
        )
    forms = {(g, a): infinite.closed_form(problem, a, mixings[g], lr=lr) for g, a in settings}
    return Prediction(forms, {cell: form.steps(steps) for cell, form in forms.items()})


def sizes(widths: Sequence[int], seeds: int, budget_width: int, least: int) -> dict[int, int]:
    """Networks per ensemble, by width: ``seeds`` up to ``budget_width``, beyond it fewer,
    in inverse proportion to the width (so each width costs about the same), and never
    fewer than ``least``.

    Example:
        >>> sizes([16, 64, 256], 64, 64, 8)
        {16: 64, 64: 64, 256: 16}
    """
    if seeds < 2 or least < 1 or budget_width < 1:
        raise ValueError(
            f"an ensemble needs seeds >= 2, least >= 1 and budget_width >= 1, got seeds="
            f"{seeds}, least={least}, budget_width={budget_width}: raise the one too small"
        )
    return {w: max(seeds * budget_width // max(w, budget_width), least) for w in widths}


def train(
    problems: Mapping[int, Sequence[Problem]],
    mixings: Mapping[str, np.ndarray],
    settings: Sequence[Setting],
    *,
    lr: float,
    steps: int,
    save_at: SaveAt,
) -> dict[tuple[int, str, str], tuple[Trajectory, ...]]:
    """The ensemble of every width and setting, keyed ``(width, graph, algorithm)``: the
    networks of ``problems[width]`` (one per initialization, same data) trained together
    (:func:`companion.simulate.train_ensemble`) with the same step size."""
    run = functools.partial(
        simulate.train_ensemble, lr=lr, steps=steps, save_at=save_at, progress=False
    )
    return {
        (w, graph, alg): run(members[0], [p.params for p in members], alg, mixings[graph])
        for w, members in problems.items()
        for graph, alg in settings
    }


def sweeps(ours: Prediction, rival: Prediction, runs: Runs, widths: Sequence[int]) -> dict:
    """One :class:`Sweep` per error of :data:`NAMES`: the ensembles of ``runs`` against
    ``ours`` and against the ``rival`` prediction, each paired with its infinitely wide
    twin through that prediction's own closed form
    (:meth:`companion.infinite.InfiniteWidth.paired`)."""
    if list(ours.forms) != list(rival.forms):
        raise ValueError("ours and the rival must predict the same (graph, algorithm) settings")

    def table(p: Prediction) -> list[list[EnsembleErrors]]:
        return [
            [errors(p.moments[c], runs[w, *c], p.forms[c].paired(runs[w, *c])) for w in widths]
            for c in p.forms
        ]

    tables = table(ours), table(rival)
    return {key: sweep(*tables, widths, key) for key in NAMES}


def frame(by_key: Mapping[str, Sweep]) -> pd.DataFrame:
    """The :meth:`Sweep.frame` of each error side by side, under its name in :data:`NAMES`."""
    return pd.concat({NAMES[key]: s.frame() for key, s in by_key.items()}, axis=1)


class Bands(NamedTuple):
    """Per setting, the infinite-width mean and standard deviation of one prediction, each
    (K, Q), and the ensemble's sample mean and standard deviation, each (S, Q) at the saved
    steps: the arguments of :func:`companion.plotting.ensemble_bands`, in order."""

    mean: dict[Setting, np.ndarray]
    sd: dict[Setting, np.ndarray]
    sample_mean: dict[Setting, np.ndarray]
    sample_sd: dict[Setting, np.ndarray]


def bands(prediction: Prediction, runs: Runs, width: int, test_input: int, output: int) -> Bands:
    """Every agent's prediction of ``output`` on test input ``test_input``, predicted and
    sampled over the ensembles of ``width``, for each setting."""
    pick = (slice(None), slice(None), test_input, output)
    means, sds, sample = {}, {}, {}
    for cell, m in prediction.moments.items():
        means[cell] = np.asarray(m.mean.test_predictions)[pick]
        sds[cell] = np.sqrt(np.asarray(m.test_variance)[:, :, test_input])
        sample[cell] = np.stack([np.asarray(r.test_predictions)[pick] for r in runs[width, *cell]])
    spread = {cell: values.std(0, ddof=1) for cell, values in sample.items()}
    return Bands(means, sds, {cell: values.mean(0) for cell, values in sample.items()}, spread)
