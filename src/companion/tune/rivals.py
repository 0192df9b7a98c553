"""Rankings without dynamics: the rivals a closed form's ranking is judged against.

A rival orders the configurations of a :func:`companion.tune.predict` table from columns
that need no closed form (the exact threshold, the step-size fraction, the mixing
matrix), so it credits nothing to the predicted dynamics. Every ranking returns one
number per configuration, lower predicted better; ties are ties.

- ``largest_step``: the largest absolute step size first (``threshold x fraction``); on
  a grid whose step sizes are fractions of each threshold the loss after a budget is set
  mostly by it, so it is the strongest rival for the loss.
- ``largest_fraction``: the largest fraction of the threshold first (no computation).
- ``spectral_gap``: the largest spectral gap ``1 - |lambda_2(W)|`` first, ties broken by
  the largest step size.
- ``cheapest_step``: the fewest messages per unit of step size first (``messages per
  step / lr``): the steps to a target scale roughly as ``1 / lr``, so this is the
  no-dynamics guess at the fewest messages to it.
- ``random``: a seeded permutation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FOR_CRITERION", "RIVALS", "WITHIN_FRACTION", "pick", "ranking", "validate"]

#: Every rival ranking, in the order tables show them.
RIVALS = ("largest_step", "largest_fraction", "spectral_gap", "cheapest_step", "random")
#: The rivals that can order configurations of one step-size fraction (the fraction
#: itself is constant there, and a random order is no explanation of anything).
WITHIN_FRACTION = ("largest_step", "spectral_gap", "cheapest_step")
#: The rival that knows most without dynamics, per criterion: the step size, and for
#: messages the messages each step costs too (chapter "Tuning without training" measures
#: which rival is strongest).
FOR_CRITERION = {
    "messages_to_target": "cheapest_step",
    "steps_to_target": "largest_step",
    "final_loss": "largest_step",
    "test_loss": "largest_step",
    "test_accuracy": "largest_step",
}


def validate(name: str, allowed: tuple[str, ...] = RIVALS) -> str:
    """``name`` if it is a rival of ``allowed``, else a ValueError naming the choices.

    Example:
        >>> validate("largest_step")
        'largest_step'
    """
    if name not in allowed:
        raise ValueError(f"unknown rival {name!r}; choose from {', '.join(allowed)}")
    return name


def _ranks(order: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(order))
    ranks[order] = np.arange(len(order))
    return ranks


def ranking(name: str, table: pd.DataFrame, *, seed: int = 0) -> np.ndarray:
    """The rival ``name``'s order of the rows of ``table`` (lower: predicted better).

    Args:
        name: one of :data:`RIVALS`.
        table: rows of a :func:`companion.tune.predict` table (columns ``lr``,
            ``lr_fraction``, ``spectral_gap``, ``messages_per_step``).
        seed: seeds the random permutation.

    Example:
        >>> t = pd.DataFrame({"lr": [0.1, 0.3, 0.2], "lr_fraction": [0.5, 0.9, 0.9],
        ...                   "spectral_gap": [1.0, 0.2, 0.5],
        ...                   "messages_per_step": [12, 4, 6]})
        >>> ranking("largest_step", t).tolist()
        [-0.1, -0.3, -0.2]
        >>> ranking("spectral_gap", t).tolist()
        [0.0, 2.0, 1.0]
        >>> ranking("cheapest_step", t).round(1).tolist()
        [120.0, 13.3, 30.0]
    """
    validate(name)
    lr = table["lr"].to_numpy(dtype=float)
    if name == "largest_step":
        return -lr
    if name == "largest_fraction":
        return -table["lr_fraction"].to_numpy(dtype=float)
    if name == "spectral_gap":
        # gaps equal up to rounding (the same graph under two algorithms) are one gap
        gap = table["spectral_gap"].to_numpy(dtype=float).round(12)
        return _ranks(np.lexsort((-lr, -gap)))
    if name == "cheapest_step":
        return table["messages_per_step"].to_numpy(dtype=float) / lr
    return np.random.default_rng(seed).permutation(len(table)).astype(float)


def pick(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """The stable rows of ``table`` that rival ``name`` ranks first (several when it
    ties them, as ``largest_fraction`` does), in the table's order.

    Example:
        >>> t = pd.DataFrame({"lr": [0.1, 0.3], "lr_fraction": [0.9, 0.9],
        ...     "spectral_gap": [1.0, 0.2], "messages_per_step": [12, 4],
        ...     "status": ["stable", "stable"]})
        >>> len(pick(t, "largest_fraction")), pick(t, "largest_step")["lr"].tolist()
        (2, [0.3])
    """
    validate(name)
    stable = table.loc[table["status"] == "stable"].reset_index(drop=True)
    if stable.empty:
        raise ValueError("no configuration of the table is stable: a rival has nothing to pick")
    order = ranking(name, stable)
    tied = np.flatnonzero(order <= order.min() + 1e-9 * abs(order.min()))
    return stable.iloc[tied]
