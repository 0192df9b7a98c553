"""Tuning without training: choose topology, mixing rule, algorithm, step size, width and
number of agents from the closed form alone (:func:`predict`), then measure how well it
chose by training the networks (:func:`confirm`), against the rankings that use no
dynamics (:mod:`companion.tune.rivals`, judged in :mod:`companion.tune.compare`). The exact
thresholds it relies on are checked in :mod:`companion.tune.thresholds`, what predicting
costs against training is timed in :mod:`companion.tune.timing`, and the fewest messages to a
target are followed in :mod:`companion.tune.messages`."""

from companion.tune import compare, messages, rivals, thresholds, timing
from companion.tune.confirm import (
    MIN_SAMPLE,
    MIN_SEEDS,
    RANKINGS,
    Confirmation,
    align,
    configurations,
    confirm,
    train,
)
from companion.tune.families import digits_family, mlp_family
from companion.tune.grid import (
    CRITERIA,
    GRID_LIMIT,
    KERNELS,
    Choices,
    Configuration,
    Family,
    predict,
    score,
    sort,
)
from companion.tune.rivals import RIVALS

__all__ = [
    "CRITERIA",
    "GRID_LIMIT",
    "KERNELS",
    "MIN_SAMPLE",
    "MIN_SEEDS",
    "RANKINGS",
    "RIVALS",
    "Choices",
    "Configuration",
    "Confirmation",
    "Family",
    "align",
    "compare",
    "configurations",
    "confirm",
    "digits_family",
    "messages",
    "mlp_family",
    "predict",
    "rivals",
    "score",
    "sort",
    "thresholds",
    "timing",
    "train",
]
