"""Step-size stability (MATH.md fact 3): bounds, thresholds, and divergence of training."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from companion import graphs, simulate, stability

ALGORITHMS = ["dgd", "atc", "cta"]


@pytest.fixture(scope="session")
def stability_args(mixing_for):
    def build(problem, topology="cycle"):
        return problem.kernel, problem.partition, mixing_for(topology)

    return build


def test_four_cycle_metropolis_has_lambda_min_minus_one_third(mlp_problem):
    mixing = graphs.mixing_matrix(graphs.topology("cycle", 4))
    np.testing.assert_allclose(np.linalg.eigvalsh(mixing)[0], -1 / 3, atol=1e-15)
    kernel = mlp_problem.kernel
    partition = [np.arange(i, 14, 4) for i in range(4)]
    lipschitz = max(np.linalg.eigvalsh(kernel[np.ix_(o, o)])[-1] / len(p)
                    for p in partition for o in [np.ravel([2 * p, 2 * p + 1], "F")])  # fmt: skip
    bound = stability.sufficient_lr_bound(kernel, partition, mixing, num_outputs=2)
    np.testing.assert_allclose(bound, (2 / 3) / lipschitz, rtol=1e-12)
    assert bound <= stability.max_stable_lr("dgd", kernel, partition, mixing, num_outputs=2)


@pytest.mark.parametrize("topology", ["cycle", "star", "complete"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_threshold_is_first_crossing_and_above_sufficient_bound(
    mlp_problem, algorithm, topology, stability_args
):
    kernel, partition, mixing = stability_args(mlp_problem, topology)
    exact = stability.max_stable_lr(algorithm, kernel, partition, mixing, tol=1e-4, num_outputs=2)
    bound = stability.sufficient_lr_bound(
        kernel, partition, mixing, algorithm=algorithm, num_outputs=2
    )
    assert 0 < bound <= exact * (1 + 1e-9)

    def radius(lr):
        return stability.spectral_radius(algorithm, kernel, partition, mixing, lr, num_outputs=2)

    assert radius(0.999 * exact) <= 1 + 1e-9 < radius(1.001 * exact)
    grid = np.linspace(0.1, 0.98, 5) * exact  # stable all the way up to the threshold
    assert max(radius(lr) for lr in grid) <= 1 + 1e-9


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_linearized_training_diverges_just_above_threshold(mlp_problem, algorithm, stability_args):
    p = mlp_problem
    kernel, partition, mixing = stability_args(p)
    exact = stability.max_stable_lr(algorithm, kernel, partition, mixing, num_outputs=2)
    radius = stability.spectral_radius(algorithm, kernel, partition, mixing, 1.05 * exact,
                                       num_outputs=2)  # fmt: skip
    steps = int(min(3000, np.ceil(12 * np.log(10) / np.log(radius))))  # growth >= 1e12
    common = dict(**p.train_args(), mixing=mixing, steps=steps, linearize=True, chunk=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # check_lr is not called without kernel=
        try:
            above = simulate.train(algorithm, p.apply_fn, p.params, lr=1.05 * exact, **common)
            assert above.mean_loss[-1] > 1e6 * above.mean_loss[0]
        except simulate.DivergenceError as error:
            assert algorithm in str(error) and "max_stable_lr" in str(error)
    below = simulate.train(algorithm, p.apply_fn, p.params, lr=0.95 * exact, **common)
    assert np.isfinite(below.predictions).all()
    # DGD with a constant step stops short of the minimum, so ask for a bounded decrease
    assert below.mean_loss.max() <= below.mean_loss[0]
    assert below.mean_loss[-1] < 0.1 * below.mean_loss[0]


def test_check_lr_warns_above_and_is_silent_below(mlp_problem, stability_args):
    kernel, partition, mixing = stability_args(mlp_problem)
    exact = stability.max_stable_lr("dgd", kernel, partition, mixing, num_outputs=2)
    with pytest.warns(UserWarning, match=r"lr=.* exceeds the largest stable step size"):
        stability.check_lr("dgd", kernel, partition, mixing, 1.001 * exact, num_outputs=2)
    with pytest.raises(ValueError, match="exceeds the largest stable step size"):
        stability.check_lr("dgd", kernel, partition, mixing, 1.001 * exact, num_outputs=2,
                           strict=True)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stability.check_lr("dgd", kernel, partition, mixing, 0.999 * exact, num_outputs=2)


def test_iteration_matrix_drives_the_recursion(mlp_problem, stability_args):
    """F(k+1) - F(k) = M (F(k) - F(k-1)) for the stacked predictions."""
    from companion import dynamics

    p = mlp_problem
    kernel, partition, mixing = stability_args(p)
    for algorithm in ALGORITHMS:
        t = dynamics.predict(algorithm, **p.closed_form_args(), mixing=mixing, lr=0.3, steps=3)
        flat = t.predictions.reshape(4, -1)
        matrix = stability.iteration_matrix(algorithm, kernel, partition, mixing, 0.3)
        np.testing.assert_allclose(matrix @ (flat[2] - flat[1]), flat[3] - flat[2], atol=1e-12)


def test_large_problems_use_krylov_and_say_when_unchecked(mlp_problem, monkeypatch, stability_args):
    kernel, partition, mixing = stability_args(mlp_problem)
    dense = stability.max_stable_lr("dgd", kernel, partition, mixing, num_outputs=2)
    bound = stability.sufficient_lr_bound(kernel, partition, mixing, algorithm="atc",
                                          num_outputs=2)  # fmt: skip
    monkeypatch.setattr(stability, "DENSE_LIMIT", 0)
    krylov = stability.max_stable_lr("dgd", kernel, partition, mixing, num_outputs=2)
    np.testing.assert_allclose(krylov, dense, rtol=1e-10)
    with pytest.warns(UserWarning, match=r"too large \(> 0\) for an exact check"):
        stability.check_lr("atc", kernel, partition, mixing, 1.1 * bound, num_outputs=2)
