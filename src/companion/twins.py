"""One trained network against the two closed forms that know its initial outputs.

A network of finite width, trained from ``theta_0``, has two cheap predictions that both
start from its own initial outputs ``f_0`` (training and test inputs):

- its **own kernel**: the paper's closed form with the empirical NTK at ``theta_0``;
- its **infinite-width twin**: the closed form with the analytic NTK ``Theta (x) I_C``,
  started from the same ``f_0``. The infinite-width recursion is affine in the initial
  outputs, so the twin is the infinite-width mean plus ``A_k z``
  (:meth:`companion.infinite.InfiniteWidth.response`): the infinitely wide network of
  the same draw.

The twin is the own kernel's rival: it knows the draw's ``f_0`` but not the draw's kernel,
which is what the own kernel is credited with. :func:`single_network` scores both against
training over seeds, :func:`by_width` for every width and (graph, algorithm) setting of
a sweep; :class:`SingleNetwork` reduces the scores (medians over settings, paired margins
over seeds, the validity map's fractions within a tolerance), and :func:`margin_table`,
:func:`gap_maps` and :func:`fractions` lay them out by width.

The own kernel's closed form is the network's linearization around ``theta_0`` (exactly:
the closed form reproduces linearized training to rounding), so :func:`linearization_gaps`
and :func:`linearization_table` put the network beside its own-kernel prediction run by
run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from companion import dynamics, metrics, rivals
from companion.problem import Problem
from companion.trajectory import Trajectory

__all__ = [
    "SingleNetwork",
    "by_width",
    "combine",
    "fractions",
    "gap_maps",
    "horizons",
    "linearization_gaps",
    "linearization_table",
    "margin_table",
    "single_network",
    "twin_problem",
]


def twin_problem(problem: Problem, analytic: Problem) -> Problem:
    """The infinitely wide twin of ``problem``'s network: the analytic kernel of
    ``analytic`` (:func:`companion.infinite.analytic_problem` of the same data) and
    ``problem``'s own initial outputs, on the training and the test inputs.

    Raises:
        ValueError: when the two problems do not hold the same targets or test side.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.full((2, 1), 0.3))
        >>> a = Problem(targets=np.ones((2, 1)), partition=p.partition,
        ...             kernel=2 * np.eye(2), f0=np.zeros((2, 1)))
        >>> t = twin_problem(p, a)
        >>> t.kernel[0, 0].item(), t.f0[:, 0].tolist()
        (2.0, [0.3, 0.3])
    """
    same_test = (problem.targets_test is None) == (analytic.targets_test is None)
    if not np.array_equal(problem.targets, analytic.targets) or not same_test:
        raise ValueError(
            "the twin needs the analytic problem of the same data: build it with "
            "companion.infinite.analytic_problem(problem)"
        )
    test = analytic.targets_test is not None
    return Problem(
        targets=analytic.targets,
        partition=analytic.partition,
        kernel=analytic.kernel,
        f0=problem.f0,
        targets_test=analytic.targets_test,
        kernel_test=analytic.kernel_test if test else None,
        f0_test=problem.f0_test if test else None,
    )


@dataclasses.dataclass(frozen=True)
class SingleNetwork:
    """The own-kernel closed form and the infinite-width twin against training, for
    ``seeds`` networks in each of ``settings`` (graph, algorithm) settings.

    Attributes:
        own, twin: (settings, seeds) :func:`companion.metrics.prediction_error` of each
            prediction against its network's training predictions.
        own_gaps, twin_gaps: (settings, seeds, horizons) the log-loss gap up to each
            horizon (:func:`companion.metrics.log_loss_gap_until`).
        horizons: (horizons,) the steps the gaps run up to.
    """

    own: np.ndarray
    twin: np.ndarray
    own_gaps: np.ndarray
    twin_gaps: np.ndarray
    horizons: np.ndarray

    def margin(self) -> rivals.Margin:
        """The own kernel's prediction error against the twin's, paired over seeds, each
        seed's error the median over settings."""
        return rivals.margin(np.median(self.own, 0).tolist(), np.median(self.twin, 0).tolist())

    def gap_map(self, which: str = "own") -> np.ndarray:
        """(settings, horizons) median over seeds of the gap of ``"own"`` or ``"twin"``."""
        return np.median(self._gaps(which), 1)

    def within(self, tolerance: float, which: str = "own") -> float:
        """The fraction of (setting, horizon) cells whose median gap over seeds is at most
        ``tolerance``."""
        return float(np.mean(self.gap_map(which) <= tolerance))

    def within_margin(self, tolerance: float) -> rivals.Margin:
        """Per seed, the fraction of (setting, horizon) cells within ``tolerance``, own
        kernel against twin, paired over seeds (a score: higher is better)."""
        own, twin = (np.mean(self._gaps(w) <= tolerance, (0, 2)).tolist() for w in ("own", "twin"))
        return rivals.margin(own, twin, higher_is_better=True)

    def _gaps(self, which: str) -> np.ndarray:
        if which not in ("own", "twin"):
            raise ValueError(f"which must be 'own' or 'twin', got {which!r}")
        return self.own_gaps if which == "own" else self.twin_gaps


def single_network(
    problems: Sequence[Problem],
    observed: Sequence[Trajectory],
    algorithm: str,
    mixing: np.ndarray,
    *,
    lr: float,
    analytic: Problem,
    horizons: Sequence[int],
) -> SingleNetwork:
    """Both predictions of each network (one problem and training run per seed, one
    setting) against its training run, at the steps the runs saved.

    Args:
        problems: one problem per seed, each at its own ``theta_0``.
        observed: the training run of each, in the same order.
        algorithm, mixing, lr: the setting, as trained.
        analytic: :func:`companion.infinite.analytic_problem` of the same data.
        horizons: saved steps the log-loss gaps run up to.

    Returns:
        A :class:`SingleNetwork` with one setting.

    Raises:
        ValueError: for fewer than 2 seeds, unequal numbers of problems and runs, or
            horizons the runs did not save.

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0]), np.array([1])],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> mix = np.full((2, 2), 0.5)
        >>> run = dynamics.closed_form(p, "atc", mix, lr=0.5).steps(4)
        >>> r = single_network([p, p], [run, run], "atc", mix, lr=0.5,
        ...                    analytic=p, horizons=[4])
        >>> r.own.tolist(), r.gap_map().tolist()
        ([[0.0, 0.0]], [[0.0]])
    """
    if len(problems) != len(observed) or len(problems) < 2:
        raise ValueError(
            f"give one training run per problem, for at least 2 seeds: got {len(problems)} "
            f"problems and {len(observed)} runs"
        )
    steps = int(max(run.saved_steps[-1] for run in observed))
    scores = []
    for problem, run in zip(problems, observed, strict=True):
        for p in (problem, twin_problem(problem, analytic)):
            form = dynamics.closed_form(p, algorithm, mixing, lr=lr).steps(steps)
            scores.append(
                (
                    metrics.prediction_error(form, run),
                    metrics.log_loss_gap_until(form, run, horizons),
                )
            )
    errors = np.array([s[0] for s in scores]).reshape(-1, 2).T[:, None]
    gaps = np.stack([s[1] for s in scores]).reshape(len(problems), 2, -1)
    return SingleNetwork(
        own=errors[0],
        twin=errors[1],
        own_gaps=gaps[None, :, 0],
        twin_gaps=gaps[None, :, 1],
        horizons=np.asarray(horizons),
    )


def combine(parts: Sequence[SingleNetwork]) -> SingleNetwork:
    """The settings of several :class:`SingleNetwork` side by side (same seeds and
    horizons)."""
    if not parts or len({(p.own.shape[1], tuple(p.horizons)) for p in parts}) != 1:
        raise ValueError("combine needs at least one part, all over the same seeds and horizons")
    return SingleNetwork(
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("own", "twin", "own_gaps", "twin_gaps")
        ),
        horizons=parts[0].horizons,
    )


def horizons(saved_steps: Sequence[int] | np.ndarray, count: int) -> np.ndarray:
    """About ``count`` saved steps after step 0, evenly spread up to the last one: the
    horizons of a validity map.

    Example:
        >>> horizons(np.arange(0, 35, 5), 3).tolist()
        [5, 20, 30]
    """
    saved = np.asarray(saved_steps)
    if saved.ndim != 1 or saved.size < 2 or count < 1:
        raise ValueError(
            f"horizons need at least 2 saved steps and count >= 1, got {saved.size} steps "
            f"and count={count}: save more steps"
        )
    return saved[np.unique(np.linspace(1, len(saved) - 1, count).round().astype(int))]


def by_width(
    problems: Mapping[int, Sequence[Problem]],
    runs: Mapping[tuple[int, str, str], Sequence[Trajectory]],
    mixings: Mapping[str, np.ndarray],
    settings: Sequence[tuple[str, str]],
    *,
    lr: float,
    analytic: Problem,
    horizons: Sequence[int],
    seeds: int,
) -> dict[int, SingleNetwork]:
    """:func:`single_network` for the first ``seeds`` networks of every width (keys of
    ``problems``) and every (graph, algorithm) setting (runs keyed ``(width, graph,
    algorithm)``, as :func:`companion.ensembles.train` returns them), the settings side by
    side (:func:`combine`)."""
    return {
        w: combine(
            [
                single_network(
                    problems[w][:seeds],
                    runs[w, graph, alg][:seeds],
                    alg,
                    mixings[graph],
                    lr=lr,
                    analytic=analytic,
                    horizons=horizons,
                )
                for graph, alg in settings
            ]
        )
        for w in problems
    }


def margin_table(margins: Mapping[int, rivals.Margin]) -> pd.DataFrame:
    """By width, the own kernel's error, the twin's, the margin and its interval."""
    if not margins:
        raise ValueError("margin_table needs the margin of at least one width")
    frame = pd.DataFrame([vars(m) for m in margins.values()], index=pd.Index(margins, name="width"))
    columns = {"ours": "own kernel", "rival": "infinite-width twin", "margin": "margin"}
    intervals = [np.round(m.interval, 4) for m in margins.values()]
    chosen: pd.DataFrame = frame.loc[:, list(columns)]
    return chosen.rename(columns=columns).assign(interval=intervals)


def gap_maps(
    results: Mapping[int, SingleNetwork], settings: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], np.ndarray]:
    """Per setting, the (widths, horizons) median gap over seeds of the own kernel."""
    counts = {len(r.own) for r in results.values()}
    if counts != {len(settings)}:
        raise ValueError(
            f"give one setting per row of the results: {len(settings)} settings for results "
            f"of {sorted(counts)} settings"
        )
    return {
        cell: np.stack([r.gap_map()[i] for r in results.values()])
        for i, cell in enumerate(settings)
    }


def fractions(
    results: Mapping[int, SingleNetwork], tolerance: float, which: str = "own"
) -> dict[int, float]:
    """By width, :meth:`SingleNetwork.within` of ``"own"`` or ``"twin"``."""
    return {w: r.within(tolerance, which) for w, r in results.items()}


def linearization_gaps(network: Trajectory, linearized: Trajectory) -> dict[str, np.ndarray]:
    """Per saved step, ``||F_net - F_lin|| / ||F_lin||`` over every agent's predictions, on
    the training inputs and (where both runs have them) on the test inputs.

    Raises:
        ValueError: when the two runs did not save the same steps.

    Example:
        >>> from companion.trajectory import Trajectory
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0, 1])],
        ...             kernel=np.eye(2), f0=np.full((2, 1), 0.5))
        >>> lin = dynamics.closed_form(p, "dgd", np.eye(1), lr=0.5).steps(2)
        >>> net = dataclasses.replace(lin, predictions=1.1 * lin.predictions)
        >>> linearization_gaps(net, lin)["training inputs"].round(6).tolist()
        [0.1, 0.1, 0.1]
    """
    if not np.array_equal(network.saved_steps, linearized.saved_steps):
        raise ValueError(
            "the network and its linearization must save the same steps: train both with the "
            "same steps and save_at"
        )
    pairs = {"training inputs": (network.predictions, linearized.predictions)}
    if network.test_predictions is not None and linearized.test_predictions is not None:
        pairs["test inputs"] = (network.test_predictions, linearized.test_predictions)
    return {
        name: np.linalg.norm((a - b).reshape(len(b), -1), axis=1)
        / np.linalg.norm(np.reshape(b, (len(b), -1)), axis=1)
        for name, (a, b) in pairs.items()
    }


def linearization_table(network: Trajectory, linearized: Trajectory) -> pd.DataFrame:
    """The network (row ``"network"``) against its linearization (``"linearized"``): final
    global loss, final test accuracy (mean over agents) and the largest prediction gap on
    the training inputs (:func:`linearization_gaps`).

    Example:
        >>> p = Problem(targets=np.ones((2, 1)), partition=[np.array([0, 1])],
        ...             kernel=np.eye(2), f0=np.full((2, 1), 0.5))
        >>> lin = dynamics.closed_form(p, "dgd", np.eye(1), lr=0.5).steps(2)
        >>> linearization_table(lin, lin)["max prediction gap"].tolist()[0]
        0.0
    """
    gap = linearization_gaps(network, linearized)["training inputs"].max()
    runs = (network, linearized)
    accuracy = [np.nan if r.test_accuracy is None else r.test_accuracy[-1].mean() for r in runs]
    return pd.DataFrame(
        {
            "final training loss": [r.mean_global_loss[-1] for r in runs],
            "final test accuracy": accuracy,
            "max prediction gap": [gap, np.nan],
        },
        index=["network", "linearized"],
    )
