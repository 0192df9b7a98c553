"""Trained networks against the exact moments of mini-batch training.

Two measurements, each judged against a rival that does without what the exact moments
credit:

- :func:`band_errors`: the spread of an ensemble of networks trained from one ``theta_0``
  on independent batch sequences (:func:`companion.simulate.train_batches`) against the
  predicted variance (:mod:`companion.sgd_moments`), per saved step, beside the noise floor
  (what that many members of a correctly predicted distribution would show by chance). Its
  rival is the variance with the gradient-noise covariance frozen at ``theta_0``.
- :func:`costs`: steps, messages and gradient evaluations to a target ``E[L(theta_bar)]``
  by batch size, predicted by the exact expected loss and measured on the ensemble's mean
  loss; the rival "SGD noise ignored" predicts them from the full-batch closed form.

:func:`band_by_width` measures many ensembles (:func:`companion.sgd_sequences.ensemble`, one
per width and initialization) and reduces them over initializations; :func:`batch_costs`
runs the cost comparison in the setting of one of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from companion import cost, dynamics, rivals, sampling, simulate
from companion.problem import Problem
from companion.sampling import Sampler
from companion.sgd_moments import SGDMoments, moments
from companion.sgd_sequences import Ensemble
from companion.trajectory import Trajectory
from companion.tune.grid import messages_per_step

__all__ = [
    "BandByWidth",
    "BandErrors",
    "Cost",
    "band_by_width",
    "band_errors",
    "band_summary",
    "batch_costs",
    "cost_margin",
    "cost_summary",
    "costs",
    "mean_average_loss",
    "step_seconds",
    "steps_to",
]


@dataclasses.dataclass(frozen=True)
class BandErrors:
    """The ensemble's summed variance against the predicted one, per saved step after 0.

    Attributes:
        steps: the steps compared. error: ``|tr C_hat - tr C| / tr C`` over every agent's
            training and test predictions; floor: the standard error of ``tr C_hat`` over
            ``tr C``.
    """

    steps: np.ndarray
    error: np.ndarray
    floor: np.ndarray

    def median(self, name: str = "error") -> float:
        """The median over steps of ``error`` or ``floor``."""
        return float(np.median(getattr(self, name)))


def _stacked(moments_or_runs, test: bool) -> np.ndarray:
    train = [r.predictions for r in moments_or_runs]
    if not test:
        return np.stack(train)
    tests = [np.asarray(r.test_predictions) for r in moments_or_runs]
    return np.concatenate([np.stack(train), np.stack(tests)], -2)


def band_errors(predicted: SGDMoments, runs: Sequence[Trajectory]) -> BandErrors:
    """The spread of ``runs`` (members of one batch-sequence ensemble, saving the same
    steps) against the variance ``predicted`` at those steps.

    Example:
        >>> from companion import sampling, sgd_moments, simulate
        >>> from companion.problem import Problem
        >>> p = Problem(targets=np.arange(4.0)[:, None], partition=[np.arange(2),
        ...     np.arange(2, 4)], inputs=np.eye(4), apply_fn=lambda p, x: x @ p["a"],
        ...     params={"a": np.zeros((4, 1))})
        >>> s, w = sampling.fixed_size(p, 1), np.full((2, 2), 0.5)
        >>> exact = sgd_moments.moments(p, "dgd", w, lr=0.5, steps=3, sampler=s)
        >>> runs = simulate.train_batches(p, "dgd", w, lr=0.5, steps=3, sampler=s,
        ...     seeds=range(400), linearize=True, progress=False)
        >>> bool(band_errors(exact, runs).median() < 0.2)
        True
    """
    if len(runs) < 2 or len({tuple(r.saved_steps) for r in runs}) != 1:
        raise ValueError(f"need at least 2 runs saving the same steps, got {len(runs)} runs")
    at = np.asarray(runs[0].saved_steps)
    rows = np.searchsorted(predicted.steps, at)
    if rows.max() >= len(predicted.steps) or not np.array_equal(predicted.steps[rows], at):
        raise ValueError(
            "the moments were not computed at every step the runs saved: compute them over as "
            "many steps (save_at=None)"
        )
    test = predicted.test_variance is not None and runs[0].test_predictions is not None
    variance = predicted.variance[rows].sum((1, 2, 3))
    if test:
        variance = variance + np.asarray(predicted.test_variance)[rows].sum((1, 2, 3))
    samples, count = _stacked(runs, test), len(runs)
    squares = np.sum((samples - samples.mean(0)) ** 2, (2, 3, 4)) * count / (count - 1)
    keep = variance > 0
    spread, variance = squares.mean(0)[keep], variance[keep]
    return BandErrors(
        steps=at[keep],
        error=np.abs(spread - variance) / variance,
        floor=squares.std(0, ddof=1)[keep] / np.sqrt(count) / variance,
    )


def steps_to(loss: np.ndarray, steps: np.ndarray, target: float) -> float:
    """The first step where ``loss`` reaches ``target``, ``log loss`` interpolated linearly
    between steps; ``inf`` if it never does.

    Example:
        >>> steps_to(np.array([1.0, 0.01]), np.array([0, 10]), 0.1), steps_to(
        ...     np.array([1.0, 0.5]), np.array([0, 1]), 0.1)
        (5.0, inf)
    """
    log_loss, goal = np.log(np.asarray(loss, dtype=float)), np.log(target)
    below = np.flatnonzero(log_loss <= goal)
    if below.size == 0:
        return float("inf")
    k = int(below[0])
    if k == 0:
        return float(steps[0])
    share = (log_loss[k - 1] - goal) / (log_loss[k - 1] - log_loss[k])
    return float(steps[k - 1] + share * (steps[k] - steps[k - 1]))


def mean_average_loss(runs: Sequence[Trajectory]) -> np.ndarray:
    """``L(theta_bar)`` at the saved steps, averaged over the members: the ensemble's
    estimate of ``E[L(theta_bar)]``."""
    return np.mean([r.average_loss for r in runs], 0)


@dataclasses.dataclass(frozen=True)
class Cost:
    """Steps to a target ``E[L(theta_bar)]`` for each sampler, three ways, and what they
    cost.

    Attributes:
        target: the target loss. batches: the expected rows per agent and step, by label.
        predicted, rival, trained: steps to the target by label (exact moments, the
            full-batch closed form, the ensemble's mean loss); ``inf`` where never reached.
        messages_per_step: parameter vectors sent per step (2 |E|).
        horizon: the run length, which caps a step count that is never reached.
    """

    target: float
    batches: dict[str, float]
    predicted: dict[str, float]
    rival: dict[str, float]
    trained: dict[str, float]
    messages_per_step: int
    horizon: int

    def _log_errors(self, guess: Mapping[str, float]) -> float:
        capped = {k: min(v, self.horizon) for k, v in guess.items()}
        return float(
            np.mean([abs(np.log(capped[k] / min(self.trained[k], self.horizon))) for k in capped])
        )

    @property
    def error(self) -> float:
        """Mean over samplers of ``|log(predicted steps / trained steps)|`` (steps never
        reached count as the horizon)."""
        return self._log_errors(self.predicted)

    @property
    def rival_error(self) -> float:
        """The same for the rival's steps."""
        return self._log_errors(self.rival)

    def table(self, which: str = "trained") -> dict[str, dict[str, float]]:
        """By sampler: steps, messages and gradient evaluations (over all agents) to the
        target, from the ``trained``, ``predicted`` or ``rival`` steps."""
        steps = getattr(self, which)
        return {
            label: {
                "steps": steps[label],
                "messages": steps[label] * self.messages_per_step,
                "gradient_evaluations": steps[label] * self.batches[label],
            }
            for label in steps
        }


def costs(
    samplers: Mapping[str, Sampler],
    predicted: Mapping[str, SGDMoments],
    rival: Mapping[str, np.ndarray],
    trained: Mapping[str, Sequence[Trajectory]],
    mixing: np.ndarray,
) -> Cost:
    """Steps to a target by sampler: the target is the geometric midpoint of the initial
    loss and the highest final mean loss of the trained ensembles, so every ensemble
    reaches it.

    Args:
        samplers, predicted, trained: by the same labels; ``rival`` the full-batch closed
            form's ``L(theta_bar)`` curve at the same steps (one for every label, since the
            mean does not depend on the batch).
    """
    curves = {label: mean_average_loss(runs) for label, runs in trained.items()}
    start = float(next(iter(curves.values()))[0])
    highest = max(float(c[-1]) for c in curves.values())
    if not highest < start:
        raise ValueError(
            f"an ensemble ends at mean loss {highest:.3g}, not below its start {start:.3g}: "
            "train longer or with a smaller step size"
        )
    target = float(np.sqrt(start * highest))
    steps = {label: np.asarray(runs[0].saved_steps) for label, runs in trained.items()}
    return Cost(
        target=target,
        batches={k: float(np.sum(s.expected_batch)) for k, s in samplers.items()},
        predicted={k: steps_to(m.average_loss, m.steps, target) for k, m in predicted.items()},
        rival={k: steps_to(rival[k], steps[k], target) for k in trained},
        trained={k: steps_to(curves[k], steps[k], target) for k in trained},
        messages_per_step=messages_per_step(mixing),
        horizon=int(max(s[-1] for s in steps.values())),
    )


def band_summary(
    errors: Mapping[tuple[int, int], Mapping[str, BandErrors]], widths: Sequence[int]
) -> dict[str, dict[int, float]]:
    """By width, the median over initializations of the median band error over steps:
    ``errors[width, init][noise]`` for each noise in it (``"exact"``, ``"fixed"``), and the
    noise floor (``"floor"``, the same for every prediction of one ensemble)."""
    out: dict[str, dict[int, float]] = {}
    names = list(next(iter(errors.values())))
    for name, field in [(n, "error") for n in names] + [(names[0], "floor")]:
        key = name if field == "error" else "floor"
        out[key] = {
            w: float(np.median([e[name].median(field) for (v, _), e in errors.items() if v == w]))
            for w in widths
        }
    return out


def cost_summary(runs: Sequence[Cost]) -> dict[str, float]:
    """Medians over initializations, by sampler label: trained steps, predicted steps,
    messages and gradient evaluations to the target (keys ``<label>_<field>``)."""
    fields = {
        "steps": ("trained", "steps"),
        "steps_predicted": ("predicted", "steps"),
        "messages": ("trained", "messages"),
        "gradient_evaluations": ("trained", "gradient_evaluations"),
    }
    labels = list(runs[0].trained)
    return {
        f"{label}_{name}": float(np.median([c.table(which)[label][field] for c in runs]))
        for label in labels
        for name, (which, field) in fields.items()
    }


def step_seconds(problem: Problem, algorithm, mixing: np.ndarray, *, steps: int = 10) -> dict:
    """Warm seconds per step of the exact second moment (batch 1) and of the full-batch
    closed form's recursion, at a tenth of ``1 / L_max``."""
    lr, one = 0.1 / problem.curvature, sampling.fixed_size(problem, 1)
    second = cost.median_seconds(
        lambda: moments(problem, algorithm, mixing, lr=lr, steps=steps, sampler=one), repeats=1
    )
    form = dynamics.closed_form(problem, algorithm, mixing, lr=lr, check=False)
    closed = cost.median_seconds(lambda: form.steps(10 * steps), repeats=1)
    return {"second_moment": second.median / steps, "closed_form": closed.median / (10 * steps)}


@dataclasses.dataclass(frozen=True)
class BandByWidth:
    """Band errors by width, medians over initializations (:func:`band_summary`).

    Attributes:
        exact, fixed, floor: the exact moments', the fixed-noise rival's and the noise
            floor, by width.
        margin: the exact moments against the rival at the largest width, paired over
            initializations (:func:`companion.rivals.margin`).
    """

    exact: dict[int, float]
    fixed: dict[int, float]
    floor: dict[int, float]
    margin: rivals.Margin

    @property
    def falls(self) -> bool:
        """Whether the exact moments' error is smaller at the largest width than at the
        smallest."""
        return bool(self.exact[max(self.exact)] < self.exact[min(self.exact)])

    def value(self) -> dict[str, float]:
        """The errors by width (keys ``"<width>"``) and the floors (``"floor_<width>"``)."""
        return {str(w): v for w, v in self.exact.items()} | {
            f"floor_{w}": v for w, v in self.floor.items()
        }

    def rival_value(self) -> dict[str, float]:
        """The rival's errors by width (keys ``"<width>"``)."""
        return {str(w): v for w, v in self.fixed.items()}

    def fields(self) -> dict[str, object]:
        """The rival's keyword arguments of :func:`companion.book.report.record`: its errors
        by width (``rival_value``) and the margin at the largest width."""
        interval = list(self.margin.interval)
        return {
            "rival_value": self.rival_value(),
            "margin": self.margin.margin,
            "margin_interval": interval,
        }

    def table(self) -> dict[str, dict[int, float]]:
        """The three columns by width, ready for ``pandas.DataFrame``."""
        return {"exact": self.exact, "fixed": self.fixed, "floor": self.floor}


def band_by_width(ensembles: Mapping[tuple[int, int], Ensemble]) -> BandByWidth:
    """:func:`band_errors` of every ``ensembles[width, init]`` against its exact and
    fixed-noise moments, reduced by :func:`band_summary` (widths in their first order), with
    the margin at the largest width paired over its initializations in order.

    Raises:
        ValueError: without ensembles.

    Example:
        >>> from companion import sgd_sequences
        >>> p = Problem(targets=np.arange(4.0)[:, None], partition=[np.arange(2),
        ...     np.arange(2, 4)], inputs=np.eye(4), apply_fn=lambda p, x: x @ p["a"],
        ...     params={"a": np.zeros((4, 1))})
        >>> runs = {(4, i): sgd_sequences.ensemble(p, "dgd", np.full((2, 2), 0.5),
        ...     fraction=0.5, batch=1, steps=4, members=40) for i in range(3)}
        >>> band = band_by_width(runs)
        >>> list(band.exact), bool(band.exact[4] < band.fixed[4]), band.margin.units
        ([4], True, 3)
    """
    if not ensembles:
        raise ValueError("ensembles is empty: give {(width, init): Ensemble} for at least one")
    errors = {
        key: {noise: band_errors(m, e.runs) for noise, m in e.predicted.items()}
        for key, e in ensembles.items()
    }
    widths = list(dict.fromkeys(w for w, _ in ensembles))
    band = band_summary(errors, widths)
    top = [e for (w, _), e in errors.items() if w == max(widths)]
    margin = rivals.margin(*([e[n].median() for e in top] for n in ("exact", "fixed")))
    return BandByWidth(band["exact"], band["fixed"], band["floor"], margin)


def batch_costs(base: Ensemble, batches: Sequence[int]) -> Cost:
    """:func:`costs` with fixed-size batches of each size (labels ``"b<size>"``) in the
    setting of ``base`` (as many members; ``base``'s own runs where its batch is one of
    them), against the full-batch closed form's ``L(theta_bar)``."""
    p, algorithm, mixing = base.problem, base.algorithm, base.mixing
    samplers = {f"b{b}": sampling.fixed_size(p, b) for b in batches}
    options: dict[str, Any] = dict(lr=base.lr, steps=base.steps, save_at=base.save_at)
    predicted: dict[str, SGDMoments] = {}
    trained: dict[str, Sequence[Trajectory]] = {}
    for label, s in samplers.items():
        if (s.kind, s.batches) == (base.sampler.kind, base.sampler.batches):
            predicted[label], trained[label] = base.predicted["exact"], base.runs
            continue
        predicted[label] = moments(p, algorithm, mixing, sampler=s, **options)
        trained[label] = simulate.train_batches(
            p,
            algorithm,
            mixing,
            sampler=s,
            seeds=range(len(base.runs)),
            progress=False,
            **options,
        )
    form = dynamics.closed_form(p, algorithm, mixing, lr=base.lr)
    full = form.steps(base.steps, save_at=base.save_at).average_loss
    return costs(samplers, predicted, dict.fromkeys(samplers, full), trained, mixing)


def cost_margin(runs: Sequence[Cost]) -> rivals.Margin:
    """:attr:`Cost.error` against :attr:`Cost.rival_error`, paired over ``runs``
    (initializations) by :func:`companion.rivals.margin`."""
    return rivals.margin([c.error for c in runs], [c.rival_error for c in runs])
