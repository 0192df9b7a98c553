"""The families a grid is tuned on: ReLU (or other) MLPs of every width on one data set,
digits by default, or the user's own (:mod:`companion.userdata`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from companion import models
from companion.data import Dataset, load_digits_dataset, partitioner
from companion.tune.grid import Family

__all__ = ["digits_family", "mlp_family"]


def mlp_family(
    dataset: Dataset,
    partition_for: Callable[[int], list[np.ndarray]],
    *,
    depth: int = 2,
    activation: str = "relu",
    parameterization: str = "ntk",
    init_seed: int = 0,
) -> Family:
    """MLPs of ``depth`` hidden layers, one per width, on ``dataset``, split across any
    number of agents by ``partition_for`` (e.g. :func:`companion.data.partitioner`, or
    :func:`companion.userdata.partition` of a user's file).

    Example:
        >>> from companion import userdata
        >>> mine = userdata.load({"x": np.eye(6), "y": np.array([0, 1, 2, 0, 1, 2])})
        >>> family = mlp_family(mine.dataset(), lambda q: userdata.partition(mine, q))
        >>> family.problem(16, 3).kernel.shape
        (18, 18)
    """
    networks: dict[int, models.Model] = {}
    classes = dataset.num_classes

    def model_for(width: int) -> models.Model:
        if width not in networks:
            networks[width] = models.mlp(
                width, depth, classes, activation=activation, parameterization=parameterization
            )
        return networks[width]

    return Family(dataset, model_for, partition_for, init_seed=init_seed)


def digits_family(
    num_samples: int,
    n_test: int,
    *,
    depth: int = 2,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    init_seed: int = 0,
) -> Family:
    """Digits (centred one-hot targets) and ReLU MLPs of ``depth`` hidden layers in the NTK
    parameterization; ``seed`` draws the split and the partitions.

    Example:
        >>> family = digits_family(16, 8)
        >>> p = family.problem(32, 4)
        >>> p.num_agents, p.kernel.shape
        (4, (160, 160))
    """
    dataset = load_digits_dataset(num_samples, n_test, seed=seed, center_targets=True)
    partition_for = partitioner(dataset, scheme=scheme, alpha=alpha, seed=seed)
    return mlp_family(dataset, partition_for, depth=depth, init_seed=init_seed)
