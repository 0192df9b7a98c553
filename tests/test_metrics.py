"""Every agreement metric is zero on an exact prediction and fails a wrong one.

The observed run is training of the linearized network, which the closed form reproduces
to rounding; the wrong predictions are the closed form at a step size off by 20% and the
closed form of another graph, the controls the book's chapters record.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from companion import dynamics, experiments, metrics, simulate

STEPS, EVERY = 40, 4


@pytest.fixture(scope="module")
def setting(mlp_problem, mixing_for, stable_lr):
    mixing = mixing_for("cycle")
    lr = stable_lr("dgd", mlp_problem, mixing)
    observed = simulate.train(
        mlp_problem,
        "dgd",
        mixing,
        lr=lr,
        steps=STEPS,
        linearize=True,
        save_at=simulate.SaveAt(every=EVERY),
        progress=False,
    )
    return mixing, lr, observed


def _form(problem, mixing, lr, algorithm="dgd"):
    return dynamics.closed_form(problem, algorithm, mixing, lr=lr).steps(STEPS)


SCALAR = (
    "final_loss_rel_err",
    "log_loss_gap",
    "worst_agent_loss_rel_err",
    "consensus_rel_err",
    "test_loss_rel_err",
    "test_accuracy_gap",
)


@pytest.mark.parametrize("metric", SCALAR)
def test_each_metric_is_zero_for_the_exact_prediction(mlp_problem, setting, metric):
    mixing, lr, observed = setting
    agreement = metrics.agreement(_form(mlp_problem, mixing, lr), observed)
    assert getattr(agreement, metric) < 1e-9
    assert agreement.final_loss_ratio == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("metric", SCALAR)
def test_each_metric_fails_a_step_size_off_by_a_fifth(mlp_problem, setting, metric):
    """The chapters' control: the closed form at 1.2 times the trained step size."""
    mixing, lr, observed = setting
    wrong = metrics.agreement(_form(mlp_problem, mixing, 1.2 * lr), observed)
    assert getattr(wrong, metric) > 1e-2
    assert wrong.final_loss_ratio < 1, "a larger step fits faster: predicted loss is lower"


def test_consensus_error_fails_another_graph(mlp_problem, setting, mixing_for):
    mixing, lr, observed = setting
    wrong = metrics.agreement(_form(mlp_problem, mixing_for("complete"), lr), observed)
    assert wrong.consensus_rel_err > 0.1


def test_log_loss_gaps_are_the_per_step_ratios_whose_maximum_is_the_gap(mlp_problem, setting):
    mixing, lr, observed = setting
    predicted = _form(mlp_problem, mixing, 1.2 * lr)
    gaps = metrics.log_loss_gaps(predicted, observed)
    rows = observed.saved_steps
    expected = np.abs(np.log(predicted.mean_global_loss[rows] / observed.mean_global_loss))
    np.testing.assert_allclose(gaps, expected, rtol=1e-12)
    assert gaps[0] == 0.0, "both start from f0"
    assert metrics.agreement(predicted, observed).log_loss_gap == pytest.approx(gaps.max())


@pytest.mark.bad_input
def test_a_prediction_missing_the_runs_steps_is_refused(mlp_problem, setting):
    mixing, lr, observed = setting
    short = dynamics.closed_form(mlp_problem, "dgd", mixing, lr=lr).steps(STEPS // 2)
    with pytest.raises(ValueError, match="did not save every step the training run saved"):
        metrics.agreement(short, observed)


@pytest.fixture(scope="module", params=["dgd", "atc"])
def by_graph(request, mlp_problem, mixing_for, stable_lr):
    """Closed forms and linearized training on three graphs at one step size. ATC on the
    complete graph averages exactly: its closed form has zero consensus distance where
    training leaves rounding, which the graph distance must not mistake for a gap."""
    algorithm = request.param
    mixings = {name: mixing_for(name) for name in ("cycle", "star", "complete")}
    lr = min(stable_lr(algorithm, mlp_problem, w) for w in mixings.values())
    forms = {name: _form(mlp_problem, w, lr, algorithm) for name, w in mixings.items()}
    runs = {
        name: simulate.train(
            mlp_problem, algorithm, w, lr=lr, steps=STEPS, linearize=True, progress=False
        )
        for name, w in mixings.items()
    }
    return forms, runs


def test_graph_distance_identifies_the_trained_graph(by_graph):
    forms, runs = by_graph
    table = metrics.confusion(forms, runs)
    assert metrics.identified(table)
    for trained, row in table.items():
        assert row[trained] < 1e-9 < min(v for k, v in row.items() if k != trained)


def test_identification_fails_when_the_closed_forms_are_swapped(by_graph):
    forms, runs = by_graph
    swapped = dict(zip(forms, list(forms.values())[1:] + list(forms.values())[:1], strict=True))
    assert not metrics.identified(metrics.confusion(swapped, runs))
    assert not metrics.identified(metrics.confusion(swapped, runs, metrics.loss_curve_distance))


def test_identified_needs_a_strict_minimum():
    assert not metrics.identified({"a": {"a": 0.2, "b": 0.2}})
    assert not metrics.identified({"a": {"a": 0.3, "b": 0.2}, "b": {"a": 0.4, "b": 0.1}})


def test_experiments_identified_asks_once_per_seed(mlp_problem, mixing_for, stable_lr):
    mixings = {name: mixing_for(name) for name in ("cycle", "complete")}
    runs = {
        name: experiments.over_seeds(
            lambda s: mlp_problem, "dgd", w, lr_scale=0.5, steps=6, seeds=[0, 1]
        )
        for name, w in mixings.items()
    }
    assert experiments.identified(runs) == [True, True]
    assert len(experiments.confusions(runs, metrics.loss_curve_distance)) == 2
    uneven = {"cycle": runs["cycle"], "complete": dataclasses.replace(runs["complete"], seeds=(0,))}
    with pytest.raises(ValueError, match="different numbers of seeds"):
        experiments.confusions(uneven)


def test_a_wrong_problem_prediction_is_scored_like_the_closed_form(mlp_problem, mixing_for):
    cycle = mixing_for("cycle")
    runs = experiments.over_seeds(
        lambda s: mlp_problem, "dgd", cycle, lr_scale=0.5, steps=6, seeds=[0, 1]
    )
    metric = "worst_agent_loss_rel_err"
    assert runs.median_against(lambda p: p, cycle, metric) == runs.median(metric)
    swapped = lambda p: p.replace(partition=p.partition[::-1])  # noqa: E731
    assert runs.median_against(swapped, cycle, metric) > 10 * runs.median(metric)


def test_ordering_is_perfect_for_the_exact_prediction_and_zero_for_agents_reversed(
    mlp_problem, setting
):
    mixing, lr, observed = setting
    exact = _form(mlp_problem, mixing, lr)
    assert metrics.ordering(exact, observed) == (1.0, 1.0)
    reversed_agents = dataclasses.replace(exact, local_loss=exact.local_loss[:, ::-1])
    full, worst = metrics.ordering(reversed_agents, observed)
    assert full == 0.0 and worst < 1.0


def test_kernel_drift_is_zero_at_theta_zero_and_grows_with_training(mlp_problem, mixing_for):
    p = mlp_problem
    start = {name: np.stack([leaf] * p.num_agents) for name, leaf in p.params.items()}
    trained = simulate.train(p, "dgd", mixing_for("cycle"), lr=0.3, steps=30, progress=False)
    at_start = metrics.kernel_drift(p.apply_fn, start, p.inputs, p.kernel)
    after = metrics.kernel_drift(p.apply_fn, trained.final_params, p.inputs, p.kernel)
    assert at_start.shape == after.shape == (p.num_agents,)
    assert at_start.max() < 1e-12
    assert after.min() > 1e-3
