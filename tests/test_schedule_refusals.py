"""Where only one fixed mixing matrix is supported, a schedule is refused with a ValueError
that names the fix (not a TypeError from deep inside)."""

import numpy as np
import pytest

import companion.sharded as sharded
from companion import graphs, infinite, schedules
from companion.problem import Problem

pytestmark = pytest.mark.bad_input


def _problem() -> Problem:
    return Problem(
        targets=np.ones((4, 1)),
        partition=[np.array([i]) for i in range(4)],
        kernel=np.eye(4),
        f0=np.zeros((4, 1)),
    )


SCHEDULE = schedules.one_peer_exponential(4)


@pytest.mark.parametrize(
    ("call", "where", "fix"),
    [
        (
            lambda: sharded.train(_problem(), "dgd", SCHEDULE, lr=0.1, steps=3, devices=1),
            "companion.sharded.train",
            "run it on one device with companion.simulate.train",
        ),
        (
            lambda: sharded.closed_form(_problem(), "dgd", SCHEDULE, lr=0.1, devices=1),
            "companion.sharded.closed_form",
            "run it on one device with companion.simulate.train",
        ),
        (
            lambda: infinite.closed_form(_problem(), "atc", SCHEDULE, lr=0.1).steps(3),
            "companion.infinite.closed_form",
            "companion.infinite.analytic_problem",
        ),
    ],
    ids=["sharded.train", "sharded.closed_form", "infinite.closed_form"],
)
def test_a_schedule_is_refused_where_one_matrix_is_needed(call, where, fix):
    with pytest.raises(ValueError, match=rf"{where} takes one fixed mixing matrix, got the "
                       r"schedule 'one-peer exponential': .*" + fix):  # fmt: skip
        call()


def test_the_mixing_validator_refuses_what_is_not_a_matrix_of_numbers():
    with pytest.raises(ValueError, match=r"must be a Q x Q matrix of numbers, got dict"):
        graphs.validate_mixing({"w": 1})
