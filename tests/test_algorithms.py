"""The algorithm table is the only definition of DGD, ATC and CTA, and every consumer of it
(the dual and primal closed forms, training, the iteration matrix and the power routine
behind the limits) computes the same trajectory from it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from companion import algorithms, dynamics, linear, simulate, stability
from companion.trajectory import relative_error

STEPS = 12
SOURCE = Path(algorithms.__file__).parent


@pytest.mark.parametrize("name", list(algorithms.ALGORITHMS))
def test_every_consumer_agrees(affine_problem, mixing_for, name):
    p, mixing, lr = affine_problem, mixing_for("star"), 0.2
    form = dynamics.closed_form(p, name, mixing, lr=lr)
    dual, primal = form.steps(STEPS), form.steps(STEPS, form="primal")
    trained = simulate.train(p, name, mixing, lr=lr, steps=STEPS, progress=False)
    matrix, offset = linear.iteration_map(p, name, mixing, lr, space="predictions")
    stepped = [np.tile(p.f0.ravel(), p.num_agents)]
    for _ in range(STEPS):
        stepped.append(matrix @ stepped[-1] + offset)
    alpha = linear.powers(form.matrix, form.offset, np.arange(STEPS + 1))
    powered = alpha.reshape(STEPS + 1, p.num_agents, -1) @ p.kernel + p.f0.ravel()
    reference = dual.predictions.reshape(STEPS + 1, -1)
    for other in (primal.predictions, trained.predictions, np.array(stepped), powered):
        assert relative_error(np.reshape(other, reference.shape), reference) <= 1e-10
    np.testing.assert_array_equal(stability.iteration_matrix(p, name, mixing, lr), matrix)


def test_the_order_is_the_algorithm():
    orders = {a.name: a.order for a in algorithms.ALGORITHMS.values()}
    assert orders == {
        "dgd": ("gradient", "mix", "step"),
        "atc": ("gradient", "step", "mix"),
        "cta": ("mix", "gradient", "step"),
    }
    trace = []
    algorithms.CTA.update(
        0,
        mix=lambda s: trace.append("mix") or s,
        gradient=lambda s: trace.append("gradient"),
        step=lambda s, g: trace.append("step") or s,
    )
    assert trace == ["mix", "gradient", "step"]


# Asking which algorithm one has, outside the table: a name compared with ==/!=, an entry
# compared by identity or equality, or its order inspected.
ASKS = re.compile(
    r"""[=!]=\s*["'](dgd|atc|cta)["']|["'](dgd|atc|cta)["']\s*[=!]="""
    r"""|(\bis(\s+not)?|[=!]=)\s*algorithms\.(DGD|ATC|CTA)\b|[=!]=\s*(DGD|ATC|CTA)\b"""
    r"""|\bif\b.*\bis(\s+not)?\s+(DGD|ATC|CTA)\b"""
    r"""|\.order\s*(\[|==|!=)"""
)


def _askers(files) -> list[str]:
    return [
        f"{path.name}:{number}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ASKS.search(line)
    ]


def test_no_other_module_or_chapter_asks_which_algorithm_it_has():
    chapters = sorted((SOURCE.parents[1] / "book").glob("[0-9][0-9]_*.py"))
    package = [p for p in SOURCE.rglob("*.py") if p.name != "algorithms.py"]
    assert not _askers([*package, *chapters])


@pytest.mark.parametrize(
    "line",
    [
        'if alg != "dgd":',
        "if algorithm is algorithms.DGD:",
        "low = 2 if algorithm is not DGD else 1",
        "if algorithm == algorithms.CTA:",
        'if algorithm.order[0] != "gradient":',
    ],
)
def test_the_guard_catches_every_way_of_asking(tmp_path, line):
    source = tmp_path / "module.py"
    source.write_text(f"{line}\n")
    assert _askers([source]) == ["module.py:1"]


def test_each_entry_states_its_stability_theory_and_the_order_implies_it():
    for algorithm in algorithms.ALGORITHMS.values():
        gradient, mix, step = (algorithm.order.index(op) for op in ("gradient", "mix", "step"))
        # the gradient term escapes W only when the mix sits between gradient and step
        assert algorithm.theory.mixed_gradient is not (gradient < mix < step)
        assert algorithm.theory.bound_needs_symmetric is not algorithm.theory.mixed_gradient
