"""The heterogeneity rivals: the closed form wins where it is exact, loses where broken."""

from __future__ import annotations

import numpy as np
import pytest

from companion import data, dynamics, graphs, heterogeneity, models, simulate
from companion import problem as problem_lib
from companion.experiments import SeedRuns

AGENTS, PER_AGENT, STEPS, SEEDS = 4, 6, 30, 3


@pytest.fixture(scope="module")
def setting():
    """Skewed and i.i.d. partitions of the same digits, three initializations each."""
    digits = data.load_digits_dataset(AGENTS * PER_AGENT, 10, seed=0, center_targets=True)
    schemes = {"skewed": dict(scheme="dirichlet", alpha=0.1), "iid": dict(scheme="iid")}
    net = models.mlp(32, 1, 10)
    problems = {
        name: [
            problem_lib.from_dataset(
                net,
                digits,
                data.partition_indices(digits.labels_train, AGENTS, seed=0, num_classes=10, **kw),
                seed=s,
            )
            for s in range(SEEDS)
        ]
        for name, kw in schemes.items()
    }
    return problems, graphs.mixing_matrix(graphs.topology("cycle", AGENTS))


def seed_runs(problems, mixing, predict=lambda p: p) -> SeedRuns:
    """Linearized training (where the closed form is exact), the closed form of
    ``predict(problem)`` and the 1.2x step-size rival, for each seed."""
    predicted, observed, control = [], [], []
    for p in problems:
        lr = 0.5 / p.curvature
        predicted.append(dynamics.closed_form(predict(p), "dgd", mixing, lr=lr).steps(STEPS))
        control.append(dynamics.closed_form(p, "dgd", mixing, lr=1.2 * lr).steps(STEPS))
        observed.append(
            simulate.train(p, "dgd", mixing, lr=lr, steps=STEPS, linearize=True, progress=False)
        )
    return SeedRuns(
        tuple(range(len(problems))),
        tuple(problems),
        tuple(predicted),
        tuple(observed),
        tuple(control),
        1.2,
    )


def test_exact_closed_form_beats_both_rivals(setting):
    problems, cycle = setting
    judged = heterogeneity.judge(
        {n: seed_runs(p, cycle) for n, p in problems.items()}, "iid", cycle
    )
    assert set(judged.rivals["iid"]) == {"skewed"}  # the i.i.d. split has no i.i.d. rival
    assert max(judged.medians().values()) < 1e-8
    for rival in ("step", "iid"):
        assert judged.margin(rival).beats, rival
    assert judged.fields()["margin_interval"][0] > 0


def test_broken_closed_form_loses_to_the_rivals(setting):
    """A wrong kernel (a twentieth of the true one: the network barely moves) is a worse
    prediction than either rival."""
    problems, cycle = setting
    broken = lambda p: p.replace(kernel=0.05 * p.kernel)  # noqa: E731
    runs = {n: seed_runs(p, cycle, broken) for n, p in problems.items()}
    judged = heterogeneity.judge(runs, "iid", cycle)
    for rival in ("step", "iid"):
        assert judged.margin(rival).margin < 0, rival
        assert not judged.margin(rival).beats, rival
    assert judged.fields()["margin_interval"][0] <= 0


def test_iid_rival_is_scored_on_the_agents_own_rows(setting):
    """The i.i.d. rival's local losses are those of the skewed agents' rows: rescoring the
    skewed closed form on its own partition changes nothing."""
    problems, cycle = setting
    p = problems["skewed"][0]
    t = dynamics.closed_form(p, "dgd", cycle, lr=0.5 / p.curvature).steps(5)
    np.testing.assert_allclose(heterogeneity.rescored(t, p).local_loss, t.local_loss, rtol=1e-14)
    other = heterogeneity.rescored(t, problems["iid"][0])
    assert not np.allclose(other.local_loss, t.local_loss)


@pytest.mark.bad_input
def test_judge_names_the_missing_iid_partition(setting):
    problems, cycle = setting
    runs = {"skewed": seed_runs(problems["skewed"], cycle)}
    with pytest.raises(ValueError, match="i.i.d. split"):
        heterogeneity.judge(runs, "iid", cycle)
    with pytest.raises(ValueError, match="unknown rival"):
        heterogeneity.judge(runs | {"iid": seed_runs(problems["iid"], cycle)}, "iid", cycle).margin(
            "graph"
        )


def test_schemes_and_partitions_split_every_row_once():
    labels = np.arange(40) % 10
    split = heterogeneity.partitions(labels, 4, heterogeneity.schemes([0.1, 10.0]), seed=0)
    assert list(split) == ["alpha = 0.1", "alpha = 10", "iid"]
    for parts in split.values():
        assert sorted(np.concatenate(parts).tolist()) == list(range(40))
    np.testing.assert_array_equal(
        split["iid"][0], data.partition_indices(labels, 4, seed=0, num_classes=10)[0]
    )


def test_consensus_table_and_interpolation_gap(setting):
    problems, cycle = setting
    first = {n: p[0] for n, p in problems.items()}
    lr = 0.5 / max(p.curvature for p in first.values())
    transients = {
        n: dynamics.closed_form(p, "dgd", cycle, lr=lr).steps(20) for n, p in first.items()
    }
    table = heterogeneity.consensus_table(first, transients)
    peaks = table["consensus distance, peak"].tolist()
    assert peaks == sorted(peaks, reverse=True)
    assert table.loc["skewed", "L_max"] == first["skewed"].curvature
    assert heterogeneity.interpolation_gap(first, cycle, lr=lr) < 1e-8  # positive definite NTK


def test_biased_fits_move_with_the_partition_outside_interpolation():
    many = data.principal_components(
        data.load_digits_dataset(AGENTS * 10, seed=0, center_targets=True), 3
    )
    split = heterogeneity.partitions(
        many.labels_train, AGENTS, heterogeneity.schemes([0.1]), seed=0
    )
    cycle = graphs.mixing_matrix(graphs.topology("cycle", AGENTS))
    fits = heterogeneity.biased_fits(models.affine(10), many, split, cycle)
    assert set(fits.shift) == {"alpha = 0.1"} and fits.shift["alpha = 0.1"] > 1e-6
    assert min(fits.bias.values()) > 1e-6  # 40 samples, 4 parameters per output: biased
    assert sum(fits.sizes["iid"]) == 40


def test_network_runs_tables_and_spreads():
    digits = data.load_digits_dataset(AGENTS * 10, 5, seed=0, center_targets=True)
    split = heterogeneity.partitions(
        digits.labels_train, AGENTS, heterogeneity.schemes([0.1]), seed=0
    )
    cycle = graphs.mixing_matrix(graphs.topology("cycle", AGENTS))
    runs = heterogeneity.network_runs(
        digits, split, [8], cycle, lr_scale=0.5, steps=3, seeds=2, seed=0
    )
    assert list(runs) == [("alpha = 0.1", 8), ("iid", 8)]
    judged = {8: heterogeneity.judge({n: runs[n, 8] for n in split}, "iid", cycle)}
    medians, margins = heterogeneity.judged_tables(judged)
    assert list(medians.index.names) == ["partition", "width"] and len(medians) == 2
    assert medians.loc[("iid", 8), "closed form"] == judged[8].medians()["iid"]
    assert np.isnan(medians.loc[("iid", 8), "iid"])  # no i.i.d. rival for the i.i.d. split
    assert set(margins.index) == {(8, "step"), (8, "iid")}
    spreads = heterogeneity.error_spreads(runs)
    median, low, high = spreads["iid"][8]
    assert low <= median <= high


@pytest.mark.bad_input
def test_the_sweep_helpers_refuse_empty_inputs():
    with pytest.raises(ValueError, match="alphas is empty"):
        heterogeneity.schemes([])
    with pytest.raises(ValueError, match="scheme_set is empty"):
        heterogeneity.partitions(np.arange(4), 2, {}, seed=0)
    with pytest.raises(ValueError, match="judge at least one width"):
        heterogeneity.judged_tables({})
    with pytest.raises(ValueError, match="problems is empty"):
        heterogeneity.interpolation_gap({}, np.eye(2), lr=0.1)
    with pytest.raises(ValueError, match="i.i.d. split"):
        heterogeneity.biased_fits(models.affine(10), None, {"skewed": []}, np.eye(2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds >= 1"):
        heterogeneity.network_runs(None, {}, [], np.eye(2), lr_scale=0.5, steps=1, seeds=1)  # type: ignore[arg-type]
