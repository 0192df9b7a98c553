"""Claims that several chapters record the same way, written once.

The algorithm chapters (DGD, ATC, CTA) each check the same things about their algorithm:
the closed form is exact for the linearized network, close for the real network over
several initializations (closer, seed by seed, than the rival "the graph does not matter",
and than a deliberately wrong step size), and every agent reaches the centralized limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from companion import graphs, rivals
from companion.book import report
from companion.experiments import SeedRuns
from companion.validation import Experiment

EXACT = 1e-10  # float64 closed form against linearized training
LIMIT = 1e-8  # rounding of 20-40 squarings of a matrix conditioned like K
# Agreement with the real network: relative, on the median over seeds. The controls show
# what a 20% error in the step size gives on the same metrics (0.3 to 0.7 in the book's
# settings), so a bound of 0.15 asks the closed form to be clearly better than that.
AGREEMENT = 0.15


#: The rival of the network agreement: one closed form for every graph.
GRAPH_RIVAL = (
    "the graph does not matter: the complete graph's closed form (centralized gradient "
    "descent's, Metropolis weights 1/Q) with the same algorithm, step size and seeds"
)


def network_agreement(
    prefix: str, seeds: SeedRuns, *, width: int, setting: str, section: str, paper: str = ""
) -> dict[str, dict]:
    """Records ``<prefix>.final_loss_rel_err``, ``<prefix>.log_loss_gap`` (medians over
    seeds) and ``<prefix>.worst_agent_loss_rel_err_by_width`` (at the chapter's one width),
    each against the rival "the graph does not matter" (:data:`GRAPH_RIVAL`, paired over
    seeds) and the step-size control, and prints their verdicts."""
    control = f"the closed form at {seeds.control_factor:g} times the trained step size"
    num_agents = seeds.problems[0].num_agents
    complete = graphs.mixing_matrix(graphs.topology("complete", num_agents), "metropolis")
    ours, rival = seeds.agreements(), seeds.agreements_against(complete)
    controls = seeds.control_agreements()
    entries = {}
    for metric, words in (
        ("final_loss_rel_err", "relative error of the final global loss"),
        ("log_loss_gap", "largest |log ratio| of the global-loss curves"),
        ("worst_agent_loss_rel_err", "largest relative error of an agent's final local loss"),
    ):
        m = rivals.margin(*([getattr(a, metric) for a in runs] for runs in (ours, rival)))
        by_width = metric == "worst_agent_loss_rel_err"
        control_value = float(np.median([getattr(a, metric) for a in controls]))
        name = f"{prefix}.{metric}" + ("_by_width" if by_width else "")
        entries[metric] = report.record(
            name,
            {width: m.ours} if by_width else m.ours,
            kind="empirical",
            bound=None if by_width else AGREEMENT,
            passed=bool(m.ours <= AGREEMENT) if by_width else None,
            rival=GRAPH_RIVAL,
            rival_value={width: m.rival} if by_width else m.rival,
            margin=m.margin,
            margin_interval=list(m.interval),
            control_value={width: control_value} if by_width else control_value,
            control=control,
            control_passed=bool(control_value <= AGREEMENT) if by_width else None,
            statement=f"{setting}: {words}, closed form against the trained network, median "
            f"over {len(seeds.seeds)} initializations"
            + (f"; at this width only, bound {AGREEMENT}" if by_width else ""),
            paper=paper,
            section=section,
        )
        print(f"{metric}: {m}; passes: {entries[metric]['passed']}")
    return entries


def algorithm_chapter(
    experiment: Experiment, *, sections: Mapping[str, str] | None = None
) -> dict[str, dict]:
    """Records ``<algorithm>.linearized_max_rel_err`` (exact), the network agreement
    (:func:`network_agreement`) and ``<algorithm>.limit_rel_err`` (theorem) of one algorithm
    chapter's experiment (:class:`companion.validation.Experiment`), prints their verdicts,
    and returns the entries.

    ``sections`` maps ``"training"``, ``"network"`` and ``"limit"`` to the labels of the
    chapter sections that establish them; by default ``<algorithm>-training`` and so on.
    """
    algorithm, width, doublings = experiment.algorithm, experiment.width, experiment.doublings
    if width is None:
        raise ValueError(
            "the experiment's model has no hidden width, and the network claims are recorded "
            "by width: build it with companion.models.mlp"
        )
    if sections is None:
        sections = {key: f"{algorithm}-{key}" for key in ("training", "network", "limit")}
    linearized, name = experiment.linearized, algorithm.upper()
    limit = float(experiment.approach.worst[-1])
    entries = {
        "exact": report.record(
            f"{algorithm}.linearized_max_rel_err",
            linearized.max_rel_err,
            kind="exact",
            bound=EXACT,
            statement=f"{name} closed form vs training of the linearized MLP: worst relative "
            "error of per-agent losses and predictions",
            paper="closed-form dynamics of the linearized network",
            section=sections["training"],
        ),
        "limit": report.record(
            f"{algorithm}.limit_rel_err",
            limit,
            kind="theorem",
            bound=LIMIT,
            statement=f"{name} at step 2**{doublings}: worst relative gap of any agent to "
            "interpolation, to centralized NTK regression on test inputs and to the "
            "minimum norm",
            section=sections["limit"],
        ),
    }
    print(f"linearized exact (< {EXACT:g}): {linearized.max_rel_err < EXACT}")
    print(f"limit reached (< {LIMIT:g}): {limit < LIMIT}")
    return entries | network_agreement(
        f"{algorithm}.network",
        experiment.runs,
        width=width,
        setting=f"{name} on the {experiment.topology}, width {width}",
        section=sections["network"],
        paper="the closed form describes the training of wide networks",
    )


@dataclasses.dataclass(frozen=True)
class Identity:
    """A claim that two computations agree to rounding (bound :data:`EXACT`): an exact
    check, or a theorem whose two sides are computed independently.

    Example:
      >>> PARAMETERS.kind, PARAMETERS.section
      ('exact', 'dgd-parameters')
    """

    name: str
    kind: str
    statement: str
    section: str
    verdict: str  # what the printed check says, before "(< 1e-10): True"

    def record(self, value: float) -> dict:
        """Records ``value`` against :data:`EXACT`, prints the verdict, returns the entry."""
        entry = report.record(
            self.name,
            value,
            kind=self.kind,
            bound=EXACT,
            statement=self.statement,
            section=self.section,
        )
        print(f"{self.verdict} (< {EXACT:g}): {value < EXACT}")
        return entry


#: The DGD chapter: the closed form's parameters against the trained linearized network.
PARAMETERS = Identity(
    "primal.parameter_max_rel_err",
    "exact",
    "every agent's parameters theta_0 + J^T alpha_q from the DGD closed form against the "
    "trained linearized network, relative error",
    "dgd-parameters",
    "predicted parameters exact",
)
#: The ATC chapter: the complete graph with uniform weights is centralized gradient descent.
ATC_IS_CENTRALIZED = Identity(
    "atc_complete_vs_centralized.max_rel_err",
    "theorem",
    "ATC on the complete graph with W = 11^T/Q vs centralized gradient descent on "
    "(1/Q) sum_q L_q (equal n_q): worst relative error of any agent's predictions, closed "
    "form and trained network",
    "atc-centralized",
    "complete graph = centralized GD",
)
#: The CTA chapter: from a common start CTA's combined points are ATC's iterates.
CTA_IS_ATC = Identity(
    "cta_atc.mixed_cta_equals_atc",
    "theorem",
    "(W x I) F_CTA(k) = F_ATC(k) at every step from a common theta_0: CTA's "
    "combined points are ATC's iterates (closed forms)",
    "cta-side-by-side",
    "CTA's combined points are ATC's iterates",
)
