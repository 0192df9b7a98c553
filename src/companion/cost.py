"""What predicting and training cost: timings, operation counts and a fitted cost model.

The book's pipeline has three stages whose costs grow differently (MATH.md, 'Primal and
dual forms'):

- the structured empirical NTK of an MLP (:mod:`companion.ntk`): per Dense layer a Gram of
  its inputs (``n^2 * fan_in``), the product of output sensitivities
  (``m^2 * fan_out`` with ``m = n * C``) and one backpropagation of the C sensitivities
  (``m * fan_in * fan_out``); so ``m^2 * width + m * width^2`` overall;
- the closed form (:func:`companion.dynamics.predict`, dual recursion): per step every
  agent's predictions ``alpha_q K`` (``Q m^2``) and the mixing (``Q^2 m``);
- real training (:func:`companion.simulate.train`): per step every agent runs forward and
  backward on all n inputs (``6 Q n P`` flops for P parameters).

:func:`operations` counts these; :func:`fit_seconds_per_op` turns measured times into
seconds per operation, from which :func:`estimate` predicts the time and memory of a
problem that was never run. Timings come from :func:`median_seconds` (warm repetitions).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from companion import data as data_lib
from companion import dynamics, graphs, models, simulate, stability
from companion import ntk as ntk_lib

__all__ = [
    "Timing",
    "estimate",
    "fit_seconds_per_op",
    "loglog_slope",
    "median_seconds",
    "mlp_parameters",
    "operations",
    "setup",
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


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent of a power law.

    Example:
        >>> round(loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]), 6)
        2.0
    """
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError("need at least two distinct sizes to fit a slope")
    return float(np.polyfit(x, y, 1)[0])


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
            recursion) or ``"training"`` (``steps`` of real training).
        n, out_dim: training samples and outputs, ``m = n * out_dim``.
        width, depth, in_dim: the MLP. num_agents: Q. steps: steps of the iteration.

    Example:
        >>> operations("closed_form", n=100, num_agents=4) == 4e6 + 16e3 + 1000**3 / 16
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
        # plus the stability check's eigenvalues of the Q diagonal blocks K_qq, once
        return float(steps * (num_agents * m * m + num_agents**2 * m) + m**3 / num_agents**2)
    if stage == "training":
        return float(steps * 6 * num_agents * n * mlp_parameters(width, depth, in_dim, out_dim))
    raise ValueError(
        f"unknown stage {stage!r}: use 'ntk', 'ntk_jacobian', 'closed_form' or 'training'"
    )


def fit_seconds_per_op(ops: Sequence[float], seconds: Sequence[float]) -> float:
    """Seconds per operation, the geometric mean of ``seconds / ops`` (one constant per stage).

    Example:
        >>> float(f"{fit_seconds_per_op([1e6, 1e8], [1e-3, 1e-1]):.3g}")
        1e-09
    """
    ops, seconds = np.asarray(ops, float), np.asarray(seconds, float)
    return float(np.exp(np.mean(np.log(seconds) - np.log(ops))))


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


@dataclasses.dataclass(frozen=True)
class Setup:
    """One decentralized problem on digits: data, partition, mixing, MLP and theta_0."""

    model: Any
    params: Any
    inputs: np.ndarray
    targets: np.ndarray
    partition: tuple[np.ndarray, ...]
    mixing: np.ndarray

    def ntk(self) -> np.ndarray:
        """The full-output empirical NTK on the training inputs (structured path)."""
        return ntk_lib.empirical_ntk(self.model, self.params, self.inputs)

    def lr(self, kernel: np.ndarray, fraction: float = 0.5) -> float:
        """A stable step: ``fraction`` of the sufficient DGD bound on this problem."""
        bound = stability.sufficient_lr_bound(
            kernel, self.partition, self.mixing, algorithm="dgd", num_outputs=self.out_dim
        )
        return fraction * bound

    @property
    def out_dim(self) -> int:
        """C."""
        return self.targets.shape[1]

    def predict(self, kernel: np.ndarray, lr: float, steps: int) -> Any:
        """DGD closed form (dual recursion) for ``steps`` steps."""
        f0 = np.asarray(self.model.apply_fn(self.params, self.inputs))
        return dynamics.predict(
            "dgd", kernel=kernel, targets=self.targets, partition=self.partition,
            mixing=self.mixing, lr=lr, steps=steps, f0=f0,
        )  # fmt: skip

    def train(self, lr: float, steps: int) -> Any:
        """DGD training of the Q real networks (``companion.simulate.train``)."""
        return simulate.train(
            "dgd", self.model.apply_fn, self.params, inputs=self.inputs,
            targets=self.targets, partition=self.partition, mixing=self.mixing, lr=lr,
            steps=steps, progress=False,
        )  # fmt: skip


def setup(
    n: int,
    *,
    num_agents: int = 4,
    width: int = 1024,
    depth: int = 3,
    topology: str = "cycle",
    seed: int = 0,
) -> Setup:
    """Digits with n training samples split iid over Q agents on a Metropolis ``topology``.

    Example:
        >>> s = setup(8, num_agents=2, width=16)
        >>> s.ntk().shape, [len(p) for p in s.partition]
        ((80, 80), [4, 4])
    """
    dataset = data_lib.load_digits_dataset(n, seed=seed, center_targets=True)
    partition = data_lib.partition_indices(dataset.labels_train, num_agents, seed=seed)
    name = topology if num_agents >= 3 else "complete"  # a cycle needs three agents
    mixing = graphs.mixing_matrix(graphs.topology(name, num_agents, seed=seed))
    model = models.mlp(width, depth, dataset.y_train.shape[1])
    _, params = model.init_fn(jax.random.PRNGKey(seed), (-1, dataset.x_train.shape[1]))
    return Setup(
        model, params, dataset.x_train, dataset.y_train, tuple(partition), np.asarray(mixing)
    )


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

    ``"ntk"`` times :func:`companion.ntk.empirical_ntk`; ``"closed_form"`` times
    :func:`companion.dynamics.predict` (DGD, ``steps`` steps, kernel in hand);
    ``"training"`` times :func:`companion.simulate.train` (DGD, ``steps`` steps).

    Example:
        >>> measure("closed_form", n=8, num_agents=2, steps=5, repeats=1).median > 0
        True
    """
    problem = setup(n, num_agents=min(num_agents, n), width=width, seed=seed)
    if stage == "ntk":
        return median_seconds(problem.ntk, repeats=repeats)
    kernel = problem.ntk()
    lr = problem.lr(kernel)
    if stage == "closed_form":
        return median_seconds(lambda: problem.predict(kernel, lr, steps), repeats=repeats)
    if stage == "training":
        return median_seconds(lambda: problem.train(lr, steps), repeats=repeats)
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
