"""Per-seed rates: the rival metric prefers the true rate and rejects a broken one."""

from __future__ import annotations

import numpy as np
import pytest

from companion import rates

WIDTHS = np.array([64.0, 128.0, 256.0, 512.0, 1024.0])


def noisy(rate: float, seed: int, scale: float = 0.03) -> np.ndarray:
    """Five seeds of c * width ** rate with multiplicative noise of ``scale``."""
    rng = np.random.default_rng(seed)
    return 2.0 * WIDTHS**rate * np.exp(scale * rng.normal(size=(5, WIDTHS.size)))


def test_a_faster_rate_is_apart_from_a_slower_rival():
    c = rates.compare_slopes(WIDTHS, noisy(-1.0, 0), noisy(-0.5, 1))
    assert c.apart and c.margin.beats
    assert c.ours_interval[1] < -0.9 and c.rival_interval[0] > -0.6


def test_equal_rates_are_not_apart():
    """The same rate on both sides (a broken claim of "faster") cannot pass."""
    c = rates.compare_slopes(WIDTHS, noisy(-0.5, 0), noisy(-0.5, 1))
    assert not c.apart and not c.margin.beats


def test_a_bound_missed_by_noise_is_not_a_separation():
    """Ours at -0.62 and the rival at -0.58: medians straddle -0.6, intervals overlap."""
    c = rates.compare_slopes(WIDTHS, noisy(-0.62, 0, 0.1), noisy(-0.58, 1, 0.1))
    assert not c.apart


def test_rate_margin_prefers_the_true_rate_and_the_rival_when_broken():
    assert rates.rate_margin(WIDTHS, noisy(-0.5, 2), -0.5, -1.0).beats
    broken = rates.rate_margin(WIDTHS, noisy(-1.0, 2), -0.5, -1.0)  # our rate is wrong
    assert broken.margin < 0 and not broken.beats


def test_local_slopes_of_a_power_law():
    x = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(rates.local_slopes(x, 3 * x**1.5), [1.5, 1.5], rtol=1e-12)


@pytest.mark.bad_input
def test_slopes_refuse_non_positive_values_and_mismatched_shapes():
    with pytest.raises(ValueError, match="positive"):
        rates.per_seed_slopes(WIDTHS, -noisy(-0.5, 0))
    with pytest.raises(ValueError, match="shape"):
        rates.per_seed_slopes(WIDTHS, noisy(-0.5, 0)[:, :3])
    with pytest.raises(ValueError, match="finite"):
        rates.misfit(WIDTHS, noisy(-0.5, 0), float("nan"))
    with pytest.raises(ValueError, match=">= 2 finite"):
        rates.median_interval([1.0])
    with pytest.raises(ValueError, match="positive"):
        rates.local_slopes([1.0, 2.0], [1.0, 0.0])


def test_local_slope_table_labels_neighbouring_points():
    table = rates.local_slope_table([1.0, 2.0, 4.0], {"a": [1.0, 2.0, 4.0], "b": [1.0, 4.0, 16.0]})
    assert list(table.index) == ["1 to 2", "2 to 4"]
    np.testing.assert_allclose(table["a"], [1.0, 1.0])
    np.testing.assert_allclose(table["b"], [2.0, 2.0])


def test_growth_per_step_reads_the_rate_of_a_state_off_its_square():
    rho = 1.03
    loss = rho ** (2 * np.arange(101))
    assert rates.growth_per_step(loss, since=50, order=2) == pytest.approx(rho, rel=1e-12)
    assert rates.growth_per_step(loss, since=50) == pytest.approx(rho**2, rel=1e-12)


@pytest.mark.bad_input
@pytest.mark.parametrize("since, order", [(10, 1), (-1, 1), (0, 0)])
def test_growth_per_step_refuses_bad_arguments(since, order):
    with pytest.raises(ValueError, match="growth_per_step"):
        rates.growth_per_step(np.ones(11), since=since, order=order)
