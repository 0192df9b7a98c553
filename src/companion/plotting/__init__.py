"""Every figure of the book, in one visual grammar (:mod:`companion.plotting._style`):
closed forms are lines, training is hollow markers, colour means agent or topology and
line style means algorithm."""

from companion.plotting._style import (
    ALGORITHM_STYLE,
    TOPOLOGY_COLOURS,
    agent_colours,
    theme,
    topology_colour,
)
from companion.plotting.cost import bars, cost_curve, cost_scaling
from companion.plotting.devices import (
    agents_on_devices,
    device_colours,
    device_plans,
    ppermute_rounds,
    traffic,
)
from companion.plotting.dynamics import (
    accuracy_curves,
    agent_curves,
    algorithm_comparison,
    dynamics_panels,
    flow_gaps,
    flow_vs_steps,
    limit_gaps,
    loss_grid,
)
from companion.plotting.ensembles import ensemble_bands, ensemble_errors_by_width, validity_maps
from companion.plotting.graphs import draw_graph, draw_graphs, mixing_heatmaps, rate_curves, spectra
from companion.plotting.heterogeneity import error_by_partition, label_mix
from companion.plotting.schedules import disagreement_by_messages, expected_band
from companion.plotting.stability import stability_radius, stability_runs, stability_thresholds
from companion.plotting.tuning import loss_by_messages, predicted_vs_observed
from companion.plotting.widths import (
    error_by_width,
    error_heatmap,
    ntk_linearization,
    ntk_width_scaling,
    power_laws,
)

__all__ = [
    "ALGORITHM_STYLE",
    "TOPOLOGY_COLOURS",
    "accuracy_curves",
    "agent_colours",
    "agent_curves",
    "agents_on_devices",
    "algorithm_comparison",
    "bars",
    "cost_curve",
    "cost_scaling",
    "device_colours",
    "device_plans",
    "draw_graph",
    "disagreement_by_messages",
    "draw_graphs",
    "dynamics_panels",
    "ensemble_bands",
    "ensemble_errors_by_width",
    "error_by_partition",
    "error_by_width",
    "error_heatmap",
    "expected_band",
    "flow_gaps",
    "flow_vs_steps",
    "label_mix",
    "limit_gaps",
    "loss_by_messages",
    "loss_grid",
    "mixing_heatmaps",
    "ntk_linearization",
    "ntk_width_scaling",
    "power_laws",
    "predicted_vs_observed",
    "ppermute_rounds",
    "rate_curves",
    "spectra",
    "stability_radius",
    "stability_runs",
    "stability_thresholds",
    "theme",
    "validity_maps",
    "topology_colour",
    "traffic",
]
