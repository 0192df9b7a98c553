"""Power-law rates over seeds, and how one rate is judged against a rival rate.

A claim such as "the kernel's drift falls faster than its seed-to-seed fluctuations" is a
statement about two log-log slopes against width. One slope fitted to medians has no
interval, so a bound that the rival misses by 0.004 is noise. Here every seed gets its own
slope (seed ``s`` at every width, least squares in log-log), each set of slopes gets a 95%
bootstrap interval of its median, and the two are compared seed by seed
(:func:`companion.rivals.margin`, steeper is better).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from companion import rivals

__all__ = [
    "SlopeComparison",
    "compare_slopes",
    "growth_per_step",
    "local_slope_table",
    "local_slopes",
    "median_interval",
    "misfit",
    "per_seed_slopes",
    "rate_margin",
]


def per_seed_slopes(widths: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``log values[s]`` against ``log widths``, one per seed.

    Args:
        widths: the x values (at least two, positive).
        values: (seeds, widths), positive.

    Example:
        >>> w = np.array([64.0, 128.0, 256.0])
        >>> per_seed_slopes(w, np.stack([w**-0.5, 3 * w**-1.0])).round(12).tolist()
        [-0.5, -1.0]
    """
    x, y = np.asarray(widths, dtype=float), np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size < 2 or y.ndim != 2 or y.shape[1] != x.size:
        raise ValueError(
            f"per_seed_slopes needs at least two widths and values of shape (seeds, "
            f"{x.size}); got widths {x.shape} and values {y.shape}"
        )
    if (x <= 0).any() or (y <= 0).any() or not np.isfinite(y).all():
        raise ValueError("per_seed_slopes fits in log-log: widths and values must be positive")
    lx = np.log(x) - np.log(x).mean()
    ly = np.log(y) - np.log(y).mean(axis=1, keepdims=True)
    return ly @ lx / (lx @ lx)


def median_interval(
    values: Sequence[float], *, draws: int = rivals.DRAWS, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """The median and its 95% percentile bootstrap interval.

    Example:
        >>> median, (low, high) = median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
        >>> median, low <= median <= high
        (3.0, True)
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 2 or not np.isfinite(v).all():
        raise ValueError(f"median_interval needs >= 2 finite values, got {values!r}")
    picks = np.random.default_rng(seed).integers(0, v.size, size=(draws, v.size))
    low, high = np.percentile(np.median(v[picks], axis=1), [2.5, 97.5])
    return float(np.median(v)), (float(low), float(high))


@dataclasses.dataclass(frozen=True)
class SlopeComparison:
    """Our per-seed slopes against the rival's, on the same seeds and widths.

    Attributes:
        ours: our slope, one per seed.
        rival: the rival's slope, one per seed (same order).
    """

    ours: tuple[float, ...]
    rival: tuple[float, ...]

    @property
    def ours_interval(self) -> tuple[float, float]:
        """95% bootstrap interval of our median slope."""
        return median_interval(self.ours)[1]

    @property
    def rival_interval(self) -> tuple[float, float]:
        """95% bootstrap interval of the rival's median slope."""
        return median_interval(self.rival)[1]

    @property
    def apart(self) -> bool:
        """Whether our slope's interval lies entirely below (steeper than) the rival's."""
        return self.ours_interval[1] < self.rival_interval[0]

    @property
    def margin(self) -> rivals.Margin:
        """Paired over seeds: how much steeper ours is (rival slope minus ours)."""
        return rivals.margin(self.ours, self.rival)


def compare_slopes(widths: Sequence[float], ours: np.ndarray, rival: np.ndarray) -> SlopeComparison:
    """Per-seed slopes of two (seeds, widths) measurements on the same seeds.

    Example:
        >>> w = np.array([64.0, 128.0, 256.0, 512.0])
        >>> noise = np.exp(0.01 * np.random.default_rng(0).normal(size=(5, 4)))
        >>> c = compare_slopes(w, w**-1.0 * noise, w**-0.5 * noise[::-1])
        >>> c.apart, c.margin.beats
        (True, True)
        >>> compare_slopes(w, w**-0.5 * noise, w**-0.5 * noise[::-1]).apart
        False
    """
    mine, theirs = per_seed_slopes(widths, ours), per_seed_slopes(widths, rival)
    if mine.shape != theirs.shape:
        raise ValueError(
            f"ours and rival must cover the same seeds: {mine.size} and {theirs.size} slopes"
        )
    return SlopeComparison(tuple(map(float, mine)), tuple(map(float, theirs)))


def misfit(widths: Sequence[float], values: np.ndarray, rate: float) -> np.ndarray:
    """Per seed, how badly the power law ``c * width ** rate`` (``c`` fitted) describes the
    values: root mean square of the log-log residual.

    Example:
        >>> w = np.array([64.0, 128.0, 256.0])
        >>> misfit(w, np.stack([2 * w**-0.5, w**-1.0]), -0.5).round(3).tolist()
        [0.0, 0.283]
    """
    per_seed_slopes(widths, values)  # validates the shapes and signs
    if not np.isfinite(rate):
        raise ValueError(f"rate must be a finite number, got {rate!r}")
    residual = np.log(values) - rate * np.log(np.asarray(widths, dtype=float))
    return np.sqrt(np.mean((residual - residual.mean(axis=1, keepdims=True)) ** 2, axis=1))


def rate_margin(
    widths: Sequence[float], values: np.ndarray, rate: float, rival_rate: float
) -> rivals.Margin:
    """Which of two power laws describes (seeds, widths) values better: the
    :func:`misfit` of ``rate`` against that of ``rival_rate``, paired over seeds (positive
    margin: ``rate`` fits better).

    Example:
        >>> w = np.array([64.0, 128.0, 256.0, 512.0])
        >>> noise = np.exp(0.02 * np.random.default_rng(0).normal(size=(5, 4)))
        >>> rate_margin(w, w**-0.5 * noise, -0.5, -1.0).beats
        True
        >>> rate_margin(w, w**-1.0 * noise, -0.5, -1.0).beats
        False
    """
    ours, theirs = misfit(widths, values, rate), misfit(widths, values, rival_rate)
    return rivals.margin(ours.tolist(), theirs.tolist())


def local_slopes(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Log-log slopes between consecutive points: how a power law's exponent changes
    along a sweep (an asymptotic rate shows where the local slopes settle).

    Example:
        >>> local_slopes([1.0, 2.0, 4.0], [1.0, 2.0, 8.0]).round(12).tolist()
        [1.0, 2.0]
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(
            f"local_slopes needs two 1-D sequences of length >= 2, got {a.shape}, {b.shape}"
        )
    if (a <= 0).any() or (b <= 0).any():
        raise ValueError("local_slopes works in log-log: x and y must be positive")
    return np.diff(np.log(b)) / np.diff(np.log(a))


def local_slope_table(x: Sequence[float], columns: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """:func:`local_slopes` of every column against ``x``, one row per pair of neighbouring
    points, labelled ``"a to b"``.

    Example:
        >>> local_slope_table([1.0, 2.0, 4.0], {"y": [1.0, 2.0, 8.0]}).round(12)
                  y
        1 to 2  1.0
        2 to 4  2.0
    """
    labels = [f"{a:g} to {b:g}" for a, b in zip(x[:-1], x[1:], strict=True)]
    return pd.DataFrame({k: local_slopes(x, columns[k]) for k in columns}, index=labels)


def growth_per_step(values: Sequence[float], *, since: int, order: int = 1) -> float:
    """The geometric rate per step of a sequence recorded at every step, from index
    ``since`` to the last: ``(values[-1] / values[since]) ** (1 / (order * k))`` over the
    ``k`` steps between them. ``order=2`` reads the rate of a state off its squared size
    (a loss grows like ``rho ** (2 k)`` when the state grows like ``rho ** k``).

    Example:
        >>> round(growth_per_step(1.1 ** (2 * np.arange(11)), since=5, order=2), 12)
        1.1
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or not 0 <= since < v.size - 1 or order < 1 or v[since] <= 0:
        raise ValueError(
            f"growth_per_step needs a 1-D sequence, 0 <= since < len - 1 and order >= 1 with "
            f"a positive values[since]: got length {v.size}, {since=}, {order=}"
        )
    return float((v[-1] / v[since]) ** (1 / (order * (v.size - 1 - since))))
