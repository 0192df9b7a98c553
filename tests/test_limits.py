"""The centralized limit of DGD, ATC and CTA, in float64."""

from __future__ import annotations

import numpy as np
import pytest

from companion import dynamics, graphs, limits, models
from companion import problem as problem_lib


@pytest.fixture(scope="module")
def problem():
    # affine model: P = 650 parameters > m = 120 outputs, 12 independent inputs
    return problem_lib.digits(
        models.affine(10), num_agents=3, samples_per_agent=4, n_test=5, seed=3
    )


def test_min_norm_interpolates_and_is_smallest(problem):
    alpha = limits.min_norm_coefficients(problem.kernel, problem.targets, problem.f0)
    fitted = problem.f0.ravel() + problem.kernel @ alpha
    np.testing.assert_allclose(fitted, problem.targets.ravel(), atol=1e-10)
    assert limits.min_norm_distance(problem.kernel, problem.targets, problem.f0) == pytest.approx(
        np.sqrt(alpha @ problem.kernel @ alpha), rel=1e-12
    )


def test_ntk_regression_on_training_inputs_returns_targets(problem):
    p = problem
    out = limits.ntk_regression(p.kernel, p.kernel, p.targets, p.f0, p.f0)
    np.testing.assert_allclose(out, p.targets, atol=1e-10)


@pytest.mark.parametrize("algorithm", ["dgd", "atc", "cta"])
def test_every_algorithm_reaches_the_centralized_limit(problem, algorithm):
    mixing = graphs.mixing_matrix(graphs.topology("path", 3), "metropolis")
    form = dynamics.closed_form(problem, algorithm, mixing, lr=0.5 / problem.curvature)
    appr = limits.approach(form, doublings=40)
    assert appr.worst[0] == pytest.approx(1.0)
    assert appr.worst[-1] < 1e-8 < appr.worst[1]


@pytest.mark.parametrize("algorithm", ["dgd", "atc", "cta"])
def test_doubling_matches_the_step_by_step_recursion(problem, algorithm):
    p = problem
    mixing = graphs.mixing_matrix(graphs.topology("cycle", 3), "metropolis")
    form = dynamics.closed_form(p, algorithm, mixing, lr=0.5 / p.curvature)
    appr = limits.approach(form, doublings=6)
    traj = form.steps(64)
    reference = limits.ntk_regression(p.kernel, p.kernel_test, p.targets, p.f0, p.f0_test)
    gap = np.linalg.norm(traj.test_predictions - reference, axis=(-2, -1))
    gap /= np.linalg.norm(p.f0_test - reference)
    residual = np.linalg.norm(traj.predictions - p.targets, axis=(-2, -1))
    residual /= np.linalg.norm(p.f0 - p.targets)
    np.testing.assert_allclose(appr.test_gap, gap[appr.steps], rtol=1e-9)
    np.testing.assert_allclose(appr.train_gap, residual[appr.steps], rtol=1e-9)


def test_singular_kernel_is_refused():
    with pytest.raises(ValueError, match="not positive definite"):
        limits.min_norm_coefficients(np.ones((2, 2)), np.ones((2, 1)), np.zeros((2, 1)))
