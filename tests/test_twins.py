"""One network's own-kernel closed form against its infinitely wide twin: the twin is the
infinite-width mean plus what the draw drives, the metric prefers the own kernel where it
is exact (linearized training) and the twin where the own kernel is deliberately broken
(another seed's kernel)."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from companion import dynamics, infinite, models, simulate, twins
from companion import problem as problem_lib
from companion.problem import Problem

MIXING = np.full((2, 2), 0.5)
SEEDS = 5
STEPS = 40


@functools.cache
def setting(linearize: bool):
    """Five networks of width 32 on a small digits split, trained (or linearized) by ATC,
    with the analytic problem and a safe step size."""
    model = models.mlp(32, 1, 10)
    split = dict(num_agents=2, samples_per_agent=6, n_test=4, seed=3)
    problems = [problem_lib.digits(model, init_seed=s, **split) for s in range(SEEDS)]
    analytic = infinite.analytic_problem(problems[0])
    lr = 0.3 / analytic.curvature
    runs = simulate.train_ensemble(
        problems[0], [p.params for p in problems], "atc", MIXING, lr=lr, steps=STEPS,
        linearize=linearize, save_at=simulate.SaveAt(every=5), progress=False,
    )  # fmt: skip
    return problems, runs, analytic, lr


def borrowed(problem: Problem, other: Problem) -> Problem:
    """``problem`` with ``other``'s empirical kernels and its own initial outputs."""
    return Problem(
        targets=problem.targets,
        partition=problem.partition,
        kernel=other.kernel,
        f0=problem.f0,
        targets_test=problem.targets_test,
        kernel_test=other.kernel_test,
        f0_test=problem.f0_test,
    )


def test_twin_is_the_infinite_width_mean_plus_what_the_draw_drives():
    problems, runs, analytic, lr = setting(True)
    form = infinite.closed_form(problems[0], "atc", MIXING, lr=lr)
    twin = dynamics.closed_form(twins.twin_problem(problems[1], analytic), "atc", MIXING, lr=lr)
    saved, n = runs[1].saved_steps, problems[1].num_samples
    drive = form.paired([runs[1]])[0]  # (saved steps, Q, N, C), from run 1's own f0
    expected = form.steps(STEPS).mean.predictions[saved] + drive[..., :n, :]
    assert np.allclose(twin.steps(STEPS).predictions[saved], expected, atol=1e-10)
    assert not np.allclose(drive, 0)  # the draw's offset is there to be tracked


def test_own_kernel_is_exact_under_linearized_training_and_beats_the_twin():
    problems, runs, analytic, lr = setting(True)
    result = twins.single_network(
        problems, runs, "atc", MIXING, lr=lr, analytic=analytic, horizons=[5, STEPS]
    )
    assert result.own.max() < 1e-8 and result.twin.min() > 1e-3
    margin = result.margin()
    assert margin.beats and margin.margin > 0
    assert result.within(np.log(1.05)) == 1.0


def test_another_seeds_kernel_loses_to_the_twin():
    problems, runs, analytic, lr = setting(False)
    swapped = [borrowed(p, problems[(s + 1) % SEEDS]) for s, p in enumerate(problems)]
    honest, broken = (
        twins.single_network(ps, runs, "atc", MIXING, lr=lr, analytic=analytic, horizons=[STEPS])
        for ps in (problems, swapped)
    )
    assert honest.margin().beats
    assert not broken.margin().beats and broken.margin().margin < 0
    assert np.array_equal(honest.twin, broken.twin)  # the rival does not depend on the kernel


def test_combine_stacks_settings_and_gap_maps_follow():
    problems, runs, analytic, lr = setting(True)
    part = twins.single_network(
        problems[:2], runs[:2], "atc", MIXING, lr=lr, analytic=analytic, horizons=[5, STEPS]
    )
    both = twins.combine([part, part])
    assert both.own.shape == (2, 2) and both.gap_map("twin").shape == (2, 2)
    assert both.within_margin(np.log(1.05)).units == 2


@pytest.mark.bad_input
def test_twin_and_single_network_refuse_mismatched_inputs():
    problems, runs, analytic, lr = setting(True)
    other = Problem(targets=np.ones((2, 1)), partition=[np.arange(2)], kernel=np.eye(2),
                    f0=np.zeros((2, 1)))  # fmt: skip
    with pytest.raises(ValueError, match="analytic problem of the same data"):
        twins.twin_problem(problems[0], other)
    with pytest.raises(ValueError, match="one training run per problem"):
        twins.single_network(
            problems[:3], runs[:2], "atc", MIXING, lr=lr, analytic=analytic, horizons=[5]
        )
    part = twins.single_network(
        problems[:2], runs[:2], "atc", MIXING, lr=lr, analytic=analytic, horizons=[5]
    )
    with pytest.raises(ValueError, match="which must be 'own' or 'twin'"):
        part.gap_map("mean")
    longer = twins.single_network(
        problems[:2], runs[:2], "atc", MIXING, lr=lr, analytic=analytic, horizons=[5, 10]
    )
    with pytest.raises(ValueError, match="same seeds and horizons"):
        twins.combine([part, longer])


def test_linearization_gaps_are_relative_distances_per_saved_step():
    p = Problem(targets=np.ones((3, 2)), partition=[np.arange(3)], kernel=np.eye(6),
                f0=np.full((3, 2), 0.5))  # fmt: skip
    lin = dynamics.closed_form(p, "dgd", np.eye(1), lr=0.5).steps(3)
    net = dataclasses.replace(lin, predictions=lin.predictions * 1.25)
    gaps = twins.linearization_gaps(net, lin)
    assert list(gaps) == ["training inputs"]  # no test side
    assert np.allclose(gaps["training inputs"], 0.25)
    table = twins.linearization_table(net, lin)
    assert table.loc["network", "max prediction gap"] == pytest.approx(0.25)
    assert table.loc["linearized", "final training loss"] == lin.mean_global_loss[-1]


def test_linearization_gaps_grow_along_real_training():
    problems, runs, _, lr = setting(False)
    linearized = setting(True)[1]
    gaps = twins.linearization_gaps(runs[0], linearized[0])
    assert set(gaps) == {"training inputs", "test inputs"}
    assert gaps["training inputs"][0] < 1e-12 < gaps["training inputs"][-1]


def test_by_width_is_single_network_per_setting_and_its_tables_reduce_it():
    problems, runs, analytic, lr = setting(False)
    settings = [("pair", "atc"), ("again", "atc")]
    results = twins.by_width(
        {32: problems}, {(32, g, a): runs for g, a in settings},
        {"pair": MIXING, "again": MIXING}, settings, lr=lr, analytic=analytic,
        horizons=[5, STEPS], seeds=3,
    )  # fmt: skip
    alone = twins.single_network(
        problems[:3], runs[:3], "atc", MIXING, lr=lr, analytic=analytic, horizons=[5, STEPS]
    )
    assert np.array_equal(results[32].own, np.concatenate([alone.own, alone.own]))
    maps = twins.gap_maps(results, settings)
    assert maps["again", "atc"].shape == (1, 2)
    assert np.array_equal(maps["pair", "atc"][0], alone.gap_map()[0])
    assert twins.fractions(results, 0.05, "twin") == {32: alone.within(0.05, "twin")}
    table = twins.margin_table({32: results[32].margin()})
    assert list(table.columns) == ["own kernel", "infinite-width twin", "margin", "interval"]
    assert table.loc[32, "margin"] == results[32].margin().margin
    assert twins.horizons(runs[0].saved_steps, 3).tolist() == [5, 20, 40]


@pytest.mark.bad_input
def test_new_twin_tables_refuse_bad_inputs():
    problems, runs, analytic, lr = setting(True)
    lin = dynamics.closed_form(problems[0], "atc", MIXING, lr=lr).steps(3)
    with pytest.raises(ValueError, match="same steps"):
        twins.linearization_gaps(runs[0], lin)
    with pytest.raises(ValueError, match="at least 2 saved steps"):
        twins.horizons([0], 3)
    result = twins.single_network(
        problems, runs, "atc", MIXING, lr=lr, analytic=analytic, horizons=[STEPS]
    )
    with pytest.raises(ValueError, match="one setting per row"):
        twins.gap_maps({32: result}, [("a", "atc"), ("b", "atc")])
    with pytest.raises(ValueError, match="at least one width"):
        twins.margin_table({})
