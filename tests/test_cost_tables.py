"""The cost chapter's reductions: the neural-tangents reference kernel in our layout, the
three stages timed on one problem, the slopes table and the table of estimates."""

from __future__ import annotations

import numpy as np
import pytest

from companion import cost


def test_the_reference_kernel_is_the_structured_one_in_the_same_layout():
    problem, _ = cost.setup(6, num_agents=2, width=16, seed=1)
    reference = cost.reference_ntk(problem)
    ours = cost.compute_ntk(problem)
    assert reference.shape == ours.shape == (60, 60)
    assert np.max(np.abs(ours - reference)) <= 1e-12 * np.max(np.abs(reference))
    assert np.allclose(reference, reference.T)


def test_the_three_stages_are_timed():
    problem, mixing = cost.setup(8, num_agents=2, width=16)
    seconds = cost.stages(problem, mixing, lr=cost.stable_lr(problem, mixing), steps=3, repeats=1)
    assert list(seconds) == ["NTK (structured)", "closed form", "training"]
    assert all(s > 0 for s in seconds.values())


def test_the_slopes_table_reads_each_sweep():
    runs = {"a": {"slope": 1.2, "theory_slope": 2.0}, "b": {"slope": 0.5, "theory_slope": 1.0}}
    table = cost.slopes(runs)
    assert list(table.index) == ["a", "b"]
    assert table.loc["b", "measured slope"] == 0.5 and table.loc["a", "count slope"] == 2.0


def test_the_estimates_table_is_estimate_row_by_row():
    rates = {"ntk": 1e-9, "closed_form": 2e-9}
    table = cost.estimates(rates, [(1000, 4, 64), (5000, 16, 128)])
    assert list(table.index) == [(1000, 4, 64), (5000, 16, 128)]
    row = cost.estimate(rates, n=500, num_agents=16, width=128)
    assert table.loc[(5000, 16, 128)].to_dict() == row
    assert table.loc[(5000, 16, 128), "gigabytes"] > table.loc[(1000, 4, 64), "gigabytes"]


@pytest.mark.bad_input
def test_an_m_that_is_not_a_multiple_of_the_outputs_is_refused():
    with pytest.raises(ValueError, match="m=1005 is not a multiple of out_dim=10"):
        cost.estimates({"ntk": 1e-9, "closed_form": 1e-9}, [(1005, 4, 64)])
