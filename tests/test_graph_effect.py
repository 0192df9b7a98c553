"""The graph's effect against the rival "the graph does not matter": the metric prefers the
closed form where it is exact (linearized training) and the rival where the closed form is
deliberately broken (the wrong graph's closed form, a kernel without its off-diagonal)."""

import numpy as np
import pytest

from companion import dynamics, experiments, graph_effect, models, problem, simulate

STEPS, SEEDS = 40, 5
NAMES = experiments.PAPER_TOPOLOGIES


@pytest.fixture(scope="module")
def runs():
    """For five initializations: each graph's closed form and its linearized training."""
    mixings = experiments.mixings(4)
    problems = [
        problem.digits(
            models.mlp(16, 1, 10), num_agents=4, samples_per_agent=4, seed=0, init_seed=seed
        )
        for seed in range(SEEDS)
    ]
    lrs = [0.5 / p.curvature for p in problems]
    observed = {
        t: [
            simulate.train(p, "dgd", mixings[t], lr=lr, steps=STEPS, linearize=True)
            for p, lr in zip(problems, lrs, strict=True)
        ]
        for t in NAMES
    }

    def predict(kernel=lambda k: k, graph=lambda t: t):
        """Every graph's closed forms, with the kernel or the graph optionally broken."""
        return {
            t: [
                dynamics.closed_form(
                    p.replace(kernel=kernel(p.kernel)), "dgd", mixings[graph(t)], lr=lr
                ).steps(STEPS)
                for p, lr in zip(problems, lrs, strict=True)
            ]
            for t in NAMES
        }

    return observed, predict, problems


@pytest.mark.parametrize("measure", ["final_loss", "steps"])
def test_exact_closed_form_predicts_the_effect_and_beats_the_rival(runs, measure):
    observed, predict, _ = runs
    effect = graph_effect.effects(predict(), observed, measure)
    assert effect.predicted.shape == (3, SEEDS)
    assert effect.rel_err() < 1e-8 and effect.rival_rel_err() == pytest.approx(1.0)
    # the effect is there to be predicted: the graphs differ by more than rounding
    assert np.median(np.abs(effect.observed)) > 1e-3
    margin = effect.margin()
    assert margin.beats and margin.margin > 0


def test_the_wrong_graph_loses_to_the_rival(runs):
    observed, predict, _ = runs
    swapped = {"cycle": "star", "star": "cycle", "complete": "complete"}
    effect = graph_effect.effects(predict(graph=swapped.__getitem__), observed)
    margin = effect.margin()
    assert effect.rel_err() > 1 and not margin.beats and margin.margin < 0


def test_a_kernel_without_its_off_diagonal_loses_to_the_rival(runs):
    observed, predict, _ = runs
    effect = graph_effect.effects(predict(kernel=lambda k: np.diag(np.diag(k))), observed)
    margin = effect.margin()
    assert effect.rel_err() > 1 and not margin.beats and margin.margin < 0


def test_steps_to_interpolates_in_log_loss(runs):
    observed, _, _ = runs
    run = observed["cycle"][0]
    loss = run.mean_global_loss
    # a target halfway (in log) between two saved steps lies halfway between them
    target = float(np.sqrt(loss[3] * loss[4]))
    assert graph_effect.steps_to(run, target) == pytest.approx(3.5, abs=0.2)
    assert graph_effect.steps_to(run, loss[-1] / 10) == np.inf
    assert graph_effect.steps_to(run, loss[0]) == 0.0


@pytest.mark.bad_input
def test_effects_refuse_unpaired_runs_and_unknown_measures(runs):
    observed, predict, _ = runs
    with pytest.raises(ValueError, match="use one of final_loss, steps"):
        graph_effect.effects(predict(), observed, "speed")
    with pytest.raises(ValueError, match="same seeds"):
        graph_effect.effects(predict(), {t: r[:2] for t, r in observed.items()})
    with pytest.raises(ValueError, match="at least two graphs"):
        graph_effect.effects(predict(), {"cycle": observed["cycle"]})


@pytest.mark.bad_input
def test_target_loss_refuses_runs_that_do_not_fall(runs):
    observed, _, _ = runs
    run = observed["cycle"][0]
    rising = run.__class__(**{**run.__dict__, "global_loss": run.global_loss[::-1]})
    with pytest.raises(ValueError, match="not below its start"):
        graph_effect.target_loss([run, rising])


def _seed_runs(runs, graph, seeds=range(SEEDS)):
    observed, predict, problems = runs
    forms = predict()[graph]
    pick = list(seeds)
    return experiments.SeedRuns(
        tuple(pick),
        tuple(problems[i] for i in pick),
        tuple(forms[i] for i in pick),
        tuple(observed[graph][i] for i in pick),
        tuple(forms[i] for i in pick),
        1.0,
    )


def test_rival_agreements_score_the_complete_graphs_closed_form_on_every_run(runs):
    by_graph = {t: _seed_runs(runs, t) for t in NAMES}
    rival = experiments.rival_agreements(by_graph, "complete")
    complete = experiments.mixings(4)["complete"]
    for t in NAMES:
        direct = by_graph[t].agreements_against(complete)
        got = [a.final_loss_rel_err for a in rival[t]]
        assert got == pytest.approx([a.final_loss_rel_err for a in direct], rel=1e-9)
    # the rival is the closed form itself on the complete graph, and wrong elsewhere
    assert max(a.final_loss_rel_err for a in rival["complete"]) < 1e-8
    assert min(a.final_loss_rel_err for a in rival["star"]) > 1e-3


@pytest.mark.bad_input
def test_rival_agreements_refuse_other_seeds_or_an_absent_rival(runs):
    by_graph = {t: _seed_runs(runs, t) for t in NAMES}
    with pytest.raises(ValueError, match="not among the runs' graphs"):
        experiments.rival_agreements(by_graph, "torus")
    by_graph["cycle"] = _seed_runs(runs, "cycle", seeds=range(1, SEEDS))
    with pytest.raises(ValueError, match="other seeds or step sizes"):
        experiments.rival_agreements(by_graph, "complete")


def test_agreement_margin_pairs_the_graphs_other_than_the_rivals(runs):
    by_graph = {t: _seed_runs(runs, t) for t in NAMES}
    margin = graph_effect.agreement_margin(by_graph, "final_loss_rel_err")
    assert margin.units == 2 * SEEDS and margin.ours < 1e-8 and margin.beats
    # the cycle's runs predicted by the star's closed form: the rival, the complete
    # graph's, is closer to them, and the margin no longer excludes zero
    star = by_graph["star"].predicted
    cycle = by_graph["cycle"]
    by_graph["cycle"] = experiments.SeedRuns(
        cycle.seeds, cycle.problems, star, cycle.observed, cycle.control, 1.0
    )
    assert not graph_effect.agreement_margin(by_graph, "final_loss_rel_err").beats


@pytest.fixture(scope="module")
def graph_grid(runs):
    """Two levels of the same exact runs (linearized training against its closed form)."""
    by_graph = {t: _seed_runs(runs, t) for t in NAMES}
    return graph_effect.GraphGrid({"a": by_graph, "b": by_graph}, axis="setting")


def test_graph_grid_medians_pool_graphs_and_seeds_against_the_rival(graph_grid):
    table = graph_grid.medians({"final_loss_rel_err": "final"})
    assert list(table.index) == ["a", "b"] and table.index.name == "setting"
    assert list(table.columns) == [("final", p) for p in graph_effect.PREDICTIONS]
    assert (table["final", "closed form"] < 1e-8).all()
    # the rival (the complete graph's closed form) is wrong on the cycle and the star
    assert (table["final", "rival"] > 1e-3).all()
    pooled = graph_grid.pooled("final_loss_rel_err", "rival")
    assert pooled.shape == (len(NAMES) * SEEDS, 2)
    assert table["final", "rival"].tolist() == np.median(pooled, axis=0).tolist()


def test_graph_grid_cell_tables_match_each_cells_seed_runs(graph_grid):
    # these runs have no test data: tabulate the fields that do not need it
    cells = graph_grid.cell_medians(("final_loss_rel_err", "log_loss_gap"))
    assert cells.index.names == ["setting", "graph"] and len(cells) == 2 * len(NAMES)
    assert list(cells.columns.levels[0]) == ["final_loss_rel_err", "log_loss_gap"]
    for (level, graph), row in cells.iterrows():
        runs = graph_grid[level, graph]
        assert row["log_loss_gap", "closed form"] == runs.median("log_loss_gap")
        assert row["log_loss_gap", "control"] == runs.median("log_loss_gap", control=True)
    orders = graph_grid.orderings()
    assert list(orders.columns) == ["full order", "worst agent"]
    assert (orders["worst agent"] == 1.0).all()


def test_graph_grid_identifies_the_graph_and_predicts_its_effect(graph_grid):
    assert graph_grid.identified().tolist() == [1.0, 1.0]
    confusion = graph_grid.confusion("a")
    assert list(confusion.index) == list(confusion.columns) == list(NAMES)
    assert (np.diag(confusion.to_numpy()) == confusion.min(axis=1).to_numpy()).all()
    errors = graph_grid.effect_errors()
    assert (errors.xs("closed form", axis=1, level=1) < 1e-8).all().all()
    assert errors["final_loss", "rival"].tolist() == pytest.approx([1.0, 1.0])
    table = graph_grid.effect_table()
    assert table["a", "predicted"].to_numpy() == pytest.approx(table["a", "trained"], abs=1e-8)
    gaps = graph_grid.gap_until([0, STEPS])
    assert gaps.shape == (2, 2) and gaps.to_numpy().max() < 1e-8
    assert graph_grid.margin("final_loss_rel_err", "a").beats


def test_graph_grid_sees_the_wrong_graph(runs):
    by_graph = {t: _seed_runs(runs, t) for t in NAMES}
    star, cycle = by_graph["star"].predicted, by_graph["cycle"]
    by_graph["cycle"] = experiments.SeedRuns(
        cycle.seeds, cycle.problems, star, cycle.observed, cycle.control, 1.0
    )
    wrong = graph_effect.GraphGrid({"a": by_graph})
    assert wrong.identified().tolist() == [0.0]
    # pooled graph by graph: the cycle's seeds come first, each predicted by the star
    assert min(wrong.values("a", "final_loss_rel_err")[:SEEDS]) > 1e-3
    assert max(wrong.values("a", "final_loss_rel_err")[SEEDS:]) < 1e-8
    assert not wrong.margin("final_loss_rel_err", "a").beats


@pytest.mark.bad_input
def test_graph_grid_refuses_uneven_graphs_unknown_levels_predictions_and_rivals(runs):
    by_graph = {t: _seed_runs(runs, t) for t in NAMES}
    with pytest.raises(ValueError, match="same graphs in the same order"):
        graph_effect.GraphGrid({"a": by_graph, "b": {"cycle": by_graph["cycle"]}})
    with pytest.raises(ValueError, match="same graphs in the same order"):
        graph_effect.GraphGrid({})
    grid = graph_effect.GraphGrid({"a": by_graph}, rival="torus")
    with pytest.raises(ValueError, match="no runs at width 'z'"):
        grid["z", "cycle"]
    with pytest.raises(ValueError, match="unknown prediction 'oracle'"):
        grid.values("a", "final_loss_rel_err", "oracle")
    with pytest.raises(ValueError, match="not among the runs' graphs"):
        grid.values("a", "final_loss_rel_err", "rival")
