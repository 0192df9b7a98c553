"""Tuning without training: the grid's scores against brute force, unstable and unscorable
rows, the confirmation's metrics, the CLI, and the refusals."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from companion import graphs, simulate, stability, tune
from companion.book import cli
from companion.trajectory import SaveAt

TINY = dict(target=0.3, budget=12, save_every=3)


@pytest.fixture(scope="module")
def family() -> tune.Family:
    return tune.digits_family(12, 6, depth=1, seed=0)


def _brute_force(family, config, target, budget, save_every):
    """The configuration scored without the tuner: the threshold by bisection on the dense
    spectral radius, and the linearized network trained step by step (the model the closed
    form is exact for)."""
    problem = family.problem(config.width, config.num_agents)
    mixing = config.mixing()
    threshold = stability._bisect_threshold(
        problem, stability.algorithms.get(config.algorithm), mixing, 1e-9
    )
    run = simulate.train(
        problem,
        config.algorithm,
        mixing,
        lr=config.lr_fraction * threshold,
        steps=budget,
        linearize=True,
        check=False,
        progress=False,
    )
    return threshold, tune.score(run, mixing, target=target, save_every=save_every)


def test_the_ranking_of_a_tiny_grid_equals_brute_force():
    # Its own smaller family: the brute force bisects the dense Q(n + n_test)C radius (about
    # 40 eigenvalue problems per configuration), cubic in the samples.
    family = tune.digits_family(6, 3, depth=1, seed=0)
    choices = tune.Choices(
        topologies=["path", "star", "complete"],
        rules=["metropolis", "lazy"],
        algorithms=["dgd", "atc"],
        lr_fractions=[0.3, 0.9],
        widths=[16],
        num_agents=[3],
    )
    table = tune.predict(family, choices, criterion="final_loss", progress=False, **TINY)
    assert len(table) == choices.size == 24 and (table["status"] == "stable").all()
    brute = {}
    for config in choices.configurations():
        threshold, scores = _brute_force(family, config, **TINY)
        brute[dataclasses.astuple(config)] = scores["final_loss"]
        row = tune.align(table, [config]).iloc[0]
        np.testing.assert_allclose(row["threshold"], threshold, rtol=1e-8)
        for name, value in scores.items():
            np.testing.assert_allclose(row[name], value, rtol=1e-6, err_msg=name)
    expected = sorted(brute, key=brute.__getitem__)
    columns = [f.name for f in dataclasses.fields(tune.Configuration)]
    assert [tuple(r) for r in table[columns].itertuples(index=False)] == expected


def test_unstable_configurations_are_reported_with_their_threshold(family):
    choices = tune.Choices(
        topologies=["star"], algorithms=["dgd"], lr_fractions=[1.2, 0.5], widths=[16],
        num_agents=[3],
    )  # fmt: skip
    table = tune.predict(family, choices, progress=False, **TINY)
    assert table["status"].tolist()[-1].startswith("unstable")
    unstable = table.iloc[-1]
    problem = family.problem(16, 3)
    mixing = graphs.mixing_matrix(graphs.topology("star", 3))
    exact = stability.max_stable_lr(problem, "dgd", mixing)
    np.testing.assert_allclose(unstable["threshold"], exact, rtol=1e-12)
    np.testing.assert_allclose(unstable["lr"], 1.2 * exact, rtol=1e-12)
    assert all(math.isnan(unstable[s]) for s in ("final_loss", "steps_to_target"))
    assert stability.spectral_radius(problem, "dgd", mixing, unstable["lr"]) > 1


def test_an_indefinite_mixing_beyond_the_dense_limit_is_reported_not_dropped(family, monkeypatch):
    monkeypatch.setattr(stability, "DENSE_LIMIT", 0)
    choices = tune.Choices(
        topologies=["cycle"], rules=["metropolis", "lazy"], algorithms=["atc"],
        lr_fractions=[0.5], widths=[16], num_agents=[4],
    )  # fmt: skip
    table = tune.predict(family, choices, progress=False, **TINY)
    assert table["status"].tolist() == [
        "stable",
        table["status"].iloc[1],
    ] and table["status"].iloc[1].startswith("no exact threshold")
    assert "'lazy'" in table["status"].iloc[1] and table["rule"].iloc[1] == "metropolis"


def test_each_width_s_kernel_is_computed_once(family):
    fresh = family.reseeded(3)
    choices = tune.Choices(
        topologies=["star", "complete"], algorithms=["dgd"], lr_fractions=[0.5],
        widths=[8, 16], num_agents=[2, 3],
    )  # fmt: skip
    table = tune.predict(fresh, choices, progress=False, **TINY)
    assert len(table) == 8 and sorted(fresh.kernel_seconds) == [(8, "empirical"), (16, "empirical")]
    assert fresh.problem(16, 2).kernel is fresh.problem(16, 3).kernel


def test_closed_form_steps_save_only_the_requested_steps(family):
    problem = family.problem(16, 3)
    form = tune.Configuration("star", "metropolis", "atc", 0.5, 16, 3)
    mixing = form.mixing()
    closed = stability.max_stable_lr(problem, "atc", mixing)
    from companion import dynamics

    full = dynamics.closed_form(problem, "atc", mixing, lr=0.5 * closed).steps(10)
    saved = dynamics.closed_form(problem, "atc", mixing, lr=0.5 * closed).steps(
        10, save_at=SaveAt(every=4)
    )
    assert saved.steps.tolist() == [0, 4, 8, 10]
    np.testing.assert_array_equal(saved.predictions, full.predictions[[0, 4, 8, 10]])
    np.testing.assert_array_equal(saved.average_loss, full.average_loss[[0, 4, 8, 10]])


def test_confirmation_metrics_on_known_rankings(synthetic_confirmation):
    observed = np.linspace(1.0, 2.0, 20)
    same = synthetic_confirmation([observed * 0.9] * 3, [observed] * 3)
    assert same.rank_correlation("final_loss").tolist() == [1.0] * 3
    assert same.best_in_top("final_loss").all() and (same.regret("final_loss") == 0).all()
    reversed_ = synthetic_confirmation([observed[::-1]] * 3, [observed] * 3)
    np.testing.assert_allclose(reversed_.rank_correlation("final_loss"), -1.0)
    assert not reversed_.best_in_top("final_loss").any()
    np.testing.assert_allclose(reversed_.regret("final_loss"), 1.0)  # picks 2.0 over 1.0
    # the step size and the spectral gap rank by the configuration's index: the observed
    # order; the fraction ranks it reversed
    for rival in ("largest_step", "spectral_gap"):
        assert same.rank_correlation("final_loss", rival).tolist() == [1.0] * 3
    np.testing.assert_allclose(same.rank_correlation("final_loss", "largest_fraction"), -1)
    random = same.rank_correlation("final_loss", "random")
    assert np.abs(random).max() < 0.9
    np.testing.assert_allclose(same.best_in_top("final_loss", "random"), 2 / 20)
    np.testing.assert_allclose(same.regret("final_loss", "random"), np.mean(observed - 1))
    low, high = tune.compare.interval(same, "final_loss", "random", draws=200)
    assert -1 <= low < high <= 1
    np.testing.assert_allclose(same.cost_ratio, 60.0)


def test_a_tie_up_to_rounding_counts_as_the_best(synthetic_confirmation):
    observed = np.array([1.0, 1.0 + 1e-13, 2.0, 3.0])
    picks_second = synthetic_confirmation([np.array([0.5, 0.4, 2.0, 3.0])] * 3, [observed] * 3)
    assert picks_second.best_in_top("final_loss", fraction=0.25).all()


def test_a_diverged_run_ranks_last(synthetic_confirmation):
    observed = np.array([1.0, np.nan, 2.0])
    confirmation = synthetic_confirmation([np.array([1.0, 3.0, 2.0])] * 3, [observed] * 3)
    np.testing.assert_allclose(confirmation.rank_correlation("final_loss"), 1.0)


def test_confirm_trains_each_configuration_for_every_seed(family):
    configs = [
        tune.Configuration(t, "lazy", "dgd", f, 16, 3)
        for t, f in [("path", 0.3), ("star", 0.6), ("complete", 0.9)]
    ]
    confirmation = tune.confirm(family, configs, seeds=[0, 1, 2], progress=False, **TINY)
    assert len(confirmation.observed) == 3
    for predicted, observed in zip(confirmation.predicted, confirmation.observed, strict=True):
        assert np.isfinite(observed["final_loss"]).all()
        # width 16 is far from the kernel regime, but the scores are of the same size
        ratio = observed["final_loss"].to_numpy() / predicted["final_loss"].to_numpy()
        assert (0.2 < ratio).all() and (ratio < 5).all()
    assert (confirmation.cost_ratio > 0).all()
    table = tune.compare.table(confirmation, "final_loss", draws=100)
    assert table.shape == (len(tune.RANKINGS), 5)
    # the rivals read the predicted table's own columns: largest step first, by hand
    by_hand = [
        _spearman_by_hand(-p["lr"].to_numpy(), o["final_loss"].to_numpy())
        for p, o in zip(confirmation.predicted, confirmation.observed, strict=True)
    ]
    np.testing.assert_allclose(confirmation.rank_correlation("final_loss", "largest_step"), by_hand)


def _spearman_by_hand(a, b):
    """Pearson correlation of the ranks (no ties here)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_a_random_subset_is_seeded_and_ordered(family):
    rows = [
        dict(topology="cycle", rule="lazy", algorithm="dgd", lr_fraction=f, width=8,
             num_agents=4, status="stable")
        for f in np.linspace(0.1, 0.9, 40)
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    first = tune.configurations(table, 30, seed=1)
    assert first == tune.configurations(table, 30, seed=1) != tune.configurations(table, 30)
    assert len(first) == 30 and [c.lr_fraction for c in first] == sorted(
        c.lr_fraction for c in first
    )
    assert len(tune.configurations(table, 50)) == 40


def test_the_cli_writes_the_table_best_first(tmp_path, capsys):
    output = tmp_path / "grid.csv"
    code = cli.main(
        ["tune", "--topologies", "star", "complete", "--algorithms", "dgd", "--fractions",
         "0.5", "1.1", "--widths", "16", "--agents", "3", "--samples", "12", "--test", "6",
         "--depth", "1", "--budget", "12", "--save-every", "3", "--target", "0.3",
         "--criterion", "final_loss", "-o", str(output)]
    )  # fmt: skip
    assert code == 0
    table = pd.read_csv(output)
    assert len(table) == 4 and table["status"].str.startswith("unstable").sum() == 2
    assert table["final_loss"].iloc[:2].is_monotonic_increasing
    assert "best first by final_loss" in capsys.readouterr().out


BAD_CHOICES = [
    (dict(topologies=["ring"]), r"unknown topology 'ring'; choose from cycle, star"),
    (dict(topologies=[]), r"the grid is empty: topologies has no values"),
    (dict(lr_fractions=[0.5, 0.0]), r"step-size fraction 0.0 must be a finite number > 0"),
    (dict(lr_fractions=[-1]), r"step-size fraction -1 must be a finite number > 0"),
    (dict(rules=["gossip"]), r"unknown mixing rule 'gossip'; choose from metropolis"),
    (dict(algorithms=["adam"]), r"adam"),
    (dict(widths=[0]), r"widths must be integers >= 1, got 0"),
    (dict(num_agents=[1]), r"num_agents must be integers >= 2, got 1"),
    (dict(topologies="cycle"), r"topologies must be a list of values"),
    (
        dict(topologies=["torus"], num_agents=[10]),
        r"torus. needs a square number of agents, got 10",
    ),
]


@pytest.mark.bad_input
@pytest.mark.parametrize(("change", "message"), BAD_CHOICES)
def test_bad_choices_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        tune.Choices(**change)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(criterion="speed"), r"unknown criterion 'speed'; choose from messages_to_target"),
        (dict(kernel="exact"), r"unknown kernel 'exact'; choose from empirical, infinite"),
        (dict(target=0.0), r"target must be a finite loss > 0"),
        (dict(budget=0), r"budget must be a positive number of steps"),
        (dict(save_every=0), r"save_every must be a positive integer"),
    ],
)
def test_bad_prediction_options_are_refused(family, options, message):
    choices = tune.Choices(topologies=["star"], algorithms=["dgd"], lr_fractions=[0.5],
                           widths=[16], num_agents=[3])  # fmt: skip
    with pytest.raises(ValueError, match=message):
        tune.predict(family, choices, progress=False, **(TINY | options))


@pytest.mark.bad_input
def test_a_grid_above_the_limit_needs_yes(family, monkeypatch):
    monkeypatch.setattr(tune.grid, "GRID_LIMIT", 2)
    choices = tune.Choices(topologies=["star"], algorithms=["dgd"], lr_fractions=[0.2, 0.4, 0.6],
                           widths=[16], num_agents=[3])  # fmt: skip
    with pytest.raises(ValueError, match=r"3 configurations, more than 2: pass yes=True"):
        tune.predict(family, choices, progress=False, **TINY)
    assert len(tune.predict(family, choices, yes=True, progress=False, **TINY)) == 3


@pytest.mark.bad_input
def test_the_cli_refuses_a_large_grid_without_yes_and_an_unknown_topology(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(tune.grid, "GRID_LIMIT", 2)
    common = ["tune", "--widths", "16", "--agents", "3", "-o", str(tmp_path / "t.csv")]
    assert cli.main(common) == 2
    assert "more than 2: pass yes=True (companion tune --yes)" in capsys.readouterr().err
    assert cli.main([*common, "--topologies", "ring"]) == 2
    assert "unknown topology 'ring'" in capsys.readouterr().err
    assert cli.main([*common[:-1], str(tmp_path / "t.txt")]) == 2
    assert "must end in .csv" in capsys.readouterr().err


@pytest.mark.bad_input
def test_confirm_refuses_too_few_seeds_a_small_subset_and_unstable_rows(family):
    config = tune.Configuration("star", "lazy", "dgd", 0.5, 16, 3)
    with pytest.raises(ValueError, match=r"at least 3 initialization seeds"):
        tune.confirm(family, [config] * 3, seeds=[0, 1], progress=False, **TINY)
    unstable = dataclasses.replace(config, lr_fraction=1.5)
    with pytest.raises(ValueError, match=r"no stable step size: star/lazy/dgd at 1.5"):
        tune.confirm(family, [config, unstable, config], seeds=[0, 1, 2], progress=False,
                     **TINY)  # fmt: skip
    rows = pd.DataFrame([dataclasses.asdict(config) | {"status": "stable"}] * 40)
    with pytest.raises(ValueError, match=r"at least 30 configurations, got sample=10"):
        tune.configurations(rows, 10)


def test_the_lazy_rule_is_positive_semidefinite_and_doubly_stochastic():
    for name in ("cycle", "torus", "star", "path"):
        lazy = graphs.mixing_matrix(graphs.topology(name, 9), "lazy")
        graphs.validate_mixing(lazy)
        assert np.linalg.eigvalsh(lazy)[0] >= -1e-12
