"""Step-size stability: bounds, thresholds, and divergence of training."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from companion import dynamics, graphs, simulate, stability

ALGORITHMS = ["dgd", "atc", "cta"]


def test_four_cycle_metropolis_has_lambda_min_minus_one_third(make_problem):
    mixing = graphs.mixing_matrix(graphs.topology("cycle", 4))
    np.testing.assert_allclose(np.linalg.eigvalsh(mixing)[0], -1 / 3, atol=1e-15)
    p = make_problem("mlp", num_agents=4, partition=[np.arange(i, 14, 4) for i in range(4)])
    lipschitz = max(
        np.linalg.eigvalsh(p.kernel[np.ix_(o, o)])[-1] / len(rows)
        for rows in p.partition
        for o in [np.ravel([2 * rows, 2 * rows + 1], "F")]
    )
    bound = stability.sufficient_lr_bound(p, mixing)
    np.testing.assert_allclose(bound, (2 / 3) / lipschitz, rtol=1e-12)
    assert bound <= stability.max_stable_lr(p, "dgd", mixing)


@pytest.mark.parametrize("topology", ["cycle", "star", "complete"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_threshold_is_first_crossing_and_above_sufficient_bound(
    mlp_problem, algorithm, topology, mixing_for
):
    p, mixing = mlp_problem, mixing_for(topology)
    exact = stability.max_stable_lr(p, algorithm, mixing, tol=1e-4)
    bound = stability.sufficient_lr_bound(p, mixing, algorithm=algorithm)
    assert 0 < bound <= exact * (1 + 1e-9)

    def radius(lr):
        return stability.spectral_radius(p, algorithm, mixing, lr)

    assert radius(0.999 * exact) <= 1 + 1e-9 < radius(1.001 * exact)
    grid = np.linspace(0.1, 0.98, 5) * exact  # stable all the way up to the threshold
    assert max(radius(lr) for lr in grid) <= 1 + 1e-9


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_linearized_training_diverges_just_above_threshold(mlp_problem, algorithm, mixing_for):
    p, mixing = mlp_problem, mixing_for("cycle")
    exact = stability.max_stable_lr(p, algorithm, mixing)
    radius = stability.spectral_radius(p, algorithm, mixing, 1.05 * exact)
    steps = int(min(3000, np.ceil(12 * np.log(10) / np.log(radius))))  # growth >= 1e12
    common = dict(mixing=mixing, steps=steps, linearize=True, chunk=500, progress=False)
    try:
        above = simulate.train(p, algorithm, lr=1.05 * exact, check=False, **common)
        assert above.mean_local_loss[-1] > 1e6 * above.mean_local_loss[0]
    except simulate.DivergenceError as error:
        assert algorithm in str(error) and "max_stable_lr" in str(error)
    below = simulate.train(p, algorithm, lr=0.95 * exact, **common)
    assert np.isfinite(below.predictions).all()
    # DGD with a constant step stops short of the minimum, so ask for a bounded decrease
    assert below.mean_local_loss.max() <= below.mean_local_loss[0]
    assert below.mean_local_loss[-1] < 0.1 * below.mean_local_loss[0]


def test_check_lr_warns_above_and_is_silent_below(mlp_problem, mixing_for):
    p, mixing = mlp_problem, mixing_for("cycle")
    exact = stability.max_stable_lr(p, "dgd", mixing)
    with pytest.warns(UserWarning, match=r"lr=.* exceeds the largest stable step size"):
        stability.check_lr(p, "dgd", mixing, 1.001 * exact)
    with pytest.raises(ValueError, match="exceeds the largest stable step size"):
        stability.check_lr(p, "dgd", mixing, 1.001 * exact, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stability.check_lr(p, "dgd", mixing, 0.999 * exact)


def test_iteration_matrix_drives_the_recursion(mlp_problem, mixing_for):
    """F(k+1) - F(k) = M (F(k) - F(k-1)) for the stacked predictions."""
    p, mixing = mlp_problem, mixing_for("cycle")
    for algorithm in ALGORITHMS:
        t = dynamics.closed_form(p, algorithm, mixing, lr=0.3).steps(3)
        flat = t.predictions.reshape(4, -1)
        matrix = stability.iteration_matrix(p, algorithm, mixing, 0.3)
        np.testing.assert_allclose(matrix @ (flat[2] - flat[1]), flat[3] - flat[2], atol=1e-12)


def test_large_problems_use_krylov_and_say_when_unchecked(mlp_problem, monkeypatch, mixing_for):
    p, mixing = mlp_problem, mixing_for("cycle")
    dense = stability.max_stable_lr(p, "dgd", mixing)
    bound = stability.sufficient_lr_bound(p, mixing, algorithm="atc")
    monkeypatch.setattr(stability, "DENSE_LIMIT", 0)
    krylov = stability.max_stable_lr(p, "dgd", mixing)
    np.testing.assert_allclose(krylov, dense, rtol=1e-10)
    with pytest.warns(UserWarning, match=r"too large \(> 0\) for an exact check"):
        stability.check_lr(p, "atc", mixing, 1.1 * bound)
