"""Tuning without training: choose topology, mixing rule, algorithm, step size, width and
number of agents from the closed form alone (:func:`predict`), then measure how well it
chose by training the networks (:func:`confirm`)."""

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
from companion.tune.grid import (
    CRITERIA,
    GRID_LIMIT,
    KERNELS,
    Choices,
    Configuration,
    Family,
    digits_family,
    predict,
    score,
    sort,
)

__all__ = [
    "CRITERIA",
    "GRID_LIMIT",
    "KERNELS",
    "MIN_SAMPLE",
    "MIN_SEEDS",
    "RANKINGS",
    "Choices",
    "Configuration",
    "Confirmation",
    "Family",
    "align",
    "configurations",
    "confirm",
    "digits_family",
    "predict",
    "score",
    "sort",
    "train",
]
