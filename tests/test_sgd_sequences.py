"""Runs over many batch sequences (companion.sgd_sequences) and what the chapter reduces
from them: the enumeration's errors, the loss curves, the Monte Carlo blocks, the trained
ensembles, the thresholds by batch size, the band errors by width and the costs."""

from __future__ import annotations

import numpy as np
import pytest

from companion import (
    algorithms,
    dynamics,
    sampling,
    sgd_moments,
    sgd_networks,
    sgd_sequences,
    sgd_stability,
    simulate,
    stability,
)
from companion.problem import Problem

MIXING = np.array([[0.6, 0.4], [0.4, 0.6]])


@pytest.fixture(scope="module")
def tiny(make_problem):
    """Two agents of three rows, two outputs: every batch sequence can be listed."""
    return make_problem(
        "mlp", num_agents=2, num_samples=6, partition=[np.arange(3), np.arange(3, 6)]
    )


def _linear(seed: int = 0) -> Problem:
    """A linear model (its own linearization) on two agents of two rows, trainable."""
    rng = np.random.default_rng(seed)
    return Problem(
        targets=rng.normal(size=(4, 1)),
        partition=[np.arange(2), np.arange(2, 4)],
        inputs=np.eye(4) + 0.1 * rng.normal(size=(4, 4)),
        apply_fn=lambda p, x: x @ p["a"],
        params={"a": 0.1 * rng.normal(size=(4, 1))},
    )


def test_the_enumeration_errors_are_each_pair_of_algorithm_and_sampler(tiny):
    lr = 0.4 / tiny.curvature
    samplers = {
        "b2": (sampling.fixed_size(tiny, 2), 2),
        "half": (sampling.independent(tiny, 0.5), 1),
    }
    errors = sgd_sequences.enumeration_errors(tiny, MIXING, lr, samplers)
    assert list(errors.mean) == [(n, k) for n in algorithms.ALGORITHMS for k in samplers]
    assert errors.worst_mean < 1e-12 and errors.worst_second < 1e-12
    # one entry by hand: the enumerated mean against the closed form
    mean, _ = sgd_sequences.enumerate_sequences(
        tiny, "cta", MIXING, lr=lr, steps=2, sampler=samplers["b2"][0]
    )
    full = dynamics.closed_form(tiny, "cta", MIXING, lr=lr).steps(2).predictions
    assert errors.mean["cta", "b2"] == np.abs(full - mean).max() / np.abs(mean).max()
    assert set(errors.table()) == {"mean vs full batch", "second moment"}


def test_the_loss_curves_are_the_exact_moment_and_the_sample_average(tiny):
    sampler, threshold = sampling.fixed_size(tiny, 1), 1.0 / tiny.curvature
    exact, sampled = sgd_sequences.loss_curves(
        tiny, "atc", MIXING, sampler, threshold=threshold, factors=[0.3], steps=4, count=50
    )
    lr = 0.3 * threshold
    own = sgd_moments.moments(tiny, "atc", MIXING, lr=lr, steps=4, sampler=sampler)
    assert np.array_equal(exact[0.3], own.average_loss)
    train, _ = sgd_sequences.realizations(
        tiny, "atc", MIXING, lr=lr, batches=sampler.sequences(range(50), 4)
    )
    assert np.allclose(sampled[0.3], tiny.global_loss(train.mean(2)).mean(0), rtol=1e-13)
    assert np.abs(sampled[0.3] / exact[0.3] - 1).max() > 1e-6  # a sample, not the moment


def test_the_monte_carlo_blocks_are_disjoint_seeds_and_the_rival_misfits(tiny):
    sampler, lr = sampling.fixed_size(tiny, 1), 0.4 / tiny.curvature
    run = sgd_sequences.monte_carlo(
        tiny, "atc", MIXING, sampler, lr=lr, steps=6, size=1000, blocks=5
    )
    first, _ = sgd_sequences.realizations(
        tiny, "atc", MIXING, lr=lr, batches=sampler.sequences(range(1000), 6)
    )
    assert np.array_equal(run.blocks[0], first)
    assert np.abs(run.blocks[1] - run.blocks[0]).max() > 1e-6  # other seeds
    assert run.exact.noise == "exact" and run.fixed.noise == "fixed"
    assert run.z_exact.standard() and not run.z_fixed.standard()
    assert run.margin().beats and set(run.table()) == {"exact", "fixed noise"}


def test_an_ensemble_trains_at_the_fraction_of_the_full_batch_threshold():
    problem = _linear()
    run = sgd_sequences.ensemble(problem, "dgd", MIXING, fraction=0.5, batch=1, steps=4, members=4)
    assert run.lr == 0.5 * stability.max_stable_lr(problem, "dgd", MIXING)
    assert len(run.runs) == 4 and list(run.predicted) == ["exact", "fixed"]
    assert run.sampler.batches == (1.0, 1.0)
    spread = np.var([r.predictions[-1] for r in run.runs], axis=0)
    assert spread.max() > 1e-8  # different batch sequences, one theta_0


def test_the_thresholds_by_batch_are_the_mean_square_thresholds():
    rng = np.random.default_rng(2)
    jac = rng.normal(size=(6, 9))
    problem = Problem(
        targets=rng.normal(size=(6, 1)),
        partition=[np.arange(3), np.arange(3, 6)],
        kernel=jac @ jac.T / 9,
        f0=np.zeros((6, 1)),
    )
    found = sgd_stability.thresholds_by_batch(problem, MIXING, [1, 3])
    full = stability.max_stable_lr(problem, "atc", MIXING)
    one = sampling.fixed_size(problem, 1)
    assert (
        found.ratios["atc_b1"] == sgd_stability.mean_square_lr(problem, "atc", MIXING, one) / full
    )
    assert found.full == ("dgd_b3", "atc_b3", "cta_b3") and found.full_batch_recovered
    assert found.largest_ratio == 1.0 and set(found.radius_gap) == {"dgd_b1", "atc_b1", "cta_b1"}
    assert found.consistent(1e-10) and not found.consistent(found.largest_gap / 2)
    assert found.by_algorithm()["dgd"] == {1: found.ratios["dgd_b1"], 3: 1.0}


@pytest.fixture(scope="module")
def ensembles():
    """Two labels standing for widths, three initializations each."""
    return {
        (width, init): sgd_sequences.ensemble(
            _linear(seed=init),
            "dgd",
            MIXING,
            fraction=0.5,
            batch=1,
            steps=6,
            members=30,
            save_at=simulate.SaveAt(every=2),
        )
        for width in (8, 4)
        for init in range(3)
    }


def test_the_band_by_width_reduces_over_initializations(ensembles):
    band = sgd_networks.band_by_width(ensembles)
    assert list(band.exact) == [8, 4]  # the widths in their first order
    errors = [
        sgd_networks.band_errors(ensembles[8, i].predicted["exact"], ensembles[8, i].runs)
        for i in range(3)
    ]
    assert band.exact[8] == np.median([e.median() for e in errors])
    assert band.margin.units == 3 and band.margin.ours == band.exact[8]
    assert band.falls == (band.exact[8] < band.exact[4])
    assert band.value() == {
        "8": band.exact[8],
        "4": band.exact[4],
        "floor_8": band.floor[8],
        "floor_4": band.floor[4],
    }
    fields = band.fields()
    assert fields["rival_value"] == {"8": band.fixed[8], "4": band.fixed[4]}
    assert fields["margin_interval"] == list(band.margin.interval)


def test_the_costs_by_batch_reuse_the_ensemble_of_their_batch(ensembles):
    base = ensembles[8, 0]
    found = sgd_networks.batch_costs(base, [1, 2])
    assert list(found.trained) == ["b1", "b2"] and found.batches == {"b1": 2.0, "b2": 4.0}
    curve = sgd_networks.mean_average_loss(base.runs)
    steps = np.asarray(base.runs[0].saved_steps)
    assert found.trained["b1"] == sgd_networks.steps_to(curve, steps, found.target)
    assert found.rival["b1"] == found.rival["b2"]  # the full batch ignores the batch size
    runs = [sgd_networks.batch_costs(ensembles[8, i], [1, 2]) for i in range(3)]
    margin = sgd_networks.cost_margin(runs)
    assert margin.units == 3 and margin.ours == np.median([c.error for c in runs])


@pytest.mark.bad_input
def test_the_reductions_refuse_what_they_cannot_reduce(tiny):
    sampler = sampling.fixed_size(tiny, 1)
    with pytest.raises(ValueError, match="samplers is empty"):
        sgd_sequences.enumeration_errors(tiny, MIXING, 0.1, {})
    with pytest.raises(ValueError, match="count must be a positive integer"):
        sgd_sequences.loss_curves(
            tiny, "dgd", MIXING, sampler, threshold=0.1, factors=[0.5], steps=2, count=0
        )
    with pytest.raises(ValueError, match="factors is empty"):
        sgd_sequences.loss_curves(
            tiny, "dgd", MIXING, sampler, threshold=0.1, factors=[], steps=2, count=2
        )
    with pytest.raises(ValueError, match="blocks must be at least 2"):
        sgd_sequences.monte_carlo(tiny, "dgd", MIXING, sampler, lr=0.1, steps=2, size=5, blocks=1)
    with pytest.raises(ValueError, match="members must be at least 2"):
        sgd_sequences.ensemble(_linear(), "dgd", MIXING, fraction=0.5, batch=1, steps=2, members=1)
    with pytest.raises(ValueError, match="batches is empty"):
        sgd_stability.thresholds_by_batch(tiny, MIXING, [])
    with pytest.raises(ValueError, match="ensembles is empty"):
        sgd_networks.band_by_width({})
