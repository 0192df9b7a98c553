"""The two width sweeps of the NTK chapter: the empirical NTK approaching its analytic limit
at initialization (:func:`companion.analytic.convergence`) and the kernel's movement in
training (:func:`companion.analytic.lazy_training`)."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from companion import analytic, models, ntk, rates
from companion.trajectory import relative_error

X = np.random.default_rng(0).normal(size=(4, 6))


@functools.cache
def convergence() -> analytic.Convergence:
    return analytic.convergence([8, 64, 512], 1, X, seeds=3, seed=2, out_dim=2)


def test_convergence_measures_each_seed_against_its_own_and_a_deeper_limit():
    c = convergence()
    assert c.widths == (8, 64, 512) and c.distances.shape == c.control.shape == (3, 3)
    model = models.mlp(64, 1, 2)
    params = model.init_fn(jax.random.PRNGKey(2 + 1), (-1, 6))[1]
    kernel = ntk.empirical_ntk(model, params, X)
    own = relative_error(kernel, analytic.ntk(models.mlp(8, 1, 2), X))
    deeper = relative_error(kernel, analytic.ntk(models.mlp(8, 2, 2), X))
    assert c.distances[1, 1] == own and c.control[1, 1] == deeper


def test_convergence_falls_toward_the_own_limit_and_not_the_wrong_one():
    c = convergence()
    own, deeper = c.medians()
    assert own[-1] < own[0] / 2 and deeper[-1] > own[-1]
    assert c.falls(2) == (True, False)
    assert c.slopes_within(-1.0, -0.1)
    assert np.array_equal(c.seed_slopes(), rates.per_seed_slopes(c.widths, c.distances))
    assert list(c.table().columns) == ["width", "own limit", "deeper limit"]


@pytest.mark.bad_input
def test_convergence_refuses_unsorted_widths_and_one_seed():
    with pytest.raises(ValueError, match="increasing widths"):
        analytic.convergence([64, 8], 1, X, seeds=2)
    with pytest.raises(ValueError, match="seeds=1"):
        analytic.convergence([8, 64], 1, X, seeds=1)


@functools.cache
def lazy(lr_fraction: float) -> analytic.LazyTraining:
    return analytic.lazy_training(
        [16, 256], 1, seeds=2, steps=20, lr_fraction=lr_fraction, samples=6, seed=1
    )


def test_lazy_training_records_every_run_and_moves_the_kernel_less_when_wider():
    result = lazy(0.5)
    assert len(result.runs) == 4 and result.widths == [16, 256]
    drift = result.by_seed("kernel drift")
    assert drift.shape == (2, 2) and np.all(drift > 0)
    assert np.all(drift[:, 1] < drift[:, 0])  # a factor 16 in width
    # the rival mixes in the kernel's seed-to-seed fluctuations: larger than the drift
    assert np.all(result.by_seed("to another seed's kernel") > drift)
    assert list(result.medians().index) == [16, 256]
    slopes = result.slopes()
    assert len(slopes.ours) == 2 and max(slopes.ours) < 0
    correlation, _ = result.correlations(0)
    assert correlation < 0


def test_lazy_training_moves_the_kernel_less_with_a_smaller_step():
    small, large = (lazy(f).by_seed("kernel drift") for f in (0.05, 0.5))
    assert np.all(small < large)


@pytest.mark.bad_input
def test_lazy_training_refuses_unsorted_widths():
    with pytest.raises(ValueError, match="increasing"):
        analytic.lazy_training([64, 16], 1, seeds=2, steps=2, lr_fraction=0.5, samples=4)
