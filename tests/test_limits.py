"""The centralized limit of DGD, ATC and CTA, in float64."""

from __future__ import annotations

import numpy as np
import pytest

from companion import dynamics, graphs, limits, models
from companion import problem as problem_lib
from companion.problem import Problem


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


@pytest.mark.bad_input
def test_singular_kernel_is_refused():
    with pytest.raises(ValueError, match="not positive definite"):
        limits.min_norm_coefficients(np.ones((2, 2)), np.ones((2, 1)), np.zeros((2, 1)))


@pytest.mark.parametrize("algorithm", ["dgd", "atc", "cta"])
def test_fixed_point_is_where_long_runs_end_outside_interpolation(
    affine_problem, mixing_for, stable_lr, algorithm
):
    """The conftest affine model has P = 8 parameters for m = 28 outputs: K is singular,
    the agents cannot all interpolate, and the limit is a biased fixed point."""
    p, mixing = affine_problem, mixing_for("cycle")
    form = dynamics.closed_form(p, algorithm, mixing, lr=stable_lr(algorithm, p, mixing))
    rate = limits.contraction(form)
    assert 0 < rate < 1
    far = int(np.ceil(np.log(1e-14) / np.log(rate)))
    reached = form.at([far]).predictions[0]
    star = limits.fixed_point(form)
    assert np.linalg.norm(reached - star) <= 1e-8 * np.linalg.norm(star)
    step = form.at([far + 1]).predictions[0]
    np.testing.assert_allclose(step, star, rtol=0, atol=1e-8 * np.abs(star).max())


def test_centralized_limit_zeroes_the_gradient_of_the_global_loss(affine_problem):
    p = affine_problem
    central = limits.centralized(p)
    weights = p.output_weights.mean(axis=0)
    gradient = p.kernel @ (weights * (central - p.targets).ravel())
    assert np.abs(gradient).max() <= 1e-10 * np.abs(p.kernel @ (weights * p.targets.ravel())).max()
    assert np.linalg.norm(central - p.targets) > 0.1, "not interpolating: the fit is biased"


def test_bias_vanishes_only_where_the_theory_says(affine_problem, mixing_for, stable_lr):
    """ATC on the uniform complete graph is centralized gradient descent, so unbiased; DGD
    on the cycle is biased, and less so at a smaller step."""
    p = affine_problem
    uniform = np.full((p.num_agents, p.num_agents), 1 / p.num_agents)
    atc = dynamics.closed_form(p, "atc", uniform, lr=stable_lr("atc", p, uniform))
    assert limits.bias(atc).max() < 1e-8
    cycle = mixing_for("cycle")
    lr = stable_lr("dgd", p, cycle)
    large, small = (
        limits.bias(dynamics.closed_form(p, "dgd", cycle, lr=eta)).max() for eta in (lr, lr / 4)
    )
    assert large > 1e-3
    assert 2 < large / small < 8, "first order in the step size"


def test_steps_to_limit_and_trained_limit(problem):
    form = dynamics.closed_form(
        problem,
        "dgd",
        graphs.mixing_matrix(graphs.topology("cycle", 3)),
        lr=0.5 / problem.curvature,
    )
    steps = limits.steps_to_limit(form, 1e-6)
    assert limits.contraction(form) ** steps <= 1e-6 < limits.contraction(form) ** (steps - 1)
    trained_steps, error = limits.trained_limit(form, 1e-6)
    assert trained_steps == steps and error < 1e-4


@pytest.mark.bad_input
@pytest.mark.parametrize("shrink", [0.0, 1.0, 2.0])
def test_steps_to_limit_refuses_a_shrink_outside_zero_one(problem, shrink):
    form = dynamics.closed_form(problem, "atc", np.full((3, 3), 1 / 3), lr=0.5 / problem.curvature)
    with pytest.raises(ValueError, match="shrink"):
        limits.steps_to_limit(form, shrink)


def test_bias_sweep_is_first_order_outside_interpolation():
    biased = limits.projected_digits(
        models.affine(10), num_agents=2, samples_per_agent=6, dims=4, seed=0
    )
    assert limits.affine_rank(biased) == 5 < biased.num_samples  # above the threshold
    w = np.full((2, 2), 0.5) + np.array([[0.25, -0.25], [-0.25, 0.25]])
    sweep = limits.bias_sweep(biased, "dgd", w, [0.01, 0.02])
    assert set(sweep) == {"bias", "disagreement", "excess loss"}
    assert sweep["bias"][1] / sweep["bias"][0] == pytest.approx(2.0, rel=0.05)
    assert sweep["excess loss"][1] / sweep["excess loss"][0] == pytest.approx(4.0, rel=0.1)


def test_projected_digits_interpolates_below_the_rank():
    small = limits.projected_digits(
        models.affine(10), num_agents=2, samples_per_agent=2, dims=4, seed=0
    )
    assert limits.affine_rank(small) == small.num_samples == 4  # n <= dims + 1: full rank
    form = dynamics.closed_form(small, "dgd", np.full((2, 2), 0.5), lr=0.5 / small.curvature)
    assert limits.bias(form).max() < 1e-8


@pytest.mark.bad_input
def test_affine_rank_needs_inputs():
    p = Problem(
        targets=np.zeros((2, 1)), partition=[np.arange(2)], kernel=np.eye(2), f0=np.zeros((2, 1))
    )
    with pytest.raises(ValueError, match="inputs"):
        limits.affine_rank(p)
