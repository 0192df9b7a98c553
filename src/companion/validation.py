"""One algorithm validated against the linearized and the real network, its flow and its limit.

The algorithm chapters (03_dgd, 04_atc, 05_cta) run one experiment, written once: digits split
across the agents of a graph (Metropolis-Hastings weights), a model at ``theta_0``, the step
size ``lr_scale / L_max`` of the problem's own curvature, and then

- the closed form against training of the linearized network, where it is exact
  (:attr:`Experiment.linearized`), and against the real network over several
  initializations, with the 20% step-size control (:attr:`Experiment.runs`);
- every agent's parameters through the kernel (:meth:`Experiment.distances`), the gradient
  flows (:meth:`Experiment.flows`) and the approach to the centralized limit
  (:attr:`Experiment.approach`), each computed on first use and kept.

Beside it, what one chapter adds on the same problem: the complete graph against one agent
holding all the data (:func:`centralized`), several algorithms side by side
(:func:`endpoints`) and the order of each recursion's gap to its flow (:func:`flow_orders`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from companion import algorithms, discretization, dynamics, experiments, graphs, limits
from companion import problem as problem_lib
from companion.cost import loglog_slope
from companion.metrics import flat_parameters, pairwise_distances
from companion.models import MLPSpec, Model
from companion.problem import Problem
from companion.trajectory import Trajectory, relative_error

__all__ = [
    "Centralized",
    "Experiment",
    "FlowOrders",
    "Flows",
    "Spectrum",
    "centralized",
    "endpoints",
    "flow_orders",
]

#: The integer fields of :class:`Experiment` and the least value each may take.
MINIMUM = dict(num_agents=1, samples_per_agent=1, n_test=0, steps=1, seeds=1, doublings=1, seed=0)


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """The kernel's spectrum as the limit sees it.

    Attributes:
        lambda_min, lambda_max: extreme eigenvalues of ``K``.
        rounding: ``m eps lambda_max(K)``, the rounding level of computing them.
        slowest: ``n / (eta lambda_min(K))``, steps per e-fold of the slowest kernel mode.
    """

    lambda_min: float
    lambda_max: float
    rounding: float
    slowest: float

    @property
    def condition(self) -> float:
        """``lambda_max(K) / lambda_min(K)``."""
        return self.lambda_max / self.lambda_min


@dataclasses.dataclass(frozen=True)
class Flows:
    """Gradient flows and discrete recursions at the step size ``eta`` and ``eta / divisor``
    over the same horizon (:meth:`Experiment.flows`).

    Attributes:
        times: the times ``t = k eta`` at which the flows are evaluated.
        flows, discrete, names: label -> trajectory, and the step sizes in words
            (``"eta"``, ``"eta/4"``), in one order.
    """

    times: np.ndarray
    flows: dict[str, Trajectory]
    discrete: dict[str, Trajectory]
    names: tuple[str, ...]

    @property
    def gaps(self) -> dict[str, float]:
        """Step size in words -> relative gap of the final global loss between the
        recursion and the flow of its own step size."""
        pairs = zip(self.names, self.discrete.values(), self.flows.values(), strict=True)
        return {
            name: float(
                abs(run.mean_global_loss[-1] - flow.mean_global_loss[-1])
                / flow.mean_global_loss[-1]
            )
            for name, run, flow in pairs
        }


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One algorithm's experiment on the digits: problem, graph, step size, runs and limit.

    Attributes:
        algorithm: ``"dgd"``, ``"atc"`` or ``"cta"`` (:func:`companion.algorithms.get`).
        model: the network (:func:`companion.models.mlp`).
        topology: the graph (:func:`companion.graphs.topology`), Metropolis-Hastings weights.
        lr_scale: the step size ``eta = lr_scale / L_max`` of each initialization's kernel.
        num_agents, samples_per_agent, n_test: the split (:func:`companion.problem.digits`).
        steps, seeds: length of every run; initializations, ``theta_0`` seeded ``0, 1, ...``.
        doublings, seed: the limit's last step is ``2**doublings``; the data split's seed.

    Example:
        >>> from companion import models
        >>> e = Experiment("atc", models.affine(10), "cycle", 0.5, num_agents=3,
        ...                samples_per_agent=1, n_test=0, steps=2, seeds=1, doublings=1)
        >>> e.mixing.shape, bool(np.isclose(e.lr * e.problem.curvature, 0.5))
        ((3, 3), True)
    """

    algorithm: str
    model: Model
    topology: str
    lr_scale: float
    num_agents: int = 4
    samples_per_agent: int = 10
    n_test: int = 100
    steps: int = 200
    seeds: int = 5
    doublings: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        algorithms.get(self.algorithm)
        for name, low in MINIMUM.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(
                    f"{name}={value!r}: must be an integer >= {low}; pass {name}={low} or more"
                )
        if not (isinstance(self.lr_scale, int | float) and self.lr_scale > 0):
            raise ValueError(
                f"lr_scale={self.lr_scale!r}: the step size in units of 1 / L_max must be a "
                "positive number (0.5 is the book's)"
            )

    def problem_for(self, init_seed: int) -> Problem:
        """The problem with ``theta_0`` seeded ``init_seed``; the data and partition are
        the same for every initialization."""
        return problem_lib.digits(
            self.model,
            num_agents=self.num_agents,
            samples_per_agent=self.samples_per_agent,
            n_test=self.n_test,
            seed=self.seed,
            init_seed=init_seed,
        )

    @functools.cached_property
    def problem(self) -> Problem:
        """The first initialization's problem (``theta_0`` seeded 0)."""
        return self.problem_for(0)

    @functools.cached_property
    def mixing(self) -> np.ndarray:
        """The graph's Metropolis-Hastings mixing matrix."""
        return graphs.mixing_matrix(graphs.topology(self.topology, self.num_agents), "metropolis")

    @property
    def lr(self) -> float:
        """The first initialization's step size ``lr_scale / L_max``."""
        return self.lr_scale / self.problem.curvature

    @property
    def width(self) -> int | None:
        """The MLP's hidden width (None for a model without one)."""
        spec = self.model.spec
        return spec.widths[0] if isinstance(spec, MLPSpec) else None

    @functools.cached_property
    def form(self) -> dynamics.ClosedForm:
        """The closed form of the first initialization (:func:`companion.dynamics.closed_form`)."""
        return dynamics.closed_form(self.problem, self.algorithm, self.mixing, lr=self.lr)

    @functools.cached_property
    def linearized(self) -> experiments.Comparison:
        """The closed form against training of the linearized network, where it is exact."""
        return experiments.compare(
            self.problem, self.algorithm, self.mixing, lr=self.lr, steps=self.steps, linearize=True
        )

    @functools.cached_property
    def runs(self) -> experiments.SeedRuns:
        """The closed form, the real network's training and the 1.2x step-size control for
        each initialization (:func:`companion.experiments.over_seeds`)."""
        return experiments.over_seeds(
            lambda s: self.problem if s == 0 else self.problem_for(s),
            self.algorithm,
            self.mixing,
            lr_scale=self.lr_scale,
            steps=self.steps,
            seeds=range(self.seeds),
        )

    @property
    def trained(self) -> dict[str, Trajectory]:
        """The two training runs beside the closed form: the linearized network and the
        real network of the first initialization."""
        return {"linearized network": self.linearized.observed, "network": self.runs.observed[0]}

    @functools.cached_property
    def approach(self) -> limits.Approach:
        """Every agent's distance to the centralized limit at steps 0, 1, 2, ...,
        ``2**doublings`` (:func:`companion.limits.approach`)."""
        return limits.approach(self.form, doublings=self.doublings)

    def parameter_error(self) -> float:
        """Relative error of every agent's parameters ``theta_0 + J^T alpha_q`` from the
        closed form against the trained linearized network."""
        predicted = flat_parameters(self.form.parameters(self.steps))
        return relative_error(predicted, flat_parameters(self.linearized.observed.final_params))

    def distances(self) -> pd.DataFrame:
        """``||theta_q - theta_0||`` and ``||theta_q - theta_r||`` at the last step, closed
        form against the first initialization's trained network, with their ratio."""
        pairs = np.triu_indices(self.num_agents, 1)
        closed = self.runs.predicted[0].param_distance[-1]
        trained = self.runs.observed[0].param_distance[-1]
        between = pairwise_distances(self.form.parameters(self.steps))[pairs]
        between_trained = pairwise_distances(self.runs.observed[0].final_params)[pairs]
        names = [f"|theta_{q + 1} - theta_0|" for q in range(self.num_agents)]
        names += [f"|theta_{q + 1} - theta_{r + 1}|" for q, r in zip(*pairs, strict=True)]
        frame = pd.DataFrame(
            {
                "closed form": np.append(closed, between),
                "network": np.append(trained, between_trained),
            },
            index=names,
        )
        return frame.assign(ratio=frame["network"] / frame["closed form"])

    def flows(self, divisor: int = 4, points: int = 41) -> Flows:
        """The gradient flows of the step sizes ``eta`` and ``eta / divisor`` at ``points``
        times up to the horizon ``steps * eta``, beside their discrete recursions (the
        smaller step takes ``divisor`` times as many steps)."""
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 2:
            raise ValueError(f"divisor={divisor!r}: must be an integer >= 2 (4 is the book's)")
        lr, times = self.lr, np.linspace(0, self.steps * self.lr, points)
        finer = dynamics.closed_form(self.problem, self.algorithm, self.mixing, lr=lr / divisor)
        return Flows(
            times=times,
            flows={f"flow, eta = {s.lr:.2g}": s.flow(times) for s in (self.form, finer)},
            discrete={
                f"discrete, eta = {lr:.2g}": self.linearized.predicted,
                f"discrete, eta = {lr / divisor:.2g}": finer.steps(divisor * self.steps),
            },
            names=("eta", f"eta/{divisor}"),
        )

    def transition_error(self, flows: Flows) -> float:
        """Relative error of ``Phi(t, 0) (F(0) - F*) + F*``, ``F* = 1 (x) y``, against the
        flow of the step size ``eta`` at the last of ``flows.times``."""
        p, q = self.problem, self.num_agents
        start = np.tile((p.f0 - p.targets).ravel(), q)
        end = self.form.transition(flows.times[-1]) @ start + np.tile(p.targets.ravel(), q)
        return relative_error(end, next(iter(flows.flows.values())).predictions[-1].ravel())

    def spectrum(self) -> Spectrum:
        """The kernel's extreme eigenvalues, their rounding level and the slowest mode."""
        eigs = np.linalg.eigvalsh(self.problem.kernel)
        return Spectrum(
            lambda_min=float(eigs[0]),
            lambda_max=float(eigs[-1]),
            rounding=float(len(eigs) * np.finfo(float).eps * eigs[-1]),
            slowest=float(self.problem.num_samples / (self.lr * eigs[0])),
        )

    def closed_forms(self, names: Sequence[str], mixing: np.ndarray | None = None) -> dict:
        """Algorithm -> closed-form trajectory over ``steps`` on the same problem and step
        size, on the experiment's graph or on ``mixing``."""
        w = self.mixing if mixing is None else mixing
        return {
            name: dynamics.closed_form(self.problem, name, w, lr=self.lr).steps(self.steps)
            for name in names
        }


@dataclasses.dataclass(frozen=True)
class Centralized:
    """The algorithm on the complete graph with uniform weights (``mixing``) against one
    agent holding all the data (:func:`centralized`): closed forms and trained networks."""

    mixing: np.ndarray
    complete: experiments.Comparison
    central: experiments.Comparison

    @property
    def errors(self) -> dict[str, float]:
        """``"predicted"`` and ``"observed"`` -> worst relative error of any agent's
        predictions against the single agent's."""
        return {
            kind: max(
                relative_error(
                    getattr(self.complete, kind).predictions[:, q],
                    getattr(self.central, kind).predictions[:, 0],
                )
                for q in range(getattr(self.complete, kind).predictions.shape[1])
            )
            for kind in ("predicted", "observed")
        }


def centralized(experiment: Experiment) -> Centralized:
    """The experiment's algorithm on the complete graph with ``W = 11^T / Q`` and on one agent
    holding every agent's data (``W = [1]``), as closed form and as real-network training.

    The single agent minimizes the global loss ``(1/Q) sum_q L_q`` only when the local sizes
    ``n_q`` are equal, so unequal sizes are refused.
    """
    p = experiment.problem
    sizes = sorted({len(rows) for rows in p.partition})
    if len(sizes) != 1:
        raise ValueError(
            f"local sizes n_q = {sizes}: the single-agent baseline needs equal local sizes; "
            "use the iid partition"
        )
    complete = graphs.mixing_matrix(graphs.topology("complete", p.num_agents), "uniform")
    single = p.replace(partition=[np.concatenate(p.partition)])
    lr, steps, name = experiment.lr, experiment.steps, experiment.algorithm
    return Centralized(
        mixing=complete,
        complete=experiments.compare(p, name, complete, lr=lr, steps=steps),
        central=experiments.compare(single, name, np.eye(1), lr=lr, steps=steps),
    )


def endpoints(runs: Mapping[str, Trajectory]) -> pd.DataFrame:
    """One row per run: final global loss at the agents' parameters and at their average,
    final mean local loss, peak and final consensus distance, final test loss."""
    return pd.DataFrame(
        {
            name: {
                "final L(theta_q), mean": traj.mean_global_loss[-1],
                "final L(theta_bar)": traj.average_loss[-1],
                "final mean local loss": traj.mean_local_loss[-1],
                "peak consensus distance": traj.consensus_distance.max(),
                "final consensus distance": traj.consensus_distance[-1],
                "final test loss": np.nan if traj.test_loss is None else traj.test_loss[-1].mean(),
            }
            for name, traj in runs.items()
        }
    ).T


@dataclasses.dataclass(frozen=True)
class FlowOrders:
    """Each algorithm's gap between its recursion and its gradient flow at halving step
    sizes (:func:`flow_orders`).

    Attributes:
        gaps: algorithm -> :class:`companion.discretization.FlowGaps`.
    """

    gaps: dict[str, discretization.FlowGaps]

    @property
    def own(self) -> dict[str, dict[float, float]]:
        """Algorithm -> step size -> gap to the flow of its own step size."""
        return {name: f.own for name, f in self.gaps.items()}

    @property
    def slopes(self) -> dict[str, float]:
        """Algorithm -> log-log slope of the gap against the step size (1: first order)."""
        return _slopes(self.own)

    @property
    def control_slopes(self) -> dict[str, float]:
        """The same slope with every step size against the largest one's flow."""
        return _slopes({name: f.largest_flow for name, f in self.gaps.items()})


def _slopes(gaps: Mapping[str, Mapping[float, float]]) -> dict[str, float]:
    return {name: loglog_slope(list(g), list(g.values())) for name, g in gaps.items()}


def flow_orders(experiment: Experiment, names: Sequence[str], halvings: int) -> FlowOrders:
    """:func:`companion.discretization.flow_gaps` for each algorithm of ``names`` on the
    experiment's problem, graph, step size and horizon."""
    e = experiment
    return FlowOrders(
        {
            name: discretization.flow_gaps(
                e.problem, name, e.mixing, lr=e.lr, steps=e.steps, halvings=halvings
            )
            for name in names
        }
    )
