"""A Monte Carlo check judged against a rival prediction.

The exact moments of random mixing (:mod:`companion.moments`) are checked by pooled
z-scores over independent Monte Carlo blocks (:class:`companion.moments.BlockZ`). Their
rival is a cheap prediction that does without what the exact moments credit (the naive
``pW + (1 - p)I`` mean, the squared mean for the second moment). Both are scored on the same
blocks by one number per block, the *z misfit* ``|log(mean z^2)|``: zero when the z-scores
have mean 0 and variance 1, growing with either a bias or a wrong spread. The blocks are the
units of the paired margin (:func:`companion.rivals.margin`).
"""

from __future__ import annotations

import numpy as np

from companion import rivals
from companion.metrics import ZScores
from companion.moments import BlockZ

__all__ = ["block_misfits", "margin", "z_misfit"]


def z_misfit(z: ZScores) -> float:
    """``|log(mean z^2)|`` of one block's pooled z-scores (mean z^2 = variance + mean^2).

    Example:
        >>> from companion.metrics import ZScores
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
        >>> from companion import moments
        >>> rng = np.random.default_rng(0)
        >>> blocks = [rng.normal(size=(400, 50)) for _ in range(5)]
        >>> right = moments.z_over_blocks(blocks, np.zeros(50))
        >>> wrong = moments.z_over_blocks(blocks, np.full(50, 0.3))
        >>> margin(right, wrong).beats, margin(wrong, right).beats
        (True, False)
    """
    if len(ours.blocks) != len(rival.blocks):
        raise ValueError(
            f"ours and the rival must be scored on the same blocks: {len(ours.blocks)} and "
            f"{len(rival.blocks)}"
        )
    return rivals.margin(block_misfits(ours), block_misfits(rival))
