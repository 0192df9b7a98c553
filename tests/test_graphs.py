"""Graphs and mixing matrices: structure, spectra and every validation error."""

import networkx as nx
import numpy as np
import pytest

from companion import graphs

RULES = ("metropolis", "max_degree", "laplacian")


@pytest.mark.parametrize("name", graphs.TOPOLOGIES)
@pytest.mark.parametrize("rule", RULES)
def test_every_rule_is_symmetric_doubly_stochastic_and_matches_graph(name, rule):
    g = graphs.topology(name, 9, seed=3, **({"p": 0.6} if name == "erdos_renyi" else {}))
    if not nx.is_connected(g):
        pytest.skip("this seed drew a disconnected graph; covered by the error test")
    w = graphs.mixing_matrix(g, rule)
    assert np.allclose(w, w.T, atol=0)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-12)
    graphs.validate_mixing(w, g)
    eig = graphs.spectrum(w)
    assert eig[0] == pytest.approx(1.0, abs=1e-12)
    assert eig[1] < 1 - 1e-9, "connected graph: eigenvalue 1 is simple"


def test_metropolis_cycle_has_min_eigenvalue_minus_one_third():
    eig = graphs.spectrum(graphs.mixing_matrix(graphs.topology("cycle", 4)))
    assert eig[-1] == pytest.approx(-1.0 / 3.0, abs=1e-14)


def test_uniform_rule_on_complete_graph_averages_in_one_step():
    w = graphs.mixing_matrix(graphs.topology("complete", 6), "uniform")
    np.testing.assert_allclose(w, np.full((6, 6), 1 / 6), atol=0)
    assert graphs.second_largest_modulus(w) == pytest.approx(0.0, abs=1e-14)


def test_random_topologies_are_seeded():
    a = graphs.topology("random_geometric", 12, seed=5)
    b = graphs.topology("random_geometric", 12, seed=5)
    c = graphs.topology("random_geometric", 12, seed=6)
    assert sorted(a.edges) == sorted(b.edges)
    assert sorted(a.edges) != sorted(c.edges)


@pytest.mark.parametrize("name", ["cycle", "star", "path", "torus", "complete"])
def test_gossip_contracts_at_the_predicted_rate(name):
    q = 9
    w = graphs.mixing_matrix(graphs.topology(name, q))
    rate = graphs.second_largest_modulus(w)
    x0 = np.random.default_rng(0).normal(size=q)
    err = graphs.gossip(w, x0, 30)
    # ||x_k - mean|| <= |lambda_2|^k ||x_0 - mean|| for symmetric W; 1e-12 covers rounding.
    assert np.all(err <= rate ** np.arange(31) + 1e-12)


# ---- bad input: every message names the problem -----------------------------------------


def _cycle4():
    return graphs.topology("cycle", 4), graphs.mixing_matrix(graphs.topology("cycle", 4))


@pytest.mark.bad_input
def test_not_doubly_stochastic_names_the_column():
    w = np.array([[0.5, 0.5], [0.4, 0.6]])
    with pytest.raises(ValueError, match="column 0 of mixing sums to 0.9, not 1"):
        graphs.validate_mixing(w)


@pytest.mark.bad_input
def test_row_sum_error_names_the_row():
    g, w = _cycle4()
    w = w.copy()
    w[2, 2] += 0.1
    with pytest.raises(ValueError, match="row 2 of mixing sums to"):
        graphs.validate_mixing(w, g)


@pytest.mark.bad_input
def test_negative_entry_is_named():
    w = np.array([[1.2, -0.2], [-0.2, 1.2]])
    with pytest.raises(ValueError, match=r"mixing\[0, 1\] = -0.2 is negative"):
        graphs.validate_mixing(w)


@pytest.mark.bad_input
def test_non_finite_entry_is_named():
    w = np.array([[0.5, np.nan], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"mixing has 1 non-finite entries, first at \[0, 1\]"):
        graphs.validate_mixing(w)


@pytest.mark.bad_input
def test_pattern_not_matching_graph_names_the_edge():
    g = graphs.topology("path", 3)
    w = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"W\[0, 2\].*not an edge"):
        graphs.validate_mixing(w, g)


@pytest.mark.bad_input
def test_self_loop_is_refused():
    g = graphs.topology("cycle", 4)
    g.add_edge(1, 1)
    with pytest.raises(ValueError, match="self-loop at node 1"):
        graphs.mixing_matrix(g)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 2, 2)])
def test_wrong_shape_is_refused(shape):
    with pytest.raises(ValueError, match="mixing must be a square Q x Q matrix"):
        graphs.validate_mixing(np.ones(shape))


@pytest.mark.bad_input
def test_size_mismatch_with_graph():
    g, _ = _cycle4()
    with pytest.raises(ValueError, match="3 x 3 but the graph has 4 nodes"):
        graphs.validate_mixing(np.full((3, 3), 1 / 3), g)


@pytest.mark.bad_input
def test_disconnected_graph_is_refused_where_consensus_is_needed():
    g = nx.Graph([(0, 1), (2, 3)])
    with pytest.raises(ValueError, match="disconnected: 2 components"):
        graphs.mixing_matrix(g)
    with pytest.raises(ValueError, match="disconnected"):
        graphs.validate_mixing(np.kron(np.eye(2), np.full((2, 2), 0.5)))
    graphs.validate_mixing(np.kron(np.eye(2), np.full((2, 2), 0.5)), require_connected=False)


@pytest.mark.bad_input
def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="choose one of cycle, star"):
        graphs.topology("ring", 4)
    with pytest.raises(ValueError, match="choose one of metropolis, max_degree"):
        graphs.mixing_matrix(graphs.topology("cycle", 4), "hastings")


@pytest.mark.bad_input
def test_grid_needs_a_square_number():
    with pytest.raises(ValueError, match="square number of agents, got 8; use 4 or 9"):
        graphs.topology("grid", 8)


@pytest.mark.bad_input
def test_laplacian_eps_out_of_range():
    with pytest.raises(ValueError, match="0 < eps < 1/max_degree"):
        graphs.mixing_matrix(graphs.topology("star", 5), "laplacian", eps=0.5)


@pytest.mark.bad_input
def test_uniform_rule_needs_complete_graph():
    with pytest.raises(ValueError, match="needs the complete graph"):
        graphs.mixing_matrix(graphs.topology("cycle", 5), "uniform")
