"""The two-data-set benchmark: its ensembles are the book's ensembles, and every reduction
(margins, claims by width, the validity map, the fall with width) is the one computed by
hand from the same runs."""

from __future__ import annotations

import numpy as np
import pytest

from companion import benchmark, experiments, graph_effect, metrics, models, rivals, twins
from companion import problem as problem_lib
from companion.trajectory import SaveAt

WIDTHS = (8, 16)
TRAINING = benchmark.Training(depth=1, seeds=3, lr_scale=0.5, steps=6, save_every=2)


@pytest.fixture(scope="module", name="sets")
def _sets():
    return benchmark.datasets(12, 4, seed=0, generated=100)


@pytest.fixture(scope="module", name="splits")
def _splits(sets):
    return benchmark.partitions(sets, 3, seed=0)


@pytest.fixture(scope="module", name="sweep")
def _sweep(sets, splits):
    return TRAINING.sweep(sets, splits, WIDTHS, "cycle")


def test_datasets_share_sizes_and_partitions_cover_every_row(sets, splits):
    table = benchmark.describe(sets)
    assert list(table.columns) == list(benchmark.NAMES)
    assert table.loc["train"].tolist() == [12, 12] and table.loc["test"].tolist() == [4, 4]
    for name, parts in splits.items():
        assert len(parts) == 3
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(sets[name].x_train)))


def test_runs_are_the_ensemble_built_by_hand(sets, splits, sweep):
    """One width of the sweep against experiments.ensemble called as the chapter did."""
    dataset, parts = sets["digits"], splits["digits"]
    model = models.mlp(WIDTHS[0], 1, dataset.num_classes)
    problems = [problem_lib.from_dataset(model, dataset, parts, seed=s) for s in range(3)]
    by_hand = experiments.ensemble(
        problems.__getitem__,
        "dgd",
        experiments.mixings(3, ["cycle"])["cycle"],
        lr=0.5 / problems[0].curvature,
        steps=6,
        seeds=range(3),
        save_at=SaveAt(every=2),
    )
    ours = sweep["digits", WIDTHS[0]]
    assert list(sweep) == [(n, w) for n in benchmark.NAMES for w in WIDTHS]
    assert ours.seeds == (0, 1, 2) and ours.observed[0].lr == by_hand.observed[0].lr
    for a, b in zip(
        ours.observed + ours.predicted, by_hand.observed + by_hand.predicted, strict=True
    ):
        np.testing.assert_array_equal(a.global_loss, b.global_loss)


def test_over_graphs_reuses_known_runs_and_trains_the_others(sets, splits, sweep):
    known = {"cycle": sweep["MNIST-1D", WIDTHS[0]]}
    mnist, parts = sets["MNIST-1D"], splits["MNIST-1D"]
    by_graph = TRAINING.over_graphs(mnist, parts, WIDTHS[0], ["cycle", "star"], known)
    assert by_graph["cycle"] is known["cycle"]
    assert by_graph["star"].problems[0].params is not None
    effect = benchmark.effects(by_graph)
    by_hand = graph_effect.effects(
        {g: r.predicted for g, r in by_graph.items()},
        {g: r.observed for g, r in by_graph.items()},
    )
    assert effect.pairs == (("cycle", "star"),)
    np.testing.assert_array_equal(effect.observed, by_hand.observed)
    # same initializations on both graphs: the closed forms differ only by the graph
    assert not np.allclose(effect.predicted, 0.0)


def test_margins_and_the_claim_by_width_are_the_pairs_by_hand(sweep):
    by_metric = benchmark.margins(sweep, ("final_loss_rel_err", "log_loss_gap"))
    runs = sweep["MNIST-1D", WIDTHS[-1]]
    ours = [a.log_loss_gap for a in runs.agreements()]
    rival = [a.log_loss_gap for a in runs.control_agreements()]
    assert by_metric["log_loss_gap"]["MNIST-1D", WIDTHS[-1]] == rivals.margin(ours, rival)
    table = benchmark.margin_table(by_metric)
    assert table.index.names == ["data", "width"] and table.shape == (4, 6)
    claim = benchmark.width_claim(by_metric["log_loss_gap"], "MNIST-1D", bound=np.inf)
    top = rivals.margin(ours, rival)
    assert list(claim["value"]) == list(WIDTHS) and claim["margin"] == top.margin
    assert claim["passed"] == top.beats
    assert not benchmark.width_claim(by_metric["log_loss_gap"], "MNIST-1D", bound=0.0)["passed"]
    fall = benchmark.fall_factors(by_metric["final_loss_rel_err"])
    small, wide = (by_metric["final_loss_rel_err"]["digits", w].ours for w in WIDTHS)
    assert fall["digits"] == small / wide
    verdict = benchmark.verdict_table(by_metric["final_loss_rel_err"], {n: {} for n in fall})
    assert list(verdict.index) == list(WIDTHS)


def test_validity_is_the_map_by_hand(sweep):
    valid = benchmark.validity(sweep, 2, judged="MNIST-1D")
    saved = sweep["MNIST-1D", WIDTHS[0]].observed[0].saved_steps
    np.testing.assert_array_equal(valid.horizons, twins.horizons(saved, 2))
    runs = sweep["digits", WIDTHS[1]]
    gaps = [
        metrics.log_loss_gap_until(p, o, valid.horizons)
        for p, o in zip(runs.predicted, runs.observed, strict=True)
    ]
    np.testing.assert_array_equal(valid.maps["digits"][1], np.median(gaps, 0))
    assert np.all(np.diff(benchmark.gaps(runs, valid.horizons), axis=1) >= 0)
    expected = float(np.mean(np.median(gaps, 0) <= benchmark.WITHIN))
    assert valid.fractions["digits"][WIDTHS[1]] == expected
    claim = valid.claim(least=0.0)
    assert claim["passed"] == valid.margin.beats
    assert claim["rival_value"] == valid.rival_fractions
    assert not valid.claim(least=1.5)["passed"]


@pytest.mark.bad_input
def test_bad_inputs_are_refused_with_the_fix(sets, splits, sweep):
    with pytest.raises(ValueError, match="seeds=0 must be at least 1"):
        benchmark.Training(depth=1, seeds=0, lr_scale=0.5, steps=6, save_every=2)
    with pytest.raises(ValueError, match="lr_scale=-1 must be positive"):
        benchmark.Training(depth=1, seeds=3, lr_scale=-1, steps=6, save_every=2)
    with pytest.raises(ValueError, match="widths is empty"):
        TRAINING.sweep(sets, splits, [], "cycle")
    with pytest.raises(ValueError, match=r"known runs on \['star'\]"):
        TRAINING.over_graphs(sets["digits"], splits["digits"], 8, ["cycle"], {"star": None})
    with pytest.raises(ValueError, match="not fields of companion.metrics.Agreement"):
        benchmark.margins(sweep, ["accuracy"])
    with pytest.raises(ValueError, match="judged='mnist'"):
        benchmark.validity(sweep, 2, judged="mnist")
    table = benchmark.margins(sweep, ["final_loss_rel_err"])["final_loss_rel_err"]
    with pytest.raises(ValueError, match="data set 'mnist' is not in the table"):
        benchmark.medians(table, "mnist")
