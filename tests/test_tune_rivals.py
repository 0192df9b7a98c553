"""The rankings without dynamics, and the closed form judged against the strongest of
them: for every rival, the comparison prefers the closed form where its ranking is the
observed one, and prefers the rival where the closed form is broken (its scores
shuffled); the CLI prints the rival's pick; unknown rivals are refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from companion import tune
from companion.book import cli

SEEDS = 5
FRACTIONS = (0.25, 0.5, 0.9)


def _columns(rng, n):
    """The rivals' columns of a predicted table: fractions in groups, thresholds, gaps
    and message counts drawn independently."""
    fraction = np.repeat(FRACTIONS, n // len(FRACTIONS))
    return pd.DataFrame({
        "lr_fraction": fraction,
        "lr": fraction * rng.uniform(0.5, 2.0, n),
        "spectral_gap": rng.uniform(0.05, 1.0, n),
        "messages_per_step": rng.integers(2, 60, n),
    })  # fmt: skip


def _led_by(rival, *, shuffled=False, n=24, seed=0):
    """A confirmation whose observed losses follow ``rival``'s order, perturbed so that
    the rival is good but not perfect, and whose rival misses the observed best; the
    closed form predicts the observed losses exactly, or (``shuffled``) in a random
    order."""
    rng = np.random.default_rng(seed)
    configs = tuple(
        tune.Configuration("cycle", "lazy", "dgd", float(f), 8, 4)
        for f in np.repeat(FRACTIONS, n // len(FRACTIONS))
    )
    predicted, observed = [], []
    for _ in range(SEEDS):
        table = _columns(rng, n)
        order = scipy.stats.rankdata(tune.rivals.ranking(rival, table))
        loss = 100.0 + order + rng.normal(0.0, 2.0, n)
        loss[np.argmin(order)] = np.sort(loss)[1] + 1.0  # the rival's pick is not the best
        guess = rng.permutation(loss) if shuffled else 0.9 * loss
        predicted.append(table.assign(final_loss=guess))
        observed.append(pd.DataFrame({"final_loss": loss}))
    return tune.Confirmation(
        configs, tuple(range(SEEDS)), tuple(predicted), tuple(observed),
        (1.0,) * SEEDS, (60.0,) * SEEDS, 100,
    )  # fmt: skip


@pytest.mark.parametrize("rival", ["largest_step", "largest_fraction", "spectral_gap",
                                   "cheapest_step"])  # fmt: skip
def test_the_closed_form_beats_each_rival_only_when_it_ranks_right(rival):
    right = tune.compare.versus(_led_by(rival), "final_loss", "rank correlation")
    assert right.rival == rival and right.beats
    assert right.margin.ours == pytest.approx(1.0) and right.margin.rival < 0.999
    regret = tune.compare.versus(_led_by(rival), "final_loss", "relative regret", [rival])
    assert regret.beats and regret.margin.ours == 0.0
    broken = tune.compare.versus(_led_by(rival, shuffled=True), "final_loss",
                                 "rank correlation")  # fmt: skip
    assert broken.rival == rival and not broken.beats and broken.margin.margin < 0


@pytest.mark.parametrize("rival", tune.rivals.WITHIN_FRACTION)
def test_within_a_fraction_the_closed_form_beats_each_rival_only_when_right(rival):
    right = tune.compare.versus(_led_by(rival), "final_loss",
                                "within-fraction rank correlation")  # fmt: skip
    assert right.beats and right.margin.ours == pytest.approx(1.0)
    broken = tune.compare.versus(_led_by(rival, shuffled=True), "final_loss",
                                 "within-fraction rank correlation", [rival])  # fmt: skip
    assert not broken.beats and broken.margin.margin < 0


def test_the_configuration_bootstrap_pairs_both_rankings():
    right = tune.compare.configuration_margin(_led_by("largest_step"), "final_loss",
                                              "largest_step", draws=200)  # fmt: skip
    assert right.beats and right.units == 24
    broken = tune.compare.configuration_margin(
        _led_by("largest_step", shuffled=True), "final_loss", "largest_step", draws=200
    )
    assert broken.interval[1] < 0


def test_a_rival_tie_is_a_uniform_pick_and_a_missed_target_costs_the_budget():
    tied = _led_by("largest_fraction")
    picks = tied._picks("largest_fraction", 0, "final_loss")
    assert len(picks) == 8  # every configuration at the largest fraction
    table = _columns(np.random.default_rng(1), 6)
    messages = np.array([40.0, np.inf, 80.0, 120.0, 160.0, 200.0])
    predicted = table.assign(messages_to_target=np.arange(6.0)[::-1])  # picks the last
    predicted.loc[1, "messages_to_target"] = -1.0  # the closed form picks the miss
    missed = tune.Confirmation(
        tuple(tune.Configuration("cycle", "lazy", "dgd", 0.5, 8, 4) for _ in range(6)),
        (0, 1, 2), (predicted,) * 3, (pd.DataFrame({"messages_to_target": messages}),) * 3,
        (1.0,) * 3, (1.0,) * 3, 10,
    )  # fmt: skip
    charged = max(10 * table["messages_per_step"][1], 200.0)  # never better than a hit
    np.testing.assert_allclose(missed.regret("messages_to_target"), (charged - 40) / 40)
    cheap = missed.predicted[0].assign(messages_per_step=1)  # the budget's 10 messages
    missed_cheaply = dataclasses.replace(missed, predicted=(cheap,) * 3)
    np.testing.assert_allclose(missed_cheaply.regret("messages_to_target"), (200 - 40) / 40)


def test_the_cli_prints_the_rival_s_pick_beside_the_closed_form_s(tmp_path, capsys):
    output = tmp_path / "grid.csv"
    code = cli.main(
        ["tune", "--topologies", "star", "complete", "--algorithms", "dgd", "--fractions",
         "0.5", "0.9", "--widths", "16", "--agents", "3", "--samples", "12", "--test", "6",
         "--depth", "1", "--budget", "12", "--save-every", "3", "--target", "0.3",
         "--criterion", "final_loss", "-o", str(output)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(output)
    largest = table.loc[table["lr"].idxmax()]
    line = next(s for s in printed.splitlines() if s.startswith("largest_step's pick"))
    for column in ("topology", "lr_fraction"):
        assert f"{column}={largest[column]}" in line
    assert any(s.startswith("closed form's pick") for s in printed.splitlines())


@pytest.mark.bad_input
def test_unknown_rivals_and_metrics_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown rival 'oracle'; choose from largest_step"):
        tune.rivals.ranking("oracle", _columns(np.random.default_rng(0), 6))
    confirmation = _led_by("largest_step")
    with pytest.raises(ValueError, match=r"unknown rival 'largest_fraction'; choose from"):
        tune.compare.versus(confirmation, "final_loss", "within-fraction rank correlation",
                            ["largest_fraction"])  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown metric 'speed'; choose from rank corr"):
        tune.compare.versus(confirmation, "final_loss", "speed")
    with pytest.raises(ValueError, match=r"unknown ranking 'oracle'; choose from closed form"):
        confirmation.order("oracle", 0, "final_loss")
    common = ["tune", "--widths", "16", "--agents", "3", "-o", str(tmp_path / "t.csv")]
    assert cli.main([*common, "--rival", "oracle"]) == 2
    assert "unknown rival 'oracle'; choose from largest_step" in capsys.readouterr().err


@pytest.mark.bad_input
def test_a_metric_no_seed_resolves_is_refused_not_paired():
    confirmation = _led_by("largest_step")
    flat = tuple(o.assign(final_loss=1.0) for o in confirmation.observed)
    constant = dataclasses.replace(confirmation, observed=flat)
    with pytest.raises(ValueError, match=r"undefined on some seed .*a larger budget"):
        tune.compare.versus(constant, "final_loss", "rank correlation")
