"""The wide-network chapter's claims (companion.book.network_claims): each records the claim
its table implies, with the chapter's ids and sections, and refuses a table it cannot read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from companion import experiments, graph_effect, models, problem, simulate
from companion.book import claims, network_claims

WIDTHS = (16, 32)
LABELS = {"final_loss_rel_err": "final-loss error", "log_loss_gap": "log-loss gap"}


def _keyed(column: pd.Series) -> dict:
    """A column by width as a recorded claim holds it: keys become strings."""
    return {str(k): v for k, v in column.to_dict().items()}


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """The claims recorded so far in a fresh results folder, by id."""
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("COMPANION_CHAPTER", "99_demo")
    return lambda: {c["id"]: c for c in json.loads((tmp_path / "99_demo.json").read_text())}


@pytest.fixture(scope="module")
def sweep() -> graph_effect.GraphGrid:
    """DGD on the three graphs at two small widths, three initializations each."""
    runs = {}
    for width in WIDTHS:
        network = models.mlp(width, 1, 10)

        def problem_for(seed, network=network):
            return problem.digits(
                network, num_agents=4, samples_per_agent=4, seed=0, init_seed=seed
            )

        runs[width] = experiments.over_graphs(
            problem_for,
            "dgd",
            experiments.mixings(4),
            lr_scale=0.5,
            steps=10,
            seeds=range(3),
            save_at=simulate.SaveAt(every=2),
        )
    return graph_effect.GraphGrid(runs)


def test_the_grid_observation_is_the_median_over_cells(stored, capsys):
    cells = pd.DataFrame(
        {
            ("final_loss_rel_err", "closed form"): [0.05, 0.12, 0.1],
            ("final_loss_rel_err", "control"): [0.5, 0.6, 0.4],
        }
    )
    entry = network_claims.grid_final_loss(cells, width=8, steps=2)
    assert capsys.readouterr().out == "median over cells: 0.100 (closed form), 0.500 (control)\n"
    assert entry["value"] == pytest.approx(0.1) and entry["passed"] is True
    claim = stored()["network.grid_final_loss_rel_err"]
    assert claim["kind"] == "observation" and claim["bound"] == claims.AGREEMENT
    assert claim["control_value"] == pytest.approx(0.5) and claim["control_passed"] is False
    assert claim["statement"].startswith("width 8, 2 steps, the nine graph x algorithm cells")
    # above the agreement bound, the observation does not hold
    worse = cells.assign(**{"final_loss_rel_err": cells["final_loss_rel_err"] + 0.5})
    assert network_claims.grid_final_loss(worse, width=8, steps=2)["passed"] is False


def test_the_linearized_check_takes_the_worst_cell(stored, capsys):
    errors = {("cycle", "dgd"): 1e-14, ("star", "atc"): 3e-13}
    entry = network_claims.linearized_exact(errors)
    assert entry["value"] == 3e-13 and entry["passed"] is True
    assert "closed form exact to 1e-10: True" in capsys.readouterr().out
    assert stored()["linearized.max_rel_err"]["section"] == "networks-linearized"
    assert network_claims.linearized_exact({("cycle", "cta"): 1e-6})["passed"] is False


def test_the_control_is_closer_where_its_error_is_smaller(stored, capsys):
    error = pd.DataFrame({"closed form": [0.2, 0.1], "control": [0.5, 0.05]}, index=[64, 128])
    entry = network_claims.control_closer(error)
    assert entry["value"] == {"64": False, "128": True} and entry["passed"] is False
    assert capsys.readouterr().out == "the control is closer at widths [128]\n"
    assert stored()["network.control_closer_by_width"]["value"] == {"64": False, "128": True}
    assert network_claims.control_closer(error.iloc[:1])["passed"] is True


def test_the_width_slopes_fit_power_laws(stored, capsys):
    widths = [64, 256]
    entry = network_claims.width_slopes(
        pd.Series([0.4, 0.1], index=widths), pd.Series([0.2, 0.1], index=widths)
    )
    assert entry["value"]["kernel_drift"] == pytest.approx(-1.0)
    assert entry["value"]["final_loss_rel_err"] == pytest.approx(-0.5)
    assert entry["passed"] is True
    assert capsys.readouterr().out == "slopes: kernel drift -1.00, final-loss error -0.50\n"
    rising = network_claims.width_slopes(pd.Series([0.1, 0.4], widths), pd.Series([1, 1], widths))
    assert rising["passed"] is False
    assert stored()["network.width_slopes"]["section"] == "networks-width"


def test_the_topology_observation_is_judged_at_the_largest_width(stored, capsys):
    entry = network_claims.discriminates_topology(
        pd.Series({64: 0.6, 128: 1.0}), pd.Series({64: 0.2, 128: 0.4})
    )
    assert entry["passed"] is True and entry["control_passed"] is False
    out = capsys.readouterr().out
    assert out == "graph identified at width 128: 1.00\nobservation holds: True\n"
    assert stored()["network.discriminates_topology"]["section"] == "networks-topology"


def test_the_agreement_by_width_faces_the_rival_at_the_largest_width(sweep, stored, capsys):
    table = sweep.medians(LABELS)
    entries = network_claims.agreement_by_width(sweep, table, LABELS)
    assert list(entries) == list(LABELS)
    for metric, label in LABELS.items():
        entry, m = entries[metric], sweep.margin(metric, max(WIDTHS))
        assert entry["value"] == _keyed(table[label, "closed form"])
        assert entry["rival_value"] == _keyed(table[label, "rival"])
        assert entry["control_value"] == _keyed(table[label, "control"])
        assert entry["margin"] == m.margin and entry["rival"] == claims.GRAPH_RIVAL
    claim = stored()["network.final_loss_rel_err_by_width"]
    assert claim["kind"] == "empirical" and claim["section"] == "networks-width"
    assert "DGD on cycle/star/complete, final-loss error" in claim["statement"]
    assert "median over 3 initializations x 3 graphs" in claim["statement"]
    assert claim["control"] == "the closed form at 1.2 times the trained step size"
    assert "log_loss_gap at width 32:" in capsys.readouterr().out


def test_the_graph_effect_by_width_faces_a_zero_log_ratio(sweep, stored, capsys):
    errors = sweep.effect_errors(("final_loss", "steps"))
    entries = network_claims.graph_effect_by_width(sweep, errors)
    for measure, (claim, _) in network_claims.EFFECTS.items():
        entry = entries[measure]
        assert entry["value"] == _keyed(errors[measure, "closed form"])
        assert entry["margin"] == sweep.effects(measure)[max(WIDTHS)].margin().margin
        assert stored()[f"network.{claim}_rel_err_by_width"]["rival"] == network_claims.NO_GRAPH
    # the rival's relative error is 1 by construction, wherever the graphs differ
    np.testing.assert_allclose(list(entries["final_loss"]["rival_value"].values()), 1.0)
    statement = stored()["network.graph_effect_rel_err_by_width"]["statement"]
    assert "every pair of cycle/star/complete, median over pairs x 3 initializations" in statement
    assert "at most 0.25 at the largest width" in statement
    assert capsys.readouterr().out.startswith("graph_effect at width 32: ")


@pytest.mark.bad_input
def test_tables_without_the_needed_columns_are_refused(sweep):
    with pytest.raises(ValueError, match=r"the cell medians lacks the columns"):
        network_claims.grid_final_loss(pd.DataFrame({"x": [1.0]}), width=8, steps=2)
    with pytest.raises(ValueError, match=r"lacks the columns \['control'\]"):
        network_claims.control_closer(pd.DataFrame({"closed form": [0.1]}))
    with pytest.raises(ValueError, match="errors is empty"):
        network_claims.linearized_exact({})
    with pytest.raises(ValueError, match=r"the drift's widths \[64, 128\] differ"):
        network_claims.width_slopes(pd.Series([1.0, 2.0], [64, 128]), pd.Series([1.0], [64]))
    with pytest.raises(ValueError, match="give both at the same one or more widths"):
        network_claims.discriminates_topology(pd.Series({64: 1.0}), pd.Series({128: 1.0}))
    wrong = sweep.medians({"final_loss_rel_err": "other label"})
    with pytest.raises(ValueError, match=r"table lacks the columns"):
        network_claims.agreement_by_width(sweep, wrong, LABELS)
