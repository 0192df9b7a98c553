"""Closed forms against each other: recursion, spectral any-step evaluation, flow."""

from __future__ import annotations

import numpy as np
import pytest

from companion import dynamics, linear
from companion.problem import Problem
from companion.trajectory import relative_error

ALGORITHMS = ["dgd", "atc", "cta"]
AT = np.array([0, 1, 2, 7, 30, 150])


def assert_same(a, b, tol):
    for field in ("predictions", "param_distance", "test_predictions", "local_loss"):
        assert relative_error(getattr(a, field), getattr(b, field)) <= tol, field
    scale = np.linalg.norm(b.param_distance)
    assert np.linalg.norm(a.consensus_distance - b.consensus_distance) <= tol * scale


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_spectral_any_step_equals_recursion(mlp_problem, algorithm, mixing_for, stable_lr):
    mixing = mixing_for("star")
    form = dynamics.closed_form(
        mlp_problem, algorithm, mixing, lr=stable_lr(algorithm, mlp_problem, mixing)
    )
    recursion = form.steps(int(AT.max()))
    spectral = form.at(AT)
    assert spectral.method == "dual-spectral"
    np.testing.assert_array_equal(spectral.steps, AT)
    for field in ("predictions", "test_predictions", "param_distance"):
        assert relative_error(getattr(spectral, field), getattr(recursion, field)[AT]) <= 1e-9
    scale = np.linalg.norm(recursion.param_distance[AT])
    gap = spectral.consensus_distance - recursion.consensus_distance[AT]
    assert np.linalg.norm(gap) <= 1e-9 * scale
    assert_same(form.at(np.arange(11)), form.steps(10), 1e-9)


def test_spectral_falls_back_to_recursion_and_says_so(
    mlp_problem, monkeypatch, mixing_for, stable_lr
):
    mixing = mixing_for("cycle")
    lr = stable_lr("dgd", mlp_problem, mixing)
    form = dynamics.closed_form(mlp_problem, "dgd", mixing, lr=lr)
    spectral = form.at(AT)
    monkeypatch.setattr(dynamics, "SPECTRAL_LIMIT", 0)
    fallback = form.at(AT)
    assert fallback.method == "dual-recursion"
    assert_same(spectral, fallback, 1e-9)


def test_flow_with_one_agent_equals_neural_tangents(mlp_problem):
    """neural-tangents normalizes the loss by n*C, so its time is C times ours."""
    import neural_tangents as nt

    p = mlp_problem.replace(partition=[np.arange(mlp_problem.num_samples)])
    (n, c), times = p.targets.shape, np.array([0.0, 0.3, 2.0, 25.0])
    ours = dynamics.closed_form(p, "dgd", np.eye(1), lr=0.1).flow(times)
    k_train = p.kernel.reshape(n, c, n, c).transpose(0, 2, 1, 3)
    k_test = p.kernel_test.reshape(-1, c, n, c).transpose(0, 2, 1, 3)
    predict_fn = nt.predict.gradient_descent_mse(k_train, p.targets, trace_axes=())
    for i, t in enumerate(times):
        train, test = predict_fn(c * t, p.f0, p.f0_test, k_test)
        assert relative_error(ours.predictions[i, 0], train) <= 1e-10
        assert relative_error(ours.test_predictions[i, 0], test) <= 1e-10
    np.testing.assert_allclose(ours.time, times)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_flow_is_driven_by_the_state_transition_matrix(
    mlp_problem, algorithm, monkeypatch, mixing_for
):
    """Differences of an affine flow obey the homogeneous flow: G(t2) = Phi(t2, t1) G(t1)."""
    form = dynamics.closed_form(mlp_problem, algorithm, mixing_for("cycle"), lr=0.2)
    h, (t1, t2) = 0.05, (0.4, 1.3)
    times = [t1, t1 + h, t2, t2 + h]
    flat = form.flow(times).predictions.reshape(4, -1)
    phi = form.transition(t2, t1)
    assert relative_error(phi @ (flat[1] - flat[0]), flat[3] - flat[2]) <= 1e-9
    monkeypatch.setattr(dynamics, "SPECTRAL_LIMIT", 0)
    krylov = form.flow(times)
    assert krylov.method == "flow-expm"
    assert relative_error(krylov.predictions.reshape(4, -1), flat) <= 1e-9


def test_flow_approaches_small_step_recursion(mlp_problem, mixing_for):
    form = dynamics.closed_form(mlp_problem, "dgd", mixing_for("cycle"), lr=1e-3)
    discrete, continuous = form.at([500]), form.flow([0.5])
    assert relative_error(continuous.predictions, discrete.predictions) <= 1e-2


def test_primal_equals_dual(affine_problem, mixing_for):
    """The primal recursion on theta - theta_0 (Jacobian) and the dual one (kernel)."""
    form = dynamics.closed_form(affine_problem, "cta", mixing_for("cycle"), lr=0.1)
    primal, dual = form.steps(20, form="primal"), form.steps(20)
    assert (primal.method, dual.method) == ("primal", "dual-recursion")
    assert_same(primal, dual, 1e-10)
    with pytest.raises(ValueError, match="unknown form 'magic': use 'dual' or 'primal'"):
        form.steps(3, form="magic")


def test_trajectory_starts_at_theta_zero(mlp_problem, mixing_for):
    t = dynamics.closed_form(mlp_problem, "cta", mixing_for("complete"), lr=0.1).steps(4)
    assert t.param_distance[0].max() == 0 and t.consensus_distance[0] == 0
    np.testing.assert_array_equal(t.predictions[0, 2], mlp_problem.f0)
    assert t.test_loss.shape == t.test_accuracy.shape == (5, mlp_problem.num_agents)
    np.testing.assert_allclose(t.mean_local_loss, t.local_loss.mean(1))


def test_limit_is_interpolation_and_centralized_kernel_regression(
    mlp_problem, mixing_for, stable_lr
):
    """With K positive definite every agent ends at F_q = y and at NTK regression."""
    p = mlp_problem
    assert np.linalg.eigvalsh(p.kernel)[0] > 0
    mixing = mixing_for("cycle")
    regression = p.f0_test.ravel() + p.kernel_test @ np.linalg.solve(
        p.kernel, (p.targets - p.f0).ravel()
    )
    for algorithm in ALGORITHMS:
        lr = stable_lr(algorithm, p, mixing, 0.9)
        end = dynamics.closed_form(p, algorithm, mixing, lr=lr).at([10**7])
        assert np.abs(end.predictions[0] - p.targets).max() <= 1e-6
        assert np.abs(end.test_predictions[0] - regression.reshape(p.f0_test.shape)).max() <= 1e-6


def test_spectral_handles_a_singular_kernel(affine_problem, mixing_for, stable_lr):
    """P < m: K is singular and eigenvalue 1 repeats; the closed form still matches."""
    p, mixing = affine_problem, mixing_for("star")
    assert np.linalg.matrix_rank(p.kernel) < len(p.kernel)
    for algorithm in ALGORITHMS:
        form = dynamics.closed_form(p, algorithm, mixing, lr=stable_lr(algorithm, p, mixing))
        spectral, recursion = form.at(AT), form.steps(int(AT.max()))
        assert relative_error(spectral.predictions, recursion.predictions[AT]) <= 1e-9


def test_square_test_kernel_need_not_be_symmetric():
    """K(X*, X) with n_test == n is square but not symmetric; it must be accepted."""
    p = Problem(
        targets=np.ones((2, 1)),
        partition=[np.array([0]), np.array([1])],
        kernel=np.array([[2.0, 0.5], [0.5, 1.0]]),
        f0=np.zeros((2, 1)),
        kernel_test=np.array([[1.0, 0.3], [0.2, 0.9]]),
        f0_test=np.zeros((2, 1)),
        targets_test=np.ones((2, 1)),
    )
    out = dynamics.closed_form(p, "dgd", np.full((2, 2), 0.5), lr=0.1).steps(3)
    assert out.test_loss.shape == (4, 2)


def test_far_steps_without_a_usable_eigenbasis_jump_by_matrix_powers(monkeypatch):
    """When eig is refused (here forced), far steps must not store the whole recursion."""
    rng = np.random.default_rng(0)
    j = rng.normal(size=(6, 4))
    p = Problem(
        kernel=j @ j.T,
        targets=rng.normal(size=(6, 1)),
        partition=[np.arange(0, 3), np.arange(3, 6)],
        f0=rng.normal(size=(6, 1)),
    )
    form = dynamics.closed_form(p, "dgd", np.array([[0.7, 0.3], [0.3, 0.7]]), lr=0.05)
    monkeypatch.setattr(dynamics, "CONDITION_LIMIT", 0.0)
    far = dynamics.POWER_STEPS + 7
    jumped = form.at([far, 3, 0])
    assert jumped.method == "dual-powers"
    stepped = form.steps(far)
    # float64 rounding accumulates over ~1e4 steps either way: 1e-9 is ample.
    for row, step in enumerate([far, 3, 0]):
        assert relative_error(jumped.predictions[row], stepped.predictions[step]) < 1e-9


def test_powers_equal_repeated_steps():
    rng = np.random.default_rng(1)
    matrix, offset = 0.3 * rng.normal(size=(4, 4)), rng.normal(size=4)
    at = [0, 1, 5, 12, 64]
    states, x = [], np.zeros(4)
    for k in range(65):
        if k in at:
            states.append(x)
        x = matrix @ x + offset
    np.testing.assert_allclose(linear.powers(matrix, offset, at), states, rtol=1e-12, atol=1e-14)


def test_one_eigendecomposition_answers_every_query(mlp_problem, mixing_for, monkeypatch):
    """Steps and times of one handle share its eigendecomposition: eig runs once."""
    form = dynamics.closed_form(mlp_problem, "atc", mixing_for("cycle"), lr=0.2)
    calls = []
    eig = np.linalg.eig
    monkeypatch.setattr(np.linalg, "eig", lambda a: calls.append(a.shape) or eig(a))
    first = form.at(AT)
    form.flow([0.0, 0.5, 2.0])
    again = form.at(AT)
    form.flow([1.0])
    assert len(calls) == 1
    np.testing.assert_array_equal(first.predictions, again.predictions)


def test_chosen_steps_are_the_only_steps_recorded(mlp_problem, mixing_for):
    """The kept steps are an argument of one compiled program, whatever the run's length,
    so it cannot record every step: two lengths that keep three steps compile once, and
    the rows they keep are those of the run that records every step."""
    from companion import recursion
    from companion.trajectory import SaveAt

    form = dynamics.closed_form(mlp_problem, "cta", mixing_for("star"), lr=0.2)
    full = form.steps(400)
    runner = recursion._runner(form.layout, form.algorithm, True)
    for length, kept in ((50, (0, 25, 50)), (400, (3, 7, 400))):
        sparse = form.steps(length, save_at=SaveAt(steps=kept))
        np.testing.assert_array_equal(sparse.saved_steps, kept)
        for field in ("predictions", "param_distance", "consensus_distance", "local_loss"):
            np.testing.assert_allclose(
                getattr(sparse, field), getattr(full, field)[list(kept)], rtol=1e-13, atol=0
            )
        if length == 50:
            compiled = runner._cache_size()
    assert runner._cache_size() == compiled


def test_far_and_repeated_steps_through_the_recursion(mlp_problem, mixing_for, monkeypatch):
    """Without an eigenbasis, .at runs the recursion once over its distinct steps, in any
    order, with repeats."""
    form = dynamics.closed_form(mlp_problem, "dgd", mixing_for("cycle"), lr=0.2)
    spectral = form.at([30, 2, 30, 0])
    monkeypatch.setattr(dynamics, "SPECTRAL_LIMIT", 0)
    stepped = form.at([30, 2, 30, 0])
    assert stepped.method == "dual-recursion"
    np.testing.assert_array_equal(stepped.steps, [30, 2, 30, 0])
    assert_same(stepped, spectral, 1e-9)
