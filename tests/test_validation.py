"""The algorithm chapters' experiment (companion.validation) and the claims recorded from it
(companion.book.claims), on a small affine model: its linearization is itself, so every
closed form must match its training to rounding."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from companion import models, validation
from companion.book import claims

SMALL = dict(num_agents=3, samples_per_agent=2, n_test=4, steps=8, seeds=2, doublings=12)


@pytest.fixture(scope="module")
def experiment() -> validation.Experiment:
    return validation.Experiment("dgd", models.affine(10), "cycle", 0.5, **SMALL)


def test_the_setting_is_built_once_from_its_fields(experiment):
    assert experiment.mixing.shape == (3, 3)
    np.testing.assert_allclose(experiment.mixing.sum(axis=1), 1.0)
    assert experiment.lr == pytest.approx(0.5 / experiment.problem.curvature)
    assert experiment.problem is experiment.problem  # cached, not rebuilt
    assert experiment.width is None  # the affine model has no hidden width
    assert validation.Experiment("dgd", models.mlp(16, 1, 10), "cycle", 0.5).width == 16
    # another initialization: same data and partition, another theta_0
    other = experiment.problem_for(1)
    np.testing.assert_array_equal(other.targets, experiment.problem.targets)
    assert not np.allclose(other.f0, experiment.problem.f0)


def test_the_closed_form_is_exact_for_the_linearized_model(experiment):
    assert experiment.linearized.max_rel_err < 1e-10
    assert experiment.parameter_error() < 1e-10
    # the real network of an affine model is its linearization: the runs agree too
    runs = experiment.runs
    assert runs.seeds == (0, 1) and runs.problems[0] is experiment.problem
    assert max(a.final_loss_rel_err for a in runs.agreements()) < 1e-9
    assert set(experiment.trained) == {"linearized network", "network"}


def test_distances_pair_every_agent_with_theta_0_and_with_each_other(experiment):
    table = experiment.distances()
    assert len(table) == 3 + 3  # Q distances to theta_0, Q (Q - 1) / 2 pairs
    assert list(table.columns) == ["closed form", "network", "ratio"]
    np.testing.assert_allclose(table["ratio"], 1.0, rtol=1e-8)  # affine: exact


def test_flows_and_the_transition_matrix(experiment):
    flows = experiment.flows(divisor=4, points=9)
    assert flows.names == ("eta", "eta/4")
    assert flows.times[-1] == pytest.approx(experiment.steps * experiment.lr)
    gaps = flows.gaps
    assert gaps["eta/4"] < gaps["eta"]  # the smaller step is closer to its own flow
    assert experiment.transition_error(flows) < 1e-8


def test_the_limit_and_the_spectrum_that_paces_it(experiment):
    approach = experiment.approach
    assert approach.steps[-1] == 2**12 and approach.worst[0] == pytest.approx(1.0)
    spectrum = experiment.spectrum()
    assert spectrum.lambda_min > spectrum.rounding > 0
    assert spectrum.condition == pytest.approx(spectrum.lambda_max / spectrum.lambda_min)
    n = experiment.problem.num_samples
    assert spectrum.slowest == pytest.approx(n / (experiment.lr * spectrum.lambda_min))


def test_closed_forms_side_by_side(experiment):
    runs = experiment.closed_forms(("dgd", "atc", "cta"))
    np.testing.assert_array_equal(
        runs["dgd"].predictions, experiment.linearized.predicted.predictions
    )
    table = validation.endpoints(runs)
    assert list(table.index) == ["dgd", "atc", "cta"]
    assert table.loc["atc", "final L(theta_bar)"] == pytest.approx(runs["atc"].average_loss[-1])


def test_atc_on_the_complete_graph_is_centralized_but_dgd_is_not():
    small = dict(SMALL, seeds=1)
    atc = validation.centralized(
        validation.Experiment("atc", models.affine(10), "cycle", 0.5, **small)
    )
    assert max(atc.errors.values()) < 1e-10
    np.testing.assert_allclose(atc.mixing, np.full((3, 3), 1 / 3))
    dgd = validation.centralized(
        validation.Experiment("dgd", models.affine(10), "cycle", 0.5, **small)
    )
    assert dgd.errors["predicted"] > 1e-6


def test_every_recursion_approaches_its_flow_at_first_order(experiment):
    longer = dataclasses.replace(experiment, steps=20)  # a multiple of the 10 times
    orders = validation.flow_orders(longer, ("dgd", "cta"), halvings=2)
    assert set(orders.own) == {"dgd", "cta"} and len(orders.own["dgd"]) == 3
    assert all(0.75 <= s <= 1.25 for s in orders.slopes.values())
    assert all(not 0.75 <= s <= 1.25 for s in orders.control_slopes.values())


def test_the_algorithm_chapter_claims(experiment, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("COMPANION_CHAPTER", "99_demo")
    mlp = dataclasses.replace(experiment, model=models.mlp(16, 1, 10))
    entries = claims.algorithm_chapter(mlp)
    claims.PARAMETERS.record(mlp.parameter_error())
    stored = {c["id"]: c for c in json.loads((tmp_path / "99_demo.json").read_text())}
    assert stored["dgd.linearized_max_rel_err"]["section"] == "dgd-training"
    assert stored["dgd.limit_rel_err"]["statement"].startswith("DGD at step 2**12")
    assert stored["dgd.network.final_loss_rel_err"]["section"] == "dgd-network"
    assert list(stored["dgd.network.worst_agent_loss_rel_err_by_width"]["value"]) == ["16"]
    assert stored["primal.parameter_max_rel_err"]["passed"] is True
    assert entries["exact"]["passed"] and entries["limit"]["passed"]
    assert "predicted parameters exact (< 1e-10): True" in capsys.readouterr().out


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"algorithm": "sgd"}, "unknown algorithm 'sgd'"),
        ({"steps": 0}, r"steps=0: must be an integer >= 1"),
        ({"seeds": 2.5}, r"seeds=2.5: must be an integer >= 1"),
        ({"lr_scale": 0.0}, r"lr_scale=0.0: the step size in units of 1 / L_max must be"),
    ],
)
def test_an_experiment_refuses_bad_fields(fields, message):
    given = {"algorithm": "dgd", "model": models.affine(10), "topology": "cycle"}
    given |= {"lr_scale": 0.5} | fields
    with pytest.raises(ValueError, match=message):
        validation.Experiment(**given)


@pytest.mark.bad_input
def test_flows_refuse_a_divisor_below_two(experiment):
    with pytest.raises(ValueError, match="divisor=1: must be an integer >= 2"):
        experiment.flows(divisor=1)


@pytest.mark.bad_input
def test_the_centralized_baseline_refuses_unequal_local_sizes():
    unequal = validation.Experiment("atc", models.affine(10), "cycle", 0.5, **SMALL)
    rows = np.concatenate(unequal.problem.partition)
    unequal.__dict__["problem"] = unequal.problem.replace(partition=[rows[:1], rows[1:3], rows[3:]])
    with pytest.raises(ValueError, match=r"local sizes n_q = \[1, 2, 3\]: the single-agent"):
        validation.centralized(unequal)


@pytest.mark.bad_input
def test_the_network_claims_refuse_a_model_without_a_width(experiment):
    with pytest.raises(ValueError, match="no hidden width, and the network claims"):
        claims.algorithm_chapter(experiment)
