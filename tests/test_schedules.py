"""Schedules of mixing matrices: what they draw, their exact laws, and their refusals."""

from __future__ import annotations

import dataclasses
import itertools

import networkx as nx
import numpy as np
import pytest

from companion import (
    agents,
    dynamics,
    graphs,
    limits,
    models,
    moments,
    monte_carlo,
    problem,
    schedule_stability,
    schedules,
    simulate,
    stability,
)


def test_metropolis_matches_the_graph_module_on_connected_graphs():
    graph = graphs.topology("star", 5)
    adjacency = nx.to_numpy_array(graph, nodelist=range(5))
    np.testing.assert_allclose(schedules.metropolis(adjacency), graphs.mixing_matrix(graph))


@pytest.mark.parametrize("num_agents", [2, 4, 8, 16])
def test_one_peer_exponential_averages_exactly_in_log2_q_steps(num_agents):
    schedule = schedules.one_peer_exponential(num_agents)
    period = schedule.period
    assert period == int(np.log2(num_agents))
    drawn = schedule.matrices(3 * period)
    for start in range(period):  # any log2 Q consecutive steps
        product = np.eye(num_agents)
        for w in drawn[start : start + period]:
            product = w @ product
        assert np.abs(product - 1 / num_agents).max() <= 1e-15
    shorter = np.eye(num_agents)
    for w in drawn[: period - 1]:
        shorter = w @ shorter
    assert np.abs(shorter - 1 / num_agents).max() >= 1 / num_agents, "fewer steps do not"


def test_a_schedule_draws_the_same_beginning_whatever_its_length():
    schedule = schedules.random_links(graphs.topology("cycle", 5), 0.5, seed=3)
    np.testing.assert_array_equal(schedule.matrices(4), schedule.matrices(9)[:4])
    other = schedules.random_links(graphs.topology("cycle", 5), 0.5, seed=4)
    assert not np.array_equal(schedule.matrices(9), other.matrices(9))


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.random_links(graphs.topology("cycle", 4), 0.7),
        schedules.random_links(graphs.topology("star", 5), 0.3),
        schedules.random_links(graphs.topology("erdos_renyi", 6, p=0.6, seed=1), 0.5),
        schedules.randomized_gossip(graphs.topology("path", 4)),
    ],
    ids=["cycle", "star", "erdos-renyi", "gossip"],
)
def test_the_expected_mixing_equals_the_average_over_every_realization(schedule):
    support = schedule.support()
    assert sum(p for p, _ in support) == pytest.approx(1.0, abs=1e-14)
    enumerated = sum(p * w for p, w in support)
    np.testing.assert_allclose(schedule.expected, enumerated, rtol=0, atol=1e-15)
    graphs.validate_mixing(schedule.expected, require_connected=False)


def test_expected_metropolis_is_not_either_naive_guess():
    """The 4-cycle at p = 0.7: E[W]_01 = 0.24383, not p W + (1 - p) I nor W itself."""
    cycle = graphs.topology("cycle", 4)
    expected = schedules.random_links(cycle, 0.7).expected
    assert expected[0, 1] == pytest.approx(0.7 * (0.09 / 2 + 0.91 / 3), abs=1e-14)
    base = graphs.mixing_matrix(cycle)
    assert abs(expected[0, 1] - 0.7 * base[0, 1]) > 0.01
    assert abs(expected[0, 1] - base[0, 1]) > 0.01


def test_random_draws_follow_their_law():
    schedule = schedules.random_links(graphs.topology("cycle", 4), 0.7, seed=0)
    draws = schedule.matrices(20000)
    mean = draws.mean(axis=0)
    spread = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(mean - schedule.expected) <= 4 * spread + 1e-15)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: schedules.one_peer_exponential(6),
            r"power of two of agents \(2, 4, 8, \.\.\.\), got 6",
        ),
        (lambda: schedules.one_peer_exponential(1), r"got 1"),
        (
            lambda: schedules.random_links(graphs.topology("cycle", 4), 1.5),
            r"p=1\.5 must lie in \[0, 1\]",
        ),
        (
            lambda: schedules.random_links(graphs.topology("cycle", 4), -0.2),
            r"p=-0\.2 must lie in \[0, 1\]",
        ),
        (lambda: schedules.random_links(nx.empty_graph(3), 0.5), r"the base graph has no edges"),
        (lambda: schedules.periodic([]), r"needs at least one mixing matrix"),
        (
            lambda: schedules.periodic([np.eye(2), np.array([[0.5, 0.5], [0.4, 0.6]])]),
            r"column 0 of W\(1\) sums to 0\.9",
        ),
        (
            lambda: schedules.periodic([np.eye(2)]).matrices(0),
            r"steps must be a positive integer, got 0",
        ),
        (
            lambda: schedules.random_links(graphs.topology("complete", 6), 0.5).support(),
            r"32768 realizations of 15 random links exceed 4096",
        ),
    ],
)
def test_schedules_refuse(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _small_problem(num_agents=4, seed=0):
    return problem.digits(
        models.mlp(32, 1, 10), num_agents=num_agents, samples_per_agent=2, n_test=3, seed=seed
    )


SCHEDULES = {
    "one-peer": lambda: schedules.one_peer_exponential(4),
    "links": lambda: schedules.random_links(graphs.topology("cycle", 4), 0.6, seed=3),
    "gossip": lambda: schedules.randomized_gossip(graphs.topology("star", 4), seed=1),
}


@pytest.mark.parametrize("algorithm", ["dgd", "atc", "cta"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_the_closed_form_on_a_schedule_equals_linearized_training(name, algorithm):
    p, schedule = _small_problem(), SCHEDULES[name]()
    form = dynamics.closed_form(p, algorithm, schedule, lr=0.5).steps(25)
    run = simulate.train(p, algorithm, schedule, lr=0.5, steps=25, linearize=True, progress=False)
    scale = np.abs(run.predictions).max()
    assert np.abs(form.predictions - run.predictions).max() <= 1e-12 * scale
    assert np.abs(form.test_predictions - run.test_predictions).max() <= 1e-12 * scale
    # the control: the same schedule with another seed (or the period reversed) differs
    other = (
        dataclasses.replace(schedule, seed=schedule.seed + 1)
        if isinstance(schedule, schedules.RandomSchedule)
        else schedules.periodic(schedule.cycle[::-1])
    )
    wrong = dynamics.closed_form(p, algorithm, other, lr=0.5).steps(25)
    assert np.abs(wrong.predictions - run.predictions).max() > 1e-6 * scale


def test_one_peer_exponential_brings_atc_with_zero_step_to_the_exact_average():
    p = _small_problem(num_agents=8)
    start = np.random.default_rng(0).normal(size=(8, 3))
    drawn = schedules.one_peer_exponential(8).matrices(3)
    mixed = drawn[2] @ drawn[1] @ drawn[0] @ start
    assert np.abs(mixed - start.mean(0)).max() <= 1e-15
    assert p.num_agents == 8


def _every_sequence(schedule, steps):
    """(probability, periodic schedule) for every sequence of ``steps`` draws."""
    support = schedule.support()
    for choice in itertools.product(range(len(support)), repeat=steps):
        weight = float(np.prod([support[i][0] for i in choice]))
        yield weight, schedules.periodic([support[i][1] for i in choice])


@pytest.mark.parametrize("algorithm", ["dgd", "atc", "cta"])
def test_expected_dynamics_are_exact_over_every_realization(algorithm):
    """3 agents on a path, 2 random links: 4 draws per step, 4^3 sequences of 3 steps."""
    p = _small_problem(num_agents=3)
    schedule = schedules.random_links(graphs.topology("path", 3), 0.7)
    total, first, second = 0.0, 0.0, 0.0
    for weight, sequence in _every_sequence(schedule, 3):
        f = dynamics.closed_form(p, algorithm, sequence, lr=0.8).steps(3).predictions
        total, first, second = total + weight, first + weight * f, second + weight * f**2
    assert abs(total - 1) <= 1e-14
    mean = moments.mean(p, algorithm, schedule, lr=0.8, steps=3).predictions
    assert np.abs(mean - first).max() <= 1e-12 * np.abs(first).max()
    exact = moments.second_moment(p, algorithm, schedule, lr=0.8, steps=3)
    assert np.abs(exact - second).max() <= 1e-12 * np.abs(second).max()
    naive = 0.7 * graphs.mixing_matrix(graphs.topology("path", 3)) + 0.3 * np.eye(3)
    control = dynamics.closed_form(p, algorithm, naive, lr=0.8).steps(3).predictions
    assert np.abs(control - first).max() > 1e-4 * np.abs(first).max()


def test_monte_carlo_agrees_with_the_expected_dynamics_in_pooled_z_scores():
    p = _small_problem()
    schedule = schedules.random_links(graphs.topology("cycle", 4), 0.6)
    form = dynamics.closed_form(p, "dgd", schedule, lr=1.0)
    runs = moments.realizations(form, 20, range(300))
    z = monte_carlo.pooled_z(runs, moments.mean(p, "dgd", schedule, lr=1.0, steps=20).predictions)
    assert abs(z.mean) <= 0.1 and 0.8 <= z.variance <= 1.25 and z.within_3se >= 0.98
    assert z.exact_max_abs <= 1e-14  # step 0 is f_0 on every realization
    base = graphs.mixing_matrix(graphs.topology("cycle", 4))
    naive = dynamics.closed_form(p, "dgd", 0.6 * base + 0.4 * np.eye(4), lr=1.0).steps(20)
    assert monte_carlo.pooled_z(runs, naive.predictions).within_3se < 0.9


def test_a_period_of_one_has_the_rate_of_its_matrix():
    p = _small_problem()
    mixing = graphs.mixing_matrix(graphs.topology("cycle", 4))
    rate, kind = schedule_stability.schedule_rate(p, "atc", schedules.periodic([mixing]), 1.5)
    radius = stability.spectral_radius(p, "atc", mixing, 1.5)
    assert kind == "period product (exact)" and abs(rate - radius) <= 1e-12


def test_mean_square_rate_is_used_when_small():
    p = problem.Problem(
        targets=np.ones((3, 1)),
        partition=[np.array([i]) for i in range(3)],
        kernel=np.eye(3),
        f0=np.zeros((3, 1)),
    )
    schedule = schedules.random_links(graphs.topology("path", 3), 0.5)
    rate, kind = schedule_stability.schedule_rate(p, "dgd", schedule, 0.5)
    assert kind == "mean-square (exact)" and 0 < rate < 1
    assert schedule_stability.schedule_rate(p, "dgd", schedule, 2.5)[0] > 1


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda p: dynamics.closed_form(p, "atc", schedules.one_peer_exponential(4), lr=0.5).at(
                [3]
            ),
            r"\.at\(steps\) needs one mixing matrix.*use \.steps\(k\)",
        ),
        (
            lambda p: dynamics.closed_form(
                p, "atc", schedules.one_peer_exponential(4), lr=0.5
            ).flow([1.0]),
            r"\.flow\(times\) needs one mixing matrix",
        ),
        (
            lambda p: dynamics.closed_form(p, "dgd", schedules.one_peer_exponential(8), lr=0.5),
            r"'one-peer exponential' has 8 agents but the problem has 4",
        ),
        (
            lambda p: simulate.train(p, "dgd", schedules.one_peer_exponential(2), lr=0.5, steps=2),
            r"has 2 agents but the problem has 4",
        ),
        (
            lambda p: dynamics.closed_form(
                p, "dgd", schedules.one_peer_exponential(4), lr=1e3, strict=True
            ),
            r"lr=1000 makes dgd on the schedule 'one-peer exponential' unstable: its period "
            r"product \(exact\) rate is .* > 1",
        ),
        (
            lambda p: moments.realizations(
                dynamics.closed_form(p, "dgd", schedules.one_peer_exponential(4), lr=0.5), 2, [0]
            ),
            r"realizations need a closed form on a random schedule",
        ),
        (
            lambda p: moments.second_moment(
                problem.digits(models.mlp(8, 1, 10), num_agents=4, samples_per_agent=3, seed=0),
                "dgd",
                schedules.random_links(graphs.topology("cycle", 4), 0.5),
                lr=0.1,
                steps=2,
            ),
            r"Q m = 480 here; it is computed only up to Q m = 400",
        ),
        (
            lambda p: limits.fixed_point(
                dynamics.closed_form(p, "atc", schedules.one_peer_exponential(4), lr=0.5)
            ),
            r"the limit of a closed form needs one mixing matrix",
        ),
        (
            lambda p: monte_carlo.pooled_z(np.ones((5, 3)), np.ones(3)),
            r"no entry varies across realizations",
        ),
        (
            lambda p: monte_carlo.pooled_z(np.ones((5, 3)), np.ones(4)),
            r"samples of shape \(realizations >= 2, \*\(4,\)\)",
        ),
    ],
)
def test_schedules_in_the_dynamics_refuse(call, message):
    with pytest.raises(ValueError, match=message):
        call(_small_problem())


def test_a_bad_matrix_at_some_step_is_named():
    good = np.full((3, 3), 1 / 3)
    bad = good.copy()
    bad[1, 2] = -0.1
    with pytest.raises(ValueError, match=r"W\(2\)\[1, 2\] = -0.1 is negative"):
        schedules.periodic([good, good, bad])


def test_consensus_runs_through_a_schedule_and_the_static_exponential_graph_mixes():
    start = np.random.default_rng(0).normal(size=8)
    drawn = schedules.one_peer_exponential(8).matrices(3)
    assert graphs.gossip(drawn, start, 3)[-1] <= 1e-15  # exact average after log2 Q steps
    static = schedules.static_exponential(8)
    np.testing.assert_allclose(static.sum(0), 1.0, atol=1e-15)
    np.testing.assert_allclose(static.sum(1), 1.0, atol=1e-15)
    assert np.count_nonzero(static[0]) == 1 + 3  # itself and log2 Q out-neighbours
    assert 1e-3 < graphs.gossip(static, start, 3)[-1] < 1  # mixes, but not exactly


@pytest.mark.bad_input
def test_consensus_needs_one_matrix_per_step():
    drawn = schedules.one_peer_exponential(4).matrices(2)
    with pytest.raises(ValueError, match="2 mixing matrices for 5 steps: give one per step"):
        graphs.gossip(drawn, np.arange(4.0), 5)


@pytest.mark.bad_input
def test_a_schedule_refuses_a_layout_other_than_one_device():
    class Elsewhere(agents.Stacked):
        pass

    drawn = schedules.one_peer_exponential(4).matrices(2)
    with pytest.raises(
        ValueError, match="a schedule of mixing matrices runs on one device, not on Elsewhere"
    ):
        agents.schedule_tables(Elsewhere(), drawn)


def test_one_peer_average_gap_is_zero_for_every_window_of_a_period():
    one_peer = schedules.one_peer_exponential(8)
    assert max(one_peer.average_gap(3, start) for start in range(3)) < 1e-15
    assert one_peer.average_gap(2) > 0.1  # one step short of a period
    assert one_peer.average_gap(1) == pytest.approx(0.5 - 1 / 8)


def test_consensus_by_messages_counts_each_graph_in_its_own_messages():
    start = np.random.default_rng(0).normal(size=8)
    cycle = graphs.mixing_matrix(graphs.topology("cycle", 8))
    one_peer = schedules.one_peer_exponential(8)
    curves = schedules.consensus_by_messages(
        {"cycle": (cycle, 2), "one-peer": (one_peer, 1)}, start, 6
    )
    np.testing.assert_array_equal(curves["cycle"][0], [0, 2, 4, 6])
    np.testing.assert_array_equal(curves["cycle"][1], graphs.gossip(cycle, start, 3))
    assert curves["one-peer"][1][3] < 1e-12  # exact average after log2 8 steps


@pytest.mark.bad_input
def test_schedule_helpers_refuse_bad_lengths_and_costs():
    with pytest.raises(ValueError, match="length >= 1"):
        schedules.one_peer_exponential(4).average_gap(0)
    with pytest.raises(ValueError, match="between 1 and the budget"):
        schedules.consensus_by_messages({"complete": (np.full((4, 4), 0.25), 5)}, np.arange(4.0), 4)
