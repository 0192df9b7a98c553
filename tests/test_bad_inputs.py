"""Wrong inputs fail at the door with a message that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from companion import dynamics, simulate
from companion.problem import Problem

N, C = 6, 2
PARTITION = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5])]
MIXING = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.25, 0.25, 0.5]])


def good() -> dict:
    rng = np.random.default_rng(0)
    root = rng.normal(size=(N * C, N * C))
    return dict(
        kernel=root @ root.T / (N * C),
        targets=np.eye(C)[rng.integers(0, C, N)],
        partition=PARTITION,
        mixing=MIXING,
        lr=0.1,
        steps=3,
        f0=np.zeros((N, C)),
    )


def with_entry(array, index, value):
    array = np.array(array, dtype=float)
    array[index] = value
    return array


CASES = {
    "unknown algorithm": ({"algorithm": "sgd"}, r"unknown algorithm 'sgd': use one of 'dgd'"),
    "row not stochastic": (
        {"mixing": with_entry(MIXING, (0, 0), 0.4)},
        r"row 0 of mixing sums to 0\.9, not 1 \(tolerance 1e-10\)",
    ),
    "column not stochastic": (
        {"mixing": np.array([[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]])},
        r"column 1 of mixing sums to 1\.5",
    ),
    "negative weight": (
        {"mixing": np.array([[1.2, -0.1, -0.1], [-0.1, 0.6, 0.5], [-0.1, 0.5, 0.6]])},
        r"mixing\[0, 1\] = -0\.1 is negative",
    ),
    "mixing size": ({"mixing": np.eye(2)}, r"mixing is 2 x 2 but the problem has 3 agents"),
    "mixing not square": ({"mixing": np.ones((3, 2)) / 2}, r"square Q x Q matrix"),
    "mixing nan": (
        {"mixing": with_entry(MIXING, (1, 2), np.nan)},
        r"mixing has 1 non-finite entries, first at \[1, 2\]",
    ),
    "index out of range": (
        {"partition": [np.array([0, 1, 2]), np.array([3]), np.array([4, 9])]},
        r"partition\[2\] index 9 is out of range for 6 training rows",
    ),
    "negative index": (
        {"partition": [np.array([0, 1, -1]), np.array([3]), np.array([4, 5])]},
        r"partition\[0\] index -1 is out of range",
    ),
    "overlap": (
        {"partition": [np.array([0, 1, 2]), np.array([2]), np.array([4, 5])]},
        r"row 2 is in both partition\[0\] and partition\[1\]: agents must hold disjoint rows",
    ),
    "empty agent": (
        {"partition": [np.array([0, 1, 2]), np.array([], dtype=int), np.array([4, 5])]},
        r"partition\[1\] has shape \(0,\): every agent needs a non-empty",
    ),
    "duplicate index": (
        {"partition": [np.array([0, 1, 1]), np.array([3]), np.array([4, 5])]},
        r"partition\[0\] lists row 1 more than once",
    ),
    "float indices": (
        {"partition": [np.array([0.0, 1.0]), np.array([3]), np.array([4, 5])]},
        r"partition\[0\] has dtype float64: pass integer row indices",
    ),
    "kernel shape": ({"kernel": np.eye(10)}, r"kernel has shape \(10, 10\), expected \(12, 12\)"),
    "kernel not finite": (
        {"kernel": with_entry(np.eye(12), (3, 4), np.inf)},
        r"kernel has 1 non-finite entries, first at \[3, 4\]",
    ),
    "kernel not symmetric": (
        {"kernel": with_entry(np.eye(12), (0, 5), 0.5)},
        r"kernel is not symmetric: \|K\[0, 5\] - K\[5, 0\]\| = 0\.5",
    ),
    "targets 1-D": ({"targets": np.zeros(N)}, r"targets must be a 2-D array of shape \(n, C\)"),
    "f0 shape": ({"f0": np.zeros((N, 3))}, r"f0 has shape \(6, 3\), expected \(6, 2\)"),
    "zero lr": ({"lr": 0.0}, r"lr must be a positive finite number, got 0\.0"),
    "negative lr": ({"lr": -0.1}, r"lr must be a positive finite number, got -0\.1"),
    "nan lr": ({"lr": float("nan")}, r"lr must be a positive finite number, got nan"),
    "zero steps": ({"steps": 0}, r"steps must be a positive integer \(number of updates\), got 0"),
    "fractional steps": ({"steps": 2.5}, r"steps must be a positive integer"),
    "unknown form": ({"form": "magic"}, r"unknown form 'magic': use 'dual' or 'primal'"),
    "test kernel without f0_test": (
        {"kernel_test": np.zeros((4, 12))},
        r"test predictions need both kernel_test and f0_test",
    ),
    "unstable lr, strict": ({"lr": 50.0, "strict": True}, r"lr=50 exceeds the largest stable"),
}


def closed_form_run(**args):
    """Build the problem, the closed form and its trajectory from one dict of arguments."""
    algorithm = args.pop("algorithm", "dgd")
    mixing, lr, steps = args.pop("mixing"), args.pop("lr"), args.pop("steps")
    strict, form = args.pop("strict", False), args.pop("form", "dual")
    problem = Problem(**args)
    return dynamics.closed_form(problem, algorithm, mixing, lr=lr, strict=strict).steps(
        steps, form=form
    )


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_closed_form_rejects(case):
    change, message = CASES[case]
    with pytest.raises(ValueError, match=message):
        closed_form_run(**(good() | change))


def test_unstable_lr_warns_by_default():
    with pytest.warns(UserWarning, match=r"lr=50 exceeds the largest stable step size [\d.]+ of"):
        closed_form_run(**(good() | {"lr": 50.0, "algorithm": "atc"}))


def problem() -> Problem:
    args = good()
    for key in ("mixing", "lr", "steps"):
        del args[key]
    return Problem(**args)


def test_at_rejects_negative_steps():
    form = dynamics.closed_form(problem(), "cta", MIXING, lr=0.1)
    with pytest.raises(ValueError, match=r"steps must be a 1-D array of step indices >= 0"):
        form.at([3, -1])


def test_flow_rejects_negative_times():
    form = dynamics.closed_form(problem(), "dgd", MIXING, lr=0.1)
    with pytest.raises(ValueError, match=r"times must be a 1-D array of finite times >= 0"):
        form.flow([-1.0])


def test_primal_needs_a_model():
    form = dynamics.closed_form(problem(), "dgd", MIXING, lr=0.1)
    with pytest.raises(ValueError, match="the Jacobian needs a model, params and inputs"):
        form.steps(3, form="primal")


def train_problem(**change) -> Problem:
    x = np.random.default_rng(1).normal(size=(N, 3))
    args = dict(
        inputs=x,
        targets=good()["targets"],
        partition=PARTITION,
        apply_fn=lambda p, x: x @ p["a"] + p["b"][None, :],
        params={"a": np.zeros((3, C)), "b": np.zeros(C)},
    )
    return Problem(**(args | change))


def test_problem_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match=r"inputs has shape \(5, 3\), expected \(6, ...\)"):
        train_problem(inputs=np.ones((5, 3)))


def test_problem_needs_a_kernel_or_a_model():
    with pytest.raises(ValueError, match="pass kernel= \\(the NTK at theta_0\\), or model="):
        Problem(targets=np.ones((2, 1)), partition=[np.arange(2)])


def test_training_needs_a_model():
    with pytest.raises(ValueError, match="training needs a problem with inputs, a model"):
        simulate.train(problem(), "dgd", MIXING, lr=0.1, steps=3)


def test_train_rejects_bad_mixing_like_the_closed_form():
    bad = with_entry(MIXING, (2, 2), 0.6)
    with pytest.raises(ValueError, match=r"row 2 of mixing sums to 1\.1"):
        simulate.train(train_problem(), "atc", bad, lr=0.1, steps=3, progress=False)


def test_diverging_run_names_step_algorithm_lr_and_bound():
    message = (
        r"dgd diverged: values are not finite at step \d+ with lr=40; the largest stable step "
        r"size of the linearized dynamics on this problem is [\d.]+ "
        r"\(companion.stability.max_stable_lr\)"
    )
    with pytest.raises(simulate.DivergenceError, match=message) as error:
        simulate.train(
            train_problem(), "dgd", MIXING, lr=40.0, steps=2000, progress=False, check=False
        )
    assert isinstance(error.value, ValueError)


def test_train_checks_lr_against_the_kernel():
    with pytest.raises(ValueError, match=r"lr=40 exceeds the largest stable step size"):
        simulate.train(train_problem(), "cta", MIXING, lr=40.0, steps=3, strict=True)
