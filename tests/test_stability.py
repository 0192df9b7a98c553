"""Step-size stability: bounds, thresholds, and divergence of training."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest

from companion import algorithms, dynamics, graphs, simulate, stability
from companion.problem import Problem

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


def test_large_problems_use_the_reduced_threshold_and_say_when_unchecked(
    mlp_problem, monkeypatch, mixing_for
):
    p, cycle = mlp_problem, mixing_for("cycle")
    star = mixing_for("star")
    dense = {
        (alg, name): stability._bisect_threshold(p, algorithms.get(alg), w, 1e-10)
        for alg, name, w in [("dgd", "cycle", cycle), ("atc", "star", star)]
    }
    bound = stability.sufficient_lr_bound(p, cycle, algorithm="atc")
    monkeypatch.setattr(stability, "DENSE_LIMIT", 0)
    np.testing.assert_allclose(
        stability.max_stable_lr(p, "dgd", cycle), dense["dgd", "cycle"], rtol=1e-8
    )
    np.testing.assert_allclose(
        stability.max_stable_lr(p, "atc", star), dense["atc", "star"], rtol=1e-8
    )
    with pytest.warns(UserWarning, match=r"too large \(> 0\) for an exact check"):
        stability.check_lr(p, "atc", cycle, 1.1 * bound)


@pytest.mark.bad_input
def test_indefinite_mixing_beyond_the_dense_limit_is_refused_with_the_fix(
    mlp_problem, monkeypatch, mixing_for
):
    monkeypatch.setattr(stability, "DENSE_LIMIT", 0)
    with pytest.raises(ValueError, match=r"not symmetric positive semidefinite.*'lazy'"):
        stability.max_stable_lr(mlp_problem, "cta", mixing_for("cycle"))


@pytest.mark.parametrize("trial", range(12))
def test_reduced_threshold_equals_the_first_crossing_of_the_spectral_radius(make_problem, trial):
    """DGD on symmetric W and ATC/CTA on positive semidefinite W: the m x m formula agrees
    with bisection on the dense Qm x Qm spectral radius; ATC on indefinite W is left to
    bisection, because there it is not the first crossing."""
    rng = np.random.default_rng(trial)
    q = int(rng.integers(2, 5))
    p = make_problem("mlp", num_agents=q, partition=np.array_split(rng.permutation(14), q))
    graph = graphs.topology("erdos_renyi", q, seed=trial, p=0.8)
    if not nx.is_connected(graph):
        graph = graphs.topology("path", q)
    psd = graphs.mixing_matrix(graph, "lazy")
    assert np.linalg.eigvalsh(psd)[0] >= -1e-12
    laplacian = graphs.mixing_matrix(
        graph, "laplacian", eps=0.9 / max(dict(graph.degree()).values())
    )
    for alg, w in [("dgd", laplacian), ("dgd", psd), ("atc", psd), ("cta", psd)]:
        reduced = stability._reduced_threshold(p, algorithms.get(alg), w)
        assert reduced is not None
        dense = stability._bisect_threshold(p, algorithms.get(alg), w, 1e-9)
        np.testing.assert_allclose(reduced, dense, rtol=1e-7)
    if np.linalg.eigvalsh(laplacian)[0] < -1e-9:
        assert stability._reduced_threshold(p, algorithms.ATC, laplacian) is None


def test_with_an_indefinite_w_a_complex_pair_can_cross_before_minus_one():
    """Two agents, K = I, W with eigenvalue -0.8: for ATC, -1 is never an eigenvalue, yet
    the spectral radius passes 1 at a finite step size (so the reduced formula is not
    used there)."""
    p = Problem(
        targets=np.ones((2, 1)),
        partition=[np.array([0]), np.array([1])],
        kernel=np.eye(2),
        f0=np.zeros((2, 1)),
    )
    swap = np.array([[0.1, 0.9], [0.9, 0.1]])
    assert stability.minus_one_crossing(p, "atc", swap) == np.inf
    exact = stability.max_stable_lr(p, "atc", swap, tol=1e-12)
    np.testing.assert_allclose(exact, 2.25, rtol=1e-8)  # bisection stops at radius 1 + 1e-9
    eigenvalues = np.linalg.eigvals(stability.iteration_matrix(p, "atc", swap, 1.01 * exact))
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    assert abs(top) > 1 and abs(top.imag) > 0.5


@pytest.mark.bad_input
def test_the_minus_one_crossing_needs_a_symmetric_w(mlp_problem):
    w = np.array([[0.5, 0.5, 0, 0, 0], [0, 0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5, 0],
                  [0, 0, 0, 0.5, 0.5], [0.5, 0, 0, 0, 0.5]])  # fmt: skip
    with pytest.raises(ValueError, match="needs a symmetric mixing matrix; use max_stable_lr"):
        stability.minus_one_crossing(mlp_problem, "dgd", w)


def test_divergence_beyond_the_dense_limit_still_says_why(mlp_problem, monkeypatch, mixing_for):
    """Training that diverges where no exact threshold can be computed raises the
    divergence, naming why the threshold is unknown, not the threshold's refusal."""
    cycle = mixing_for("cycle")
    lr = 3 * stability.max_stable_lr(mlp_problem, "atc", cycle)
    monkeypatch.setattr(stability, "DENSE_LIMIT", 0)
    with pytest.raises(simulate.DivergenceError, match=r"atc diverged.*not known here.*'lazy'"):
        simulate.train(
            mlp_problem, "atc", cycle, lr=lr, steps=3000, chunk=500, linearize=True,
            check=False, progress=False,
        )  # fmt: skip


def test_threshold_table_matches_the_threshold_functions(mlp_problem, mixing_for):
    p, mixings = mlp_problem, {t: mixing_for(t) for t in ("cycle", "complete")}
    table = stability.threshold_table(p, mixings, ["dgd", "atc"])
    columns = ["lambda_min(W)", "DGD sufficient", "DGD exact", "ATC sufficient", "ATC exact"]
    assert list(table.columns) == columns
    for t, w in mixings.items():
        assert table.loc[t, "lambda_min(W)"] == pytest.approx(np.linalg.eigvalsh(w)[0])
        exact = stability.max_stable_lr(p, "dgd", w) * p.curvature
        assert table.loc[t, "DGD exact"] == exact
        assert table.loc[t, "DGD sufficient"] <= exact * (1 + 1e-9)


@pytest.mark.bad_input
def test_threshold_table_refuses_no_algorithms(mlp_problem, mixing_for):
    with pytest.raises(ValueError, match="topologies and algorithms"):
        stability.threshold_table(mlp_problem, {"cycle": mixing_for("cycle")}, [])


def test_kernel_at_end_sees_no_drift_in_the_affine_model():
    from companion import models
    from companion import problem as problem_lib

    p = problem_lib.digits(models.affine(10), num_agents=2, samples_per_agent=2)
    w = np.full((2, 2), 0.5)
    limit = stability.max_stable_lr(p, "dgd", w)
    run = simulate.train(p, "dgd", w, lr=0.5 * limit, steps=5, progress=False)
    end = stability.kernel_at_end(p, run, w, unit=limit)
    assert end["kernel drift"] < 1e-12  # the affine model's kernel does not move
    assert end["end threshold"] == pytest.approx(1.0, rel=1e-9)


@pytest.mark.bad_input
def test_kernel_at_end_refuses_a_closed_form_trajectory():
    from companion import models
    from companion import problem as problem_lib

    p = problem_lib.digits(models.affine(10), num_agents=2, samples_per_agent=1)
    w = np.full((2, 2), 0.5)
    dual = dynamics.closed_form(p, "dgd", w, lr=0.1 / p.curvature).steps(2)
    with pytest.raises(ValueError, match="final_params"):
        stability.kernel_at_end(p, dual, w)
