"""The fewest messages to a target loss: predicted against observed.

Every step each agent sends its parameters to each neighbour (``2 |E|`` parameter vectors
per step, :func:`companion.tune.messages_per_step`), so a configuration's messages to a
target loss are its steps to the target times that count. :func:`table` sets the closed
form's counts beside training's over initializations, and :func:`curves` follows the global
loss at the network average against the messages sent, on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from companion import dynamics
from companion.tune.confirm import Confirmation, align, train
from companion.tune.grid import Configuration, Family

__all__ = ["curves", "label", "table"]

Curves = dict[str, tuple[np.ndarray, np.ndarray]]


def label(config: Configuration) -> str:
    """A configuration's topology, rule, algorithm and step-size fraction, in a few words.

    Example:
        >>> label(Configuration("cycle", "lazy", "atc", 0.9, 64, 4))
        'cycle lazy ATC 0.9'
    """
    return f"{config.topology} {config.rule} {config.algorithm.upper()} {config.lr_fraction:g}"


def table(confirmation: Confirmation) -> pd.DataFrame:
    """Per confirmed configuration (rows named by :func:`label`), the median over seeds of
    the predicted and the observed messages to the target, and the most observed (inf where
    a run missed the target within the budget)."""
    predicted = [p["messages_to_target"].to_numpy() for p in confirmation.predicted]
    observed = [o["messages_to_target"].to_numpy() for o in confirmation.observed]
    out = pd.DataFrame(
        {"predicted, median": np.median(predicted, 0), "observed, median": np.median(observed, 0)},
        index=[label(c) for c in confirmation.configurations],
    )
    out["observed, max"] = np.max(observed, 0)
    return out


def curves(
    family: Family,
    grid: pd.DataFrame,
    configs: Sequence[Configuration],
    *,
    budget: int,
    save_every: int,
) -> tuple[Curves, Curves]:
    """Per configuration (keyed by :func:`label`), ``(messages sent, L(theta_bar))`` of the
    closed form at every step and of training every ``save_every`` steps, both at the step
    size of ``grid`` (a :func:`companion.tune.predict` table holding the configurations)
    and from ``family``'s own ``theta_0``.

    Raises:
        KeyError: a configuration that ``grid`` does not hold.
    """
    predicted, observed = {}, {}
    rows = align(grid, configs)
    for config, lr, per_step in zip(configs, rows["lr"], rows["messages_per_step"], strict=True):
        problem = family.problem(config.width, config.num_agents)
        form = dynamics.closed_form(problem, config.algorithm, config.mixing(), lr=lr)
        closed = form.steps(budget)
        run = train(family, config, lr, budget=budget, save_every=save_every)
        predicted[label(config)] = (per_step * closed.saved_steps, closed.average_loss)
        observed[label(config)] = (per_step * run.saved_steps, run.average_loss)
    return predicted, observed
