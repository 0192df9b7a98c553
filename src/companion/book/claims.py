"""Claims that several chapters record the same way, written once.

The algorithm chapters (DGD, ATC, CTA) each check the same three things about their
algorithm: the closed form is exact for the linearized network, it is close for the real
network, and every agent reaches the centralized limit.
"""

from __future__ import annotations

from companion.book import report
from companion.experiments import Comparison
from companion.limits import Approach

EXACT = 1e-10  # float64 closed form against linearized training
LIMIT = 1e-8  # rounding of 20-40 squarings of a matrix conditioned like K
NETWORK = 0.1  # loose: relative L2 error of a loss curve dominated by its first steps


def algorithm_chapter(
    algorithm: str,
    *,
    linearized: Comparison,
    network: Comparison,
    approach: Approach,
    width: int,
    doublings: int,
    sections: dict[str, str],
) -> dict[str, dict]:
    """Records ``<algorithm>.linearized_max_rel_err``, ``.network_mean_loss_rel_err`` and
    ``.limit_rel_err``, prints their verdicts, and returns the entries.

    ``sections`` maps ``"training"`` and ``"limit"`` to the labels of the chapter sections
    that establish them.
    """
    name = algorithm.upper()
    limit = float(approach.worst[-1])
    entries = {
        "exact": report.record(
            f"{algorithm}.linearized_max_rel_err",
            linearized.max_rel_err,
            bound=EXACT,
            statement=f"{name} closed form vs training of the linearized MLP: worst relative "
            "error of per-agent losses and predictions",
            paper="closed-form dynamics of the linearized network",
            section=sections["training"],
        ),
        "network": report.record(
            f"{algorithm}.network_mean_loss_rel_err",
            network.mean_loss_error,
            bound=NETWORK,
            statement=f"{name} closed form vs training of the real MLP (width {width}): "
            "relative L2 error of the mean-local-loss curve",
            paper="the closed form describes wide networks",
            section=sections["training"],
        ),
        "limit": report.record(
            f"{algorithm}.limit_rel_err",
            limit,
            bound=LIMIT,
            statement=f"{name} at step 2**{doublings}: worst relative gap of any agent to "
            "interpolation, to centralized NTK regression on test inputs and to the "
            "minimum norm",
            section=sections["limit"],
        ),
    }
    print(f"linearized exact (< {EXACT:g}): {linearized.max_rel_err < EXACT}")
    print(f"network error below {NETWORK:g}: {network.mean_loss_error < NETWORK}")
    print(f"limit reached (< {LIMIT:g}): {limit < LIMIT}")
    return entries
