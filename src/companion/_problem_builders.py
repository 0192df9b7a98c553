"""Problems built from a data set: a model at ``theta_0`` on a split of its rows.

Re-exported by :mod:`companion.problem`, the home of :class:`companion.problem.Problem`;
call them from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import numpy as np

from companion.data import Dataset, load_digits_dataset, partitioner
from companion.models import Model

if TYPE_CHECKING:
    from companion.problem import Problem

__all__ = ["digits", "from_dataset"]


def from_dataset(
    model: Model, dataset: Dataset, partition: Sequence[np.ndarray], *, seed: int = 0
) -> Problem:
    """The problem of ``model`` at ``theta_0`` drawn from ``seed`` on ``dataset``
    (``jax.random.PRNGKey(seed)``).

    Example:
        >>> from companion import models
        >>> d = load_digits_dataset(4, 2, seed=0)
        >>> p = from_dataset(models.affine(10), d, [np.arange(2), np.arange(2, 4)])
        >>> p.kernel.shape, p.kernel_test.shape
        ((40, 40), (20, 40))
    """
    # companion.problem imports this module to re-export it, so Problem is looked up here.
    from companion.problem import Problem

    _, params = model.init_fn(jax.random.PRNGKey(seed), (-1, dataset.x_train.shape[1]))
    has_test = dataset.x_test.shape[0] > 0
    return Problem(
        targets=dataset.y_train,
        partition=partition,
        inputs=dataset.x_train,
        model=model,
        params=params,
        inputs_test=dataset.x_test if has_test else None,
        targets_test=dataset.y_test if has_test else None,
    )


def digits(
    model: Model,
    *,
    num_agents: int,
    samples_per_agent: int,
    n_test: int = 0,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    init_seed: int | None = None,
    center_targets: bool = True,
) -> Problem:
    """Digits split across agents, ``model`` at ``theta_0``; the NTK is computed on use.

    Args:
        model: from :func:`companion.models.mlp` or :func:`companion.models.affine`.
        num_agents: Q.
        samples_per_agent: training samples per agent on average (n = Q times this).
        n_test: test samples (0: none).
        scheme, alpha: partition scheme (``iid``, ``shards``, ``dirichlet``) and its skew
            (:func:`companion.data.partition_indices`).
        seed: seeds the split, the partition and ``theta_0``.
        init_seed: seeds ``theta_0`` instead, when given: several initializations of one
            problem (the same data on the same agents).
        center_targets: one-hot targets minus 1/C (zero-mean outputs).

    Example:
        >>> from companion.models import affine
        >>> p = digits(affine(10), num_agents=2, samples_per_agent=3, seed=1)
        >>> p.kernel.shape, p.f0.shape, [len(r) for r in p.partition]
        ((60, 60), (6, 10), [3, 3])
    """
    dataset = load_digits_dataset(
        num_agents * samples_per_agent, n_test, seed=seed, center_targets=center_targets
    )
    partition = partitioner(dataset, scheme=scheme, alpha=alpha, seed=seed)(num_agents)
    return from_dataset(model, dataset, partition, seed=seed if init_seed is None else init_seed)
