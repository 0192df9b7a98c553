"""The grid's runs: experiments.over_graphs is over_seeds on every graph, and
SeedRuns.kernel_drift the agents' mean kernel drift of each seed's trained network."""

import dataclasses

import numpy as np
import pytest

from companion import experiments, graph_effect, metrics, models, problem

ARGS = dict(lr_scale=0.5, steps=10, seeds=[0, 1])
NETWORK = models.mlp(16, 1, 10)


def _problem(seed):
    return problem.digits(NETWORK, num_agents=4, samples_per_agent=4, seed=0, init_seed=seed)


@pytest.fixture(scope="module")
def by_graph():
    return experiments.over_graphs(_problem, "dgd", experiments.mixings(4), **ARGS)


def test_over_graphs_runs_every_graph_on_the_same_seeds(by_graph):
    assert list(by_graph) == list(experiments.PAPER_TOPOLOGIES)
    star = experiments.mixings(4)["star"]
    direct = experiments.over_seeds(_problem, "dgd", star, **ARGS)
    assert by_graph["star"].seeds == (0, 1)
    np.testing.assert_array_equal(
        by_graph["star"].observed[1].local_loss, direct.observed[1].local_loss
    )
    # each graph gets its own mixing matrix: the star's runs are not the complete graph's
    star_loss, complete_loss = (by_graph[t].observed[0].local_loss for t in ("star", "complete"))
    assert not np.allclose(star_loss, complete_loss)


def test_kernel_drift_averages_the_agents_drift_of_each_seed(by_graph):
    runs = by_graph["cycle"]
    drift = runs.kernel_drift()
    assert len(drift) == 2
    p, o = runs.problems[1], runs.observed[1]
    moved = metrics.kernel_drift(p.network, o.final_params, p.inputs, p.kernel)
    assert drift[1] == float(moved.mean()) > 0


def test_a_graph_grid_of_trained_networks_follows_their_kernels(by_graph):
    grid = graph_effect.GraphGrid({16: by_graph})
    drift = grid.kernel_drift("cycle")
    assert drift.index.name == "width"
    assert drift[16] == np.median(by_graph["cycle"].kernel_drift()) > 0
    ratios = np.array(grid.values(16, "final_loss_ratio"))
    assert grid.fraction_ahead()[16] == np.mean(ratios > 1)


@pytest.mark.bad_input
def test_over_graphs_refuses_no_graphs():
    with pytest.raises(ValueError, match="mixings is empty"):
        experiments.over_graphs(_problem, "dgd", {}, **ARGS)


@pytest.mark.bad_input
def test_kernel_drift_refuses_runs_without_trained_parameters(by_graph):
    runs = by_graph["cycle"]
    kept_none = tuple(dataclasses.replace(o, final_params=None) for o in runs.observed)
    with pytest.raises(ValueError, match="linearized runs keep no final_params"):
        dataclasses.replace(runs, observed=kept_none).kernel_drift()
