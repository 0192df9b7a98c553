"""What peer-to-peer training will do on your data, your network and your graph.

:func:`predict` builds the :class:`companion.problem.Problem` of a data set
(:mod:`companion.userdata`) and a model (an MLP or the affine model by name, any
:class:`companion.models.Model`, a neural-tangents ``stax`` triple, or an ``apply_fn``
with its ``params``: :mod:`companion.usermodels`), splits it across the agents
of a graph (a name or an edge list), resolves the step size (absolute, or a fraction of
the exact threshold, :func:`companion.stability.max_stable_lr`), and runs the closed form
(:func:`companion.dynamics.closed_form`). With ``train=True`` it also trains the network
(:func:`companion.simulate.train`) and scores the prediction against it with the book's
agreement metrics (:func:`companion.metrics.agreement`), beside the same metrics of the
rival the book uses: the closed form at 1.2 times the step size.

:meth:`Prediction.write` writes the curves and the resolved settings (JSON), a figure
(PNG) and, on request, the arrays the prediction used (``.npz``), all or nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from companion import (
    dynamics,
    graphs,
    metrics,
    models,
    outputs,
    rivals,
    simulate,
    stability,
    userdata,
    usermodels,
)
from companion._checks import check_lr_value, check_steps
from companion.problem import Problem
from companion.trajectory import SaveAt, Trajectory

__all__ = ["RIVAL_FACTOR", "Prediction", "check_outputs", "memory_limit", "predict", "rival_margin"]

#: The rival prediction's step size, relative to the trained one.
RIVAL_FACTOR = 1.2
RIVAL = f"the closed form at {RIVAL_FACTOR:g} times the trained step size"
#: Agreement metrics reported for a trained check.
METRICS = (
    "final_loss_rel_err",
    "log_loss_gap",
    "worst_agent_loss_rel_err",
    "consensus_rel_err",
    "test_loss_rel_err",
    "test_accuracy_gap",
)
CURVES = ("local_loss", "global_loss", "average_loss", "consensus_distance")


def memory_limit() -> int:
    """The default memory budget of a prediction: half of this machine's memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):  # not POSIX: assume 8 GiB
        return 4 * 2**30


@dataclasses.dataclass(frozen=True)
class Prediction:
    """A prediction, and optionally the training run it predicts.

    Attributes:
        settings: every resolved setting (JSON-ready).
        problem: the problem (kernel, f0, targets, partition).
        mixing: the Q x Q mixing matrix.
        predicted: the closed form's trajectory at the saved steps.
        trained: the trained network's, or None.
        rival: the closed form at :data:`RIVAL_FACTOR` times the step size (with training).
    """

    settings: dict[str, Any]
    problem: Problem
    mixing: np.ndarray
    predicted: Trajectory
    trained: Trajectory | None = None
    rival: Trajectory | None = None

    def agreement(self) -> dict[str, dict[str, float | None]] | None:
        """The agreement metrics (:data:`METRICS`) of the closed form and of the rival
        with the trained run, or None without one."""
        if self.trained is None or self.rival is None:
            return None
        out = {}
        for name, run in (("closed form", self.predicted), ("rival", self.rival)):
            scored = metrics.agreement(run, self.trained)
            out[name] = {
                m: (
                    scored.worst_agent_loss_rel_err
                    if m == "worst_agent_loss_rel_err"
                    else getattr(scored, m)
                )
                for m in METRICS
            }
        return out

    def curves(self) -> dict[str, Any]:
        """The JSON document: settings, the predicted curves, and the trained check."""
        doc: dict[str, Any] = {"settings": self.settings} | _curves(self.predicted)
        if self.trained is not None:
            doc["trained"] = _curves(self.trained)
            doc["rival"] = RIVAL
            doc["agreement"] = self.agreement()
        return outputs.jsonable(doc)

    def arrays(self) -> dict[str, np.ndarray]:
        """What the prediction used, so that anyone can re-derive it: ``kernel``,
        ``kernel_test``, ``f0``, ``f0_test``, ``targets``, ``targets_test``, ``partition``
        (the agent of each row), ``mixing``, ``lr`` and the saved ``steps``."""
        p = self.problem
        agents = np.zeros(p.num_samples, dtype=np.int64)
        for q, rows in enumerate(p.partition):
            agents[rows] = q
        m, c = p.num_samples * p.num_outputs, p.num_outputs
        return {
            "kernel": p.kernel,
            "kernel_test": np.zeros((0, m)) if p.kernel_test is None else p.kernel_test,
            "f0": p.f0,
            "f0_test": np.zeros((0, c)) if p.f0_test is None else p.f0_test,
            "targets": p.targets,
            "targets_test": np.zeros((0, c)) if p.targets_test is None else p.targets_test,
            "partition": agents,
            "mixing": self.mixing,
            "lr": np.asarray(self.predicted.lr),
            "steps": np.asarray(self.predicted.saved_steps),
        }

    def figure(self) -> Any:
        """The curves (closed form: lines; training: markers), per agent."""
        from companion import plotting  # matplotlib only when a figure is asked for

        runs = {} if self.trained is None else {"training": self.trained}
        s = self.settings
        title = f"{s['algorithm']} on {s['graph']} (Q = {s['num_agents']}), lr = {s['lr']:.3g}"
        return plotting.dynamics_panels(self.predicted, runs, title=title)

    def write(
        self,
        output: str | os.PathLike,
        *,
        png: bool = True,
        kernel: str | os.PathLike | None = None,
    ) -> list[Path]:
        """Write the JSON to ``output``, the figure beside it (same name, ``.png``) and the
        arrays to ``kernel`` (``.npz``), all or nothing (:func:`companion.outputs.write_all`)."""
        paths = check_outputs(output, png=png, kernel=kernel)
        writers: dict[Path, Callable[[str], None]] = {}
        for path in paths:
            if path.suffix == ".json":
                writers[path] = self._save_json
            elif path.suffix == ".png":
                writers[path] = self._save_figure
            else:
                writers[path] = self._save_arrays
        return outputs.write_all(writers)

    def _save_json(self, name: str) -> None:
        Path(name).write_text(json.dumps(self.curves(), indent=1) + "\n")

    def _save_arrays(self, name: str) -> None:
        with open(name, "wb") as stream:  # a file object: savez would append .npz to a name
            np.savez(stream, **self.arrays())  # pyright: ignore[reportArgumentType]

    def _save_figure(self, name: str) -> None:
        figure = self.figure()
        figure.savefig(name, format="png", dpi=110, bbox_inches="tight")
        figure.clf()


def check_outputs(
    output: str | os.PathLike, *, png: bool = True, kernel: str | os.PathLike | None = None
) -> list[Path]:
    """The files :meth:`Prediction.write` will write (the JSON, the PNG beside it, the
    arrays), checked before anything runs."""
    paths: dict[str, str | os.PathLike] = {"-o": output}
    if png:
        paths["the figure"] = Path(output).with_suffix(".png")
    if kernel is not None:
        paths["--save-kernel"] = kernel
    suffixes = {"-o": ".json", "the figure": ".png", "--save-kernel": ".npz"}
    return outputs.check_paths(paths, suffixes)


def rival_margin(
    predictions: Sequence[Prediction], metric: str = "final_loss_rel_err"
) -> rivals.Margin:
    """One agreement metric (:data:`METRICS`) of the closed form against the rival's, paired
    over trained predictions (one per seed, each made with ``train=True``):
    :func:`companion.rivals.margin`, lower is better."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not reported: use one of {list(METRICS)}")
    scores = [p.agreement() for p in predictions]
    if not scores or any(s is None for s in scores):
        raise ValueError(
            f"rival_margin needs trained predictions, got {len(scores)} of which "
            f"{sum(s is None for s in scores)} untrained: predict with train=True"
        )
    ours, rival = ([s[who][metric] for s in scores if s] for who in ("closed form", "rival"))
    if any(v is None for v in ours + rival):
        raise ValueError(f"{metric} is not defined for these predictions: give them a test set")
    return rivals.margin(
        [float(v) for v in ours if v is not None], [float(v) for v in rival if v is not None]
    )


def _curves(run: Trajectory) -> dict[str, Any]:
    rows = np.searchsorted(run.steps, run.saved_steps)
    doc = {"steps": run.saved_steps} | {
        c: getattr(run, c)[rows] if c == "local_loss" else getattr(run, c) for c in CURVES
    }
    doc["test_loss"] = run.test_loss
    doc["test_accuracy"] = run.test_accuracy
    return doc


def _mixing(graph: str | nx.Graph | os.PathLike, num_agents: int, rule: str, seed: int):
    """(mixing matrix, the graph's name in the settings)."""
    if isinstance(graph, nx.Graph):
        topology, name = graph, graph.graph.get("name", "a graph")
    elif isinstance(graph, str) and graph in graphs.TOPOLOGIES:
        topology, name = graphs.topology(graph, num_agents, seed=seed), graph
    elif isinstance(graph, str | os.PathLike) and Path(graph).suffix:
        topology, name = userdata.read_edges(graph, num_agents), str(graph)
    else:
        raise ValueError(
            f"unknown graph {graph!r}: give a topology ({', '.join(graphs.TOPOLOGIES)}) or an "
            "edge-list file"
        )
    if topology.number_of_nodes() != num_agents:
        raise ValueError(
            f"the graph has {topology.number_of_nodes()} nodes but there are {num_agents} "
            "agents: give the graph one node per agent"
        )
    return graphs.mixing_matrix(topology, rule), name


def _step_size(problem, algorithm, mixing, lr, lr_fraction, allow_unstable):
    """(lr, fraction, exact threshold), refusing a step at or above the threshold."""
    if lr is not None and lr_fraction is not None:
        raise ValueError("give lr or lr_fraction, not both (--lr or --lr-fraction)")
    fraction = 0.5 if lr is None and lr_fraction is None else lr_fraction
    if fraction is not None and not (isinstance(fraction, int | float) and 0 < fraction < math.inf):
        raise ValueError(f"lr_fraction={fraction!r} must be a finite number > 0 (1: the threshold)")
    threshold = stability.max_stable_lr(problem, algorithm, mixing)
    lr = float(fraction * threshold) if fraction is not None else check_lr_value(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr={lr!r} must be a finite number > 0")
    if lr >= threshold and not allow_unstable:
        raise ValueError(
            f"lr={lr:.6g} is at or above the exact stability threshold {threshold:.6g} of "
            f"{algorithm} on this problem: the linearized dynamics diverge. Use a step size "
            "below it (e.g. --lr-fraction 0.5), or --allow-unstable to predict the divergence"
        )
    return lr, lr / threshold, threshold


def predict(
    data: userdata.UserData | str | os.PathLike | dict,
    model: str | models.Model | Callable[..., Any] = "mlp",
    *,
    params: Any = None,
    width: int = 512,
    depth: int = 2,
    activation: str = "relu",
    parameterization: str = "ntk",
    graph: str | nx.Graph | os.PathLike = "cycle",
    num_agents: int | None = None,
    rule: str = "metropolis",
    algorithm: str = "dgd",
    lr: float | None = None,
    lr_fraction: float | None = None,
    steps: int = 200,
    save_every: int | None = None,
    seed: int = 0,
    partition_rule: str = "contiguous",
    alpha: float = 0.5,
    allow_unstable: bool = False,
    train: bool = False,
    progress: bool = True,
    memory: int | None = None,
) -> Prediction:
    """Predict (and with ``train=True`` check) peer-to-peer training on ``data``.

    Args:
        data: a :class:`companion.userdata.UserData`, a path to its ``.npz``, or a dict.
        model: ``"mlp"`` or ``"affine"`` (built with ``width``, ``depth``, ``activation``,
            ``parameterization``), a :class:`companion.models.Model`, a ``stax`` triple
            (flat inputs; others through :func:`companion.usermodels.stax_model`), or an
            ``apply_fn(params, x)`` with ``params``. A model is initialized from
            ``jax.random.PRNGKey(seed)``.
        graph: a topology name, a networkx graph, or an edge-list file
            (:func:`companion.userdata.read_edges`); ``rule`` its mixing rule.
        num_agents: Q (None: from the file's partition, or the graph).
        algorithm: ``"dgd"``, ``"atc"`` or ``"cta"``.
        lr, lr_fraction: the step size, absolute or as a fraction of the exact threshold
            (default: half of it). A step at or above the threshold is refused unless
            ``allow_unstable``.
        steps, save_every: updates, and the steps between saved rows (default: about 100
            rows).
        seed: seeds theta_0, the Dirichlet partition and random topologies.
        partition_rule, alpha: the rule for a file without ``partition``
            (:func:`companion.userdata.partition`).
        train: also train the network, with a progress bar if ``progress``.
        memory: bytes the closed form may use (default: :func:`memory_limit`).
    """
    data = data if isinstance(data, userdata.UserData) else userdata.load(data)
    if num_agents is None and isinstance(graph, nx.Graph):
        num_agents = graph.number_of_nodes()
    parts = userdata.partition(data, num_agents, rule=partition_rule, alpha=alpha, seed=seed)
    q = len(parts)
    steps = check_steps(steps)
    every = max(1, steps // 100) if save_every is None else save_every
    if not (isinstance(every, int | np.integer) and every >= 1):
        raise ValueError(f"save_every must be a positive integer of steps, got {every!r}")
    saved = len(SaveAt(every=int(every)).resolve(steps))
    need = userdata.memory_estimate(len(data.x), data.num_classes, len(data.x_test), q, saved)
    budget = memory_limit() if memory is None else int(memory)
    if need > budget:
        raise ValueError(
            f"the closed form needs about {need / 2**30:.3g} GiB (kernel of {len(data.x)} "
            f"samples x {data.num_classes} outputs, squared, and {saved} saved steps of "
            f"{q} agents), more than the {budget / 2**30:.3g} GiB allowed: use fewer samples "
            "or outputs, save fewer steps (--save-every), or raise the limit (--memory-gib)"
        )
    mixing, graph_name = _mixing(graph, q, rule, seed)
    architecture = dict(
        width=width, depth=depth, activation=activation, parameterization=parameterization
    )
    problem, described = usermodels.problem(
        data, model, parts, params=params, seed=seed, **architecture
    )
    start = time.perf_counter()
    _ = problem.kernel, problem.f0, problem.kernel_test, problem.f0_test
    kernel_seconds = time.perf_counter() - start
    lr, fraction, threshold = _step_size(
        problem, algorithm, mixing, lr, lr_fraction, allow_unstable
    )
    save_at = SaveAt(every=int(every))
    form = dynamics.closed_form(problem, algorithm, mixing, lr=lr, check=False)
    predicted = form.steps(steps, save_at=save_at)
    settings = {
        "data": data.source,
        "samples": len(data.x),
        "features": data.x.shape[1],
        "outputs": data.num_classes,
        "test_samples": len(data.x_test),
        "targets": "class labels" if data.classification else "regression targets",
        "model": described,
        "graph": graph_name,
        "num_agents": q,
        "partition": "file" if data.agents is not None else partition_rule,
        "alpha": alpha if data.agents is None and partition_rule == "dirichlet" else None,
        "samples_per_agent": [len(p) for p in parts],
        "rule": rule,
        "algorithm": algorithm,
        "lr": lr,
        "lr_fraction": fraction,
        "threshold": threshold,
        "steps": steps,
        "save_every": int(every),
        "seed": seed,
        "allow_unstable": allow_unstable,
        "memory_estimate_bytes": need,
        "kernel_seconds": kernel_seconds,
        "trained": train,
    }
    if not train:
        return Prediction(settings, problem, mixing, predicted)
    trained = simulate.train(
        problem,
        algorithm,
        mixing,
        lr=lr,
        steps=steps,
        save_at=save_at,
        progress=progress,
        check=False,
    )
    rival = dynamics.closed_form(problem, algorithm, mixing, lr=RIVAL_FACTOR * lr, check=False)
    return Prediction(
        settings, problem, mixing, predicted, trained, rival.steps(steps, save_at=save_at)
    )
