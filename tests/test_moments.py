"""The expected dynamics' limit and rate, the naive rival of the mean, Monte Carlo blocks."""

from __future__ import annotations

import numpy as np
import pytest

from companion import dynamics, graphs, moments, schedules
from companion.problem import Problem


@pytest.fixture(scope="module")
def small():
    """Four agents on a 4-cycle with failing links, a positive definite kernel."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    problem = Problem(
        targets=rng.normal(size=(4, 1)),
        partition=[np.array([q]) for q in range(4)],
        kernel=a @ a.T + np.eye(4),
        f0=np.zeros((4, 1)),
    )
    graph = graphs.topology("cycle", 4)
    return problem, graph, schedules.random_links(graph, 0.7, seed=0)


def test_expected_limit_is_the_targets_at_the_rate_of_the_mean(small):
    problem, _, schedule = small
    lr = 0.5 / problem.curvature
    limit = moments.expected_limit(problem, "atc", schedule, lr=lr)
    assert limit.limit_error < 1e-8  # interpolating: every doubly stochastic step fixes 1 (x) y
    trajectory = moments.mean(problem, "atc", schedule, lr=lr, steps=400)
    gaps = np.linalg.norm((trajectory.predictions - problem.targets).reshape(401, -1), axis=1)
    assert (gaps[300] / gaps[200]) ** (1 / 100) == pytest.approx(limit.rate, abs=1e-4)


def test_naive_mean_is_not_the_exact_mean(small):
    problem, graph, schedule = small
    lr = 0.5 / problem.curvature
    exact = moments.mean(problem, "dgd", schedule, lr=lr, steps=5).predictions
    naive = moments.naive_mean(problem, "dgd", graph, 0.7, lr=lr, steps=5).predictions
    assert np.abs(naive - exact).max() > 1e-6
    everywhere = moments.naive_mean(problem, "dgd", graph, 1.0, lr=lr, steps=5).predictions
    full = dynamics.closed_form(problem, "dgd", graphs.mixing_matrix(graph), lr=lr)
    np.testing.assert_allclose(everywhere, full.steps(5).predictions, rtol=1e-13)


def test_realization_blocks_use_consecutive_seeds(small):
    problem, _, schedule = small
    form = dynamics.closed_form(problem, "dgd", schedule, lr=0.5 / problem.curvature)
    blocks = moments.realization_blocks(form, 4, size=3, blocks=2)
    np.testing.assert_array_equal(blocks[1], moments.realizations(form, 4, range(3, 6)))
    assert not np.array_equal(blocks[0], blocks[1])


@pytest.mark.bad_input
def test_refusals_name_the_value(small):
    problem, graph, schedule = small
    form = dynamics.closed_form(problem, "dgd", schedule, lr=0.1)
    with pytest.raises(ValueError, match="at least 2 realizations"):
        moments.realization_blocks(form, 4, size=1, blocks=2)
    with pytest.raises(ValueError, match="probability=1.5"):
        moments.naive_mean(problem, "dgd", graph, 1.5, lr=0.1, steps=2)
    with pytest.raises(ValueError, match="needs a random schedule"):
        moments.expected_limit(problem, "dgd", np.eye(4), lr=0.1)  # type: ignore[arg-type]
