"""The closed form's ranking judged against its strongest rival without dynamics.

For a :class:`companion.tune.Confirmation` and one criterion, every ranking
(:data:`companion.tune.RANKINGS`) gets one value per initialization seed on each metric
of :data:`METRICS`. The *strongest rival* on a metric is the rival
(:mod:`companion.tune.rivals`) with the best median over seeds; the closed form is
judged against it by :func:`companion.rivals.margin`, paired over seeds (the same
configurations, trained from the same ``theta_0``). :func:`configuration_margin` pairs
the rank correlations over configurations instead: a bootstrap that resamples the
configurations, for the resolution that a few seeds cannot give.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from companion import rivals as paired
from companion.tune.confirm import RANKINGS, Confirmation, _median, _spearman, confirm
from companion.tune.grid import Configuration, Family
from companion.tune.rivals import RIVALS, WITHIN_FRACTION, validate

__all__ = [
    "METRICS",
    "QUESTIONS",
    "Verdict",
    "by_setting",
    "confirm_at",
    "configuration_margin",
    "interval",
    "rank_correlations",
    "table",
    "values",
    "verdict_table",
    "verdicts",
    "versus",
    "within_fraction",
    "worst_setting",
]

#: Metrics of a ranking, and whether higher is better.
METRICS = {
    "rank correlation": True,
    "best in top 10%": True,
    "relative regret": False,
    "within-fraction rank correlation": True,
}
#: Fewest configurations of one fraction whose order a rank correlation measures.
MIN_WITHIN = 3
#: What a practitioner asks of a ranking, as ``(criterion, metric)``: the loss after the
#: budget (its order, the pick's place, the regret), the order within one step-size
#: fraction, the fewest messages to the target, and the test loss.
QUESTIONS = {
    "loss, rank correlation": ("final_loss", "rank correlation"),
    "loss, pick in top 10%": ("final_loss", "best in top 10%"),
    "loss, regret": ("final_loss", "relative regret"),
    "within a fraction": ("final_loss", "within-fraction rank correlation"),
    "messages to the target, regret": ("messages_to_target", "relative regret"),
    "test loss, rank correlation": ("test_loss", "rank correlation"),
}


def within_fraction(confirmation: Confirmation, criterion: str, ranking: str) -> np.ndarray:
    """Per seed, the mean over step-size fractions (those with at least
    :data:`MIN_WITHIN` configurations) of the rank correlation among the configurations
    of that fraction: how well the ranking orders topology, rule and algorithm once the
    fraction is fixed (NaN where no fraction has a defined correlation)."""
    fractions = np.array([c.lr_fraction for c in confirmation.configurations])
    groups = [np.flatnonzero(fractions == f) for f in np.unique(fractions)]
    groups = [g for g in groups if g.size >= MIN_WITHIN]
    out = []
    for i in range(len(confirmation.seeds)):
        order = confirmation.order(ranking, i, criterion)
        observed = confirmation.observed_order(i, criterion)
        values = np.array([_spearman(order[g], observed[g]) for g in groups])
        out.append(float(np.nanmean(values)) if np.isfinite(values).any() else math.nan)
    return np.array(out)


def values(confirmation: Confirmation, criterion: str, metric: str, ranking: str) -> np.ndarray:
    """Per seed, ``metric`` (:data:`METRICS`) of ``ranking`` on ``criterion``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if metric == "rank correlation":
        return confirmation.rank_correlation(criterion, ranking)
    if metric == "best in top 10%":
        return confirmation.best_in_top(criterion, ranking)
    if metric == "relative regret":
        return confirmation.regret(criterion, ranking)
    return within_fraction(confirmation, criterion, ranking)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The closed form against its strongest rival on one criterion and metric.

    Attributes:
        criterion, metric: what was ranked, and how the ranking was scored.
        rival: the strongest rival's name (best median over seeds).
        by_ranking: per ranking (the closed form and each rival considered), the metric
            per seed.
        margin: :func:`companion.rivals.margin` of the closed form over the strongest
            rival, paired over seeds.
    """

    criterion: str
    metric: str
    rival: str
    by_ranking: dict[str, np.ndarray]
    margin: paired.Margin

    @property
    def beats(self) -> bool:
        """Whether the closed form beats its strongest rival (interval above zero)."""
        return self.margin.beats

    def claim_fields(
        self,
        *,
        at_least: float | None = None,
        bound: float | None = None,
        value: float | None = None,
    ) -> dict[str, Any]:
        """The keyword arguments of an empirical claim on this verdict: its ``value`` (by
        default the closed form's median), judged by ``at_least`` (passes at or above it;
        the rival's margin then decides too) or by an upper ``bound``, with the strongest
        rival named and the paired margin over it (:meth:`companion.rivals.Margin.fields`).

        Raises:
            ValueError: both or neither of ``at_least`` and ``bound``.
        """
        if (at_least is None) == (bound is None):
            raise ValueError(
                f"a claim is judged by exactly one of at_least and bound, got "
                f"at_least={at_least!r}, bound={bound!r}: pass one of them"
            )
        value = self.margin.ours if value is None else value
        judged = dict(bound=bound) if at_least is None else dict(passed=value >= at_least)
        return dict(
            value=value,
            kind="empirical",
            **judged,
            rival=f"{self.rival} first (no dynamics; the strongest on this metric)",
            **self.margin.fields(),
        )


def versus(
    confirmation: Confirmation,
    criterion: str,
    metric: str,
    candidates: Sequence[str] | None = None,
    *,
    seed: int = 0,
) -> Verdict:
    """The closed form against the strongest of ``candidates`` (default: every rival that
    has a meaning for ``metric``: :data:`companion.tune.rivals.WITHIN_FRACTION` within a
    fraction, else :data:`companion.tune.rivals.RIVALS`).

    Raises:
        ValueError: an unknown rival or metric, or a seed where the metric is undefined
            (every configuration missed the target, say), which no margin can pair.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    within = metric == "within-fraction rank correlation"
    allowed = WITHIN_FRACTION if within else RIVALS
    candidates = tuple(validate(r, allowed) for r in (candidates or allowed))
    higher = METRICS[metric]
    by_ranking = {
        r: values(confirmation, criterion, metric, r) for r in ("closed form", *candidates)
    }
    undefined = [r for r, v in by_ranking.items() if not np.isfinite(v).all()]
    if undefined:
        raise ValueError(
            f"{metric} of {criterion} is undefined on some seed for {', '.join(undefined)} "
            "(a constant order, or no configuration reached the target): choose a criterion "
            "the runs resolve, or a larger budget"
        )
    medians = {r: float(np.median(by_ranking[r])) for r in candidates}
    strongest = (max if higher else min)(candidates, key=medians.__getitem__)
    ours, theirs = by_ranking["closed form"].tolist(), by_ranking[strongest].tolist()
    m = paired.margin(ours, theirs, higher_is_better=higher, seed=seed)
    return Verdict(criterion, metric, strongest, by_ranking, m)


def _resampled(rankings, observed, pick) -> float:
    """Median over seeds of the rank correlation on the configurations ``pick``."""
    values = [_spearman(r[pick], o[pick]) for r, o in zip(rankings, observed, strict=True)]
    return _median(np.array(values))


def _bootstrap(confirmation, criterion, ranking_names, draws, seed) -> np.ndarray:
    """Per draw (one resample of the configurations, shared by every ranking), the median
    over seeds of each ranking's rank correlation: shape (draws, rankings)."""
    seeds = range(len(confirmation.seeds))
    observed = [confirmation.observed_order(i, criterion) for i in seeds]
    orders = [[confirmation.order(r, i, criterion) for i in seeds] for r in ranking_names]
    rng = np.random.default_rng(seed)
    size = len(confirmation.configurations)
    picks = rng.integers(0, size, size=(draws, size))
    return np.array([[_resampled(o, observed, p) for o in orders] for p in picks])


def interval(
    confirmation: Confirmation,
    criterion: str,
    ranking: str = "closed form",
    *,
    draws: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """A 95% bootstrap interval of the median over seeds of the rank correlation:
    configurations are resampled with replacement, ``draws`` times."""
    medians = _bootstrap(confirmation, criterion, [ranking], draws, seed)[:, 0]
    if not np.isfinite(medians).any():
        return math.nan, math.nan
    low, high = np.nanpercentile(medians, [2.5, 97.5])
    return float(low), float(high)


def configuration_margin(
    confirmation: Confirmation, criterion: str, rival: str, *, draws: int = 1000, seed: int = 0
) -> paired.Margin:
    """The closed form's median (over seeds) rank correlation minus ``rival``'s, with a
    95% paired bootstrap interval over configurations (both rankings scored on the same
    resample of the configurations)."""
    validate(rival)
    both = _bootstrap(confirmation, criterion, ["closed form", rival], draws, seed)
    ours = _median(confirmation.rank_correlation(criterion))
    theirs = _median(confirmation.rank_correlation(criterion, rival))
    low, high = np.nanpercentile(both[:, 0] - both[:, 1], [2.5, 97.5])
    return paired.Margin(
        ours,
        theirs,
        ours - theirs,
        (float(low), float(high)),
        len(confirmation.configurations),
        higher_is_better=True,
    )


def table(confirmation: Confirmation, criterion: str, *, draws: int = 1000) -> pd.DataFrame:
    """Median over seeds, for each ranking, of the rank correlation (with its bootstrap
    interval over configurations, :func:`interval`) and of the within-fraction rank
    correlation, the fraction of seeds whose pick is in the observed top 10%, and the
    median relative regret."""
    rows = {
        ranking: {
            "rank correlation": _median(confirmation.rank_correlation(criterion, ranking)),
            "95% interval": "[{:.2f}, {:.2f}]".format(
                *interval(confirmation, criterion, ranking, draws=draws)
            ),
            "within a fraction": _median(within_fraction(confirmation, criterion, ranking)),
            "best in top 10%": float(np.mean(confirmation.best_in_top(criterion, ranking))),
            "relative regret": _median(confirmation.regret(criterion, ranking)),
        }
        for ranking in RANKINGS
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def rank_correlations(confirmation: Confirmation, criteria: Sequence[str]) -> pd.DataFrame:
    """Per ranking (rows, :data:`companion.tune.RANKINGS`) and criterion (columns), the
    median over seeds of the rank correlation with the observed scores: the first column
    of :func:`table`, for several criteria at once."""
    return pd.DataFrame(
        {
            criterion: {
                ranking: _median(confirmation.rank_correlation(criterion, ranking))
                for ranking in RANKINGS
            }
            for criterion in criteria
        }
    )


def verdicts(
    confirmation: Confirmation,
    questions: Mapping[str, tuple[str, str]] = QUESTIONS,
) -> dict[str, Verdict]:
    """Per question (``name: (criterion, metric)``, default :data:`QUESTIONS`), the closed
    form against its strongest rival (:func:`versus`, every rival that has a meaning for
    the metric)."""
    return {name: versus(confirmation, *key) for name, key in questions.items()}


def verdict_table(verdicts: Mapping[str, Verdict]) -> pd.DataFrame:
    """One row per question (the keys of ``verdicts``, from :func:`versus`): the strongest
    rival, the closed form's and the rival's medians, the margin with its 95% interval,
    and whether the closed form beats the rival."""
    rows = {
        question: {
            "strongest rival": v.rival,
            "closed form": v.margin.ours,
            "rival": v.margin.rival,
            "margin": v.margin.margin,
            "interval": "[{:.3g}, {:.3g}]".format(*v.margin.interval),
            "beats": v.beats,
        }
        for question, v in verdicts.items()
    }
    return pd.DataFrame(rows).T


def confirm_at(
    family: Family,
    configs: Sequence[Configuration],
    settings: Sequence[tuple[int, int]],
    *,
    seeds: Sequence[int],
    target: float,
    save_every: int,
) -> dict[tuple[int, int], Confirmation]:
    """The same configurations confirmed (:func:`companion.tune.confirm`) at other
    ``(width, steps)`` settings: each configuration's width replaced, the budget set to the
    steps, everything else (choices, seeds, target, the steps between recorded losses)
    unchanged."""
    return {
        (width, steps): confirm(
            family,
            [dataclasses.replace(c, width=width) for c in configs],
            seeds=seeds,
            target=target,
            budget=steps,
            save_every=save_every,
            progress=False,
        )
        for width, steps in settings
    }


def by_setting(
    confirmations: Mapping[tuple[int, int], Confirmation],
    criterion: str,
    rival: str = "largest_step",
) -> pd.DataFrame:
    """Per ``(width, steps)`` setting of the same configurations, the medians over seeds of
    the closed form's rank correlation, ``rival``'s (which no drift of the kernel affects)
    and the relative error of the predicted ``criterion`` (:meth:`Confirmation.relative_error`),
    sorted by width and steps."""
    validate(rival)
    column = f"{rival.replace('_', ' ')} first"
    rows = {
        key: {
            "rank correlation": np.median(c.rank_correlation(criterion)),
            column: np.median(c.rank_correlation(criterion, rival)),
            "loss error": np.median(c.relative_error(criterion)),
        }
        for key, c in confirmations.items()
    }
    out = pd.DataFrame(rows).T.sort_index()
    out.index.names = ["width", "steps"]
    return out


def worst_setting(settings: pd.DataFrame) -> dict[str, float | int]:
    """The row of a :func:`by_setting` table where the closed form's rank correlation is
    lowest: its width, steps, rank correlation and loss error.

    Example:
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"rank correlation": [0.9, 0.7], "loss error": [0.1, 0.4]},
        ...     index=pd.MultiIndex.from_tuples([(64, 100), (16, 100)], names=["width", "steps"]))
        >>> worst_setting(rows)
        {'width': 16, 'steps': 100, 'rank_correlation': 0.7, 'loss_error': 0.4}
    """
    if not len(settings) or bool(settings["rank correlation"].isna().all()):
        raise ValueError(
            "worst_setting needs a by_setting table with at least one defined rank "
            f"correlation, got {len(settings)} rows: confirm at least one setting"
        )
    width, steps = cast(tuple[int, int], settings["rank correlation"].idxmin())
    return {
        "width": int(width),
        "steps": int(steps),
        "rank_correlation": float(settings.loc[(width, steps), "rank correlation"]),
        "loss_error": float(settings.loc[(width, steps), "loss error"]),
    }
