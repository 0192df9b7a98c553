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
