"""The width sweep of ensemble errors: beyond the noise floor, against a rival, and the
power-law slope; the peer check against neural-tangents."""

from __future__ import annotations

import numpy as np
import pytest

from companion import ensembles, infinite, models, peer
from companion import problem as problem_lib

WIDTHS = [16, 64, 256]


def table(error: float, floor: float) -> ensembles.EnsembleErrors:
    """Errors constant over 3 steps and 2 agents, every kind alike."""
    e, f = np.full((3, 2), error), np.full((3, 2), floor)
    return ensembles.EnsembleErrors(np.arange(3), e, f, e, f, e, f)


def settings(errors, floor=0.01, jitter=0.0):
    """Four settings, one table per width; setting i scales every error by 1 + i jitter."""
    return [[table(e * (1 + i * jitter), floor) for e in errors] for i in range(4)]


def test_sweep_prefers_the_prediction_whose_error_falls_below_the_rival():
    ours = settings([0.4, 0.2, 0.1], jitter=0.1)
    rival = settings([0.45, 0.4, 0.38], jitter=0.1)
    sweep = ensembles.sweep(ours, rival, WIDTHS, "variance")
    assert sweep.halves() and sweep.margin().beats
    assert sweep.slopes()[0] == pytest.approx(-0.5) and sweep.slope_margin().beats
    excess = sweep.by_width()
    each = [np.sqrt((0.1 * (1 + 0.1 * i)) ** 2 - 0.01**2) for i in range(4)]
    assert excess[256] == pytest.approx(np.median(each), rel=1e-12)


def test_sweep_prefers_the_rival_when_the_prediction_is_broken():
    broken = settings([0.45, 0.4, 0.38], jitter=0.1)
    sweep = ensembles.sweep(broken, settings([0.4, 0.2, 0.1], jitter=0.1), WIDTHS, "mean")
    assert not sweep.halves() and not sweep.margin().beats and sweep.margin().margin < 0
    assert not sweep.slope_margin().beats


def test_errors_at_the_noise_floor_cannot_beat_a_rival_at_the_noise_floor():
    at_floor = settings([0.01, 0.01, 0.01])
    sweep = ensembles.sweep(at_floor, at_floor, WIDTHS, "loss")
    assert sweep.by_width() == {16: 0.0, 64: 0.0, 256: 0.0}
    assert not sweep.margin().beats


def test_peer_check_agrees_with_neural_tangents_only_for_centralized_training():
    p = problem_lib.digits(models.mlp(8, 1, 10), num_agents=2, samples_per_agent=6, n_test=3)
    uniform, cycle = np.full((2, 2), 0.5), np.array([[0.8, 0.2], [0.2, 0.8]])
    lr = 0.5 / infinite.analytic_problem(p).curvature
    assert peer.max_rel_err(infinite.closed_form(p, "atc", uniform, lr=lr), [0, 3, 30]) < 1e-10
    assert peer.max_rel_err(infinite.closed_form(p, "atc", cycle, lr=lr), [0, 3, 30]) > 1e-3


@pytest.mark.bad_input
def test_sweep_slope_and_peer_refuse_bad_inputs():
    rows = settings([0.4, 0.2, 0.1])
    with pytest.raises(ValueError, match="name must be"):
        ensembles.sweep(rows, rows, WIDTHS, "bias")
    with pytest.raises(ValueError, match="increasing"):
        ensembles.sweep(rows, rows, [256, 64, 16], "mean")
    with pytest.raises(ValueError, match="at least 2 positive values"):
        ensembles.slope(WIDTHS, [0.1, 0.0, 0.1])
    p = problem_lib.digits(models.mlp(8, 1, 10), num_agents=1, samples_per_agent=4)
    with pytest.raises(ValueError, match="test side"):
        peer.max_rel_err(infinite.closed_form(p, "dgd", np.eye(1), lr=0.5), [0, 1])
