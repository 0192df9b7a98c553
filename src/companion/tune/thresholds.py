"""The exact thresholds a tuner relies on, checked against the dense spectral radius.

Every step size of a tuning grid is a fraction of its configuration's exact stability
threshold (:func:`companion.stability.max_stable_lr`). Where that threshold is the step
size at which -1 becomes an eigenvalue of the iteration matrix (DGD on a symmetric W, ATC
and CTA on a positive semidefinite one: :meth:`companion.algorithms.Theory.crossing_is_threshold`),
it is one m x m eigenvalue; :func:`crossing_check` measures, for every covered topology,
rule and algorithm, how far the spectral radius is from 1 there
(:func:`companion.stability.crossing_error`), beside the same metric at the sufficient
bound (:func:`companion.stability.sufficient_lr_bound`), the control that must fail.
Where the hypothesis fails, so can the formula: :func:`indefinite_pair` is the smallest
such problem, and :func:`largest_eigenvalues` shows how its spectral radius crosses 1.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np

from companion import algorithms, graphs, stability
from companion.problem import Problem

__all__ = ["CrossingCheck", "crossing_check", "indefinite_pair", "largest_eigenvalues"]

Key = tuple[str, str, str]


@dataclasses.dataclass(frozen=True)
class CrossingCheck:
    """The reduced threshold checked on the configurations it covers.

    Attributes:
        errors: per ``(topology, rule, algorithm)``, the crossing error at the exact
            threshold (about rounding where the formula is right).
        controls: the same metric at the sufficient bound (well above rounding).
    """

    errors: dict[Key, float]
    controls: dict[Key, float]

    @property
    def worst(self) -> float:
        """The largest error over the covered configurations."""
        return max(self.errors.values())

    @property
    def smallest_control(self) -> float:
        """The smallest control over the covered configurations."""
        return min(self.controls.values())


def crossing_check(
    problem: Problem,
    topologies: Sequence[str],
    rules: Sequence[str],
    algorithms_: Sequence[str],
) -> CrossingCheck:
    """The crossing error at the exact threshold, and at the sufficient bound, for every
    topology (on ``problem.num_agents`` agents), mixing rule and algorithm where the -1
    crossing is the threshold; the others (ATC or CTA on an indefinite W) are skipped.

    Example:
        >>> from companion import tune
        >>> small = tune.digits_family(4, 2, depth=1, seed=0).problem(8, 3)
        >>> check = crossing_check(small, ["cycle"], ["lazy"], ["dgd", "atc"])
        >>> sorted(check.errors), check.worst < 1e-10 < check.smallest_control
        ([('cycle', 'lazy', 'atc'), ('cycle', 'lazy', 'dgd')], True)

    Raises:
        ValueError: no configuration is covered (every W indefinite with ATC or CTA, or
            an empty list), so nothing would be checked.
    """
    errors, controls = {}, {}
    for topo, rule, alg in itertools.product(topologies, rules, algorithms_):
        w = graphs.mixing_matrix(graphs.topology(topo, problem.num_agents), rule)
        symmetric = bool(np.allclose(w, w.T))
        lambda_min = float(np.linalg.eigvalsh(w)[0]) if symmetric else -np.inf
        if not algorithms.get(alg).theory.crossing_is_threshold(symmetric, lambda_min):
            continue  # not covered: indefinite W with ATC or CTA
        exact = stability.max_stable_lr(problem, alg, w)
        errors[topo, rule, alg] = stability.crossing_error(problem, alg, w, exact)
        bound = stability.sufficient_lr_bound(problem, w, algorithm=alg)
        controls[topo, rule, alg] = stability.crossing_error(problem, alg, w, bound)
    if not errors:
        raise ValueError(
            f"no configuration of topologies={list(topologies)}, rules={list(rules)}, "
            f"algorithms={list(algorithms_)} has the -1 crossing as its threshold: add DGD, "
            "or a positive semidefinite rule such as 'lazy'"
        )
    return CrossingCheck(errors, controls)


def indefinite_pair() -> tuple[Problem, np.ndarray]:
    """Two agents with one sample each, ``K = I``, targets 1, ``f0 = 0``, and the
    indefinite ``W = [[0.1, 0.9], [0.9, 0.1]]`` (eigenvalues 1 and -0.8): for ATC, -1 is
    never an eigenvalue of the iteration matrix, yet its spectral radius passes 1 at a
    finite step size.

    Example:
        >>> pair, w = indefinite_pair()
        >>> pair.num_agents, np.linalg.eigvalsh(w).round(2).tolist()
        (2, [-0.8, 1.0])
    """
    pair = Problem(
        targets=np.ones((2, 1)),
        partition=[np.array([0]), np.array([1])],
        kernel=np.eye(2),
        f0=np.zeros((2, 1)),
    )
    return pair, np.array([[0.1, 0.9], [0.9, 0.1]])


def largest_eigenvalues(
    problem: Problem, algorithm: str, mixing: np.ndarray, lr: float, count: int = 2
) -> np.ndarray:
    """The ``count`` eigenvalues of largest modulus of the iteration matrix at step size
    ``lr`` (:func:`companion.stability.iteration_matrix`), largest first.

    Example:
        >>> pair, w = indefinite_pair()
        >>> abs(largest_eigenvalues(pair, "atc", w, 0.5)).round(3).tolist()
        [0.712, 0.712]

    Raises:
        ValueError: ``count`` below 1.
    """
    if count < 1:
        raise ValueError(f"count={count} must be at least 1: ask for one eigenvalue or more")
    eigenvalues = np.linalg.eigvals(stability.iteration_matrix(problem, algorithm, mixing, lr))
    return eigenvalues[np.argsort(-abs(eigenvalues))[:count]]
