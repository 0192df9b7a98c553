"""The problem module's public names, after its builders moved to their own file."""

import subprocess
import sys

import numpy as np

from companion import _problem_builders, models, problem


def test_builders_are_reexported_by_the_problem_module():
    assert problem.digits is _problem_builders.digits
    assert problem.from_dataset is _problem_builders.from_dataset
    assert {"Problem", "digits", "from_dataset"} <= set(problem.__all__)


def test_digits_builds_the_same_problem_as_from_dataset_on_its_split():
    built = problem.digits(models.affine(10), num_agents=2, samples_per_agent=3, seed=1)
    assert isinstance(built, problem.Problem)
    assert [len(r) for r in built.partition] == [3, 3]
    again = problem.digits(models.affine(10), num_agents=2, samples_per_agent=3, seed=1)
    np.testing.assert_array_equal(built.kernel, again.kernel)


def test_the_builders_module_imports_first_without_a_cycle():
    code = (
        "import companion._problem_builders as b; from companion.problem import Problem, digits; "
        "assert digits is b.digits"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
