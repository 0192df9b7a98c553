"""Closed forms against real decentralized training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from companion import dynamics, graphs, simulate, stability
from companion.trajectory import relative_error

ALGORITHMS = ["dgd", "atc", "cta"]
TOPOLOGIES = ["cycle", "star", "complete", "random_geometric"]
STEPS = 40
FIELDS = [
    "predictions",
    "local_loss",
    "global_loss",
    "param_distance",
    "consensus_distance",
    "test_predictions",
    "test_loss",
]


def worst_error(estimate, reference) -> float:
    """Largest relative error over every recorded quantity."""
    errors = []
    for field in FIELDS:
        a, b = getattr(estimate, field), getattr(reference, field)
        # consensus is measured against the size of the parameter moves: it can be ~0
        scale = np.linalg.norm(reference.param_distance) if field == "consensus_distance" else 0
        errors.append(np.linalg.norm(a - b) / max(np.linalg.norm(b), scale))
    return max(errors)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_closed_form_equals_linearized_training(
    mlp_problem, algorithm, topology, mixing_for, stable_lr
):
    mixing = mixing_for(topology)
    lr = stable_lr(algorithm, mlp_problem, mixing)
    predicted = dynamics.closed_form(mlp_problem, algorithm, mixing, lr=lr).steps(STEPS)
    trained = simulate.train(
        mlp_problem,
        algorithm,
        mixing,
        lr=lr,
        steps=STEPS,
        linearize=True,
        chunk=STEPS,
        progress=False,
    )
    assert predicted.method == "dual-recursion"
    assert trained.method == "linearized-simulation"
    assert trained.local_loss.shape == (STEPS + 1, len(mixing))
    assert worst_error(predicted, trained) <= 1e-10
    # the run must actually move, or agreement would be trivial
    assert trained.mean_local_loss[-1] < 0.5 * trained.mean_local_loss[0]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_affine_closed_forms_equal_real_training(affine_problem, algorithm, mixing_for, stable_lr):
    mixing = mixing_for("cycle")
    lr = stable_lr(algorithm, affine_problem, mixing)
    form = dynamics.closed_form(affine_problem, algorithm, mixing, lr=lr)
    primal, dual = form.steps(STEPS, form="primal"), form.steps(STEPS)
    trained = simulate.train(
        affine_problem, algorithm, mixing, lr=lr, steps=STEPS, chunk=STEPS, progress=False
    )
    methods = (primal.method, dual.method, trained.method)
    assert methods == ("primal", "dual-recursion", "simulation")
    assert worst_error(primal, trained) <= 1e-10
    assert worst_error(dual, trained) <= 1e-10


def test_atc_on_uniform_complete_graph_is_centralized_gd(affine_problem):
    p = affine_problem
    lr = 0.5

    def global_loss(params):
        residual = p.apply_fn(params, p.inputs) - p.targets
        return sum(0.5 * jnp.sum(residual[rows] ** 2) / len(rows) for rows in p.partition) / (
            p.num_agents
        )

    params, central, gradient = p.params, [], jax.jit(jax.grad(global_loss))
    for _ in range(STEPS + 1):
        central.append(np.asarray(p.apply_fn(params, p.inputs)))
        grads = gradient(params)
        params = jax.tree_util.tree_map(lambda a, g: a - lr * g, params, grads)
    uniform = np.full((p.num_agents, p.num_agents), 1 / p.num_agents)
    trained = simulate.train(p, "atc", uniform, lr=lr, steps=STEPS, progress=False)
    predicted = dynamics.closed_form(p, "atc", uniform, lr=lr).steps(STEPS)
    central = np.broadcast_to(np.stack(central)[:, None], trained.predictions.shape)
    assert relative_error(trained.predictions, central) <= 1e-12
    assert relative_error(predicted.predictions, central) <= 1e-12
    assert np.abs(trained.consensus_distance[1:]).max() <= 1e-12


def test_real_network_is_recorded_the_same_way(mlp_problem, mixing_for):
    mixing = mixing_for("cycle")
    trained = simulate.train(mlp_problem, "dgd", mixing, lr=0.3, steps=5, chunk=4, progress=False)
    assert trained.predictions.shape == (6, len(mixing), *mlp_problem.targets.shape)
    np.testing.assert_allclose(trained.predictions[0], np.broadcast_to(mlp_problem.f0, (5, 14, 2)))
    assert trained.param_distance[0].max() == 0 and trained.consensus_distance[0] == 0
    assert trained.test_accuracy.shape == (6, len(mixing))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_save_at_keeps_predictions_only_where_asked(mlp_problem, mixing_for, algorithm):
    """Per-step losses come from the gradient's own outputs and equal the full record's."""
    mixing = mixing_for("star")
    full = simulate.train(mlp_problem, algorithm, mixing, lr=0.3, steps=12, progress=False)
    sparse = simulate.train(
        mlp_problem,
        algorithm,
        mixing,
        lr=0.3,
        steps=12,
        progress=False,
        save_at=simulate.SaveAt(every=5),
        chunk=4,
    )
    np.testing.assert_array_equal(sparse.saved_steps, [0, 5, 10, 12])
    np.testing.assert_allclose(sparse.local_loss, full.local_loss, rtol=1e-12)
    np.testing.assert_allclose(
        sparse.local_loss, mlp_problem.losses(full.predictions)[0], rtol=1e-12
    )
    np.testing.assert_allclose(sparse.predictions, full.predictions[[0, 5, 10, 12]], rtol=1e-12)
    assert sparse.global_loss.shape == sparse.test_loss.shape == (4, mlp_problem.num_agents)


@pytest.mark.bad_input
def test_save_at_refuses_steps_outside_the_run(mlp_problem, mixing_for):
    with pytest.raises(ValueError, match=r"SaveAt steps must lie in \[0, 5\]"):
        simulate.train(
            mlp_problem,
            "dgd",
            mixing_for("cycle"),
            lr=0.1,
            steps=5,
            save_at=simulate.SaveAt(steps=(3, 9)),
            progress=False,
        )
    with pytest.raises(ValueError, match="SaveAt every must be a positive integer, got 0"):
        simulate.SaveAt(every=0).resolve(5)


@st.composite
def connected_problems(draw):
    num_agents = draw(st.integers(3, 4))
    pairs = [(q, r) for q in range(num_agents) for r in range(q + 1, num_agents)]
    edges = [pair for pair in pairs if draw(st.booleans())]
    order = draw(st.permutations(range(num_agents)))
    graph = nx.Graph(edges + list(zip(order, order[1:], strict=False)))
    rule = draw(st.sampled_from(["metropolis", "max_degree"]))
    # at most 3 rows each, so 4 agents never need more than the 12 rows there are
    sizes = draw(st.lists(st.integers(1, 3), min_size=num_agents, max_size=num_agents))
    rows = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(12)
    partition = np.split(rows[: sum(sizes)], np.cumsum(sizes)[:-1])
    algorithm = draw(st.sampled_from(ALGORITHMS))
    below = draw(st.floats(0.05, 0.95))
    above = draw(st.floats(1.01, 4.0))
    return graphs.mixing_matrix(graph, rule), partition, algorithm, below, above


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=connected_problems())
def test_property_closed_form_equals_training_below_the_threshold_and_refuses_above(
    make_problem, case
):
    """Any connected graph, any (uneven, not necessarily covering) partition, any of the
    three algorithms, any step size below the exact threshold: the closed form equals
    training of the linearized model to 1e-10. Above the threshold, strict mode refuses."""
    mixing, partition, algorithm, below, above = case
    p = make_problem("mlp", seed=1, num_samples=12, partition=partition)
    threshold = stability.max_stable_lr(p, algorithm, mixing)
    lr = below * threshold
    predicted = dynamics.closed_form(p, algorithm, mixing, lr=lr).steps(10)
    trained = simulate.train(p, algorithm, mixing, lr=lr, steps=10, linearize=True, progress=False)
    assert worst_error(predicted, trained) <= 1e-10
    assert np.all(trained.local_loss >= 0)
    refusal = rf"lr={above * threshold:g} exceeds the largest stable step size"
    with pytest.raises(ValueError, match=refusal):
        dynamics.closed_form(p, algorithm, mixing, lr=above * threshold, strict=True)
    with pytest.raises(ValueError, match=refusal):
        simulate.train(p, algorithm, mixing, lr=above * threshold, steps=10, strict=True)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_final_parameters_are_the_closed_forms_whatever_the_chunks_and_saves(
    mlp_problem, mixing_for, stable_lr, algorithm
):
    """Padding steps past the end of a chunked run neither mix nor descend."""
    mixing, steps = mixing_for("cycle"), 11
    lr = stable_lr(algorithm, mlp_problem, mixing)
    expected = dynamics.closed_form(mlp_problem, algorithm, mixing, lr=lr).parameters(steps)
    for chunk, save_at in (
        (100, None),
        (3, simulate.SaveAt(every=4)),
        (5, simulate.SaveAt(steps=(11,))),
    ):
        trained = simulate.train(
            mlp_problem,
            algorithm,
            mixing,
            lr=lr,
            steps=steps,
            linearize=True,
            chunk=chunk,
            save_at=save_at,
            progress=False,
        )
        for name, leaf in expected.items():
            np.testing.assert_allclose(trained.final_params[name], leaf, rtol=1e-10, atol=1e-12)
