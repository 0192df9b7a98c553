"""The primal (parameter) and dual (coefficient) runs of one affine map."""

from __future__ import annotations

import numpy as np
import pytest

from companion import dynamics, linear, models
from companion import problem as problem_lib


@pytest.fixture(scope="module")
def problem():
    return problem_lib.digits(models.affine(10), num_agents=3, samples_per_agent=2, n_test=4)


@pytest.mark.parametrize("algorithm", ["dgd", "atc", "cta"])
def test_primal_dual_gap_is_rounding(problem, algorithm):
    w = np.full((3, 3), 1 / 3)
    form = dynamics.closed_form(problem, algorithm, w, lr=0.5 / problem.curvature)
    assert linear.primal_dual_gap(form, form.steps(10)) < 1e-12


def test_primal_dual_gap_sees_a_different_step_size(problem):
    w = np.full((3, 3), 1 / 3)
    form = dynamics.closed_form(problem, "dgd", w, lr=0.5 / problem.curvature)
    other = dynamics.closed_form(problem, "dgd", w, lr=0.4 / problem.curvature)
    assert linear.primal_dual_gap(form, other.steps(10)) > 1e-3


@pytest.mark.bad_input
def test_primal_dual_gap_refuses_a_sparse_dual(problem):
    from companion.trajectory import SaveAt

    form = dynamics.closed_form(problem, "dgd", np.full((3, 3), 1 / 3), lr=0.1 / problem.curvature)
    sparse = form.steps(10, save_at=SaveAt(steps=(0, 5, 10)))
    with pytest.raises(ValueError, match="every step"):
        linear.primal_dual_gap(form, sparse)
