"""Mini-batch training, its exact moments and its mean-square stability."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from companion import (  # noqa: E402
    algorithms,
    dynamics,
    monte_carlo,
    sampling,
    sgd_moments,
    sgd_sequences,
    sgd_stability,
    simulate,
    stability,
)
from companion.agents import Stacked  # noqa: E402
from companion.plotting import sgd as sgd_plots  # noqa: E402
from companion.problem import Problem  # noqa: E402

ALGORITHMS = list(algorithms.ALGORITHMS)
MIXING = np.array([[0.6, 0.4], [0.4, 0.6]])


@pytest.fixture(scope="module")
def tiny(make_problem):
    """Two agents of three rows, two outputs: every batch sequence can be listed."""
    return make_problem(
        "mlp", num_agents=2, num_samples=6, partition=[np.arange(3), np.arange(3, 6)]
    )


def _scalar_problem(seed: int = 0, sizes=(2, 2)) -> Problem:
    """One output, Q m <= 8: the dense (Q m)^2 second-moment operator is small."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    jac = rng.normal(size=(n, 12))
    cuts = np.cumsum((0, *sizes))
    return Problem(
        targets=rng.normal(size=(n, 1)),
        partition=[np.arange(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)],
        kernel=jac @ jac.T / 12,
        f0=rng.normal(size=(n, 1)),
    )


def _rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# (sampler, steps): 9 batch pairs per step over 3 steps; 16 per step over 2 steps
ENUMERATED = {
    "fixed_size": (lambda p: sampling.fixed_size(p, 2), 3),
    "independent": (lambda p: sampling.independent(p, [0.5, 0.3]), 2),
}


@pytest.mark.parametrize("kind", list(ENUMERATED))
@pytest.mark.parametrize("name", ALGORITHMS)
def test_enumeration_of_every_batch_sequence_gives_the_exact_moments(tiny, name, kind):
    build, steps = ENUMERATED[kind]
    sampler, lr = build(tiny), 0.4 / tiny.curvature
    mean, second = sgd_sequences.enumerate_sequences(
        tiny, name, MIXING, lr=lr, steps=steps, sampler=sampler
    )
    exact = sgd_moments.moments(tiny, name, MIXING, lr=lr, steps=steps, sampler=sampler)
    full_batch = dynamics.closed_form(tiny, name, MIXING, lr=lr).steps(steps).predictions
    assert _rel(exact.mean, mean) < 1e-12 and _rel(full_batch, mean) < 1e-12
    assert _rel(exact.second, second) < 1e-12
    assert exact.variance.max() > 1e-3  # the sampling noise is there and counted


@pytest.mark.parametrize("name", ALGORITHMS)
def test_the_full_batch_reproduces_the_deterministic_closed_form(tiny, name):
    lr = 0.4 / tiny.curvature
    exact = sgd_moments.moments(
        tiny, name, MIXING, lr=lr, steps=6, sampler=sampling.full_batch(tiny)
    )
    form = dynamics.closed_form(tiny, name, MIXING, lr=lr).steps(6)
    assert np.abs(exact.mean - form.predictions).max() < 1e-14
    assert _rel(exact.second, form.predictions**2) < 1e-14
    assert exact.test_mean is not None and form.test_predictions is not None
    assert np.abs(exact.test_mean - form.test_predictions).max() < 1e-14
    assert np.abs(exact.global_loss - form.global_loss).max() < 1e-14
    assert np.abs(exact.average_loss - form.average_loss).max() < 1e-14
    assert np.abs(exact.local_loss - form.local_loss).max() < 1e-14
    assert np.abs(exact.consensus - form.consensus_distance**2).max() < 1e-14


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_realization_is_linearized_training_on_the_same_batches(tiny, name):
    sampler = sampling.independent(tiny, 0.6, seed=3)
    lr = 0.4 / tiny.curvature
    run = simulate.train(
        tiny, name, MIXING, lr=lr, steps=5, linearize=True, sampler=sampler, progress=False
    )
    train, test = sgd_sequences.realizations(
        tiny, name, MIXING, lr=lr, batches=sampler.weights(5)[None]
    )
    assert run.test_predictions is not None and test is not None
    assert np.abs(run.predictions - train[0]).max() < 1e-12
    assert np.abs(run.test_predictions - test[0]).max() < 1e-12


def test_an_ensemble_over_batch_sequences_is_one_run_per_seed(tiny):
    sampler = sampling.independent(tiny, 0.6, seed=3)
    lr = 0.4 / tiny.curvature
    options = dict(lr=lr, steps=5, sampler=sampler, linearize=True, progress=False)
    run = simulate.train(tiny, "cta", MIXING, **options)
    members = simulate.train_batches(tiny, "cta", MIXING, seeds=[3, 4], **options)
    assert np.abs(members[0].predictions - run.predictions).max() < 1e-12
    assert np.abs(members[1].predictions - run.predictions).max() > 1e-6


def test_monte_carlo_agrees_with_the_exact_moments_within_standard_errors(tiny):
    sampler, lr, steps = sampling.fixed_size(tiny, 1), 0.4 / tiny.curvature, 8
    exact = sgd_moments.moments(tiny, "atc", MIXING, lr=lr, steps=steps, sampler=sampler)
    fixed = sgd_moments.moments(
        tiny, "atc", MIXING, lr=lr, steps=steps, sampler=sampler, noise="fixed"
    )
    batches = sampler.sequences(range(3000), steps)
    train, _ = sgd_sequences.realizations(tiny, "atc", MIXING, lr=lr, batches=batches)
    for power, predicted in ((1, exact.mean), (2, exact.second)):
        z = monte_carlo.pooled_z(train**power, predicted)
        assert z.within_3se >= 0.98 and abs(z.mean) < 0.5 and z.exact_max_abs < 1e-12
    assert monte_carlo.pooled_z(train**2, fixed.second).within_3se < 0.9  # the rival misses


def _dense_bisection(problem, name, sampler, full) -> float:
    low, high = 0.0, full
    while high - low > 1e-10 * full:
        middle = 0.5 * (low + high)
        matrix = sgd_stability.dense_operator(problem, name, MIXING, middle, sampler)
        with stability.blas_threads(len(matrix)):
            stable = np.abs(np.linalg.eigvals(matrix)).max() < 1
        low, high = (middle, high) if stable else (low, middle)
    return 0.5 * (low + high)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_the_mean_square_threshold_is_the_dense_operators_first_crossing(name):
    problem = _scalar_problem()
    sampler = sampling.fixed_size(problem, 1)
    full = stability.max_stable_lr(problem, name, MIXING)
    threshold = sgd_stability.mean_square_lr(problem, name, MIXING, sampler)
    assert threshold < full
    assert abs(threshold - _dense_bisection(problem, name, sampler, full)) < 1e-9 * full
    assert abs(sgd_stability.radius(problem, name, MIXING, threshold, sampler) - 1) < 1e-10
    full_sampler = sampling.full_batch(problem)
    assert sgd_stability.mean_square_lr(problem, name, MIXING, full_sampler) == full


def test_the_noise_gain_and_the_radius_agree_on_stability():
    problem = _scalar_problem(seed=1, sizes=(3, 3))
    sampler = sampling.independent(problem, 0.5)
    full = stability.max_stable_lr(problem, "dgd", MIXING)
    for fraction in (0.2, 0.5, 0.8, 0.95):
        lr = fraction * full
        gain = sgd_stability.noise_gain(problem, "dgd", MIXING, lr, sampler)
        rho = sgd_stability.radius(problem, "dgd", MIXING, lr, sampler)
        assert (gain < 1) == (rho < 1)
        full_radius = stability.spectral_radius(problem, "dgd", MIXING, lr) ** 2
        assert rho >= full_radius - 1e-12


@pytest.mark.bad_input
def test_a_sampler_is_refused_where_it_cannot_run(tiny):
    sampler = sampling.fixed_size(tiny, 2)

    class Elsewhere(Stacked):
        """Any layout other than the one-device one."""

    with pytest.raises(ValueError, match="sampler runs on one device"):
        simulate.train(tiny, "dgd", MIXING, lr=0.1, steps=2, sampler=sampler, layout=Elsewhere())
    other = sampling.fixed_size(_scalar_problem(sizes=(2, 4)), 2)
    with pytest.raises(ValueError, match="build it from this problem"):
        simulate.train(tiny, "dgd", MIXING, lr=0.1, steps=2, sampler=other, progress=False)
    with pytest.raises(ValueError, match="Sampler built from this problem"):
        sgd_moments.moments(tiny, "dgd", MIXING, lr=0.1, steps=2, sampler=other)
    with pytest.raises(ValueError, match="unknown noise"):
        sgd_moments.moments(tiny, "dgd", MIXING, lr=0.1, steps=2, sampler=sampler, noise="sde")
    with pytest.raises(ValueError, match="Sampler.sequences"):
        sgd_sequences.realizations(tiny, "dgd", MIXING, lr=0.1, batches=np.ones((2, 3)))
    with pytest.raises(ValueError, match="one per batch sequence"):
        simulate.train_batches(tiny, "dgd", MIXING, lr=0.1, steps=2, sampler=sampler, seeds=[])
    with pytest.raises(ValueError, match="exceed"):
        sgd_sequences.enumerate_sequences(tiny, "dgd", MIXING, lr=0.1, steps=9, sampler=sampler)
    large = _scalar_problem(sizes=(13, 13))
    with pytest.raises(ValueError, match="only up to Qm"):
        sgd_stability.dense_operator(large, "dgd", MIXING, 0.1, sampling.fixed_size(large, 2))


def test_the_chapters_figures_draw():
    curve = np.linspace(1.0, 0.1, 5)
    costs = {"b1": {"steps": 3.0, "messages": 6.0, "gradient_evaluations": 3.0}}
    radii, thresholds = np.array([[0.9, 1.1], [0.8, 1.0]]), {"dgd": {1: 0.8, 2: 1.0}}
    widths = ({64: 0.2, 128: 0.1}, {64: 0.5, 128: 0.6}, {64: 0.1, 128: 0.1})
    figures = [
        sgd_plots.stability_map([1, 2], [0.5, 1.0], radii, thresholds),
        sgd_plots.mean_square_runs(np.arange(5), {0.9: curve}, {0.9: curve}, ylabel="L"),
        sgd_plots.band_errors_by_width(*widths),
        sgd_plots.cost_by_batch(costs, costs, costs),
    ]
    assert all(fig.axes for fig in figures)
    for fig in figures:
        plt.close(fig)
