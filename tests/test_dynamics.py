"""Closed forms against each other: recursion, spectral any-step evaluation, flow."""

from __future__ import annotations

import numpy as np
import pytest

from companion import dynamics
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
    lr = stable_lr(algorithm, mlp_problem, mixing)
    args = dict(mlp_problem.closed_form_args(), mixing=mixing, lr=lr)
    recursion = dynamics.predict(algorithm, **args, steps=int(AT.max()))
    spectral = dynamics.predict_at(algorithm, **args, steps_at=AT)
    assert spectral.method == "dual-spectral"
    np.testing.assert_array_equal(spectral.steps, AT)
    picked = {f: getattr(recursion, f)[AT] for f in ("predictions", "test_predictions")}
    for field, value in picked.items():
        assert relative_error(getattr(spectral, field), value) <= 1e-9
    assert relative_error(spectral.param_distance, recursion.param_distance[AT]) <= 1e-9
    scale = np.linalg.norm(recursion.param_distance[AT])
    gap = spectral.consensus_distance - recursion.consensus_distance[AT]
    assert np.linalg.norm(gap) <= 1e-9 * scale
    whole = dynamics.predict(algorithm, **args, steps=10, method="spectral")
    assert whole.method == "dual-spectral"
    assert_same(whole, dynamics.predict(algorithm, **args, steps=10), 1e-9)


def test_spectral_falls_back_to_recursion_and_says_so(
    mlp_problem, monkeypatch, mixing_for, stable_lr
):
    mixing = mixing_for("cycle")
    args = dict(
        mlp_problem.closed_form_args(), mixing=mixing, lr=stable_lr("dgd", mlp_problem, mixing)
    )
    spectral = dynamics.predict_at("dgd", **args, steps_at=AT)
    monkeypatch.setattr(dynamics, "SPECTRAL_LIMIT", 0)
    fallback = dynamics.predict_at("dgd", **args, steps_at=AT)
    assert fallback.method == "dual-recursion"
    assert_same(spectral, fallback, 1e-9)


def test_flow_with_one_agent_equals_neural_tangents(mlp_problem):
    """MATH.md fact 2: nt normalizes by n*C, so its time is C times ours."""
    import neural_tangents as nt

    p = mlp_problem
    (n, c), times = p.targets.shape, np.array([0.0, 0.3, 2.0, 25.0])
    args = dict(p.closed_form_args(), partition=[np.arange(n)], mixing=np.eye(1), lr=0.1)
    ours = dynamics.flow("dgd", **args, times=times)
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
    p, mixing = mlp_problem, mixing_for("cycle")
    lr, h, (t1, t2) = 0.2, 0.05, (0.4, 1.3)
    args = dict(p.closed_form_args(), mixing=mixing, lr=lr)
    flat = dynamics.flow(algorithm, **args, times=[t1, t1 + h, t2, t2 + h]).predictions
    flat = flat.reshape(4, -1)
    phi = dynamics.state_transition(
        algorithm, kernel=p.kernel, partition=p.partition, mixing=mixing, lr=lr, t=t2, t0=t1,
        num_outputs=p.targets.shape[1],
    )  # fmt: skip
    assert relative_error(phi @ (flat[1] - flat[0]), flat[3] - flat[2]) <= 1e-9
    monkeypatch.setattr(dynamics, "SPECTRAL_LIMIT", 0)
    krylov = dynamics.flow(algorithm, **args, times=[t1, t1 + h, t2, t2 + h])
    assert krylov.method == "flow-expm"
    assert relative_error(krylov.predictions.reshape(4, -1), flat) <= 1e-9


def test_flow_approaches_small_step_recursion(mlp_problem, mixing_for):
    p, mixing, lr = mlp_problem, mixing_for("cycle"), 1e-3
    args = dict(p.closed_form_args(), mixing=mixing, lr=lr)
    discrete = dynamics.predict_at("dgd", **args, steps_at=[500])
    continuous = dynamics.flow("dgd", **args, times=[0.5])
    assert relative_error(continuous.predictions, discrete.predictions) <= 1e-2


def test_primal_is_chosen_for_small_models(affine_problem, mlp_problem, make_problem, mixing_for):
    mixing = mixing_for("cycle")
    common = dict(targets=affine_problem.targets, partition=affine_problem.partition,
                  mixing=mixing, lr=0.1, steps=3, f0=affine_problem.f0)  # fmt: skip
    small = dynamics.predict("dgd", jacobian=affine_problem.jacobian, **common)
    assert affine_problem.jacobian.shape[1] < affine_problem.targets.size
    assert small.method == "primal"
    wide = make_problem("mlp")
    assert wide.jacobian.shape[1] > wide.targets.size
    common.update(targets=wide.targets, partition=wide.partition, f0=wide.f0)
    assert dynamics.predict("dgd", jacobian=wide.jacobian, **common).method == "dual-recursion"


def test_trajectory_starts_at_theta_zero(mlp_problem, mixing_for):
    mixing = mixing_for("complete")
    t = dynamics.predict("cta", **mlp_problem.closed_form_args(), mixing=mixing, lr=0.1, steps=4)
    assert t.param_distance[0].max() == 0 and t.consensus_distance[0] == 0
    np.testing.assert_array_equal(t.predictions[0, 2], mlp_problem.f0)
    assert t.test_loss.shape == t.test_accuracy.shape == (5, len(mixing))
    np.testing.assert_allclose(t.mean_loss, t.local_loss.mean(1))


def test_limit_is_interpolation_and_centralized_kernel_regression(
    mlp_problem, mixing_for, stable_lr
):
    """MATH.md fact 4: with K positive definite every agent ends at F_q = y."""
    p = mlp_problem
    assert np.linalg.eigvalsh(p.kernel)[0] > 0
    mixing = mixing_for("cycle")
    for algorithm in ALGORITHMS:
        args = dict(p.closed_form_args(), mixing=mixing, lr=stable_lr(algorithm, p, mixing, 0.9))
        end = dynamics.predict_at(algorithm, **args, steps_at=[10**7])
        assert np.abs(end.predictions[0] - p.targets).max() <= 1e-6
        regression = p.f0_test.ravel() + p.kernel_test @ np.linalg.solve(
            p.kernel, (p.targets - p.f0).ravel()
        )
        assert np.abs(end.test_predictions[0] - regression.reshape(p.f0_test.shape)).max() <= 1e-6


def test_spectral_handles_a_singular_kernel(affine_problem, mixing_for, stable_lr):
    """P < m: K is singular and eigenvalue 1 repeats; the closed form still matches."""
    p, mixing = affine_problem, mixing_for("star")
    assert np.linalg.matrix_rank(p.kernel) < len(p.kernel)
    for algorithm in ALGORITHMS:
        args = dict(p.closed_form_args(), mixing=mixing, lr=stable_lr(algorithm, p, mixing))
        spectral = dynamics.predict_at(algorithm, **args, steps_at=AT)
        recursion = dynamics.predict(algorithm, **args, steps=int(AT.max()), method="dual")
        assert relative_error(spectral.predictions, recursion.predictions[AT]) <= 1e-9


def test_square_test_kernel_need_not_be_symmetric():
    """K(X*, X) with n_test == n is square but not symmetric; it must be accepted."""
    kernel = np.array([[2.0, 0.5], [0.5, 1.0]])
    kernel_test = np.array([[1.0, 0.3], [0.2, 0.9]])
    out = dynamics.predict(
        "dgd",
        kernel=kernel,
        targets=np.ones((2, 1)),
        partition=[np.array([0]), np.array([1])],
        mixing=np.full((2, 2), 0.5),
        lr=0.1,
        steps=3,
        f0=np.zeros((2, 1)),
        kernel_test=kernel_test,
        f0_test=np.zeros((2, 1)),
        targets_test=np.ones((2, 1)),
    )
    assert out.test_loss.shape == (4, 2)


def test_far_steps_without_a_usable_eigenbasis_jump_by_matrix_powers(monkeypatch):
    """When eig is refused (here forced), far steps must not store the whole recursion."""
    rng = np.random.default_rng(0)
    j = rng.normal(size=(6, 4))
    problem = dict(
        kernel=j @ j.T,
        targets=rng.normal(size=(6, 1)),
        partition=[np.arange(0, 3), np.arange(3, 6)],
        mixing=np.array([[0.7, 0.3], [0.3, 0.7]]),
        lr=0.05,
        f0=rng.normal(size=(6, 1)),
    )
    monkeypatch.setattr(dynamics, "CONDITION_LIMIT", 0.0)
    far = dynamics.POWER_STEPS + 7
    jumped = dynamics.predict_at("dgd", steps_at=[far, 3, 0], **problem)
    assert jumped.method == "dual-powers"
    stepped = dynamics.predict("dgd", steps=far, **problem)
    # float64 rounding accumulates over ~1e4 steps either way: 1e-9 is ample.
    for row, step in enumerate([far, 3, 0]):
        assert relative_error(jumped.predictions[row], stepped.predictions[step]) < 1e-9
