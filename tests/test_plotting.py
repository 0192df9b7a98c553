"""Every public figure draws on a tiny trajectory, and single-panel figures draw into a
given axis."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from companion import dynamics, experiments, graphs, limits, plotting  # noqa: E402
from companion.sharded import matchings  # noqa: E402


@pytest.fixture(scope="module")
def runs(mlp_problem, mixing_for):
    mixing = mixing_for("cycle")
    grid = experiments.grid(
        mlp_problem, {"cycle": mixing}, ["dgd", "atc"], lr=0.1, steps=5, progress=False
    )
    form = dynamics.closed_form(mlp_problem, "dgd", mixing, lr=0.1)
    return grid, form


def figures(runs):
    grid, form = runs
    cell = grid["cycle", "dgd"]
    losses = {key: c.predicted.local_loss for key, c in grid.items()}
    accuracy = {key: c.predicted.test_accuracy.mean(1) for key, c in grid.items()}
    topologies = {"cycle": graphs.topology("cycle", 5), "star": graphs.topology("star", 5)}
    mixings = {name: graphs.mixing_matrix(g) for name, g in topologies.items()}
    torus = graphs.topology("torus", 16)
    rounds = matchings.plan(graphs.mixing_matrix(torus), 4).schedule.rounds
    sweep = {
        "values": [1, 2, 4],
        "seconds": [1.0, 2.0, 4.1],
        "ops": [1, 2, 4],
        "vary": "m",
        "slope": 1.0,
        "theory_slope": 1.0,
    }
    curve = np.linspace(1, 0.1, 6)
    return {
        "draw_graphs": lambda: plotting.draw_graphs(topologies),
        "mixing_heatmaps": lambda: plotting.mixing_heatmaps(mixings),
        "spectra": lambda: plotting.spectra({n: graphs.spectrum(w) for n, w in mixings.items()}),
        "rate_curves": lambda: plotting.rate_curves({"cycle": curve}, {"cycle": curve}, ylabel="y"),
        "loss_grid": lambda: plotting.loss_grid(losses, losses, mean=True),
        "accuracy_curves": lambda: plotting.accuracy_curves(accuracy, accuracy),
        "dynamics_panels": lambda: plotting.dynamics_panels(
            cell.predicted, {"training": cell.observed}
        ),
        "flow_vs_steps": lambda: plotting.flow_vs_steps(
            {"flow": form.flow([0.0, 0.3])}, {"steps": cell.predicted}
        ),
        "algorithm_comparison": lambda: plotting.algorithm_comparison(
            {"dgd": cell.predicted, "atc": grid["cycle", "atc"].predicted}
        ),
        "limit_gaps": lambda: plotting.limit_gaps({"dgd": limits.approach(form, doublings=3)}),
        "error_by_width": lambda: plotting.error_by_width(
            {64: 0.2, 128: 0.1}, slope=-1.0, reference={64: 0.3}
        ),
        "error_heatmap": lambda: plotting.error_heatmap(np.full((2, 3), 0.1), [64, 128], [1, 2, 3]),
        "ntk_linearization": lambda: plotting.ntk_linearization(
            np.arange(6), curve, curve, {"train": curve}
        ),
        "ntk_width_scaling": lambda: plotting.ntk_width_scaling(
            [64, 128], {"d": [[0.2, 0.1]]}, ylabel="d", reference=-0.5
        ),
        "stability_radius": lambda: plotting.stability_radius(
            np.array([1.0, 2.0]),
            {("cycle", "dgd"): np.array([0.9, 1.1])},
            {"cycle": {"bound": 1.5}},
            xlabel="eta",
        ),
        "stability_thresholds": lambda: plotting.stability_thresholds(
            {"cycle": 0.5}, {"cycle": 0.9}, ylabel="y"
        ),
        "stability_runs": lambda: plotting.stability_runs(
            np.arange(6), {("linearized", 0.95): curve, ("network", 0.95): curve}, ylabel="y"
        ),
        "flow_gaps": lambda: plotting.flow_gaps({"dgd": {0.1: 0.02, 0.05: 0.01}}),
        "power_laws": lambda: plotting.power_laws(
            [1.0, 2.0, 4.0], {"bias": [0.1, 0.2, 0.4]}, xlabel="eta", ylabel="bias"
        ),
        "bars": lambda: plotting.bars({"a": 1.0, "b": 2.0}, ylabel="s", log=True),
        "cost_scaling": lambda: plotting.cost_scaling({"closed form": sweep}),
        "agents_on_devices": lambda: plotting.agents_on_devices(torus, 4),
        "ppermute_rounds": lambda: plotting.ppermute_rounds(rounds, 4),
        "device_plans": lambda: plotting.device_plans({"torus": (torus, rounds, 4)}),
        "traffic": lambda: plotting.traffic(
            [
                {"graph": "cycle", "num_agents": q, "counted_bytes": 16.0, "measured_bytes": 16}
                | {"allgather_bytes": 7.0 * q, "allgather_measured_bytes": 7 * q}
                for q in (8, 16)
            ]
        ),
        "expected_band": lambda: plotting.expected_band(
            np.random.default_rng(0).normal(size=(20, 6, 3)), np.zeros((6, 3)), np.ones((6, 3))
        ),
        "disagreement_by_messages": lambda: plotting.disagreement_by_messages(
            {"cycle": (np.arange(4) * 2, np.array([1.0, 0.5, 0.2, 0.1]))}
        ),
        "label_mix": lambda: plotting.label_mix(
            {"iid": [np.array([0, 1, 2]), np.array([3, 3])]}, num_classes=4
        ),
        "error_by_partition": lambda: plotting.error_by_partition(
            {"iid": {64: (0.1, 0.05, 0.2), 128: (0.05, 0.02, 0.1)}}
        ),
        "ensemble_bands": lambda: plotting.ensemble_bands(
            {("cycle", "dgd"): np.ones((6, 2))},
            {("cycle", "dgd"): np.full((6, 2), 0.1)},
            {("cycle", "dgd"): np.ones((3, 2))},
            {("cycle", "dgd"): np.full((3, 2), 0.1)},
            np.array([0, 2, 4]),
            ylabel="f",
            seeds=4,
        ),
        "ensemble_errors_by_width": lambda: plotting.ensemble_errors_by_width(
            {"mean": np.array([[0.2, 0.1]])},
            {"mean": np.array([[0.05, 0.05]])},
            {"mean": np.array([[0.3, 0.3]])},
            [16, 64],
            slopes={"mean": -0.5},
        ),
        "predicted_vs_observed": lambda: plotting.predicted_vs_observed(
            pd.DataFrame(
                {
                    "topology": ["cycle", "star", "cycle"],
                    "algorithm": ["dgd", "atc", "atc"],
                    "predicted": [0.1, 0.2, 0.3],
                    "observed": [0.12, 0.18, np.inf],
                }
            ),
            label="loss",
        ),
        "loss_by_messages": lambda: plotting.loss_by_messages(
            {"cycle lazy ATC 0.9": (np.arange(4) * 8, curve[:4])},
            {"cycle lazy ATC 0.9": (np.arange(4) * 8, curve[:4] * 1.1)},
            target=0.3,
        ),
        "validity_maps": lambda: plotting.validity_maps(
            {("cycle", "dgd"): np.array([[0.1, 0.01], [0.02, 0.001]])},
            [16, 64],
            [5, 10],
            threshold=0.05,
        ),
    }


def test_every_public_figure_draws(runs):
    drawn = figures(runs)
    public = {
        name
        for name in plotting.__all__
        if name[0].islower()
        and name
        not in (
            "theme",
            "agent_colours",
            "topology_colour",
            "agent_curves",
            "draw_graph",
            "cost_curve",
            "device_colours",
        )
    }
    assert public == set(drawn), "every figure of the book is drawn here"
    for name, draw in drawn.items():
        fig = draw()
        assert isinstance(fig, Figure), name
        assert fig.axes, name
        plt.close(fig)


def test_single_panel_figures_draw_into_a_given_axis(runs):
    fig, axes = plt.subplots(1, 5)
    plotting.bars({"a": 1.0}, ylabel="s", ax=axes[0])
    plotting.draw_graph(graphs.topology("cycle", 4), ax=axes[1])
    plotting.error_by_width({64: 0.2, 128: 0.1}, ax=axes[2])
    plotting.agents_on_devices(graphs.topology("cycle", 4), 2, ax=axes[3])
    plotting.ppermute_rounds([[(0, 1), (1, 0)]], 2, ax=axes[4])
    assert [ax.has_data() or not ax.axison for ax in axes] == [True] * 5
    assert all(ax.collections for ax in axes[3:])  # the agents and devices, drawn there
    assert len(fig.axes) == 5
    plt.close(fig)
