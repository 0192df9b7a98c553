"""The single-agent gradient flow against neural-tangents' gradient_descent_mse."""

from __future__ import annotations

import neural_tangents as nt
import numpy as np
import pytest

from companion import dynamics, models, peer
from companion import problem as problem_lib
from companion.trajectory import relative_error


def one_agent(num_agents: int = 1):
    return problem_lib.digits(
        models.mlp(16, 1, 10), num_agents=num_agents, samples_per_agent=8, n_test=4
    )


def test_flow_matches_neural_tangents_once_time_is_scaled_by_the_outputs():
    p = one_agent()
    form = dynamics.closed_form(p, "dgd", np.eye(1), lr=0.5 / p.curvature)
    times = np.linspace(0.0, 40 * form.lr, 5)
    assert peer.flow_max_rel_err(form, times) < 1e-8
    # without the factor C in time, neural-tangents' flow is another flow
    n, c = p.f0.shape
    kernel = p.kernel.reshape(n, c, n, c).transpose(0, 2, 1, 3)
    predict = nt.predict.gradient_descent_mse(kernel, p.targets, trace_axes=())
    unscaled = np.asarray(predict(times, p.f0))
    assert relative_error(form.flow(times).predictions[:, 0], unscaled) > 1e-3


@pytest.mark.bad_input
def test_flow_check_refuses_several_agents():
    p = one_agent(2)
    form = dynamics.closed_form(p, "dgd", np.full((2, 2), 0.5), lr=0.5 / p.curvature)
    with pytest.raises(ValueError, match="one agent"):
        peer.flow_max_rel_err(form, [0.0, 1.0])
