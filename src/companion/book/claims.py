"""Claims that several chapters record the same way, written once.

The algorithm chapters (DGD, ATC, CTA) each check the same things about their algorithm:
the closed form is exact for the linearized network, close for the real network over
several initializations (and closer than a deliberately wrong prediction), and every agent
reaches the centralized limit.
"""

from __future__ import annotations

from companion.book import report
from companion.experiments import Comparison, SeedRuns
from companion.limits import Approach

EXACT = 1e-10  # float64 closed form against linearized training
LIMIT = 1e-8  # rounding of 20-40 squarings of a matrix conditioned like K
# Agreement with the real network: relative, on the median over seeds. The controls show
# what a 20% error in the step size gives on the same metrics (0.3 to 0.7 in the book's
# settings), so a bound of 0.15 asks the closed form to be clearly better than that.
AGREEMENT = 0.15


def network_agreement(
    prefix: str, seeds: SeedRuns, *, setting: str, section: str, paper: str = ""
) -> dict[str, dict]:
    """Records ``<prefix>.final_loss_rel_err`` and ``<prefix>.log_loss_gap``: medians over
    seeds, each with the step-size control, and prints their verdicts."""
    control = f"the closed form at {seeds.control_factor:g} times the trained step size"
    entries = {}
    for metric, words in (
        ("final_loss_rel_err", "relative error of the final global loss"),
        ("log_loss_gap", "largest |log ratio| of the global-loss curves"),
    ):
        value = seeds.median(metric)
        entries[metric] = report.record(
            f"{prefix}.{metric}",
            value,
            kind="empirical",
            bound=AGREEMENT,
            control_value=seeds.median(metric, control=True),
            control=control,
            statement=f"{setting}: {words}, closed form against the trained network, median "
            f"over {len(seeds.seeds)} initializations",
            paper=paper,
            section=section,
        )
        print(
            f"{metric} below {AGREEMENT:g} (median): {value < AGREEMENT}, and the control "
            f"fails: {not entries[metric]['control_passed']}"
        )
    return entries


def algorithm_chapter(
    algorithm: str,
    *,
    linearized: Comparison,
    seeds: SeedRuns,
    approach: Approach,
    width: int,
    doublings: int,
    sections: dict[str, str],
) -> dict[str, dict]:
    """Records ``<algorithm>.linearized_max_rel_err`` (exact), the network agreement
    (:func:`network_agreement`) and ``<algorithm>.limit_rel_err`` (theorem), prints their
    verdicts, and returns the entries.

    ``sections`` maps ``"training"``, ``"network"`` and ``"limit"`` to the labels of the
    chapter sections that establish them.
    """
    name = algorithm.upper()
    limit = float(approach.worst[-1])
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
        seeds,
        setting=f"{name} on the cycle, width {width}",
        section=sections["network"],
        paper="the closed form describes the training of wide networks",
    )
