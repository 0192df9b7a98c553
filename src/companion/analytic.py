"""Infinite-width kernels of the stax models, expanded to every output.

neural-tangents' ``stax`` gives the scalar NTK ``Theta_inf`` and NNGP ``Sigma_inf`` of the
networks that :mod:`companion.models` builds in closed form. At infinite width the output
channels decouple, so the full kernels are ``Theta_inf (x) I_C`` and ``Sigma_inf (x) I_C``
in sample-major order (row ``i * C + c``, as in :mod:`companion.ntk`).

A finite network approaches the limit two ways as the width grows: at initialization its
empirical NTK concentrates around ``Theta_inf (x) I_C`` (:func:`convergence`), and in
training its kernel stops moving (:func:`lazy_training`, the lazy regime), which is what
lets the closed forms hold the kernel fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree

from companion import metrics, rates, rivals, simulate
from companion import problem as problem_lib
from companion.models import Model, mlp
from companion.ntk import check_inputs, empirical_ntk
from companion.trajectory import SaveAt, relative_error

__all__ = [
    "SUPPORTED",
    "Convergence",
    "LazyTraining",
    "convergence",
    "lazy_training",
    "nngp",
    "ntk",
]

#: The offset of the initialization whose kernel is the drift's rival: seed ``s`` is
#: compared with the initial kernel of seed ``s + OTHER_SEED``.
OTHER_SEED = 1000


#: What the analytic kernels cover: the layers whose neural-tangents ``stax`` kernel_fn is
#: exact, as built by :mod:`companion.models`.
SUPPORTED = (
    "companion.models.mlp (stax Dense layers with relu, erf or gelu activations) and "
    "companion.models.affine"
)


def _analytic(model: Model, x1: Any, x2: Any, out_dim: int | None, get: str) -> np.ndarray:
    """The scalar ``model.kernel_fn(x1, x2, get)`` expanded to ``K (x) I_C``."""
    if not isinstance(model, Model) or model.kernel_fn is None:
        raise ValueError(
            f"analytic kernels exist only for the stax models of companion.models (mlp, "
            f"affine), got {type(model).__name__} without a kernel_fn: build the network "
            f"with one of them; supported: {SUPPORTED}."
        )
    x1, x2 = check_inputs(x1, x2)
    out_dim = model.out_dim if out_dim is None else out_dim
    if out_dim is None:
        raise ValueError(
            f"the analytic {get.upper()} needs the number of outputs; pass out_dim= for "
            "models without a spec."
        )
    try:
        scalar = model.kernel_fn(x1, x2, get)
    except NotImplementedError as error:
        raise ValueError(
            f"stax has no analytic {get.upper()} for this architecture ({error}); "
            f"supported: {SUPPORTED}."
        ) from None
    return np.kron(np.asarray(scalar, dtype=np.float64), np.eye(out_dim))


def ntk(model: Model, x1: Any, x2: Any = None, *, out_dim: int | None = None) -> np.ndarray:
    """Infinite-width NTK expanded to full outputs, ``K_inf (x) I_C``.

    ``K_inf = model.kernel_fn(x1, x2, "ntk")``. At infinite width the output channels
    decouple, so this Kronecker form is exact there (and exact at any width for the
    affine model); a finite network's :func:`companion.ntk.empirical_ntk` fluctuates around it.

    Args:
        model: A :class:`~companion.models.Model` with a ``kernel_fn`` (see ``SUPPORTED``).
        x1: Inputs, shape (n1, d).
        x2: Inputs, shape (n2, d); None means ``x1``.
        out_dim: Number of outputs C; needed only when ``model.spec`` does not record it
            (``out_dim=1`` gives the scalar kernel).

    Returns:
        float64 array of shape (n1 * C, n2 * C), sample-major.

    Raises:
        ValueError: For a model without analytic kernels (naming those that have them),
            or inputs as for :func:`companion.ntk.empirical_ntk`.

    Example:
        >>> from companion.models import affine
        >>> ntk(affine(2), np.ones((1, 3))).tolist()
        [[4.0, 0.0], [0.0, 4.0]]
    """
    return _analytic(model, x1, x2, out_dim, "ntk")


def nngp(model: Model, x1: Any, x2: Any = None, *, out_dim: int | None = None) -> np.ndarray:
    """Infinite-width NNGP kernel expanded to full outputs, ``Sigma_inf (x) I_C``.

    ``Sigma_inf = model.kernel_fn(x1, x2, "nngp")`` is the covariance of the initial
    outputs ``f(x; theta_0)`` over random initializations, in the limit of infinite width
    (NTK parameterization), where they form a centred Gaussian process, independent across
    outputs (Lee et al., NeurIPS 2019). Same layout and arguments as :func:`ntk`.

    Example:
        >>> from companion.models import affine
        >>> nngp(affine(2, w_std=3.0), np.ones((1, 3))).tolist()
        [[9.0, 0.0], [0.0, 9.0]]
    """
    return _analytic(model, x1, x2, out_dim, "nngp")


@dataclasses.dataclass(frozen=True)
class Convergence:
    """Relative Frobenius distances ``||K - K_inf (x) I_C||_F / ||K_inf (x) I_C||_F`` of
    empirical NTKs at initialization to analytic limits, by width. Build it with
    :func:`convergence`.

    Attributes:
        widths: the hidden widths, increasing.
        distances: (seeds, widths) distances to the network's own limit.
        control: (seeds, widths) distances to the limit of a network one layer deeper: a
            wrong limit, which the empirical kernel must not approach.
    """

    widths: tuple[int, ...]
    distances: np.ndarray
    control: np.ndarray

    def medians(self) -> tuple[np.ndarray, np.ndarray]:
        """(widths,) medians over seeds of the distances and of the control."""
        return np.median(self.distances, 0), np.median(self.control, 0)

    def falls(self, factor: float) -> tuple[bool, bool]:
        """Whether the median distance, and the median control, fall by ``factor`` or more
        from the smallest width to the largest (:func:`companion.metrics.fall_factor`)."""
        own, control = self.medians()
        return metrics.fall_factor(own) >= factor, metrics.fall_factor(control) >= factor

    def seed_slopes(self) -> np.ndarray:
        """(seeds,) each seed's log-log slope of the distance against width."""
        return rates.per_seed_slopes(self.widths, self.distances)

    def slopes_within(self, low: float, high: float) -> bool:
        """Whether every seed's slope lies in ``[low, high]``."""
        slopes = self.seed_slopes()
        return bool(np.all((low <= slopes) & (slopes <= high)))

    def rate_margin(self, rate: float, rival_rate: float) -> rivals.Margin:
        """How much better ``c w^rate`` fits the distances than ``c w^rival_rate``, paired
        over seeds (:func:`companion.rates.rate_margin`)."""
        return rates.rate_margin(self.widths, self.distances, rate, rival_rate)

    def table(self) -> pd.DataFrame:
        """By width, the median distance to the own limit and to the deeper one."""
        own, deeper = self.medians()
        return pd.DataFrame({"width": self.widths, "own limit": own, "deeper limit": deeper})


def convergence(
    widths: Sequence[int], depth: int, x: Any, *, seeds: int, seed: int = 0, out_dim: int = 10
) -> Convergence:
    """Distances of the empirical NTK of ReLU MLPs (:func:`companion.models.mlp`, NTK
    parameterization) on inputs ``x`` to their analytic NTK, for ``seeds`` initializations
    (keys ``seed``, ``seed + 1``, ...) at each width, and to the analytic NTK of the MLP one
    layer deeper (the control). The limits do not depend on the width, so each is computed
    once.

    Raises:
        ValueError: for fewer than 2 increasing widths or fewer than 2 seeds.

    Example:
        >>> c = convergence([8, 512], 1, np.eye(3, 4), seeds=2, out_dim=1)
        >>> c.distances.shape, bool(c.medians()[0][1] < c.medians()[0][0])
        ((2, 2), True)
    """
    if len(widths) < 2 or list(widths) != sorted(set(widths)) or seeds < 2:
        raise ValueError(
            f"convergence needs at least 2 increasing widths and 2 seeds, got widths "
            f"{list(widths)} and seeds={seeds}: sort the widths and give more of them"
        )
    x = check_inputs(x, None)[0]
    limits = [ntk(mlp(8, d, out_dim), x) for d in (depth, depth + 1)]
    distances = []
    for width in widths:
        model = mlp(width, depth, out_dim)
        keys = [jax.random.PRNGKey(seed + s) for s in range(seeds)]
        kernels = [empirical_ntk(model, model.init_fn(k, (-1, x.shape[1]))[1], x) for k in keys]
        distances.append([[relative_error(k, limit) for k in kernels] for limit in limits])
    own, control = np.transpose(distances, (1, 2, 0))
    return Convergence(tuple(int(w) for w in widths), own, control)


@dataclasses.dataclass(frozen=True)
class LazyTraining:
    """How far one network's parameters and kernel move in training, by width and seed.

    Attributes:
        runs: one row per (width, seed): ``"relative change"`` ``||theta_T - theta_0|| /
            ||theta_0||``, ``"kernel drift"`` ``||K_T - K_0||_F / ||K_0||_F`` (``K_T`` the
            empirical NTK at the trained parameters) and ``"to another seed's kernel"``,
            the same distance to the initial kernel of another draw (the rival).
    """

    runs: pd.DataFrame

    @property
    def widths(self) -> list[int]:
        """The widths, increasing."""
        return sorted(set(self.runs["width"].tolist()))

    def medians(self) -> pd.DataFrame:
        """By width, the median over seeds of each measurement."""
        return self.runs.groupby("width").median().drop(columns="seed")

    def by_seed(self, column: str) -> np.ndarray:
        """(seeds, widths) one measurement."""
        return self.runs.pivot(index="seed", columns="width", values=column).to_numpy()

    def slopes(self) -> rates.SlopeComparison:
        """Per-seed log-log slopes of the kernel drift against those of the distance to
        another seed's kernel (:func:`companion.rates.compare_slopes`)."""
        rival = self.by_seed("to another seed's kernel")
        return rates.compare_slopes(self.widths, self.by_seed("kernel drift"), rival)

    def correlations(self, seed: int) -> tuple[float, float]:
        """The rank correlation of width and kernel drift over every run, and the same with
        the widths shuffled among the runs by ``seed`` (a control that cannot pass)."""
        drift, widths = self.runs["kernel drift"].to_numpy(), self.runs["width"].to_numpy()
        shuffled = np.random.default_rng(seed).permutation(widths)
        return metrics.rank_correlation(widths, drift), metrics.rank_correlation(shuffled, drift)


def lazy_training(
    widths: Sequence[int],
    depth: int,
    *,
    seeds: int,
    steps: int,
    lr_fraction: float,
    samples: int,
    seed: int = 0,
) -> LazyTraining:
    """Trains ReLU MLPs (:func:`companion.models.mlp`, 10 outputs) of each width from
    initializations ``0 .. seeds - 1`` by centralized gradient descent (one agent holding
    ``samples`` digits split by ``seed``, step ``lr_fraction / lambda_max(K / n)``) for
    ``steps`` steps, and measures how far each one's parameters and kernel move.

    Raises:
        ValueError: for fewer than 2 increasing widths, or fewer than 2 seeds.
    """
    if len(widths) < 2 or list(widths) != sorted(set(widths)) or seeds < 2:
        raise ValueError(
            f"lazy_training fits slopes over widths and seeds: give at least 2 increasing "
            f"widths and 2 seeds, got widths {list(widths)} and seeds={seeds}"
        )
    rows = []
    for width in widths:
        for s in range(seeds):
            p, other = (
                problem_lib.digits(
                    mlp(width, depth, 10),
                    num_agents=1,
                    samples_per_agent=samples,
                    n_test=0,
                    seed=seed,
                    init_seed=i,
                )
                for i in (s, s + OTHER_SEED)
            )
            end = SaveAt(steps=(steps,))
            eta = lr_fraction / p.curvature
            run = simulate.train(
                p, "dgd", np.eye(1), lr=eta, steps=steps, save_at=end, progress=False
            )
            assert p.inputs is not None  # digits problems hold their inputs
            own, another = (
                metrics.kernel_drift(p.network, run.final_params, p.inputs, k)[0]
                for k in (p.kernel, other.kernel)
            )
            change = run.param_distance[-1, 0] / np.linalg.norm(ravel_pytree(p.params)[0])
            rows.append(
                {"width": width, "seed": s, "relative change": change, "kernel drift": own}
                | {"to another seed's kernel": another}
            )
    return LazyTraining(pd.DataFrame(rows))
