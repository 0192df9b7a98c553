"""What the wide-network chapter records about the topology grid and the width sweep.

The grid runs DGD, ATC and CTA on the cycle, star and complete graphs at one width; the
sweep runs DGD on the three graphs at every width (:class:`companion.graph_effect.GraphGrid`
holds both). Each function here records one group of that chapter's claims from the tables
the chapter shows, prints its verdict, and returns the entries of
:func:`companion.book.report.record`. The empirical ones face the rival "the graph does
not matter" (:data:`companion.book.claims.GRAPH_RIVAL`) at the largest width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import pandas as pd

from companion import cost, experiments, rivals
from companion.book import claims, report
from companion.graph_effect import GraphGrid

#: The bound on the relative error of the graph's predicted effect at the largest width.
EFFECT_BOUND = 0.25
#: The rival of the graph's effect: a log ratio of 0 for every pair of graphs.
NO_GRAPH = (
    "the graph does not matter: one closed form for every graph (the complete graph's), a "
    "predicted log ratio of 0 for every pair (its relative error, the rival value here, is "
    "1 by construction; the margin is on absolute errors)"
)
#: The graph's effects the sweep records: measure -> (claim name, what is compared).
EFFECTS = {
    "final_loss": ("graph_effect", "final global loss"),
    "steps": ("graph_effect_steps", "steps to a target loss"),
}


def _columns(table: pd.DataFrame, needed: tuple, what: str) -> None:
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what} lacks the columns {missing} (it has {list(table.columns)}): pass the "
            "table the chapter builds for it"
        )


def grid_final_loss(medians: pd.DataFrame, *, width: int, steps: int) -> dict:
    """Records the observation ``network.grid_final_loss_rel_err``: the median over the
    grid's cells of ``medians`` (:meth:`GraphGrid.cell_medians`) of the final-loss error,
    within :data:`~companion.book.claims.AGREEMENT` and below the 20%-off control's.
    """
    _columns(medians, (("final_loss_rel_err", "closed form"),), "the cell medians")
    final, final_control = map(float, medians["final_loss_rel_err"].median())
    entry = report.record(
        "network.grid_final_loss_rel_err",
        final,
        kind="observation",
        bound=claims.AGREEMENT,
        control_value=final_control,
        control="the closed form at 1.2 times the trained step size",
        control_passed=bool(final_control <= final),
        statement=f"width {width}, {steps} steps, the nine graph x algorithm cells: median over "
        "cells of the median over initializations of the final-loss error; holds within the "
        "agreement bound and below the control's. An observation: its only comparison is "
        "wrong by construction (the by-width claims face the rival)",
        section="networks-grid",
    )
    print(f"median over cells: {final:.3f} (closed form), {final_control:.3f} (control)")
    return entry


def linearized_exact(errors: Mapping) -> dict:
    """Records the exact claim ``linearized.max_rel_err``: the worst of ``errors`` (cell ->
    relative error of the closed form against the trained linearized network) against
    :data:`~companion.book.claims.EXACT`."""
    if not errors:
        raise ValueError("errors is empty: give the linearized check's error of every cell")
    worst = max(errors.values())
    entry = report.record(
        "linearized.max_rel_err",
        worst,
        kind="exact",
        bound=claims.EXACT,
        statement="worst relative error, closed form vs training of the linearized MLP, over "
        "cycle/star/complete x DGD/ATC/CTA",
        paper="the closed forms describe the linearized (NTK-regime) dynamics exactly",
        section="networks-linearized",
    )
    print(f"linearized network: closed form exact to 1e-10: {worst < claims.EXACT}")
    return entry


def control_closer(error: pd.DataFrame) -> dict:
    """Records the observation ``network.control_closer_by_width``: at which widths the
    control's median final-loss error is below the closed form's (``error``: the
    ``"closed form"`` and ``"control"`` columns of :meth:`GraphGrid.medians`, by width);
    holds when at none."""
    _columns(error, ("closed form", "control"), "the final-loss error by width")
    control_wins = error["control"] < error["closed form"]
    entry = report.record(
        "network.control_closer_by_width",
        control_wins.to_dict(),
        kind="observation",
        passed=not bool(control_wins.any()),
        statement="whether the closed form at 1.2 times the step size has the smaller median "
        "final-loss error, by width; holds when it has at no width",
        section="networks-width",
    )
    print(f"the control is closer at widths {list(error.index[control_wins.to_numpy()])}")
    return entry


def width_slopes(drift: pd.Series, error: pd.Series) -> dict:
    """Records the observation ``network.width_slopes``: the log-log slopes against width
    (the index of both) of the median kernel drift and of the median final-loss error;
    holds when the drift falls with width.
    """
    if list(drift.index) != list(error.index):
        raise ValueError(
            f"the drift's widths {list(drift.index)} differ from the error's "
            f"{list(error.index)}: give both by the sweep's widths"
        )
    widths = list(drift.index)
    drift_slope = cost.loglog_slope(widths, drift)
    error_slope = cost.loglog_slope(widths, error)
    entry = report.record(
        "network.width_slopes",
        {"kernel_drift": drift_slope, "final_loss_rel_err": error_slope},
        kind="observation",
        passed=bool(drift_slope < 0),
        statement="log-log slopes against width of the median kernel drift and of the median "
        "final-loss error (DGD, three graphs); holds when the drift falls with width",
        section="networks-width",
    )
    print(f"slopes: kernel drift {drift_slope:.2f}, final-loss error {error_slope:.2f}")
    return entry


def _top(sweep: GraphGrid) -> tuple[int, experiments.SeedRuns]:
    """The sweep's largest width and the runs of its first graph there."""
    top = max(cast("Mapping[int, object]", sweep.runs))  # the sweep's levels are widths
    return top, sweep[top, sweep.graphs[0]]


def agreement_by_width(
    sweep: GraphGrid, table: pd.DataFrame, labels: Mapping[str, str]
) -> dict[str, dict]:
    """Records the empirical claims ``network.<metric>_by_width`` for each metric of
    ``labels`` (Agreement field -> label): the medians of ``table``
    (:meth:`GraphGrid.medians` of ``sweep`` with ``labels``) by width, judged at the largest
    width against :data:`~companion.book.claims.AGREEMENT`, the step-size control and the
    rival "the graph does not matter" paired over initializations
    (:meth:`GraphGrid.margin`)."""
    top, first = _top(sweep)
    factor, seeds = first.control_factor, len(first.seeds)
    graphs = "/".join(sweep.graphs)
    entries = {}
    for metric, label in labels.items():
        _columns(table, tuple((label, p) for p in ("closed form", "rival", "control")), "table")
        ours, rival, control = table[label].to_dict().values()
        m = sweep.margin(metric, top)
        judged = rivals.by_width(ours, rival, m, bound=claims.AGREEMENT, control=control)
        entries[metric] = report.record(
            f"network.{metric}_by_width",
            kind="empirical",
            rival=claims.GRAPH_RIVAL,
            control=f"the closed form at {factor:g} times the trained step size",
            statement=f"DGD on {graphs}, {label} of the closed form against the "
            f"trained MLP by width, median over {seeds} initializations x {len(sweep.graphs)} "
            f"graphs; passes when at most {claims.AGREEMENT} at the largest width and ahead of "
            "the rival there",
            paper="for wide networks the closed form agrees with the observed loss dynamics",
            section="networks-width",
            **judged,
        )
        print(f"{metric} at width {top}: {m}; passed {entries[metric]['passed']}")
    return entries


def graph_effect_by_width(sweep: GraphGrid, errors: pd.DataFrame) -> dict[str, dict]:
    """Records the empirical claims of the graph's effect (:data:`EFFECTS`): the relative
    error of the predicted log ratio between every pair of graphs (``errors``:
    :meth:`GraphGrid.effect_errors` of ``sweep``) by width, which must fall with width, be
    at most :data:`EFFECT_BOUND` at the largest width, and there beat :data:`NO_GRAPH` on the
    absolute errors (:meth:`companion.graph_effect.GraphEffect.margin`)."""
    top, first = _top(sweep)
    graphs, seeds = "/".join(sweep.graphs), len(first.seeds)
    entries = {}
    for q, (claim, words) in EFFECTS.items():
        _columns(errors, ((q, "closed form"), (q, "rival")), "the effect errors")
        ours, rival = errors[q].to_dict().values()
        m = sweep.effects(q)[top].margin()
        judged = rivals.by_width(ours, rival, m, bound=EFFECT_BOUND, falls=True)
        entries[q] = report.record(
            f"network.{claim}_rel_err_by_width",
            kind="empirical",
            rival=NO_GRAPH,
            **judged,
            statement=f"DGD: |predicted - trained| / |trained| of the log ratio of the {words} "
            f"between every pair of {graphs}, median over pairs x {seeds} "
            "initializations, by width; passes when it falls with width (log-log slope below "
            f"0), is at most {EFFECT_BOUND} at the largest width, and the absolute error beats "
            "the rival's there",
            section="networks-graph-effect",
        )
        print(f"{claim} at width {top}: {ours[top]:.3f}; {m}")
    return entries


def discriminates_topology(identified: pd.Series, control: pd.Series) -> dict:
    """Records the observation ``network.discriminates_topology``: the fraction of
    initializations at which every network's own graph is identified
    (:meth:`GraphGrid.identified`), by width, at least 0.8 at the largest width, beside the
    same fraction for the blind ``control`` distance.
    """
    if list(identified.index) != list(control.index) or identified.empty:
        raise ValueError(
            f"identified is by widths {list(identified.index)} and the control by "
            f"{list(control.index)}: give both at the same one or more widths"
        )
    top = max(identified.index)
    entry = report.record(
        "network.discriminates_topology",
        identified.to_dict(),
        kind="observation",
        passed=bool(identified[top] >= 0.8),
        control_value=control.to_dict(),
        control="the same question asked of the relative L2 error of the mean local-loss curve",
        control_passed=bool(control[top] >= 0.8),
        statement="DGD: fraction of initializations at which, for each of cycle/star/complete, "
        "the closed form of the trained graph is the closest (graph distance) to the trained "
        "MLP, by width; at least 0.8 at the largest width, while the control falls short",
        section="networks-topology",
    )
    print(f"graph identified at width {top}: {identified[top]:.2f}")
    print(f"observation holds: {entry['passed']}")
    return entry
