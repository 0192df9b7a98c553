"""Scoring a grid of design choices by the closed form alone.

A :class:`Family` is the problem a practitioner holds before training: one dataset, a
model for every width and a partition for every number of agents, all at one seeded
``theta_0``. :class:`Choices` is the grid: topology, mixing rule, algorithm, step size
(a fraction of the exact stability threshold, :func:`companion.stability.max_stable_lr`),
width and number of agents. :func:`predict` scores every configuration from its closed
form (:func:`companion.dynamics.closed_form`), which for a wide network is what training
does (the book's chapter "Tuning without training" measures how far to trust it).

The scores of one configuration, at a step budget of ``budget`` steps:

- ``steps_to_target``: the first step at which the global loss at the network average,
  ``L(theta_bar)``, is at most ``target`` (inf if not within the budget);
- ``messages_to_target``: parameter vectors sent until then; every step each agent sends
  its parameters to each neighbour, so ``2 |E|`` per step (the off-diagonal nonzeros of W);
- ``final_loss``: ``L(theta_bar)`` at the budget; ``test_loss`` and ``test_accuracy``: the
  agents' mean test loss and test accuracy there;
- ``seconds``: what the threshold and the closed form took (``kernel_seconds``, the width's
  kernel, is computed once per width and shared by its rows).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from companion import algorithms, dynamics, graphs, infinite, models, stability
from companion.data import Dataset
from companion.problem import Problem, from_dataset
from companion.trajectory import SaveAt, Trajectory

__all__ = [
    "CRITERIA",
    "GRID_LIMIT",
    "KERNELS",
    "Choices",
    "Configuration",
    "Family",
    "messages_per_step",
    "predict",
    "score",
    "sort",
]

#: Above this many configurations :func:`predict` asks for ``yes=True``.
GRID_LIMIT = 500
#: Criteria a table can be sorted by, and whether lower is better.
CRITERIA = {
    "messages_to_target": True,
    "steps_to_target": True,
    "final_loss": True,
    "test_loss": True,
    "test_accuracy": False,
}
#: The kernels a closed form can use: the network's at theta_0, or the infinite-width one.
KERNELS = ("empirical", "infinite")
SCORES = ("steps_to_target", "messages_to_target", "final_loss", "test_loss", "test_accuracy")


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One point of the grid."""

    topology: str
    rule: str
    algorithm: str
    lr_fraction: float
    width: int
    num_agents: int

    def mixing(self) -> np.ndarray:
        """The mixing matrix of this topology and rule."""
        return graphs.mixing_matrix(graphs.topology(self.topology, self.num_agents), self.rule)


def _values(name: str, values: Sequence[Any]) -> tuple:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a list of values, got {values!r}")
    if len(values) == 0:
        raise ValueError(f"the grid is empty: {name} has no values; give at least one")
    return tuple(values)


@dataclasses.dataclass(frozen=True)
class Choices:
    """The grid: every combination of the values below is one :class:`Configuration`.

    Raises:
        ValueError: an empty list, an unknown topology, rule or algorithm, a step-size
            fraction that is not a positive number, a width or number of agents that is
            not a positive integer (naming the value and what is accepted).

    Example:
        >>> Choices(topologies=["cycle", "star"], lr_fractions=[0.5], widths=[64],
        ...         num_agents=[4]).size
        6
    """

    topologies: Sequence[str] = ("cycle", "star", "complete")
    rules: Sequence[str] = ("metropolis",)
    algorithms: Sequence[str] = tuple(algorithms.ALGORITHMS)
    lr_fractions: Sequence[float] = (0.25, 0.5, 0.9)
    widths: Sequence[int] = (512,)
    num_agents: Sequence[int] = (16,)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _values(field.name, getattr(self, field.name)))
        for name in self.topologies:
            if name not in graphs.TOPOLOGIES:
                raise ValueError(
                    f"unknown topology {name!r}; choose from {', '.join(graphs.TOPOLOGIES)}"
                )
        for rule in self.rules:
            if rule not in graphs.MIXING_RULES:
                raise ValueError(
                    f"unknown mixing rule {rule!r}; choose from {', '.join(graphs.MIXING_RULES)}"
                )
        for name in self.algorithms:
            algorithms.get(name)
        for f in self.lr_fractions:
            if isinstance(f, bool) or not isinstance(f, int | float) or not f > 0 or f == math.inf:
                raise ValueError(
                    f"step-size fraction {f!r} must be a finite number > 0: a fraction of the "
                    "exact stability threshold (1 is the threshold itself)"
                )
        for name, low in (("widths", 1), ("num_agents", 2)):
            for v in getattr(self, name):
                if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
                    raise ValueError(f"{name} must be integers >= {low}, got {v!r}")
        for topology, num_agents in itertools.product(self.topologies, self.num_agents):
            graphs.topology(topology, int(num_agents))  # e.g. a torus needs a square Q

    @property
    def size(self) -> int:
        """The number of configurations."""
        return math.prod(len(getattr(self, f.name)) for f in dataclasses.fields(self))

    def configurations(self) -> list[Configuration]:
        """Every configuration, widths outermost (so each kernel is used while it is hot)."""
        grid = itertools.product(
            self.widths,
            self.num_agents,
            self.topologies,
            self.rules,
            self.algorithms,
            self.lr_fractions,
        )
        return [
            Configuration(topo, rule, alg, float(frac), int(width), int(q))
            for width, q, topo, rule, alg, frac in grid
        ]


class Family:
    """A dataset, a model for every width and a partition for every number of agents, at
    the ``theta_0`` drawn from ``init_seed``: the problem a grid is tuned on.

    Each width's problem (its kernel, initial predictions and test kernel) is built once
    and reused for every number of agents (:meth:`companion.problem.Problem.replace`).
    """

    def __init__(
        self,
        dataset: Dataset,
        model_for: Callable[[int], models.Model],
        partition_for: Callable[[int], list[np.ndarray]],
        *,
        init_seed: int = 0,
    ) -> None:
        self.dataset, self.model_for, self.partition_for = dataset, model_for, partition_for
        self.init_seed = init_seed
        self._problems: dict[tuple[int, str], Problem] = {}
        self._splits: dict[tuple[int, str, int], Problem] = {}
        #: seconds spent on each (width, kernel)'s kernel, test kernel and f_0
        self.kernel_seconds: dict[tuple[int, str], float] = {}

    def reseeded(self, init_seed: int) -> Family:
        """The same family at another initialization."""
        return Family(self.dataset, self.model_for, self.partition_for, init_seed=init_seed)

    def problem(self, width: int, num_agents: int, kernel: str = "empirical") -> Problem:
        """The problem at ``width`` split across ``num_agents`` agents, with the network's
        kernel at theta_0 (``"empirical"``) or the infinite-width one (``"infinite"``,
        :func:`companion.infinite.analytic_problem`: its mean over initializations)."""
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}")
        key = (width, kernel)
        if key not in self._problems:
            start = time.perf_counter()
            base = self._problems.get((width, "empirical"))
            if base is None:
                model = self.model_for(width)
                partition = self.partition_for(num_agents)
                base = from_dataset(model, self.dataset, partition, seed=self.init_seed)
            built = base if kernel == "empirical" else infinite.analytic_problem(base)
            _ = built.kernel, built.f0, built.kernel_test, built.f0_test
            self._problems[key] = built
            self.kernel_seconds[key] = time.perf_counter() - start
        split = (width, kernel, num_agents)
        if split not in self._splits:
            partition = self.partition_for(num_agents)
            self._splits[split] = self._problems[key].replace(partition=partition)
        return self._splits[split]


def messages_per_step(mixing: np.ndarray) -> int:
    """Parameter vectors sent per step: each agent to each neighbour, the off-diagonal
    nonzeros of W (2 |E|).

    Example:
        >>> messages_per_step(graphs.mixing_matrix(graphs.topology("star", 4)))
        6
    """
    return int(np.count_nonzero(mixing - np.diag(np.diag(mixing))))


def score(
    run: Trajectory, mixing: np.ndarray, *, target: float, save_every: int = 1
) -> dict[str, float]:
    """The scores of one trajectory (a closed form or a training run), as the module
    docstring defines them, read at steps 0, ``save_every``, 2 ``save_every``, ... and the
    last (:class:`companion.trajectory.SaveAt`), so that predictions and runs saved that
    often are scored alike."""
    rows = np.isin(run.saved_steps, SaveAt(every=save_every).resolve(int(run.steps[-1])))
    reached = np.flatnonzero(run.average_loss[rows] <= target)
    steps = float(run.saved_steps[rows][reached[0]]) if reached.size else math.inf
    per_step = messages_per_step(mixing)
    return {
        "steps_to_target": steps,
        "messages_to_target": per_step * steps if reached.size else math.inf,
        "final_loss": float(run.average_loss[-1]),
        "test_loss": math.nan if run.test_loss is None else float(run.test_loss[-1].mean()),
        "test_accuracy": (
            math.nan if run.test_accuracy is None else float(run.test_accuracy[-1].mean())
        ),
    }


def _row(family, config, thresholds, *, target, budget, kernel, save_every) -> dict[str, Any]:
    """One configuration's threshold, status and closed-form scores."""
    start = time.perf_counter()
    problem = family.problem(config.width, config.num_agents, kernel)
    mixing = config.mixing()
    key = (config.width, config.num_agents, config.topology, config.rule, config.algorithm)
    if key not in thresholds:
        try:
            thresholds[key] = (stability.max_stable_lr(problem, config.algorithm, mixing), "")
        except ValueError as refusal:
            thresholds[key] = (math.nan, str(refusal))
    threshold, refusal = thresholds[key]
    row = (
        dataclasses.asdict(config)
        | {
            "threshold": threshold,
            "lr": config.lr_fraction * threshold,
            "spectral_gap": 1.0 - graphs.second_largest_modulus(mixing),
            "messages_per_step": messages_per_step(mixing),
            "status": "stable",
        }
        | dict.fromkeys(SCORES, math.nan)
    )
    if refusal:
        row["status"] = f"no exact threshold: {refusal}"
    elif config.lr_fraction >= 1:
        row["status"] = "unstable: step size at or above the exact threshold"
    else:
        # lr is a fraction < 1 of the exact threshold just computed: no second check
        form = dynamics.closed_form(problem, config.algorithm, mixing, lr=row["lr"], check=False)
        closed = form.steps(budget, save_at=SaveAt(every=save_every))
        row |= score(closed, mixing, target=target, save_every=save_every)
    row["seconds"] = time.perf_counter() - start
    row["kernel_seconds"] = family.kernel_seconds[config.width, kernel]
    return row


def sort(table: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """``table`` best first by ``criterion`` (:data:`CRITERIA`); rows without a score
    (unstable, or no threshold) last."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose from {', '.join(CRITERIA)}")
    ordered = table.sort_values(criterion, ascending=CRITERIA[criterion], na_position="last")
    return ordered.reset_index(drop=True)


def predict(
    family: Family,
    choices: Choices | Sequence[Configuration],
    *,
    target: float,
    budget: int,
    criterion: str = "messages_to_target",
    kernel: str = "empirical",
    save_every: int = 1,
    yes: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every configuration by its closed form, best first by ``criterion``.

    Args:
        family: the data, models and partitions (:class:`Family`, e.g. ``mlp_family``).
        choices: the grid, or an explicit list of configurations.
        target: the global loss ``L(theta_bar)`` to reach. budget: steps per run.
        criterion: a column of :data:`CRITERIA`.
        kernel: ``"empirical"`` (the network's NTK at theta_0) or ``"infinite"``.
        save_every: read the loss curve every this many steps (:func:`score`).
        yes: run a grid larger than :data:`GRID_LIMIT`.
        progress: show a progress bar.

    Returns:
        One row per configuration: its choices, the exact threshold and step size, the
        spectral gap ``1 - |lambda_2(W)|``, ``status`` (``stable``, ``unstable: ...``
        when the fraction is at least 1, ``no exact threshold: ...`` with the reason),
        the scores of the module docstring (NaN unless stable), ``seconds`` and
        ``kernel_seconds``. Unstable rows are kept, last.
    """
    configs = choices.configurations() if isinstance(choices, Choices) else list(choices)
    if not configs:
        raise ValueError("the grid is empty: give at least one configuration")
    if len(configs) > GRID_LIMIT and not yes:
        raise ValueError(
            f"the grid has {len(configs)} configurations, more than {GRID_LIMIT}: pass "
            "yes=True (companion tune --yes) to score them all, or shrink the grid"
        )
    if not (isinstance(target, int | float) and math.isfinite(target) and target > 0):
        raise ValueError(f"target must be a finite loss > 0, got {target!r}")
    if not (isinstance(budget, int | np.integer) and budget >= 1):
        raise ValueError(f"budget must be a positive number of steps, got {budget!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose from {', '.join(CRITERIA)}")
    if not (isinstance(save_every, int | np.integer) and save_every >= 1):
        raise ValueError(f"save_every must be a positive integer of steps, got {save_every!r}")
    thresholds: dict[tuple, tuple[float, str]] = {}
    rows = [
        _row(
            family,
            c,
            thresholds,
            target=target,
            budget=int(budget),
            kernel=kernel,
            save_every=save_every,
        )
        for c in tqdm(configs, desc="closed forms", disable=not progress)
    ]
    return sort(pd.DataFrame(rows), criterion)
