"""The flow gaps of the algorithm chapters: the claim and its control from one computation."""

from __future__ import annotations

import numpy as np
import pytest

from companion import discretization, dynamics


def _gap(problem, algorithm, mixing, eta, flow_lr, times):
    """The gap as computed before sharing: fresh closed forms, every step recorded."""
    steps = dynamics.closed_form(problem, algorithm, mixing, lr=eta).steps(
        int(np.rint(times[-1] / eta))
    )
    discrete = steps.predictions[np.rint(times / eta).astype(int)]
    flow = dynamics.closed_form(problem, algorithm, mixing, lr=flow_lr)
    flow = flow.flow([0.0, *times.tolist()]).predictions
    return np.linalg.norm(discrete - flow[1:]) / np.linalg.norm(flow[1:] - flow[:1])


@pytest.mark.parametrize("algorithm", ["dgd", "cta"])
def test_claim_and_control_equal_fresh_computations(mlp_problem, mixing_for, algorithm):
    mixing, lr, steps = mixing_for("cycle"), 0.2, 20
    gaps = discretization.flow_gaps(mlp_problem, algorithm, mixing, lr=lr, steps=steps, halvings=2)
    assert gaps.lrs == (0.2, 0.1, 0.05)
    times = np.arange(1, 11) * (steps // 10) * lr
    for eta in gaps.lrs:
        own = _gap(mlp_problem, algorithm, mixing, eta, eta, times)
        wrong = _gap(mlp_problem, algorithm, mixing, eta, lr, times)
        assert abs(gaps.own[eta] - own) <= 1e-12 * own
        assert abs(gaps.largest_flow[eta] - wrong) <= 1e-12 * wrong
    # the control pairs the largest step with its own flow, and the rest wrongly
    assert gaps.largest_flow[lr] == gaps.own[lr]
    assert gaps.largest_flow[gaps.lrs[-1]] > 2 * gaps.own[gaps.lrs[-1]]
