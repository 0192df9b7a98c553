"""One experiment, set up once: data split across agents, a model at theta_0, its NTK.

The chapters compare the closed form (:func:`companion.dynamics.predict`) with training
(:func:`companion.simulate.train`) on many graphs and algorithms. Everything those
comparisons share (data, partition, initial parameters, kernel, initial predictions) is
computed once in :func:`make_problem`; :func:`compare` then runs both sides for one
mixing matrix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from companion import data as data_lib
from companion import dynamics, ntk, simulate
from companion.models import Model
from companion.trajectory import Trajectory, relative_error


@dataclasses.dataclass(frozen=True)
class Problem:
    """Data split across agents, a model at its initialization, and its NTK.

    Attributes:
      data: the train/test split.
      partition: Q index arrays into the training rows.
      model: the model (``companion.models``).
      params: theta_0, shared by every agent.
      kernel: full-output empirical NTK on the training inputs, (n*C, n*C).
      kernel_test: test-train NTK (n_test*C, n*C), or None without test data.
      f0, f0_test: predictions at theta_0, (n, C) and (n_test, C) or None.
    """

    data: data_lib.Dataset
    partition: tuple[np.ndarray, ...]
    model: Model
    params: Any
    kernel: np.ndarray
    kernel_test: np.ndarray | None
    f0: np.ndarray
    f0_test: np.ndarray | None

    @property
    def num_agents(self) -> int:
        """Q."""
        return len(self.partition)

    @property
    def curvature(self) -> float:
        """``max_q lambda_max(K_qq / n_q)``: the largest local curvature in function space.

        Step sizes in the book are quoted as fractions of ``1 / curvature`` (the
        centralized gradient-descent stability scale).
        """
        c = self.data.num_classes
        worst = 0.0
        for rows in self.partition:
            idx = (np.asarray(rows)[:, None] * c + np.arange(c)).ravel()
            block = self.kernel[np.ix_(idx, idx)] / len(rows)
            worst = max(worst, float(np.linalg.eigvalsh(block)[-1]))
        return worst


def make_problem(
    model: Model,
    *,
    num_agents: int,
    samples_per_agent: int,
    n_test: int = 0,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    center_targets: bool = True,
) -> Problem:
    """Loads digits, splits them across agents, initializes ``model`` and its NTK.

    Args:
      model: from :func:`companion.models.mlp` or :func:`companion.models.affine`.
      num_agents: Q.
      samples_per_agent: training samples per agent on average (n = Q * this).
      n_test: test samples (0: none).
      scheme, alpha: partition scheme (``iid``, ``shards``, ``dirichlet``) and its skew.
      seed: seeds the split, the partition and theta_0.
      center_targets: one-hot targets minus 1/C (zero-mean outputs, as in the paper's
        regression view of classification).

    Example:
      >>> from companion.models import affine
      >>> p = make_problem(affine(10), num_agents=2, samples_per_agent=3, seed=1)
      >>> p.kernel.shape, p.f0.shape, [len(r) for r in p.partition]
      ((60, 60), (6, 10), [3, 3])
    """
    dataset = data_lib.load_digits_dataset(
        num_agents * samples_per_agent, n_test, seed=seed, center_targets=center_targets
    )
    partition = data_lib.partition_indices(
        dataset.labels_train, num_agents, scheme=scheme, alpha=alpha, seed=seed
    )
    _, params = model.init_fn(jax.random.PRNGKey(seed), (-1, dataset.x_train.shape[1]))
    has_test = dataset.x_test.shape[0] > 0
    return Problem(
        data=dataset,
        partition=tuple(partition),
        model=model,
        params=params,
        kernel=ntk.empirical_ntk(model, params, dataset.x_train),
        kernel_test=ntk.empirical_ntk(model, params, dataset.x_test, dataset.x_train)
        if has_test
        else None,
        f0=np.asarray(model.apply_fn(params, dataset.x_train)),
        f0_test=np.asarray(model.apply_fn(params, dataset.x_test)) if has_test else None,
    )


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The closed form and a training run of the same algorithm on the same problem."""

    predicted: Trajectory
    observed: Trajectory

    @property
    def mean_loss_error(self) -> float:
        """Relative L2 error of the predicted mean local-loss curve against the observed."""
        return relative_error(self.predicted.mean_loss, self.observed.mean_loss)

    @property
    def max_rel_err(self) -> float:
        """Worst relative error over per-agent losses and predictions (exactness checks)."""
        return max(
            relative_error(self.predicted.local_loss, self.observed.local_loss),
            relative_error(self.predicted.predictions, self.observed.predictions),
        )


def predict(problem: Problem, algorithm: str, mixing: np.ndarray, *, lr: float, steps: int):
    """The closed form (:func:`companion.dynamics.predict`) for ``problem``."""
    d = problem.data
    return dynamics.predict(
        algorithm,
        kernel=problem.kernel,
        targets=d.y_train,
        partition=problem.partition,
        mixing=mixing,
        lr=lr,
        steps=steps,
        f0=problem.f0,
        kernel_test=problem.kernel_test,
        f0_test=problem.f0_test,
        targets_test=d.y_test if problem.kernel_test is not None else None,
    )


def train(
    problem: Problem,
    algorithm: str,
    mixing: np.ndarray,
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    progress: bool = False,
) -> Trajectory:
    """Real (or linearized) decentralized training (:func:`companion.simulate.train`)."""
    d = problem.data
    has_test = problem.kernel_test is not None
    return simulate.train(
        algorithm,
        problem.model.apply_fn,
        problem.params,
        inputs=d.x_train,
        targets=d.y_train,
        partition=problem.partition,
        mixing=mixing,
        lr=lr,
        steps=steps,
        linearize=linearize,
        inputs_test=d.x_test if has_test else None,
        targets_test=d.y_test if has_test else None,
        progress=progress,
        kernel=problem.kernel,
    )


def compare(
    problem: Problem,
    algorithm: str,
    mixing: np.ndarray,
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    progress: bool = False,
) -> Comparison:
    """Closed form against training for one algorithm and one mixing matrix."""
    return Comparison(
        predicted=predict(problem, algorithm, mixing, lr=lr, steps=steps),
        observed=train(
            problem, algorithm, mixing, lr=lr, steps=steps, linearize=linearize, progress=progress
        ),
    )


def grid(
    problem: Problem,
    mixings: dict[str, np.ndarray],
    algorithms: Sequence[str],
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    progress: bool = True,
) -> dict[tuple[str, str], Comparison]:
    """:func:`compare` for every (topology, algorithm) pair, with one progress bar."""
    from tqdm.auto import tqdm

    pairs = [(t, a) for t in mixings for a in algorithms]
    out = {}
    for topo, alg in tqdm(pairs, desc="topology x algorithm", disable=not progress):
        out[(topo, alg)] = compare(
            problem, alg, mixings[topo], lr=lr, steps=steps, linearize=linearize
        )
    return out
