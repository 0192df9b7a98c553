"""Real decentralized training of Q copies of a model.

Every agent starts from the same ``theta_0``. The Q parameter copies are stacked along a
leading axis and trained by the compiled scan of :mod:`companion.scan` (``vmap`` over
agents, ``scan`` over steps, the step being :meth:`companion.algorithms.Algorithm.update`).
Agent q's gradient of ``L_q = 1/(2 n_q) sum_{i in q} ||f(x_i) - y_i||^2`` runs over its own
rows only, or with a ``sampler`` (:mod:`companion.sampling`) over that step's mini-batch of
them, weighted so it is unbiased; for CTA the gradient is taken at the mixed point with
that step's batch. The per-step local losses (of the full local sets) come from the outputs
that gradient already computed; the predictions on all inputs and the parameter distances
only at the steps :class:`SaveAt` asks for. The result is the same `Trajectory` the closed
forms return. The step touches other agents only through a layout
(:mod:`companion.agents`), so the same scan runs with the agents sharded over devices
(:mod:`companion.sharded`); samplers and ensembles run on one device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from companion import algorithms, scan, schedule_stability, stability
from companion._checks import check_float64, check_lr_value, check_steps
from companion.agents import STACKED, Stacked
from companion.graphs import validate_mixing
from companion.problem import Problem
from companion.sampling import Sampler
from companion.schedules import Schedule
from companion.trajectory import SaveAt, Trajectory

__all__ = ["DivergenceError", "SaveAt", "train", "train_batches", "train_ensemble"]


class DivergenceError(ValueError):
    """Training produced a non-finite value; the message names step, lr and the bound."""


def _divergence(problem, algorithm, mixing, lr, step) -> DivergenceError:
    start = f"{algorithm.name} diverged: values are not finite at step {step} with lr={lr:.6g}; "
    if isinstance(mixing, Schedule):
        rate, kind = schedule_stability.schedule_rate(problem, algorithm, mixing, lr)
        return DivergenceError(
            start + f"the {kind} rate of the linearized dynamics on the schedule "
            f"'{mixing.name}' is {rate:.6g} (companion.schedule_stability.schedule_rate)"
        )
    try:
        limit = stability.max_stable_lr(problem, algorithm, mixing)
    except ValueError as refusal:  # no exact threshold at this size: say why
        return DivergenceError(start + f"the stable step size is not known here: {refusal}")
    return DivergenceError(
        start + f"the largest stable step size of the linearized dynamics on this problem is "
        f"{limit:.6g} (companion.stability.max_stable_lr)"
    )


def train(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray | Schedule,
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    save_at: SaveAt | None = None,
    chunk: int = 100,
    progress: bool = True,
    check: bool = True,
    strict: bool = False,
    layout: Stacked = STACKED,
    sampler: Sampler | None = None,
) -> Trajectory:
    """Train Q agents with DGD, ATC or CTA from the problem's common ``theta_0``.

    Args:
        problem: a :class:`companion.problem.Problem` with inputs, a model (or
            ``apply_fn``) and ``params``.
        algorithm: "dgd", "atc" or "cta". mixing: doubly stochastic Q x Q W, or a
            :class:`companion.schedules.Schedule` (W(k) at step k, the same draws as the
            closed form's).
        lr: step size. steps: number of updates.
        linearize: train ``f_lin`` (the NTK regime) instead of the network.
        save_at: the steps that record predictions (default: every step).
        chunk: steps per compiled scan; the run stops after the first chunk with a
            non-finite value. progress: show a tqdm bar.
        check: check lr against the exact threshold of the linearized dynamics first
            (computes the NTK if the problem has none yet); ``strict`` raises instead of
            warning.
        layout: where the agents run (:mod:`companion.agents`): all on one device
            (default), or sharded over devices (:func:`companion.sharded.train`).
        sampler: per-agent mini-batches (:mod:`companion.sampling`); None: every agent's
            whole local set at every step. ``check`` then checks the full-batch threshold,
            which bounds the mean-square one from above
            (:func:`companion.sgd_stability.mean_square_lr`).

    Raises:
        DivergenceError: a loss or parameter became non-finite.
        ValueError: a sampler with a sharded layout, or one built for another partition.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.ones((2, 1)), apply_fn=lambda p, x: x @ p["a"],
        ...             params={"a": np.zeros((1, 1))})
        >>> t = train(p, "atc", np.full((2, 2), 0.5), lr=0.5, steps=2, progress=False)
        >>> t.mean_local_loss.round(4).tolist(), t.method
        ([0.5, 0.125, 0.0312], 'simulation')
    """
    algorithm, mixing, lr, steps, saved = _validated(
        problem, algorithm, mixing, lr, steps, chunk, save_at, problem.params
    )
    batches = None if sampler is None else _batches(problem, sampler, layout, steps)
    if check:
        if isinstance(mixing, Schedule):
            schedule_stability.check_schedule(problem, algorithm, mixing, lr, strict=strict)
        else:
            stability.check_lr(problem, algorithm, mixing, lr, strict=strict)
    observed, theta = scan.run(
        problem,
        algorithm,
        mixing,
        problem.params,
        lr,
        steps,
        saved,
        linearize=linearize,
        chunk=chunk,
        progress=progress,
        layout=layout,
        diverged=lambda step: _divergence(problem, algorithm, mixing, lr, step),
        batches=batches,
    )
    return _trajectory(problem, algorithm, lr, steps, saved, linearize, observed, theta)


def train_ensemble(
    problem: Problem,
    initializations: Sequence[Any],
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray | Schedule,
    *,
    lr: float,
    steps: int,
    linearize: bool = False,
    save_at: SaveAt | None = None,
    chunk: int = 100,
    progress: bool = True,
) -> tuple[Trajectory, ...]:
    """:func:`train` from each of several initializations at once, vmapped over them.

    Every member starts all its agents from its own ``theta_0`` (one entry of
    ``initializations``) and trains with the same algorithm, mixing matrix (or schedule)
    and step size on the problem's data; ``problem.params`` is not used. The runs are
    those of :func:`train` on each initialization alone (to rounding: the batched matrix
    products may sum in another order), in one compiled program on one device. The step
    size is not checked against a stability threshold (each member has its own kernel); a
    member that diverges raises :class:`DivergenceError`.

    Args:
        problem: a :class:`companion.problem.Problem` with inputs and a model (or
            ``apply_fn``).
        initializations: S >= 1 parameter pytrees of the same structure and shapes.
        algorithm, mixing, lr, steps, linearize, save_at, chunk, progress: as for
            :func:`train`.

    Returns:
        One :class:`~companion.trajectory.Trajectory` per initialization, in order.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             inputs=np.ones((2, 1)), apply_fn=lambda p, x: x @ p["a"],
        ...             params={"a": np.zeros((1, 1))})
        >>> starts = [{"a": np.zeros((1, 1))}, {"a": np.ones((1, 1))}]
        >>> runs = train_ensemble(p, starts, "atc", np.full((2, 2), 0.5), lr=0.5, steps=2,
        ...                       progress=False)
        >>> [r.mean_local_loss.round(4).tolist() for r in runs]
        [[0.5, 0.125, 0.0312], [0.0, 0.0, 0.0]]
    """
    if isinstance(initializations, dict) or not isinstance(initializations, Sequence):
        raise ValueError(
            "initializations must be a list of parameter pytrees, one per member, got "
            f"{type(initializations).__name__}"
        )
    if len(initializations) == 0:
        raise ValueError("initializations is empty: pass at least one parameter pytree")
    structures = {jax.tree_util.tree_structure(p) for p in initializations}
    shapes = {
        tuple(np.shape(leaf) for leaf in jax.tree_util.tree_leaves(p)) for p in initializations
    }
    if len(structures) > 1 or len(shapes) > 1:
        raise ValueError(
            "initializations differ in structure or leaf shapes: every member must be the "
            "same model (draw them all with one init_fn)"
        )
    algorithm, mixing, lr, steps, saved = _validated(
        problem, algorithm, mixing, lr, steps, chunk, save_at, initializations[0]
    )
    stacked = jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *initializations)
    observed, theta = scan.run(
        problem,
        algorithm,
        mixing,
        stacked,
        lr,
        steps,
        saved,
        linearize=linearize,
        chunk=chunk,
        progress=progress,
        layout=STACKED,
        diverged=lambda step: _divergence(problem, algorithm, mixing, lr, step),
        ensemble="initializations",
    )
    return _members(problem, algorithm, lr, steps, saved, linearize, observed, theta)


def train_batches(
    problem: Problem,
    algorithm: str | algorithms.Algorithm,
    mixing: np.ndarray | Schedule,
    *,
    sampler: Sampler,
    seeds: Sequence[Any],
    lr: float,
    steps: int,
    linearize: bool = False,
    save_at: SaveAt | None = None,
    chunk: int = 100,
    progress: bool = True,
) -> tuple[Trajectory, ...]:
    """:func:`train` with ``sampler`` reseeded by each of ``seeds``, from the problem's one
    ``theta_0``: an ensemble over batch sequences, vmapped over them on one device.

    Member s is the run of :func:`train` with ``sampler.reseeded(seeds[s])`` (to rounding:
    batched products may sum in another order). The step size is not checked.

    Example:
        >>> from companion import sampling
        >>> p = Problem(targets=np.arange(4.0)[:, None], partition=[np.arange(2),
        ...             np.arange(2, 4)], inputs=np.eye(4), apply_fn=lambda p, x: x @ p["a"],
        ...             params={"a": np.zeros((4, 1))})
        >>> runs = train_batches(p, "dgd", np.full((2, 2), 0.5), lr=0.5, steps=3,
        ...                      sampler=sampling.fixed_size(p, 1), seeds=[0, 1],
        ...                      progress=False)
        >>> len(runs), bool(np.allclose(runs[0].predictions, runs[1].predictions))
        (2, False)
    """
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise ValueError(
            f"seeds must be a non-empty list of ints or jax keys, one per batch sequence, got "
            f"{seeds!r}"
        )
    algorithm, mixing, lr, steps, saved = _validated(
        problem, algorithm, mixing, lr, steps, chunk, save_at, problem.params
    )
    batches = _batches(problem, sampler, STACKED, steps, seeds)
    observed, theta = scan.run(
        problem,
        algorithm,
        mixing,
        problem.params,
        lr,
        steps,
        saved,
        linearize=linearize,
        chunk=chunk,
        progress=progress,
        layout=STACKED,
        diverged=lambda step: _divergence(problem, algorithm, mixing, lr, step),
        ensemble="batches",
        batches=batches,
    )
    return _members(problem, algorithm, lr, steps, saved, linearize, observed, theta)


def _batches(problem, sampler: Sampler, layout: Stacked, steps: int, seeds=None) -> np.ndarray:
    """The sampler's row weights for ``steps`` steps (or for each of ``seeds``), after
    checking that it fits."""
    if not isinstance(sampler, Sampler):
        raise ValueError(
            f"sampler must be a companion.sampling.Sampler, got {type(sampler).__name__}: "
            "build one with sampling.fixed_size or sampling.independent"
        )
    if type(layout) is not Stacked:
        raise ValueError(
            f"a sampler runs on one device, not on {type(layout).__name__}: the sharded "
            "layout does not draw mini-batches; train with sampler= on one device "
            "(companion.simulate.train without layout=), or without a sampler on the mesh"
        )
    sizes = tuple(len(rows) for rows in problem.partition)
    if sampler.sizes != sizes or sampler.width != problem.own_rows[0].shape[1]:
        raise ValueError(
            f"the sampler was built for agents of sizes {sampler.sizes}, this problem's are "
            f"{sizes}: build it from this problem"
        )
    return sampler.weights(steps) if seeds is None else sampler.sequences(seeds, steps)


def _members(problem, algorithm, lr, steps, saved, linearize, observed, theta):
    """One Trajectory per member of an ensemble run (member axis first)."""
    return tuple(
        _trajectory(
            problem,
            algorithm,
            lr,
            steps,
            saved,
            linearize,
            [None if o is None else o[s] for o in observed],
            jax.tree_util.tree_map(lambda leaf, s=s: leaf[s], theta),
        )
        for s in range(len(observed[0]))
    )


def _validated(problem, algorithm, mixing, lr, steps, chunk, save_at, params):
    """The checked algorithm, mixing matrix (or schedule), step size, steps and saved
    steps."""
    check_float64("training")
    algorithm = algorithms.get(algorithm)
    if problem.apply_fn is None or params is None or problem.inputs is None:
        raise ValueError("training needs a problem with inputs, a model (or apply_fn) and params")
    if isinstance(mixing, Schedule):
        mixing.check_agents(problem.num_agents)
    else:
        mixing = validate_mixing(mixing, num_agents=problem.num_agents, require_connected=False)
    lr, steps = check_lr_value(lr), check_steps(steps)
    if not (isinstance(chunk, int) and chunk > 0):
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    return algorithm, mixing, lr, steps, (save_at or SaveAt()).resolve(steps)


def _trajectory(problem, algorithm, lr, steps, saved, linearize, observed, theta) -> Trajectory:
    """One run's observations (steps first) as a Trajectory."""
    local, preds, average, distance, consensus, test = observed
    return Trajectory.build(
        problem,
        algorithm=algorithm.name,
        lr=lr,
        method="linearized-simulation" if linearize else "simulation",
        steps=np.arange(steps + 1),
        local_loss=local,
        consensus_distance=consensus[saved],
        param_distance=distance[saved],
        saved_steps=saved,
        predictions=preds[saved],
        average_predictions=average[saved],
        test_predictions=None if test is None else test[saved],
        final_params=theta,
    )
