"""The width sweep of ensemble errors: beyond the noise floor, against a rival, and the
power-law slope; the peer check against neural-tangents."""

from __future__ import annotations

import numpy as np
import pytest

from companion import ensembles, infinite, models, peer, simulate
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


def sweep_setting():
    """Two widths of three networks each, on two settings, trained for 6 steps."""
    split = dict(num_agents=2, samples_per_agent=4, n_test=3, seed=1)
    problems = {
        w: [problem_lib.digits(models.mlp(w, 1, 10), init_seed=s, **split) for s in range(3)]
        for w in (8, 32)
    }
    mixings = {"pair": np.full((2, 2), 0.5), "lazy": np.array([[0.75, 0.25], [0.25, 0.75]])}
    settings = [("pair", "atc"), ("lazy", "dgd")]
    lr = 0.3 / infinite.analytic_problem(problems[32][0]).curvature
    save = simulate.SaveAt(every=2)
    runs = ensembles.train(problems, mixings, settings, lr=lr, steps=6, save_at=save)
    return problems, mixings, settings, lr, runs


def test_sweep_driver_is_the_reduction_done_by_hand():
    problems, mixings, settings, lr, runs = sweep_setting()
    alone = simulate.train_ensemble(
        problems[8][0], [p.params for p in problems[8]], "dgd", mixings["lazy"], lr=lr,
        steps=6, save_at=simulate.SaveAt(every=2), progress=False,
    )  # fmt: skip
    assert np.array_equal(runs[8, "lazy", "dgd"][2].predictions, alone[2].predictions)
    base = problems[32][0]
    ours, rival = (
        ensembles.predict(base, mixings, settings, lr=f * lr, steps=6) for f in (1.0, 1.2)
    )
    form = infinite.closed_form(base, "dgd", mixings["lazy"], lr=lr)
    assert np.array_equal(ours.moments["lazy", "dgd"].variance, form.steps(6).variance)
    sweeps = ensembles.sweeps(ours, rival, runs, [8, 32])
    by_hand = [
        [
            ensembles.errors(p.moments[c], runs[w, *c], p.forms[c].paired(runs[w, *c]))
            for w in (8, 32)
        ]
        for p in (ours, rival)
        for c in [settings[0]]
    ]
    first = ensembles.sweep(by_hand[:1], by_hand[1:], [8, 32], "variance")
    assert np.array_equal(sweeps["variance"].error[0], first.error[0])
    names = ensembles.frame(sweeps).columns.get_level_values(0).unique().tolist()
    assert names == list(ensembles.NAMES.values())
    bands = ensembles.bands(ours, runs, 32, 1, 4)
    sample = np.stack([r.test_predictions[:, :, 1, 4] for r in runs[32, "pair", "atc"]])
    assert np.array_equal(bands.sample_mean["pair", "atc"], sample.mean(0))
    assert bands.sd["pair", "atc"].shape == (7, 2) and np.all(bands.sd["pair", "atc"] > 0)


def test_sizes_shrink_ensembles_beyond_the_budget_width_down_to_the_least():
    assert ensembles.sizes([16, 64, 256, 4096], 32, 64, 4) == {16: 32, 64: 32, 256: 8, 4096: 4}


@pytest.mark.bad_input
def test_sweep_driver_refuses_bad_inputs():
    with pytest.raises(ValueError, match="seeds >= 2"):
        ensembles.sizes([16], 1, 64, 4)
    p = problem_lib.digits(models.mlp(8, 1, 10), num_agents=2, samples_per_agent=4, n_test=2)
    with pytest.raises(ValueError, match="no mixing matrix for the graphs"):
        ensembles.predict(p, {"pair": np.full((2, 2), 0.5)}, [("ring", "atc")], lr=0.1, steps=2)
