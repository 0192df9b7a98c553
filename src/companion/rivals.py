"""How an empirical claim is judged against its rival.

A claim credits something: the closed form's dynamics, the graph, the partition, the width.
Its *rival* is the strongest cheap explanation that does not use that thing ("the graph
does not matter", "largest stable step first", the i.i.d. partition, the infinite-width
twin from the same initial outputs). Both are scored by the same metric on the same units
(seeds, configurations), so the comparison is paired: for each unit the *improvement* is
the rival's error minus ours (or our score minus the rival's, for scores where higher is
better). The claim beats its rival only if the median improvement's 95% bootstrap
interval lies above zero: with 5 seeds that asks every seed to improve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Bootstrap resamples of the units; the interval's endpoints move by about 1e-3 of its
#: width between seeds of the resampling at this count.
DRAWS = 2000


@dataclasses.dataclass(frozen=True)
class Margin:
    """Our error against the rival's, paired over units.

    Attributes:
        ours: median over units of our metric.
        rival: median over units of the rival's metric.
        margin: median over units of the improvement (positive: we do better).
        interval: 95% percentile bootstrap interval of that median (units resampled with
            replacement).
        units: how many units (seeds, configurations) the medians are over.
        higher_is_better: whether the metric is a score (rank correlation) rather than an
            error.
    """

    ours: float
    rival: float
    margin: float
    interval: tuple[float, float]
    units: int
    higher_is_better: bool = False

    @property
    def beats(self) -> bool:
        """Whether the interval excludes "no improvement"."""
        return bool(self.interval[0] > 0)

    def fields(self, rival_value: object = None) -> dict[str, Any]:
        """The keyword arguments :func:`companion.book.report.record` takes for a rival
        (``rival_value``, ``margin``, ``margin_interval``), ready to unpack. ``rival_value``
        replaces the rival's median, for a claim that reports the rival at several widths
        and the margin at one.

        Example:
            >>> m = Margin(ours=0.1, rival=0.3, margin=0.2, interval=(0.1, 0.3), units=5)
            >>> m.fields({64: 0.4})["rival_value"], m.fields()["rival_value"]
            ({64: 0.4}, 0.3)
        """
        return {
            "rival_value": self.rival if rival_value is None else rival_value,
            "margin": self.margin,
            "margin_interval": list(self.interval),
        }

    def __str__(self) -> str:
        low, high = self.interval
        verdict = "beats the rival" if self.beats else "does not beat the rival"
        return (
            f"ours {self.ours:.3g}, rival {self.rival:.3g}, margin {self.margin:.3g} "
            f"[{low:.3g}, {high:.3g}] over {self.units}: {verdict}"
        )


def margin(
    ours: Sequence[float],
    rival: Sequence[float],
    *,
    higher_is_better: bool = False,
    draws: int = DRAWS,
    seed: int = 0,
) -> Margin:
    """Pairs our metric with the rival's over units and bootstraps the median improvement.

    Args:
        ours: our metric, one value per unit (seed, configuration).
        rival: the rival's metric on the same units, in the same order.
        higher_is_better: ``True`` for scores (improvement = ours - rival), ``False`` for
            errors (improvement = rival - ours).
        draws: bootstrap resamples.
        seed: seeds the resampling.

    Example:
        >>> m = margin([0.10, 0.12, 0.09, 0.11, 0.10], [0.30, 0.25, 0.35, 0.28, 0.31])
        >>> round(m.margin, 2), m.beats
        (0.2, True)
        >>> margin([0.10, 0.30, 0.09, 0.31, 0.10], [0.30, 0.25, 0.35, 0.28, 0.31]).beats
        False
    """
    a, b = np.asarray(ours, dtype=float), np.asarray(rival, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(
            f"margin pairs one value per unit: give two 1-D sequences of the same length >= 2, "
            f"got shapes {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(
            "margin needs finite values: a diverged run has no error to pair; score it "
            "explicitly (e.g. as the worst value) before pairing"
        )
    if draws < 100:
        raise ValueError(f"draws must be at least 100 for a 95% interval, got {draws}")
    improvement = a - b if higher_is_better else b - a
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, a.size, size=(draws, a.size))
    medians = np.median(improvement[picks], axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return Margin(
        ours=float(np.median(a)),
        rival=float(np.median(b)),
        margin=float(np.median(improvement)),
        interval=(float(low), float(high)),
        units=int(a.size),
        higher_is_better=higher_is_better,
    )


def by_width(
    ours: Mapping[float, float],
    rival: Mapping[float, float],
    judged: Margin,
    *,
    bound: float,
    control: Mapping[float, float] | None = None,
    falls: bool = False,
) -> dict[str, Any]:
    """The fields of :func:`companion.book.report.record` for a measurement by width that is
    judged at the largest width: ``value`` (ours by width) and ``passed`` (ours at the
    largest width at most ``bound``, and with ``falls`` a negative log-log slope against
    width); the rival by width with the margin and interval of ``judged``
    (:meth:`Margin.fields`); and for a deliberately wrong ``control`` by width, its values
    and ``control_passed`` by the same bound, which a discriminating metric must fail.

    Example:
        >>> m = margin([0.25, 0.25, 0.25], [0.5, 0.5, 0.5])
        >>> f = by_width({64: 0.2, 128: 0.1}, {64: 0.3, 128: 0.3}, m, bound=0.15, falls=True)
        >>> f["value"], f["passed"], f["rival_value"], f["margin"]
        ({64: 0.2, 128: 0.1}, True, {64: 0.3, 128: 0.3}, 0.25)
    """
    ours, rival = dict(ours), dict(rival)
    control = None if control is None else dict(control)
    if (
        len(ours) < 2
        or set(rival) != set(ours)
        or not (control is None or set(control) == set(ours))
    ):
        raise ValueError(
            f"by_width needs ours, the rival and the control at the same two or more widths, "
            f"got {sorted(ours)}, {sorted(rival)} and {sorted(control or {})}: give each "
            "quantity at every width"
        )
    widths = sorted(ours)
    slope = np.polyfit(np.log(np.asarray(widths, float)), np.log([ours[w] for w in widths]), 1)[0]
    passed = bool(ours[widths[-1]] <= bound) and (not falls or bool(slope < 0))
    fields = {"value": ours, "passed": passed, **judged.fields(rival)}
    if control is not None:
        fields |= {"control_value": control, "control_passed": bool(control[widths[-1]] <= bound)}
    return fields
