"""companion.cost: operation counts, slope fits and estimates (no timing assertions)."""

from __future__ import annotations

import numpy as np
import pytest

from companion import cost


def test_operation_counts_have_the_stated_exponents():
    ntk = [cost.operations("ntk", n=n, width=64) for n in (1000, 2000)]
    assert cost.loglog_slope([1000, 2000], ntk) == pytest.approx(2.0, abs=0.05)
    jac = [cost.operations("ntk_jacobian", n=100, width=w) for w in (4096, 8192)]
    assert cost.loglog_slope([4096, 8192], jac) == pytest.approx(2.0, abs=0.01)
    # own-row gradients (6 n P) plus every agent's recording forward pass (2 Q n P)
    train = [cost.operations("training", n=48, num_agents=q) for q in (1, 1000)]
    assert train[1] / train[0] == pytest.approx((6 + 2000) / 8)


def test_parameters_match_the_model():
    problem, _ = cost.setup(6, num_agents=3, width=16)
    leaves = [np.size(leaf) for layer in problem.params for leaf in layer if leaf is not None]
    assert sum(leaves) == cost.mlp_parameters(16, 3, 64, 10)


def test_estimate_scales_with_rates():
    base = cost.estimate({"ntk": 1e-9, "closed_form": 1e-9}, n=100, num_agents=4, width=256)
    double = cost.estimate({"ntk": 2e-9, "closed_form": 2e-9}, n=100, num_agents=4, width=256)
    assert double["seconds"] == pytest.approx(2 * base["seconds"])
    assert double["gigabytes"] == base["gigabytes"]


@pytest.mark.bad_input
def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown stage"):
        cost.operations("nope", n=1)
    with pytest.raises(ValueError, match="two distinct"):
        cost.loglog_slope([1, 1], [1, 2])
