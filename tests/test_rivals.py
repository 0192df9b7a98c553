"""The paired margin over a rival: it prefers the closed form where it should, and the rival
where the closed form is deliberately broken."""

import numpy as np
import pytest

from companion import dynamics, graphs, models, problem, rivals, simulate


def test_margin_is_paired_and_its_interval_covers_the_median_improvement():
    ours, rival = [0.1, 0.2, 0.3, 0.4, 0.5], [0.2, 0.3, 0.4, 0.5, 0.6]
    m = rivals.margin(ours, rival)
    # every unit improves by exactly 0.1: a paired bootstrap has no spread at all
    assert m.margin == pytest.approx(0.1) and m.interval == pytest.approx((0.1, 0.1))
    assert m.beats and m.ours == pytest.approx(0.3) and m.rival == pytest.approx(0.4)
    scores = rivals.margin([0.9, 0.8, 0.95], [0.5, 0.6, 0.7], higher_is_better=True)
    assert scores.beats and scores.margin == pytest.approx(0.25)
    assert not rivals.margin([0.9, 0.8, 0.95], [0.5, 0.6, 0.7]).beats


def test_margin_is_reproducible_and_one_losing_seed_of_five_sinks_it():
    ours, rival = [0.1, 0.1, 0.1, 0.1, 0.5], [0.3, 0.3, 0.3, 0.3, 0.3]
    assert rivals.margin(ours, rival) == rivals.margin(ours, rival)
    m = rivals.margin(ours, rival)
    assert m.margin == pytest.approx(0.2) and not m.beats


@pytest.mark.bad_input
def test_margin_refuses_unpaired_or_nonfinite_values():
    with pytest.raises(ValueError, match="same length >= 2"):
        rivals.margin([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="finite values"):
        rivals.margin([0.1, np.nan], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least 100"):
        rivals.margin([0.1, 0.2], [0.1, 0.2], draws=10)


def _final_loss_errors(broken_graph: bool):
    """For five initializations: the final global loss error of the cycle's closed form
    (or, broken, the star's) against linearized training on the cycle, and of the rival
    "the graph does not matter" (the complete graph's closed form)."""
    cycle = graphs.mixing_matrix(graphs.topology("cycle", 4))
    star = graphs.mixing_matrix(graphs.topology("star", 4))
    complete = graphs.mixing_matrix(graphs.topology("complete", 4))
    ours, rival = [], []
    for seed in range(5):
        prob = problem.digits(
            models.mlp(16, 1, 10), num_agents=4, samples_per_agent=4, seed=0, init_seed=seed
        )
        lr = 0.5 / prob.curvature
        run = simulate.train(prob, "dgd", cycle, lr=lr, steps=40, linearize=True)
        observed = run.global_loss[-1].mean()
        mixing = star if broken_graph else cycle
        for mix, out in ((mixing, ours), (complete, rival)):
            predicted = dynamics.closed_form(prob, "dgd", mix, lr=lr).steps(40)
            out.append(abs(predicted.global_loss[-1].mean() / observed - 1))
    return ours, rival


def test_the_graph_rival_loses_to_the_right_graph_and_beats_a_wrong_one():
    assert rivals.margin(*_final_loss_errors(broken_graph=False)).beats
    broken = rivals.margin(*_final_loss_errors(broken_graph=True))
    assert not broken.beats and broken.margin < 0


def test_fields_carry_the_margin_and_an_optional_rival_value_by_width():
    m = rivals.margin([0.10, 0.12, 0.09, 0.11, 0.10], [0.30, 0.25, 0.35, 0.28, 0.31])
    assert m.fields() == {
        "rival_value": m.rival,
        "margin": m.margin,
        "margin_interval": list(m.interval),
    }
    by_width = m.fields(rival_value={64: 0.4, 128: 0.3})
    assert by_width["rival_value"] == {64: 0.4, 128: 0.3}
    assert by_width["margin"] == m.margin and by_width["margin_interval"] == list(m.interval)


def test_by_width_judges_the_largest_width_against_the_bound_and_the_slope():
    m = rivals.margin([0.1, 0.12, 0.09, 0.11, 0.10], [0.30, 0.25, 0.35, 0.28, 0.31])
    falling, rival = {64: 0.3, 128: 0.1}, {64: 0.4, 128: 0.4}
    fields = rivals.by_width(falling, rival, m, bound=0.15, control={64: 0.5, 128: 0.2})
    assert fields["value"] == falling and fields["passed"]
    assert fields["rival_value"] == rival and fields["margin"] == m.margin
    assert fields["control_value"] == {64: 0.5, 128: 0.2} and not fields["control_passed"]
    rising = {64: 0.05, 128: 0.1}
    assert rivals.by_width(rising, rival, m, bound=0.15)["passed"]
    assert not rivals.by_width(rising, rival, m, bound=0.15, falls=True)["passed"]
    assert not rivals.by_width(falling, rival, m, bound=0.05)["passed"]
    assert "control_value" not in rivals.by_width(falling, rival, m, bound=0.15)


@pytest.mark.bad_input
def test_by_width_refuses_values_at_different_widths():
    m = rivals.margin([0.1, 0.12, 0.09], [0.30, 0.25, 0.35])
    with pytest.raises(ValueError, match="same two or more widths"):
        rivals.by_width({64: 0.1, 128: 0.1}, {64: 0.2}, m, bound=0.15)
    with pytest.raises(ValueError, match="same two or more widths"):
        rivals.by_width({64: 0.1}, {64: 0.2}, m, bound=0.15)
