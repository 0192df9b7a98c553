"""Runs over many batch sequences, beside the exact moments they estimate.

:mod:`companion.sgd_moments` propagates the mean and second moment of mini-batch DGD, ATC
and CTA in closed form. Here the same quantities come from the runs themselves, so that the
closed form is checked by something that shares none of its algebra:

- :func:`realizations`: the linearized dynamics on given batch sequences, each exact for its
  sequence; :func:`enumerate_sequences` sums them over every sequence of a tiny problem with
  its probability, and :func:`enumeration_errors` holds that sum against the full-batch
  closed form (the mean) and :func:`companion.sgd_moments.moments` (the second moment);
- :func:`loss_curves`: ``E[L(theta_bar)]`` from the exact second moment beside the average
  over drawn sequences, at several step sizes (below and above the mean-square threshold);
- :func:`monte_carlo`: independent blocks of drawn sequences, their pooled z-scores against
  the exact second moment and against the fixed-noise rival
  (:func:`companion.monte_carlo.z_over_blocks`);
- :func:`ensemble`: real networks trained from one ``theta_0`` on independent sequences
  (:func:`companion.simulate.train_batches`) beside their predicted moments, which
  :mod:`companion.sgd_networks` measures.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from companion import algorithms, dynamics, simulate, stability
from companion import monte_carlo as mc
from companion._checks import check_lr_value, check_steps
from companion.graphs import validate_mixing
from companion.problem import Problem
from companion.rivals import Margin
from companion.sampling import Sampler, fixed_size
from companion.sgd_moments import SGDMoments, check_sampler, moments
from companion.trajectory import SaveAt, Trajectory

__all__ = [
    "Ensemble",
    "Enumeration",
    "SequenceMonteCarlo",
    "ensemble",
    "enumerate_sequences",
    "enumeration_errors",
    "loss_curves",
    "monte_carlo",
    "realizations",
]

ENUMERATION_LIMIT = 50_000  # most batch sequences summed by enumerate_sequences


def _positive_int(value, name: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}: {fix}")
    return int(value)


def realizations(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    *,
    lr: float,
    batches: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The linearized dynamics on given batch sequences, one per row of ``batches``
    (S, steps, Q, L) (:meth:`companion.sampling.Sampler.sequences`): each agent's training
    and test predictions after every step, (S, steps + 1, Q, n, C) and (S, steps + 1, Q,
    n_test, C) or None. Each realization is exact for its sequence (linearized training
    with the same batches gives the same predictions)."""
    algorithm, lr = algorithms.get(algorithm), check_lr_value(lr)
    q, (n, c) = problem.num_agents, problem.targets.shape
    mixing = validate_mixing(mixing, num_agents=q, require_connected=False)
    batches = np.asarray(batches, dtype=float)
    if batches.ndim != 4 or batches.shape[2:] != problem.own_rows[0].shape:
        raise ValueError(
            f"batches must be (S, steps, Q, L) = (S, steps, {q}, {problem.own_rows[0].shape[1]}"
            f") row weights, got shape {batches.shape}: use Sampler.sequences"
        )
    select = np.zeros((q, problem.own_outputs[0].shape[1], n * c))
    index, weight = problem.own_outputs
    agents, slots = np.nonzero(weight > 0)
    select[agents, slots, index[weight > 0]] = 1.0
    kernel_own, offset_own = (
        select @ problem.kernel,
        select @ (problem.f0 - problem.targets).ravel(),
    )
    alpha = np.zeros((len(batches), q, n * c))
    states = [alpha]
    for k in range(batches.shape[1]):
        step_weights = np.repeat(batches[:, k], c, axis=2)

        def gradient(state, w=step_weights):
            residual = np.einsum("qlm,sqm->sql", kernel_own, state) + offset_own
            return np.einsum("sql,qlm->sqm", w * residual, select)

        alpha = algorithm.update(
            alpha,
            mix=lambda s: np.einsum("qr,srm->sqm", mixing, s),
            gradient=gradient,
            step=lambda s, g: s - lr * g,
        )
        states.append(alpha)
    stacked = np.stack(states, 1)
    train = problem.f0.ravel() + stacked @ problem.kernel
    test = None
    if problem.kernel_test is not None and problem.f0_test is not None:
        test = (problem.f0_test.ravel() + stacked @ problem.kernel_test.T).reshape(
            *stacked.shape[:3], *problem.f0_test.shape
        )
    return train.reshape(*stacked.shape[:3], n, c), test


def enumerate_sequences(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    *,
    lr: float,
    steps: int,
    sampler: Sampler,
) -> tuple[np.ndarray, np.ndarray]:
    """``E[F]`` and ``E[F^2]`` (steps + 1, Q, n, C) by summing :func:`realizations` over
    every batch sequence with its probability, for tiny problems (a check of
    :func:`moments` that shares none of its algebra).

    Raises:
        ValueError: above ``ENUMERATION_LIMIT`` sequences.
    """
    check_sampler(problem, sampler)
    steps = check_steps(steps)
    per_agent = [sampler.support(a) for a in range(problem.num_agents)]
    joint = []
    for choice in itertools.product(*per_agent):
        weights = np.zeros(problem.own_rows[0].shape)
        for a, (_, w) in enumerate(choice):
            weights[a, : len(w)] = w
        joint.append((float(np.prod([p for p, _ in choice])), weights))
    count = len(joint) ** steps
    if count > ENUMERATION_LIMIT:
        raise ValueError(
            f"{count} batch sequences ({len(joint)} per step, {steps} steps) exceed "
            f"{ENUMERATION_LIMIT}: enumerate fewer steps, agents or rows"
        )
    sequences: Sequence[tuple] = list(itertools.product(joint, repeat=steps))
    probabilities = np.array([np.prod([p for p, _ in seq]) for seq in sequences])
    batches = np.array([[w for _, w in seq] for seq in sequences])
    train, _ = realizations(problem, algorithm, mixing, lr=lr, batches=batches)
    mean = np.einsum("s,s...->...", probabilities, train)
    return mean, np.einsum("s,s...->...", probabilities, train**2)


@dataclasses.dataclass(frozen=True)
class Enumeration:
    """Relative errors (max over entries, over the largest entry) by ``(algorithm, label)``.

    Attributes:
        mean: the mean over every batch sequence against the full-batch closed form.
        second: :func:`companion.sgd_moments.moments`'s second moment against the
            enumerated one.
    """

    mean: dict[tuple[str, str], float]
    second: dict[tuple[str, str], float]

    @property
    def worst_mean(self) -> float:
        """The largest mean error, over algorithms and samplers."""
        return max(self.mean.values())

    @property
    def worst_second(self) -> float:
        """The largest second-moment error, over algorithms and samplers."""
        return max(self.second.values())

    def table(self) -> dict[str, dict[tuple[str, str], float]]:
        """The two columns, ready for ``pandas.DataFrame``."""
        return {"mean vs full batch": self.mean, "second moment": self.second}


def enumeration_errors(
    problem: Problem,
    mixing: np.ndarray,
    lr: float,
    samplers: Mapping[str, tuple[Sampler, int]],
) -> Enumeration:
    """Every algorithm of :data:`companion.algorithms.ALGORITHMS` with every sampler (by
    label, with its number of steps), its batch sequences all listed: the theorem that the
    mean is the full-batch closed form and the exact second moment, both checked.

    Raises:
        ValueError: without samplers (and from the enumeration, above its limit).

    Example:
        >>> from companion import sampling
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.arange(2), np.arange(2, 4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> errors = enumeration_errors(p, np.full((2, 2), 0.5), 0.5,
        ...                             {"b1": (sampling.fixed_size(p, 1), 2)})
        >>> sorted(errors.mean) == [(n, "b1") for n in sorted(algorithms.ALGORITHMS)]
        True
        >>> bool(errors.worst_mean < 1e-12 and errors.worst_second < 1e-12)
        True
    """
    if not samplers:
        raise ValueError("samplers is empty: give at least one {label: (sampler, steps)}")
    mean, second = {}, {}
    for name in algorithms.ALGORITHMS:
        for label, (sampler, steps) in samplers.items():
            options: dict[str, Any] = dict(lr=lr, steps=steps, sampler=sampler)
            listed = enumerate_sequences(problem, name, mixing, **options)
            exact = moments(problem, name, mixing, **options)
            full = dynamics.closed_form(problem, name, mixing, lr=lr).steps(steps)
            scale = [np.abs(m).max() for m in listed]
            mean[name, label] = np.abs(full.predictions - listed[0]).max() / scale[0]
            second[name, label] = np.abs(exact.second - listed[1]).max() / scale[1]
    return Enumeration(mean, second)


def loss_curves(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    sampler: Sampler,
    *,
    threshold: float,
    factors: Sequence[float],
    steps: int,
    count: int,
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray]]:
    """``E[L(theta_bar)]`` at every step for each step size ``factor * threshold``: from the
    exact second moment, and averaged over ``count`` drawn batch sequences (seeds
    ``0 .. count-1``, the same for every factor), ``L`` the global loss at the average of
    the agents' predictions.

    Returns:
        ``(exact, sampled)``, each a curve of ``steps + 1`` values by factor.

    Example:
        >>> from companion import sampling
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.arange(2), np.arange(2, 4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> exact, sampled = loss_curves(p, "dgd", np.full((2, 2), 0.5),
        ...     sampling.fixed_size(p, 1), threshold=1.0, factors=[0.5], steps=3, count=2000)
        >>> exact[0.5].shape, bool(np.abs(sampled[0.5] / exact[0.5] - 1).max() < 0.05)
        ((4,), True)
    """
    count = _positive_int(count, "count", "draw at least one batch sequence")
    if not factors:
        raise ValueError("factors is empty: give at least one fraction of the threshold")
    exact, sampled = {}, {}
    for factor in factors:
        lr = factor * threshold
        exact[factor] = moments(
            problem, algorithm, mixing, lr=lr, steps=steps, sampler=sampler
        ).average_loss
        drawn = sampler.sequences(range(count), steps)
        train, _ = realizations(problem, algorithm, mixing, lr=lr, batches=drawn)
        sampled[factor] = problem.global_loss(train.mean(2)).mean(0)
    return exact, sampled


@dataclasses.dataclass(frozen=True)
class SequenceMonteCarlo:
    """Blocks of drawn batch sequences beside the exact moments and the fixed-noise rival.

    Attributes:
        exact, fixed: :func:`companion.sgd_moments.moments` with ``noise="exact"`` and
            ``noise="fixed"``.
        blocks: each block's training predictions, (size, steps + 1, Q, n, C).
        z_exact, z_fixed: the blocks' pooled z-scores of the second moment against each.
    """

    exact: SGDMoments
    fixed: SGDMoments
    blocks: list[np.ndarray]
    z_exact: mc.BlockZ
    z_fixed: mc.BlockZ

    def margin(self) -> Margin:
        """The exact moment's z misfit against the rival's, paired over blocks
        (:func:`companion.monte_carlo.margin`)."""
        return mc.margin(self.z_exact, self.z_fixed)

    def table(self) -> dict[str, dict[str, float]]:
        """Both summaries (:meth:`companion.monte_carlo.BlockZ.summary`), ready for
        ``pandas.DataFrame``."""
        return {"exact": self.z_exact.summary(), "fixed noise": self.z_fixed.summary()}


def monte_carlo(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    sampler: Sampler,
    *,
    lr: float,
    steps: int,
    size: int,
    blocks: int,
) -> SequenceMonteCarlo:
    """``blocks`` independent blocks of ``size`` batch sequences (block ``b`` draws seeds
    ``b * size .. (b + 1) * size - 1``), pooled z-scores of every agent's training
    predictions squared against the exact second moment and the fixed-noise rival's.

    Raises:
        ValueError: for fewer than two blocks (no spread over blocks) or an empty block.

    Example:
        >>> from companion import sampling
        >>> p = Problem(targets=np.ones((4, 1)), partition=[np.arange(2), np.arange(2, 4)],
        ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
        >>> run = monte_carlo(p, "dgd", np.full((2, 2), 0.5), sampling.fixed_size(p, 1),
        ...                   lr=0.5, steps=4, size=400, blocks=3)
        >>> len(run.blocks), run.blocks[0].shape, run.margin().beats
        (3, (400, 5, 2, 4, 1), True)
    """
    size = _positive_int(size, "size", "draw at least one batch sequence per block")
    if _positive_int(blocks, "blocks", "use at least 2 blocks") < 2:
        raise ValueError(f"blocks must be at least 2, got {blocks}: the z-scores need a spread")
    options: dict[str, Any] = dict(lr=lr, steps=steps, sampler=sampler)
    exact = moments(problem, algorithm, mixing, **options)
    fixed = moments(problem, algorithm, mixing, noise="fixed", **options)
    drawn = []
    for b in range(blocks):
        batches = sampler.sequences(range(b * size, (b + 1) * size), steps)
        drawn.append(realizations(problem, algorithm, mixing, lr=lr, batches=batches)[0])
    z_exact, z_fixed = (mc.z_over_blocks(drawn, m.second, power=2) for m in (exact, fixed))
    return SequenceMonteCarlo(exact, fixed, drawn, z_exact, z_fixed)


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """Networks trained from one ``theta_0`` on independent batch sequences, beside the
    moments predicted for them (:func:`ensemble`).

    Attributes:
        problem, algorithm, mixing, lr, sampler, steps, save_at: the runs' setting.
        runs: the members (:func:`companion.simulate.train_batches`, seeds ``0 ..``).
        predicted: :func:`companion.sgd_moments.moments`, exact and with the noise frozen at
            ``theta_0``, by noise (``"exact"``, ``"fixed"``).
    """

    problem: Problem
    algorithm: algorithms.Algorithm
    mixing: np.ndarray
    lr: float
    sampler: Sampler
    steps: int
    save_at: SaveAt | None
    runs: tuple[Trajectory, ...]
    predicted: dict[str, SGDMoments]


def ensemble(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray,
    *,
    fraction: float,
    batch: int,
    steps: int,
    members: int,
    save_at: SaveAt | None = None,
) -> Ensemble:
    """``members`` networks trained with :func:`companion.sampling.fixed_size` batches of
    ``batch`` rows at ``fraction`` of the full-batch threshold
    (:func:`companion.stability.max_stable_lr`), and their exact and fixed-noise moments.

    Raises:
        ValueError: for fewer than two members.

    Example:
        >>> p = Problem(targets=np.arange(4.0)[:, None], partition=[np.arange(2),
        ...     np.arange(2, 4)], inputs=np.eye(4), apply_fn=lambda p, x: x @ p["a"],
        ...     params={"a": np.zeros((4, 1))})
        >>> e = ensemble(p, "dgd", np.full((2, 2), 0.5), fraction=0.5, batch=1, steps=3,
        ...              members=3)
        >>> len(e.runs), list(e.predicted), float(e.predicted["exact"].variance[0].max())
        (3, ['exact', 'fixed'], 0.0)
    """
    if _positive_int(members, "members", "train at least 2 networks") < 2:
        raise ValueError(f"members must be at least 2, got {members}: a spread needs two")
    algorithm = algorithms.get(algorithm)
    lr = fraction * stability.max_stable_lr(problem, algorithm, mixing)
    sampler = fixed_size(problem, batch)
    options: dict[str, Any] = dict(lr=lr, steps=steps, sampler=sampler, save_at=save_at)
    runs = simulate.train_batches(
        problem, algorithm, mixing, seeds=range(members), progress=False, **options
    )
    predicted = {
        noise: moments(problem, algorithm, mixing, noise=noise, **options)
        for noise in ("exact", "fixed")
    }
    return Ensemble(problem, algorithm, mixing, lr, sampler, steps, save_at, runs, predicted)
