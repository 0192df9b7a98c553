"""The heterogeneity rivals: the closed form wins where it is exact, loses where broken."""

from __future__ import annotations

import numpy as np
import pytest

from companion import data, dynamics, graphs, heterogeneity, models, simulate
from companion import problem as problem_lib
from companion.experiments import SeedRuns

AGENTS, PER_AGENT, STEPS, SEEDS = 4, 6, 30, 3


@pytest.fixture(scope="module")
def setting():
    """Skewed and i.i.d. partitions of the same digits, three initializations each."""
    digits = data.load_digits_dataset(AGENTS * PER_AGENT, 10, seed=0, center_targets=True)
    schemes = {"skewed": dict(scheme="dirichlet", alpha=0.1), "iid": dict(scheme="iid")}
    net = models.mlp(32, 1, 10)
    problems = {
        name: [
            problem_lib.from_dataset(
                net,
                digits,
                data.partition_indices(digits.labels_train, AGENTS, seed=0, num_classes=10, **kw),
                seed=s,
            )
            for s in range(SEEDS)
        ]
        for name, kw in schemes.items()
    }
    return problems, graphs.mixing_matrix(graphs.topology("cycle", AGENTS))


def seed_runs(problems, mixing, predict=lambda p: p) -> SeedRuns:
    """Linearized training (where the closed form is exact), the closed form of
    ``predict(problem)`` and the 1.2x step-size rival, for each seed."""
    predicted, observed, control = [], [], []
    for p in problems:
        lr = 0.5 / p.curvature
        predicted.append(dynamics.closed_form(predict(p), "dgd", mixing, lr=lr).steps(STEPS))
        control.append(dynamics.closed_form(p, "dgd", mixing, lr=1.2 * lr).steps(STEPS))
        observed.append(
            simulate.train(p, "dgd", mixing, lr=lr, steps=STEPS, linearize=True, progress=False)
        )
    return SeedRuns(
        tuple(range(len(problems))),
        tuple(problems),
        tuple(predicted),
        tuple(observed),
        tuple(control),
        1.2,
    )


def test_exact_closed_form_beats_both_rivals(setting):
    problems, cycle = setting
    judged = heterogeneity.judge(
        {n: seed_runs(p, cycle) for n, p in problems.items()}, "iid", cycle
    )
    assert set(judged.rivals["iid"]) == {"skewed"}  # the i.i.d. split has no i.i.d. rival
    assert max(judged.medians().values()) < 1e-8
    for rival in ("step", "iid"):
        assert judged.margin(rival).beats, rival
    assert judged.fields()["margin_interval"][0] > 0


def test_broken_closed_form_loses_to_the_rivals(setting):
    """A wrong kernel (a twentieth of the true one: the network barely moves) is a worse
    prediction than either rival."""
    problems, cycle = setting
    broken = lambda p: p.replace(kernel=0.05 * p.kernel)  # noqa: E731
    runs = {n: seed_runs(p, cycle, broken) for n, p in problems.items()}
    judged = heterogeneity.judge(runs, "iid", cycle)
    for rival in ("step", "iid"):
        assert judged.margin(rival).margin < 0, rival
        assert not judged.margin(rival).beats, rival
    assert judged.fields()["margin_interval"][0] <= 0


def test_iid_rival_is_scored_on_the_agents_own_rows(setting):
    """The i.i.d. rival's local losses are those of the skewed agents' rows: rescoring the
    skewed closed form on its own partition changes nothing."""
    problems, cycle = setting
    p = problems["skewed"][0]
    t = dynamics.closed_form(p, "dgd", cycle, lr=0.5 / p.curvature).steps(5)
    np.testing.assert_allclose(heterogeneity.rescored(t, p).local_loss, t.local_loss, rtol=1e-14)
    other = heterogeneity.rescored(t, problems["iid"][0])
    assert not np.allclose(other.local_loss, t.local_loss)


@pytest.mark.bad_input
def test_judge_names_the_missing_iid_partition(setting):
    problems, cycle = setting
    runs = {"skewed": seed_runs(problems["skewed"], cycle)}
    with pytest.raises(ValueError, match="i.i.d. split"):
        heterogeneity.judge(runs, "iid", cycle)
    with pytest.raises(ValueError, match="unknown rival"):
        heterogeneity.judge(runs | {"iid": seed_runs(problems["iid"], cycle)}, "iid", cycle).margin(
            "graph"
        )
