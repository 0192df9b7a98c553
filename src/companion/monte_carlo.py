"""A Monte Carlo check judged against a rival prediction.

The exact moments of random mixing (:mod:`companion.moments`) are checked by pooled
z-scores over independent Monte Carlo blocks (:class:`BlockZ`). Their
rival is a cheap prediction that does without what the exact moments credit (the naive
``pW + (1 - p)I`` mean, the squared mean for the second moment). Both are scored on the same
blocks by one number per block, the *z misfit* ``|log(mean z^2)|``: zero when the z-scores
have mean 0 and variance 1, growing with either a bias or a wrong spread. The blocks are the
units of the paired margin (:func:`companion.rivals.margin`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from companion import metrics, rivals

__all__ = ["BlockZ", "ZScores", "block_misfits", "margin", "pooled_z", "z_misfit", "z_over_blocks"]


@dataclasses.dataclass(frozen=True)
class ZScores:
    """Monte Carlo means against a predicted expectation, pooled over all entries.

    Attributes:
        mean, variance: of the z-scores ``(MC mean - prediction) / standard error`` over
            the entries whose samples vary; about 0 and 1 when the prediction is right.
        within_3se: fraction of those entries within 3 standard errors.
        exact_max_abs: largest ``|MC mean - prediction|`` over entries with zero sample
            variance, compared exactly (0.0 when there are none).
        count: how many entries were scored in standard-error units.
    """

    mean: float
    variance: float
    within_3se: float
    exact_max_abs: float
    count: int


def pooled_z(samples: np.ndarray, predicted: np.ndarray, *, tie: float = 1e-12) -> ZScores:
    """Pool the z-scores of Monte Carlo ``samples`` (realizations first) against
    ``predicted`` over every entry (steps, agents, outputs).

    Neighbouring entries are strongly correlated, so no single entry is a test; the pooled
    mean, variance and 3-standard-error fraction are. Entries whose sample spread is at
    most ``tie`` times their scale (a common start, for example) are compared exactly.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z = pooled_z(rng.normal(size=(400, 50)), np.zeros(50))
        >>> abs(z.mean) < 0.5, 0.5 < z.variance < 2, z.within_3se
        (True, True, 1.0)
    """
    samples, predicted = np.asarray(samples, dtype=float), np.asarray(predicted, dtype=float)
    if samples.ndim < 1 or samples.shape[1:] != predicted.shape or len(samples) < 2:
        raise ValueError(
            f"pooled_z needs samples of shape (realizations >= 2, *{predicted.shape}) for a "
            f"prediction of shape {predicted.shape}, got {samples.shape}"
        )
    average = samples.mean(0)
    error = samples.std(0, ddof=1) / np.sqrt(len(samples))
    varies = error > tie * np.maximum(1.0, np.abs(average))
    gaps = np.abs(average - predicted)[~varies]
    z = ((average - predicted) / np.where(varies, error, 1.0))[varies]
    if z.size == 0:
        raise ValueError("pooled_z: no entry varies across realizations; compare them exactly")
    return ZScores(
        mean=float(z.mean()),
        variance=float(z.var()),
        within_3se=float(np.mean(np.abs(z) <= 3)),
        exact_max_abs=float(gaps.max()) if gaps.size else 0.0,
        count=int(z.size),
    )


@dataclasses.dataclass(frozen=True)
class BlockZ:
    """Pooled z-scores (:func:`pooled_z`) of one prediction in each of
    several independent Monte Carlo blocks.

    One block is not a test: neighbouring entries are correlated, so its pooled variance
    wanders (0.78 to 1.29 over eight blocks of 1000 realizations of a correct prediction
    in the changing-graphs chapter). A prediction looks standard when the medians over
    blocks do: z mean within ``MEAN_TOL`` of 0, variance in ``VARIANCE_RANGE``, at least
    ``WITHIN_MIN`` of the entries within 3 standard errors.
    """

    blocks: tuple[ZScores, ...]

    MEAN_TOL = 0.1
    VARIANCE_RANGE = (0.8, 1.25)
    WITHIN_MIN = 0.98

    def spread(self, field: str) -> tuple[float, float, float]:
        """``(median, minimum, maximum)`` over blocks of one :class:`ZScores` field."""
        return metrics.spread([getattr(z, field) for z in self.blocks])

    @property
    def exact_max_abs(self) -> float:
        """The largest exact gap of the entries that do not vary, over all blocks."""
        return max(z.exact_max_abs for z in self.blocks)

    def standard(self) -> bool:
        """Whether the medians over blocks look like z-scores of a correct prediction."""
        low, high = self.VARIANCE_RANGE
        return bool(
            abs(self.spread("mean")[0]) <= self.MEAN_TOL
            and low <= self.spread("variance")[0] <= high
            and self.spread("within_3se")[0] >= self.WITHIN_MIN
        )

    def summary(self) -> dict[str, float]:
        """Median, minimum and maximum over blocks of the 3-SE fraction, mean and variance."""
        return {
            f"{field}_{how}": value
            for field in ("within_3se", "mean", "variance")
            for how, value in zip(("median", "min", "max"), self.spread(field), strict=True)
        }


def z_over_blocks(blocks: Sequence[np.ndarray], predicted: np.ndarray, *, power: int = 1) -> BlockZ:
    """Pooled z-scores of ``samples ** power`` of every block (realizations first) against
    ``predicted`` (an expectation of the same power).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z = z_over_blocks([rng.normal(size=(400, 50)) for _ in range(3)], np.zeros(50))
        >>> z.standard(), len(z.blocks)
        (True, 3)
    """
    if len(blocks) == 0:
        raise ValueError("z_over_blocks needs at least one block of Monte Carlo samples")
    return BlockZ(tuple(pooled_z(np.asarray(b) ** power, predicted) for b in blocks))


def z_misfit(z: ZScores) -> float:
    """``|log(mean z^2)|`` of one block's pooled z-scores (mean z^2 = variance + mean^2).

    Example:
        >>> z_misfit(ZScores(mean=0.0, variance=1.0, within_3se=1.0, exact_max_abs=0.0,
        ...                  count=10))
        0.0
        >>> round(z_misfit(ZScores(3.0, 1.0, 0.2, 0.0, 10)), 3)  # biased: log 10
        2.303
    """
    second = z.variance + z.mean**2
    if not np.isfinite(second) or second <= 0:
        raise ValueError(
            f"z misfit needs a positive finite mean square of the z-scores, got {second!r}: "
            "a block with no varying entries has no z-scores to judge"
        )
    return float(abs(np.log(second)))


def block_misfits(z: BlockZ) -> list[float]:
    """:func:`z_misfit` of every block."""
    return [z_misfit(block) for block in z.blocks]


def margin(ours: BlockZ, rival: BlockZ) -> rivals.Margin:
    """Our z misfit against the rival's, paired over the same Monte Carlo blocks.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> blocks = [rng.normal(size=(400, 50)) for _ in range(5)]
        >>> right = z_over_blocks(blocks, np.zeros(50))
        >>> wrong = z_over_blocks(blocks, np.full(50, 0.3))
        >>> margin(right, wrong).beats, margin(wrong, right).beats
        (True, False)
    """
    if len(ours.blocks) != len(rival.blocks):
        raise ValueError(
            f"ours and the rival must be scored on the same blocks: {len(ours.blocks)} and "
            f"{len(rival.blocks)}"
        )
    return rivals.margin(block_misfits(ours), block_misfits(rival))
