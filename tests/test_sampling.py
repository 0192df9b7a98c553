"""Mini-batch samplers: the laws the exact moments rely on, reproducibility, refusals."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from companion import sampling
from companion.problem import Problem


def _problem(sizes=(3, 5)) -> Problem:
    n = sum(sizes)
    cuts = np.cumsum((0, *sizes))
    partition = [np.arange(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return Problem(
        targets=np.zeros((n, 1)), partition=partition, kernel=np.eye(n), f0=np.zeros((n, 1))
    )


SAMPLERS = {
    "fixed_size": lambda p, seed=0: sampling.fixed_size(p, [2, 3], seed=seed),
    "independent": lambda p, seed=0: sampling.independent(p, [0.4, 0.7], seed=seed),
}


def test_inclusion_tables_are_the_stated_formulas():
    p = _problem()
    fixed = sampling.fixed_size(p, [2, 3]).inclusion(1)
    assert np.allclose(np.diag(fixed), 3 / 5) and np.isclose(fixed[0, 1], 3 * 2 / (5 * 4))
    bern = sampling.independent(p, 0.3).inclusion(0)
    assert np.allclose(np.diag(bern), 0.3) and np.isclose(bern[0, 2], 0.09)
    full = sampling.full_batch(p)
    assert full.is_full and np.abs(full.padded_covariance()).max() == 0.0


@pytest.mark.parametrize("kind", list(SAMPLERS))
def test_the_support_is_the_law_the_tables_state(kind):
    sampler = SAMPLERS[kind](_problem())
    for agent, n in enumerate(sampler.sizes):
        support = sampler.support(agent)
        probabilities = np.array([p for p, _ in support])
        weights = np.array([w for _, w in support])
        assert np.isclose(probabilities.sum(), 1.0, atol=1e-14)
        np.testing.assert_allclose(probabilities @ weights, np.full(n, 1 / n), atol=1e-15)
        second = np.einsum("s,si,sj->ij", probabilities, weights, weights)
        expected = sampler.factors[agent] ** 2 * sampler.inclusion(agent)
        np.testing.assert_allclose(second, expected, atol=1e-15)
        covariance = expected - 1 / n**2
        np.testing.assert_allclose(sampler.weight_covariance(agent), covariance, atol=1e-15)


@pytest.mark.parametrize("kind", list(SAMPLERS))
def test_drawn_batches_follow_the_law_within_standard_errors(kind):
    sampler = SAMPLERS[kind](_problem())
    draws = sampler.weights(4000)  # (steps, Q, L)
    for agent, n in enumerate(sampler.sizes):
        included = (draws[:, agent, :n] > 0).astype(float)
        pairs = np.einsum("ki,kj->kij", included, included)
        error = pairs.std(0) / np.sqrt(len(draws))
        gap = np.abs(pairs.mean(0) - sampler.inclusion(agent))
        assert np.all(gap <= 4 * error + 1e-12)
        assert np.all(draws[:, agent, n:] == 0)  # pads are never drawn
        assert set(np.unique(draws[:, agent])) <= {0.0, sampler.factors[agent]}
    if kind == "fixed_size":
        assert ((draws > 0).sum(-1) == np.array([2, 3])).all()


def test_a_seed_reproduces_the_sequence_however_it_is_cut():
    p = _problem()
    sampler = sampling.fixed_size(p, 2, seed=7)
    whole = sampler.weights(10)
    np.testing.assert_array_equal(whole[5:], sampler.weights(5, start=5))
    key = jax.random.PRNGKey(7)
    np.testing.assert_array_equal(whole, sampling.fixed_size(p, 2, seed=key).weights(10))
    other = sampler.reseeded(8).weights(10)
    assert not np.array_equal(whole, other)
    np.testing.assert_array_equal(sampler.sequences([7, 8], 10), np.stack([whole, other]))


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda p: sampling.fixed_size(p, 0), "outside 1..n_q"),
        (lambda p: sampling.fixed_size(p, [2, 6]), "outside 1..n_q = 5"),
        (lambda p: sampling.fixed_size(p, 1.5), "not an integer"),
        (lambda p: sampling.fixed_size(p, [1, 2, 3]), "one per agent"),
        (lambda p: sampling.independent(p, 0.0), "outside (0, 1]"),
        (lambda p: sampling.independent(p, 1.5), "rho = 1 is the full batch"),
        (lambda p: sampling.fixed_size(p, 1, seed=-1), "non-negative integer"),
        (lambda p: sampling.fixed_size(p, 1, seed="a"), "jax key"),
    ],
)
def test_bad_samplers_are_refused_with_the_fix(build, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace("]", r"\]")):
        build(_problem())


@pytest.mark.bad_input
def test_support_refuses_to_list_too_many_batches():
    n = 14
    p = Problem(
        targets=np.zeros((n, 1)), partition=[np.arange(n)], kernel=np.eye(n), f0=np.zeros((n, 1))
    )
    with pytest.raises(ValueError, match="smaller problem"):
        sampling.independent(p, 0.5).support(0)
