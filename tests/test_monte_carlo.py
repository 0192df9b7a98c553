"""The Monte Carlo rival metric: the exact moment wins, a broken one loses."""

from __future__ import annotations

import numpy as np
import pytest

from companion import monte_carlo
from companion.monte_carlo import ZScores


@pytest.fixture(scope="module")
def blocks():
    """Five independent blocks of 400 realizations of 60 standard normal entries."""
    rng = np.random.default_rng(1)
    return [rng.normal(size=(400, 60)) for _ in range(5)]


def test_exact_mean_beats_a_biased_rival(blocks):
    exact = monte_carlo.z_over_blocks(blocks, np.zeros(60))
    rival = monte_carlo.z_over_blocks(blocks, np.full(60, 0.2))  # off by 4 standard errors
    m = monte_carlo.margin(exact, rival)
    assert m.beats and m.ours < 0.2 < m.rival


def test_broken_second_moment_loses_to_the_rival(blocks):
    """A second moment that forgets the variance (predicting mean^2 = 0) loses to the
    exact one, which is then the rival."""
    exact = monte_carlo.z_over_blocks(blocks, np.ones(60), power=2)
    broken = monte_carlo.z_over_blocks(blocks, np.zeros(60), power=2)
    m = monte_carlo.margin(broken, exact)
    assert m.margin < 0 and not m.beats


@pytest.mark.bad_input
def test_refuses_unpaired_blocks_and_empty_z_scores(blocks):
    exact = monte_carlo.z_over_blocks(blocks, np.zeros(60))
    fewer = monte_carlo.z_over_blocks(blocks[:3], np.zeros(60))
    with pytest.raises(ValueError, match="same blocks"):
        monte_carlo.margin(exact, fewer)
    with pytest.raises(ValueError, match="no varying entries"):
        monte_carlo.z_misfit(ZScores(float("nan"), float("nan"), 0.0, 0.0, 0))
