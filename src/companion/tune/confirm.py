"""Confirming a predicted ranking by training the networks it ranks.

:func:`confirm` takes configurations scored by :func:`companion.tune.predict`, and for each
initialization seed predicts them again from that seed's own kernel (what a practitioner
holding that ``theta_0`` would compute) and trains the real networks
(:func:`companion.simulate.train`). :class:`Confirmation` then measures the ranking
against what training observed, beside the rankings that use no dynamics
(:mod:`companion.tune.rivals`): the largest step size first, the largest fraction of the
threshold first, the largest spectral gap first, the fewest messages per unit of step
size first, and a random order.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats
from tqdm import tqdm

from companion import simulate
from companion.trajectory import Trajectory
from companion.tune import rivals
from companion.tune.grid import CRITERIA, SCORES, Configuration, Family, predict, score

__all__ = [
    "MIN_SAMPLE",
    "MIN_SEEDS",
    "RANKINGS",
    "Confirmation",
    "align",
    "configurations",
    "confirm",
    "train",
]

#: A random subset of a grid has at least this many configurations...
MIN_SAMPLE = 30
#: ...and every confirmation at least this many initializations.
MIN_SEEDS = 3
#: The rankings a confirmation compares: the closed form's and its rivals'.
RANKINGS = ("closed form", *rivals.RIVALS)
TIE = 1e-9  # relative difference below which two observed scores are one
CONFIG_COLUMNS = tuple(f.name for f in dataclasses.fields(Configuration))


def configurations(
    table: pd.DataFrame, sample: int | None = None, *, seed: int = 0
) -> list[Configuration]:
    """The configurations of a :func:`companion.tune.predict` table's scored rows, in the
    table's order; with ``sample`` smaller than their number, a random subset of that many
    drawn with ``seed`` (at least :data:`MIN_SAMPLE`).

    Example:
        >>> import pandas as pd
        >>> rows = [dict(topology="cycle", rule="lazy", algorithm="dgd", lr_fraction=f,
        ...              width=8, num_agents=4, status="stable") for f in (0.5, 0.9)]
        >>> [c.lr_fraction for c in configurations(pd.DataFrame(rows))]
        [0.5, 0.9]
    """
    stable = table[table["status"] == "stable"]
    columns = zip(*(stable[c].tolist() for c in CONFIG_COLUMNS), strict=True)
    configs = [
        Configuration(str(t), str(r), str(a), float(f), int(w), int(q))
        for t, r, a, f, w, q in columns
    ]
    if sample is None or sample >= len(configs):
        return configs
    if sample < MIN_SAMPLE:
        raise ValueError(
            f"a random subset of the grid needs at least {MIN_SAMPLE} configurations, got "
            f"sample={sample}: raise it, or confirm all {len(configs)} scored configurations"
        )
    chosen = np.sort(np.random.default_rng(seed).choice(len(configs), sample, replace=False))
    return [configs[i] for i in chosen]


def _oriented(values: np.ndarray, criterion: str) -> np.ndarray:
    """Lower is better; a run that never scored (diverged: NaN) ranks last."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose from {', '.join(CRITERIA)}")
    values = np.where(np.isnan(values), -np.inf if not CRITERIA[criterion] else np.inf, values)
    return values if CRITERIA[criterion] else -values


def _spearman(ranking: np.ndarray, observed: np.ndarray) -> float:
    """Spearman's rank correlation; NaN when either side is constant (every configuration
    missed the target, say), where it is undefined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
        result = scipy.stats.spearmanr(ranking, observed)
        return float(result.statistic)  # pyright: ignore[reportAttributeAccessIssue]


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """Predicted and observed scores of the same configurations over several seeds.

    The rankings compared (:data:`RANKINGS`) are the closed form's and the rivals of
    :mod:`companion.tune.rivals`, computed from each seed's predicted table. The random
    ranking is a seeded permutation per seed for the rank correlation; for the pick's
    place and regret, the expectation over a uniformly random pick. A ranking that ties
    several configurations at its top picks one of them uniformly (scores: the mean).

    Attributes:
        configurations: the confirmed configurations (in the order of every array).
        seeds: the initialization seeds.
        predicted, observed: one table per seed, one row per configuration, with the
            scores of :func:`companion.tune.score` (observed: of the trained networks; a
            run that diverged has NaN scores).
        predict_seconds, train_seconds: per seed, what predicting the configurations
            (kernels included) and training them took, in the same run.
        budget: the steps of every run; a pick that misses the target within it is
            charged the whole budget (:meth:`regret`).
    """

    configurations: tuple[Configuration, ...]
    seeds: tuple[int, ...]
    predicted: tuple[pd.DataFrame, ...]
    observed: tuple[pd.DataFrame, ...]
    predict_seconds: tuple[float, ...]
    train_seconds: tuple[float, ...]
    budget: int

    def order(self, ranking: str, seed_index: int, criterion: str) -> np.ndarray:
        """A ranking of the configurations for one seed, lower predicted better."""
        if ranking == "closed form":
            return _oriented(self.predicted[seed_index][criterion].to_numpy(), criterion)
        if ranking not in RANKINGS:
            raise ValueError(f"unknown ranking {ranking!r}; choose from {', '.join(RANKINGS)}")
        seed = self.seeds[seed_index] + 10_000  # not the initialization's own stream
        return rivals.ranking(ranking, self.predicted[seed_index], seed=seed)

    def observed_order(self, seed_index: int, criterion: str) -> np.ndarray:
        """The observed scores of one seed, lower better (a diverged run last)."""
        return _oriented(self.observed[seed_index][criterion].to_numpy(), criterion)

    def rank_correlation(self, criterion: str, ranking: str = "closed form") -> np.ndarray:
        """Per seed, Spearman's rank correlation between the ranking and the observed
        scores (1: the same order; about 0 for a random order)."""
        return np.array(
            [
                _spearman(self.order(ranking, i, criterion), self.observed_order(i, criterion))
                for i in range(len(self.seeds))
            ]
        )

    def correlation_with(self, table: pd.DataFrame, criterion: str) -> np.ndarray:
        """Per seed, the rank correlation of another prediction of the same configurations
        (a :func:`companion.tune.predict` table, e.g. with the infinite-width kernel) with
        the observed scores."""
        ranking = _oriented(align(table, self.configurations)[criterion].to_numpy(), criterion)
        return np.array(
            [_spearman(ranking, self.observed_order(i, criterion)) for i in range(len(self.seeds))]
        )

    def _picks(self, ranking: str, seed_index: int, criterion: str) -> np.ndarray:
        """The configurations a ranking picks as best: those tied at its minimum, or every
        configuration for the random ranking, whose pick is uniform (its scores are then
        expectations over that pick, not one draw)."""
        if ranking == "random":
            return np.arange(len(self.configurations))
        order = self.order(ranking, seed_index, criterion)
        return np.flatnonzero(order <= order.min() + TIE * abs(order.min()))

    def best_in_top(
        self, criterion: str, ranking: str = "closed form", fraction: float = 0.1
    ) -> np.ndarray:
        """Per seed, whether the ranking's best configuration is among the observed best
        ``ceil(fraction * configurations)`` (for the random ranking: the probability)."""
        top = max(1, math.ceil(fraction * len(self.configurations)))
        hits = []
        for i in range(len(self.seeds)):
            observed = self.observed_order(i, criterion)
            picks = observed[self._picks(ranking, i, criterion)]
            # equal up to rounding (ATC and CTA on the complete graph) is not better
            margin = np.where(np.isfinite(picks), TIE * np.abs(picks), 0.0)
            better = observed[None, :] < (picks - margin)[:, None]
            hits.append(float(np.mean(better.sum(1) < top)))
        return np.array(hits)

    def regret(self, criterion: str, ranking: str = "closed form") -> np.ndarray:
        """Per seed, the observed score of the ranking's best minus the observed best,
        relative to the observed best: 0 when the ranking picks the best (for the random
        ranking: the expectation). A pick that misses the target is charged the whole
        budget in steps; in messages, its messages per step times the budget, or the
        most messages a configuration that reached the target used if that is more (a
        miss never scores better than a hit). A diverged pick is charged the worst score
        of the runs that did not diverge. NaN where no configuration scored."""
        out = []
        for i in range(len(self.seeds)):
            observed = self.observed_order(i, criterion)
            picks = self._picks(ranking, i, criterion)
            charged = np.where(np.isfinite(observed), observed, self._censored(i, criterion))
            best = observed.min()
            regret = (charged[picks] - best) / abs(best) if np.isfinite(best) else math.nan
            out.append(float(np.mean(regret)))
        return np.array(out)

    def _censored(self, seed_index: int, criterion: str) -> np.ndarray:
        """What a configuration that missed the target within the budget is charged."""
        observed = self.observed_order(seed_index, criterion)
        finite = observed[np.isfinite(observed)]
        worst = np.full(len(observed), finite.max() if finite.size else math.nan)
        if criterion == "messages_to_target":
            # never better than reaching the target: at least the worst that reached it
            budget = self.budget * self.predicted[seed_index]["messages_per_step"].to_numpy()
            return np.maximum(budget, worst)
        if criterion == "steps_to_target":
            return np.full(len(observed), float(self.budget))
        return worst  # a diverged run: the worst score among the runs that did not

    def relative_error(self, criterion: str) -> np.ndarray:
        """Per seed, the median over configurations of ``|predicted - observed| /
        |observed|``: how far the predicted scores themselves are off (a diverged run
        counts as infinitely far)."""
        out = []
        for predicted, observed in zip(self.predicted, self.observed, strict=True):
            p, o = predicted[criterion].to_numpy(), observed[criterion].to_numpy()
            error = np.where(np.isfinite(o), np.abs(p - o) / np.abs(o), np.inf)
            out.append(float(np.median(error)))
        return np.array(out)

    @property
    def cost_ratio(self) -> np.ndarray:
        """Per seed, training time over prediction time for the same configurations."""
        return np.array(self.train_seconds) / np.array(self.predict_seconds)

    def scores(self, criterion: str) -> pd.DataFrame:
        """Long table of predicted against observed ``criterion``, one row per (seed,
        configuration), with the configuration's choices (for plotting)."""
        frames = []
        for seed, predicted, observed in zip(
            self.seeds, self.predicted, self.observed, strict=True
        ):
            frame = pd.DataFrame([dataclasses.asdict(c) for c in self.configurations])
            frames.append(
                frame.assign(
                    seed=seed, predicted=predicted[criterion], observed=observed[criterion]
                )
            )
        return pd.concat(frames, ignore_index=True)


def align(table: pd.DataFrame, configs: Sequence[Configuration]) -> pd.DataFrame:
    """The rows of a :func:`companion.tune.predict` table for ``configs``, in their order."""
    keys = [dataclasses.astuple(c) for c in configs]
    return table.set_index(list(CONFIG_COLUMNS)).loc[keys].reset_index()


def _median(values: np.ndarray) -> float:
    """The median over seeds of the defined values (NaN if none is)."""
    return float(np.nanmedian(values)) if np.isfinite(values).any() else math.nan


def train(
    family: Family,
    config: Configuration,
    lr: float,
    *,
    budget: int,
    save_every: int = 1,
    linearize: bool = False,
) -> Trajectory:
    """Train the network of ``config`` (or its linearization) at step size ``lr`` for
    ``budget`` steps, recording predictions every ``save_every`` steps.

    Raises:
        companion.simulate.DivergenceError: the run diverged.
    """
    return simulate.train(
        family.problem(config.width, config.num_agents),
        config.algorithm,
        config.mixing(),
        lr=lr,
        steps=budget,
        linearize=linearize,
        save_at=simulate.SaveAt(every=save_every),
        check=False,
        progress=False,
    )


def _observed(family, config, lr, budget, target, every) -> dict[str, float]:
    try:
        run = train(family, config, lr, budget=budget, save_every=every)
    except simulate.DivergenceError:
        return dict.fromkeys(SCORES, math.nan)
    return score(run, config.mixing(), target=target, save_every=every)


def confirm(
    family: Family,
    configs: Sequence[Configuration],
    *,
    target: float,
    budget: int,
    seeds: Sequence[int],
    kernel: str = "empirical",
    save_every: int = 1,
    progress: bool = True,
) -> Confirmation:
    """Predict and train ``configs`` for every seed in ``seeds``.

    Each seed's prediction uses that seed's own kernel (and threshold), and its timing
    includes the kernels; training runs each configuration at the step size its
    prediction used, without the redundant stability check, and records every agent's
    predictions every ``save_every`` steps (scored alike on both sides, :func:`score`).

    Raises:
        ValueError: fewer than :data:`MIN_SEEDS` seeds, fewer than 3 configurations, or a
            configuration that is not stable (unstable ones have nothing to confirm).
    """
    configs = list(configs)
    if len(seeds) < MIN_SEEDS:
        raise ValueError(
            f"confirm needs at least {MIN_SEEDS} initialization seeds to report a spread, "
            f"got {len(seeds)}"
        )
    if len(configs) < 3:
        raise ValueError(f"a rank correlation needs at least 3 configurations, got {len(configs)}")
    predicted, observed, predict_seconds, train_seconds = [], [], [], []
    for seed in seeds:
        seeded = family.reseeded(seed)
        start = time.perf_counter()
        table = predict(
            seeded,
            configs,
            target=target,
            budget=budget,
            criterion="final_loss",
            kernel=kernel,
            save_every=save_every,
            progress=False,
        )
        table = align(table, configs)
        predict_seconds.append(time.perf_counter() - start)
        unstable = table[table["status"] != "stable"]
        if len(unstable):
            raise ValueError(
                "confirm needs stable configurations, and these have no stable step size: "
                + "; ".join(
                    f"{t}/{r}/{a} at {f:g} ({why})"
                    for t, r, a, f, why in zip(
                        *(unstable[c].tolist() for c in (*CONFIG_COLUMNS[:4], "status")),
                        strict=True,
                    )
                )
            )
        start = time.perf_counter()
        rows = [
            _observed(seeded, c, lr, budget, target, save_every)
            for c, lr in tqdm(
                zip(configs, table["lr"], strict=True),
                total=len(configs),
                desc=f"training, seed {seed}",
                disable=not progress,
            )
        ]
        train_seconds.append(time.perf_counter() - start)
        predicted.append(table)
        observed.append(pd.DataFrame(rows))
    return Confirmation(
        tuple(configs),
        tuple(seeds),
        tuple(predicted),
        tuple(observed),
        tuple(predict_seconds),
        tuple(train_seconds),
        int(budget),
    )
