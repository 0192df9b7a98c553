"""What the tuning chapter reduces a confirmation to, tested where it could go wrong: the
reduced thresholds against the dense radius, the rivals' verdicts as claims and tables, the
settings where the ranking is worst, the timing of training against the closed form, and
the messages to a target, predicted against observed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from companion import stability, tune
from companion.tune.grid import messages_per_step

TINY = dict(target=0.3, budget=12, save_every=3)
SEEDS = 3


@pytest.fixture(scope="module")
def family() -> tune.Family:
    return tune.digits_family(12, 6, depth=1, seed=0)


@pytest.fixture(scope="module")
def confirmed(family):
    configs = [
        tune.Configuration(t, "lazy", "dgd", f, 16, 3)
        for t, f in [("path", 0.3), ("star", 0.6), ("complete", 0.9)]
    ]
    table = tune.predict(family, configs, progress=False, **TINY)
    return table, tune.confirm(family, configs, seeds=range(SEEDS), progress=False, **TINY)


def test_the_reduced_threshold_is_where_the_dense_radius_reaches_one(family):
    small = family.problem(16, 4)
    rules = ["metropolis", "lazy"]
    check = tune.thresholds.crossing_check(small, ["cycle"], rules, ["dgd", "atc"])
    # the 4-cycle's Metropolis weights are indefinite (eigenvalue -1/3): ATC is not covered
    assert ("cycle", "metropolis", "atc") not in check.errors
    assert set(check.errors) == {
        ("cycle", "metropolis", "dgd"),
        ("cycle", "lazy", "dgd"),
        ("cycle", "lazy", "atc"),
    }
    assert check.worst < 1e-10 < check.smallest_control
    assert check.worst == max(check.errors.values())


@pytest.mark.bad_input
def test_a_check_that_covers_nothing_is_refused(family):
    with pytest.raises(ValueError, match="positive semidefinite rule"):
        tune.thresholds.crossing_check(family.problem(16, 4), ["cycle"], ["metropolis"], ["atc"])


def test_the_indefinite_pair_crosses_one_off_the_real_axis():
    pair, swap = tune.thresholds.indefinite_pair()
    assert stability.minus_one_crossing(pair, "atc", swap) == np.inf
    exact = stability.max_stable_lr(pair, "atc", swap, tol=1e-10)
    above = tune.thresholds.largest_eigenvalues(pair, "atc", swap, 1.01 * exact)
    below = tune.thresholds.largest_eigenvalues(pair, "atc", swap, 0.99 * exact)
    assert np.all(np.abs(above) > 1) and np.all(np.abs(below) < 1)
    assert np.all(np.abs(above.imag) > 0.5)  # a complex pair, far from -1
    np.testing.assert_allclose(above[0], np.conj(above[1]))


@pytest.mark.bad_input
def test_no_eigenvalue_is_refused():
    pair, swap = tune.thresholds.indefinite_pair()
    with pytest.raises(ValueError, match="count=0"):
        tune.thresholds.largest_eigenvalues(pair, "atc", swap, 0.1, count=0)


def test_a_verdict_becomes_the_fields_of_an_empirical_claim(synthetic_confirmation):
    observed = np.linspace(1.0, 2.0, 12)
    confirmation = synthetic_confirmation(
        [observed[::-1]] * 5, [observed] * 5
    )  # the closed form is wrong
    verdicts = tune.compare.verdicts(confirmation, {"rank": ("final_loss", "rank correlation")})
    verdict = verdicts["rank"]
    fields = verdict.claim_fields(at_least=0.8)
    assert fields["kind"] == "empirical" and fields["value"] == pytest.approx(-1.0)
    assert fields["passed"] is False and "bound" not in fields
    assert fields["rival"].startswith(f"{verdict.rival} first")
    assert fields["margin"] == verdict.margin.margin < 0
    bounded = verdict.claim_fields(bound=0.1, value=0.05)
    assert bounded["bound"] == 0.1 and bounded["value"] == 0.05 and "passed" not in bounded
    table = tune.compare.verdict_table(verdicts)
    assert table.loc["rank", "strongest rival"] == verdict.rival
    assert not table.loc["rank", "beats"]


@pytest.mark.bad_input
@pytest.mark.parametrize("judge", [{}, {"at_least": 0.8, "bound": 0.1}])
def test_a_claim_needs_exactly_one_judge(judge, synthetic_confirmation):
    observed = np.linspace(1.0, 2.0, 12)
    same = synthetic_confirmation([observed] * 5, [observed] * 5)
    verdict = tune.compare.versus(same, "final_loss", "rank correlation")
    with pytest.raises(ValueError, match="exactly one of at_least and bound"):
        verdict.claim_fields(**judge)


def test_the_default_questions_cover_every_metric():
    metrics = {metric for _, metric in tune.compare.QUESTIONS.values()}
    assert metrics == set(tune.compare.METRICS)


def test_rank_correlations_are_the_table_s_first_column(confirmed):
    _, confirmation = confirmed
    both = tune.compare.rank_correlations(confirmation, ["final_loss", "test_loss"])
    assert list(both.index) == list(tune.RANKINGS)
    full = tune.compare.table(confirmation, "final_loss", draws=20)
    pd.testing.assert_series_equal(both["final_loss"], full["rank correlation"], check_names=False)


def test_the_worst_setting_is_where_the_ranking_is_lowest(family, confirmed):
    _, confirmation = confirmed
    configs = confirmation.configurations
    settings = tune.compare.confirm_at(
        family, configs, [(8, 12), (8, 24)], seeds=range(SEEDS), target=0.3, save_every=3
    )
    assert set(settings) == {(8, 12), (8, 24)}
    assert {c.width for c in settings[8, 24].configurations} == {8}
    assert settings[8, 24].budget == 24
    settings[16, 12] = confirmation
    table = tune.compare.by_setting(settings, "final_loss")
    assert list(table.index) == [(8, 12), (8, 24), (16, 12)]
    assert list(table.columns) == ["rank correlation", "largest step first", "loss error"]
    worst = tune.compare.worst_setting(table)
    assert worst["rank_correlation"] == table["rank correlation"].min()
    row = table.loc[(worst["width"], worst["steps"])]
    assert worst["loss_error"] == row["loss error"]
    assert table.loc[(16, 12), "loss error"] == np.median(confirmation.relative_error("final_loss"))


@pytest.mark.bad_input
def test_an_empty_settings_table_has_no_worst():
    empty = pd.DataFrame({"rank correlation": [], "loss error": []})
    with pytest.raises(ValueError, match="at least one defined rank correlation"):
        tune.compare.worst_setting(empty)


def test_training_is_timed_against_the_closed_form_and_the_simulation(family, confirmed):
    table, confirmation = confirmed
    costs = tune.timing.measure(family, table, confirmation, timed=2, save_every=3)
    assert costs.trained.shape == costs.simulated.shape == (2,)
    assert (costs.trained > 0).all() and (costs.simulated > 0).all()
    assert costs.cost_ratio == np.median(confirmation.cost_ratio)
    assert costs.per_config == np.median(confirmation.predict_seconds) / 3
    speedup = costs.speedup
    np.testing.assert_allclose(speedup.ours, np.median(costs.trained / costs.per_config))


@pytest.mark.bad_input
@pytest.mark.parametrize("timed", [0, 4])
def test_timing_outside_the_confirmed_configurations_is_refused(family, confirmed, timed):
    table, confirmation = confirmed
    with pytest.raises(ValueError, match=f"timed={timed}"):
        tune.timing.measure(family, table, confirmation, timed=timed, save_every=3)


def test_the_messages_table_takes_medians_and_the_maximum_over_seeds(synthetic_confirmation):
    observed = [np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, np.inf]), np.array([2.0] * 3)]
    confirmation = synthetic_confirmation([np.array([1.0, 2.0, 3.0])] * 3, observed, messages=4)
    table = tune.messages.table(confirmation)
    assert list(table.index) == [tune.messages.label(c) for c in confirmation.configurations]
    np.testing.assert_array_equal(table["predicted, median"], [4.0, 8.0, 12.0])
    np.testing.assert_array_equal(table["observed, median"], [8.0, 8.0, 12.0])
    np.testing.assert_array_equal(table["observed, max"], [12.0, 8.0, np.inf])


def test_the_loss_against_messages_starts_together_and_counts_messages(family, confirmed):
    table, confirmation = confirmed
    configs = list(confirmation.configurations[:2])
    predicted, observed = tune.messages.curves(family, table, configs, budget=12, save_every=3)
    assert list(predicted) == [tune.messages.label(c) for c in configs]
    for config, label in zip(configs, predicted, strict=True):
        per_step = messages_per_step(config.mixing())
        (px, py), (ox, oy) = predicted[label], observed[label]
        np.testing.assert_array_equal(px, per_step * np.arange(13))
        np.testing.assert_array_equal(ox, per_step * np.arange(0, 13, 3))
        np.testing.assert_allclose(py[0], oy[0], rtol=1e-10)  # the same theta_0
        assert py[-1] < py[0] and oy[-1] < oy[0]
