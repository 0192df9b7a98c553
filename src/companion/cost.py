"""What predicting and training cost: timings, operation counts and a fitted cost model.

The book's pipeline has three stages whose costs grow differently:

- the structured empirical NTK of an MLP (:mod:`companion.ntk`): per Dense layer a Gram of
  its inputs (``n^2 * fan_in``), the product of output sensitivities
  (``m^2 * fan_out`` with ``m = n * C``) and one backpropagation of the C sensitivities
  (``m * fan_in * fan_out``); so ``m^2 * width + m * width^2`` overall;
- the closed form (:func:`companion.dynamics.closed_form`, dual recursion): per step each
  agent's gradient reaches the outputs through its own ``n_q C`` rows of K (``m^2`` in
  all) and the mixing costs ``Q^2 m``;
- real training (:func:`companion.simulate.train`): per step every agent runs forward and
  backward on its own rows (``6 n P`` flops for P parameters in all), and a step that
  records predictions adds a forward pass of every agent on all n inputs (``2 Q n P``).

:func:`operations` counts these; :func:`fit_seconds_per_op` turns measured times into
seconds per operation, from which :func:`estimate` predicts the time and memory of a
problem that was never run. Timings come from :func:`median_seconds` (warm repetitions).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import neural_tangents as nt
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from companion import data as data_lib
from companion import dynamics, graphs, models, simulate, stability
from companion import ntk as ntk_lib
from companion import problem as problem_lib
from companion.problem import Problem

__all__ = [
    "Timing",
    "compute_ntk",
    "estimate",
    "estimates",
    "fit_seconds_per_op",
    "loglog_slope",
    "median_seconds",
    "mlp_parameters",
    "operations",
    "reference_ntk",
    "setup",
    "slopes",
    "stable_lr",
    "stages",
]


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of ``repeats`` warm calls (after ``warmup`` untimed ones)."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median seconds, the figure the benchmarks report."""
        return statistics.median(self.times)


def _block(value: Any) -> Any:
    """Wait for JAX's asynchronous dispatch so the clock measures the work itself."""
    for leaf in value if isinstance(value, list | tuple) else (value,):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return value


def median_seconds(fn: Callable[[], Any], *, repeats: int = 3, warmup: int = 1) -> Timing:
    """Time ``fn()`` ``repeats`` times after ``warmup`` calls that compile and warm caches.

    Example:
        >>> t = median_seconds(lambda: sum(range(100)), repeats=3)
        >>> len(t.times), t.median >= 0
        (3, True)
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
    return Timing(tuple(times))


def loglog_slope(x: ArrayLike, y: ArrayLike) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent of a power law.

    Example:
        >>> round(loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]), 6)
        2.0
    """
    log_x, log_y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if log_x.size < 2 or np.ptp(log_x) == 0:
        raise ValueError("need at least two distinct sizes to fit a slope")
    return float(np.polyfit(log_x, log_y, 1)[0])


def mlp_parameters(width: int, depth: int, in_dim: int, out_dim: int) -> int:
    """Number of parameters P of ``models.mlp(width, depth, out_dim)`` with biases.

    Example:
        >>> mlp_parameters(1024, 3, 64, 10)
        2176010
    """
    fans = [in_dim] + [width] * depth + [out_dim]
    return sum((a + 1) * b for a, b in zip(fans[:-1], fans[1:], strict=True))


def operations(
    stage: str,
    *,
    n: int,
    out_dim: int = 10,
    width: int = 1024,
    depth: int = 3,
    in_dim: int = 64,
    num_agents: int = 4,
    steps: int = 1,
) -> float:
    """Leading-order multiply-adds of one stage (module docstring).

    Args:
        stage: ``"ntk"`` (structured NTK), ``"ntk_jacobian"`` (neural-tangents'
            Jacobian contraction, ``m^2 P``), ``"closed_form"`` (``steps`` of the dual
            recursion) or ``"training"`` (``steps`` of real training, each recording
            predictions).
        n, out_dim: training samples and outputs, ``m = n * out_dim``.
        width, depth, in_dim: the MLP. num_agents: Q. steps: steps of the iteration.

    Example:
        >>> operations("closed_form", n=100, num_agents=4) == 1e6 + 16e3
        True
    """
    m = n * out_dim
    fans = [in_dim] + [width] * depth + [out_dim]
    if stage == "ntk":
        layers = zip(fans[:-1], fans[1:], strict=True)
        return float(sum(n * n * a + m * m * b + m * a * b for a, b in layers))
    if stage == "ntk_jacobian":
        return float(m * m * mlp_parameters(width, depth, in_dim, out_dim))
    if stage == "closed_form":
        return float(steps * (m * m + num_agents**2 * m))
    if stage == "training":
        params = mlp_parameters(width, depth, in_dim, out_dim)
        return float(steps * (6 + 2 * num_agents) * n * params)
    raise ValueError(
        f"unknown stage {stage!r}: use 'ntk', 'ntk_jacobian', 'closed_form' or 'training'"
    )


def fit_seconds_per_op(ops: Sequence[float], seconds: Sequence[float]) -> float:
    """Seconds per operation, the geometric mean of ``seconds / ops`` (one constant per stage).

    Example:
        >>> float(f"{fit_seconds_per_op([1e6, 1e8], [1e-3, 1e-1]):.3g}")
        1e-09
    """
    return float(
        np.exp(np.mean(np.log(np.asarray(seconds, float)) - np.log(np.asarray(ops, float))))
    )


def estimate(
    rates: dict[str, float],
    *,
    n: int,
    num_agents: int,
    width: int,
    steps: int = 300,
    out_dim: int = 10,
    depth: int = 3,
    in_dim: int = 64,
) -> dict[str, float]:
    """Predicted seconds and gigabytes of the NTK + closed-form pipeline for one problem.

    ``rates`` maps ``"ntk"`` and ``"closed_form"`` to seconds per operation
    (:func:`fit_seconds_per_op`). Memory is the kernel (``m^2`` floats) plus the stored
    predictions of every agent at every step (``(steps + 1) Q m``) plus the Q*m state;
    the NTK's working blocks are bounded separately (``companion.ntk.BLOCK_BYTES``).

    Example:
        >>> e = estimate({"ntk": 1e-9, "closed_form": 1e-9}, n=100, num_agents=4, width=64,
        ...              steps=0)
        >>> round(e["gigabytes"], 4)
        0.0081
    """
    shape = dict(n=n, out_dim=out_dim, width=width, depth=depth, in_dim=in_dim)
    m = n * out_dim
    ntk_s = rates["ntk"] * operations("ntk", **shape)
    closed_s = rates["closed_form"] * operations(
        "closed_form", n=n, out_dim=out_dim, num_agents=num_agents, steps=steps
    )
    floats = m * m + (steps + 2) * num_agents * m
    return {
        "ntk_seconds": ntk_s,
        "closed_form_seconds": closed_s,
        "seconds": ntk_s + closed_s,
        "gigabytes": 8 * floats / 1e9,
    }


def setup(
    n: int,
    *,
    num_agents: int = 4,
    width: int = 1024,
    depth: int = 3,
    topology: str = "cycle",
    seed: int = 0,
) -> tuple[Problem, np.ndarray]:
    """Digits with n training samples split iid over Q agents, an MLP at ``theta_0``, and
    the Metropolis matrix of ``topology``; the NTK is left to compute (and time).

    Example:
        >>> p, w = setup(8, num_agents=2, width=16)
        >>> p.kernel.shape, [len(rows) for rows in p.partition], w.shape
        ((80, 80), [4, 4], (2, 2))
    """
    dataset = data_lib.load_digits_dataset(n, seed=seed, center_targets=True)
    partition = data_lib.partition_indices(dataset.labels_train, num_agents, seed=seed)
    name = topology if num_agents >= 3 else "complete"  # a cycle needs three agents
    mixing = graphs.mixing_matrix(graphs.topology(name, num_agents, seed=seed))
    model = models.mlp(width, depth, dataset.y_train.shape[1])
    return problem_lib.from_dataset(model, dataset, partition, seed=seed), mixing


def compute_ntk(problem: Problem) -> np.ndarray:
    """The structured empirical NTK of ``problem``'s MLP, computed afresh (for timing)."""
    return ntk_lib.empirical_ntk(problem.network, problem.params, problem.inputs)


def reference_ntk(problem: Problem) -> np.ndarray:
    """The empirical NTK of ``problem``'s MLP by neural-tangents' Jacobian contraction
    (implementation 1, which forms the Jacobian), in the sample-major layout of
    :func:`compute_ntk`: the reference that the structured kernel must equal to rounding.

    Example:
        >>> p, _ = setup(4, num_agents=2, width=8)
        >>> k = reference_ntk(p)
        >>> k.shape, bool(np.abs(k - compute_ntk(p)).max() < 1e-12 * np.abs(k).max())
        ((40, 40), True)
    """
    if problem.model is None or problem.inputs is None:
        raise ValueError("reference_ntk needs a problem with a model and inputs: use cost.setup")
    kernel_fn = nt.empirical_ntk_fn(
        problem.model.apply_fn,
        trace_axes=(),
        vmap_axes=0,
        implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION,
    )
    kernel = np.asarray(kernel_fn(problem.inputs, None, problem.params))  # pyright: ignore[reportArgumentType]
    n, _, c, _ = kernel.shape  # (n, n, C, C): sample-major is (n C, n C)
    return kernel.transpose(0, 2, 1, 3).reshape(n * c, n * c)


def stable_lr(problem: Problem, mixing: np.ndarray, fraction: float = 0.5) -> float:
    """A stable DGD step: ``fraction`` of the sufficient DGD bound on this problem."""
    return fraction * stability.sufficient_lr_bound(problem, mixing)


def stages(
    problem: Problem, mixing: np.ndarray, *, lr: float, steps: int, repeats: int = 3
) -> dict[str, float]:
    """Median warm seconds of the three stages on one problem: the structured NTK, the DGD
    closed form for ``steps`` steps with the kernel in hand (built once, untimed), and DGD
    training of the Q networks for as many steps, at step size ``lr``."""
    form = dynamics.closed_form(problem, "dgd", mixing, lr=lr)
    return {
        "NTK (structured)": median_seconds(lambda: compute_ntk(problem), repeats=repeats).median,
        "closed form": median_seconds(lambda: form.steps(steps), repeats=repeats).median,
        "training": median_seconds(
            lambda: simulate.train(problem, "dgd", mixing, lr=lr, steps=steps, progress=False),
            repeats=repeats,
        ).median,
    }


def measure(
    stage: str,
    *,
    n: int,
    num_agents: int = 4,
    width: int = 64,
    steps: int = 50,
    repeats: int = 3,
    seed: int = 0,
) -> Timing:
    """Warm wall-clock seconds of one stage of the pipeline on :func:`setup`'s problem.

    ``"ntk"`` times :func:`companion.ntk.empirical_ntk`; ``"closed_form"`` times the DGD
    closed form for ``steps`` steps with the kernel in hand (validation and stability
    check included); ``"training"`` times :func:`companion.simulate.train` (DGD).

    Example:
        >>> measure("closed_form", n=8, num_agents=2, steps=5, repeats=1).median > 0
        True
    """
    problem, mixing = setup(n, num_agents=min(num_agents, n), width=width, seed=seed)
    if stage == "ntk":
        return median_seconds(lambda: compute_ntk(problem), repeats=repeats)
    lr = stable_lr(problem, mixing)
    if stage == "closed_form":
        return median_seconds(
            lambda: dynamics.closed_form(problem, "dgd", mixing, lr=lr).steps(steps),
            repeats=repeats,
        )
    if stage == "training":
        return median_seconds(
            lambda: simulate.train(problem, "dgd", mixing, lr=lr, steps=steps, progress=False),
            repeats=repeats,
        )
    raise ValueError(f"unknown stage {stage!r}: use 'ntk', 'closed_form' or 'training'")


def sweep(
    stage: str,
    vary: str,
    values: Sequence[int],
    *,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
    **fixed: int,
) -> dict[str, Any]:
    """Measure ``stage`` as ``vary`` (``"n"``, ``"num_agents"`` or ``"width"``) runs over
    ``values``; returns sizes, seconds, operation counts and both log-log slopes.

    ``slope`` is fitted to the measured seconds, ``theory_slope`` to :func:`operations` at
    the same sizes (the exponent the leading-order count predicts over that range).

    Example:
        >>> r = sweep("closed_form", "n", [8, 16], num_agents=2, steps=5, repeats=1)
        >>> sorted(r), r["theory_slope"] > 1.5
        (['ops', 'seconds', 'slope', 'stage', 'theory_slope', 'values', 'vary'], True)
    """
    seconds, ops = [], []
    for value in values:
        shape = {**fixed, vary: value}
        seconds.append(measure(stage, repeats=repeats, **shape).median)
        count = dict(n=shape["n"], width=shape.get("width", 64))
        if stage != "ntk":
            count.update(num_agents=shape.get("num_agents", 4), steps=shape.get("steps", 50))
        ops.append(operations(stage, **count))
        if progress is not None:
            progress(f"{stage} {vary}={value}: {seconds[-1]:.3g} s")
    x = [v * 10 if vary == "n" else v for v in values]  # slopes are against m = n * C
    return {
        "stage": stage,
        "vary": "m" if vary == "n" else vary,
        "values": x,
        "seconds": seconds,
        "ops": ops,
        "slope": loglog_slope(x, seconds),
        "theory_slope": loglog_slope(x, ops),
    }


def slopes(runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per :func:`sweep` (rows named by the keys of ``runs``), the log-log slope of the
    measured seconds beside that of the operation count."""
    rows = {
        name: {"measured slope": r["slope"], "count slope": r["theory_slope"]}
        for name, r in runs.items()
    }
    return pd.DataFrame(rows).T


def estimates(
    rates: Mapping[str, float], sizes: Sequence[tuple[int, int, int]], *, out_dim: int = 10
) -> pd.DataFrame:
    """:func:`estimate` for every ``(m, Q, width)`` of ``sizes`` (``n = m / out_dim``
    samples), one row each, indexed by ``m``, ``Q`` and ``width``.

    Raises:
        ValueError: an ``m`` that is not a multiple of ``out_dim``.
    """
    bad = [m for m, _, _ in sizes if m % out_dim]
    if bad:
        raise ValueError(
            f"m={bad[0]} is not a multiple of out_dim={out_dim}: m = n * out_dim, so choose "
            "m among the multiples of the number of outputs"
        )
    rows = [
        {"m": m, "Q": q, "width": w, **estimate(dict(rates), n=m // out_dim, num_agents=q, width=w)}
        for m, q, w in sizes
    ]
    return pd.DataFrame(rows).set_index(["m", "Q", "width"])
