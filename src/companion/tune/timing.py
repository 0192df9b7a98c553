"""What predicting costs against training, measured in the same run.

A :class:`companion.tune.Confirmation` times, per initialization, predicting its
configurations (kernels, thresholds, closed forms) and training them. :func:`measure` adds
the rival, the strongest cheap alternative to the closed form: predicting by simulating the
linearized network step by step, which needs no kernel. It times training and that
simulation of the first few configurations one by one, and pairs them per configuration:
training's time over each prediction's (the closed form's share of its seed's prediction
time, kernels included, against the simulation's own time).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from companion import rivals
from companion.tune.confirm import Confirmation, align, train
from companion.tune.grid import Family

__all__ = ["Costs", "measure"]


@dataclasses.dataclass(frozen=True)
class Costs:
    """Training against predicting, in seconds of the same run.

    Attributes:
        trained, simulated: per timed configuration, training the network and simulating
            its linearization for the confirmation's budget.
        per_config: the median over seeds of the prediction time, per configuration.
        cost_ratio: the median over seeds of training time over prediction time.
    """

    trained: np.ndarray
    simulated: np.ndarray
    per_config: float
    cost_ratio: float

    @property
    def speedup(self) -> rivals.Margin:
        """Per timed configuration, training's time over the closed form's share against
        training's time over the simulation's (:func:`companion.rivals.margin`)."""
        return rivals.margin(
            (self.trained / self.per_config).tolist(),
            (self.trained / self.simulated).tolist(),
            higher_is_better=True,
        )


def measure(
    family: Family,
    table: pd.DataFrame,
    confirmation: Confirmation,
    *,
    timed: int,
    save_every: int,
) -> Costs:
    """Time training and the linearized simulation of the first ``timed`` configurations of
    ``confirmation``, one by one, at the step sizes of ``table`` (a
    :func:`companion.tune.predict` table holding them), after one untimed call that
    compiles, and set them beside the confirmation's own timings.

    Raises:
        ValueError: ``timed`` outside 1 to the number of confirmed configurations.
    """
    configs = confirmation.configurations
    if not 1 <= timed <= len(configs):
        raise ValueError(
            f"timed={timed} must be between 1 and the {len(configs)} confirmed "
            "configurations: time fewer configurations, or confirm more"
        )
    per_config = float(np.median(confirmation.predict_seconds)) / len(configs)
    lrs = [float(lr) for lr in align(table, configs[:timed])["lr"]]
    train(family, configs[0], lrs[0], budget=1, linearize=True)  # compile it
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for config, lr in zip(configs[:timed], lrs, strict=True):
        for linearize in (False, True):
            start = time.perf_counter()
            train(
                family,
                config,
                lr,
                budget=confirmation.budget,
                save_every=save_every,
                linearize=linearize,
            )
            seconds[linearize].append(time.perf_counter() - start)
    return Costs(
        np.array(seconds[False]),
        np.array(seconds[True]),
        per_config,
        float(np.median(confirmation.cost_ratio)),
    )
