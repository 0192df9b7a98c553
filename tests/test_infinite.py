"""The infinite-width closed form against sampling, the analytic NNGP kernel, and the
vmapped seed ensembles against one-at-a-time training."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from companion import analytic, dynamics, ensembles, infinite, metrics, models, simulate
from companion.problem import Problem

MIXING = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.25, 0.25, 0.5]])
PARTITION = [np.array([0, 1]), np.array([2]), np.array([3, 4])]


def small_problem(model=None, params=None) -> Problem:
    """Five training and two test inputs on three agents, two outputs."""
    rng = np.random.default_rng(1)
    x, x_test = rng.normal(size=(5, 3)), rng.normal(size=(2, 3))
    targets = rng.normal(size=(5, 2))
    return Problem(
        targets=targets,
        partition=PARTITION,
        inputs=x,
        model=model or models.mlp(64, 1, 2),
        params=params,
        kernel=np.eye(10),
        f0=np.zeros((5, 2)),
        inputs_test=x_test,
        targets_test=rng.normal(size=(2, 2)),
        kernel_test=np.zeros((4, 10)),
        f0_test=np.zeros((2, 2)),
    )


def test_nngp_is_the_stax_kernel_in_sample_major_layout():
    model, x = models.mlp(32, 2, 3), np.random.default_rng(0).normal(size=(4, 5))
    full = analytic.nngp(model, x, x[:2])
    scalar = np.asarray(model.kernel_fn(x, x[:2], "nngp"))
    assert full.shape == (12, 6)
    assert np.allclose(full.reshape(4, 3, 2, 3), np.einsum("ij,cd->icjd", scalar, np.eye(3)))
    assert np.allclose(analytic.nngp(model, x, out_dim=1), model.kernel_fn(x, x, "nngp"))


@pytest.mark.parametrize("algorithm", ["dgd", "atc", "cta"])
def test_moments_agree_with_monte_carlo_over_nngp_draws(algorithm):
    """Draw f0 from the NNGP, run the linear recursion (the dual closed form with the
    analytic NTK) from each draw, and compare the sample moments with the prediction
    within 4 standard errors."""
    problem, steps, draws = small_problem(), 6, 400
    form = infinite.closed_form(problem, algorithm, MIXING, lr=0.3)
    moments = form.steps(steps)
    mean_problem = infinite.analytic_problem(problem)
    sigma = analytic.nngp(problem.model, np.concatenate([problem.inputs, problem.inputs_test]))
    rng = np.random.default_rng(2)
    z = rng.multivariate_normal(np.zeros(len(sigma)), sigma, size=draws, method="eigh")
    runs = []
    for sample in z.reshape(draws, 7, 2):
        drawn = Problem(
            **{
                k: getattr(mean_problem, k)
                for k in ("targets", "partition", "kernel", "targets_test", "kernel_test")
            },
            f0=sample[:5],
            f0_test=sample[5:],
        )
        runs.append(dynamics.closed_form(drawn, algorithm, MIXING, lr=0.3).steps(steps))
    preds = np.stack([np.concatenate([r.predictions, r.test_predictions], 2) for r in runs])
    mean = np.concatenate([moments.mean.predictions, moments.mean.test_predictions], 2)
    variance = np.concatenate([moments.variance, moments.test_variance], 2)[..., None]
    sd = np.sqrt(np.maximum(variance, 1e-300))
    later = slice(1, None)  # at step 0 every agent holds the same draw
    assert np.all(np.abs(preds.mean(0) - mean)[later] <= 4 * sd[later] / np.sqrt(draws))
    sample_var = preds.var(0, ddof=1)
    assert np.all(np.abs(sample_var - variance)[later] <= 4 * variance[later] * np.sqrt(2 / draws))
    for name in ("local_loss", "global_loss", "average_loss", "test_loss"):
        losses = np.stack([getattr(r, name) for r in runs])
        error = np.abs(losses.mean(0) - getattr(moments.expected, name))
        assert np.all(error <= 4 * losses.std(0, ddof=1) / np.sqrt(draws)), name
    cov = form.covariance([steps], joint=True)[0]  # (Q, N, Q, N), one output
    flat = preds[:, steps, :, :, 0].reshape(draws, -1)
    sample_cov = np.cov(flat, rowvar=False)
    predicted = cov.reshape(sample_cov.shape)
    diag = np.diag(predicted)
    se = np.sqrt((np.outer(diag, diag) + predicted**2) / draws)
    assert np.all(np.abs(sample_cov - predicted) <= 4 * se + 1e-12)


def test_mean_is_the_closed_form_from_zero_and_covariance_blocks_match_variances():
    form = infinite.closed_form(small_problem(), "atc", MIXING, lr=0.3)
    moments = form.steps(5)
    zero = dynamics.closed_form(infinite.analytic_problem(form.problem), "atc", MIXING, lr=0.3)
    assert np.array_equal(moments.mean.predictions, zero.steps(5).predictions)
    blocks = form.covariance([5, 2])
    assert np.allclose(np.diagonal(blocks[0], axis1=-2, axis2=-1)[:, :5], moments.variance[5])
    assert np.allclose(np.diagonal(blocks[1], axis1=-2, axis2=-1)[:, 5:], moments.test_variance[2])
    assert np.all(moments.expected.local_loss >= moments.mean.local_loss)


def test_paired_response_is_what_each_draw_drives_and_removes_its_spread():
    """An infinitely wide network (the dual closed form with the analytic NTK) started from
    its own initial outputs is the mean plus ``paired``: the control variate leaves no
    error of the mean and no floor, while the plain sample mean keeps both."""
    problem = small_problem()
    form = infinite.closed_form(problem, "dgd", MIXING, lr=0.3)
    moments, mean_problem = form.steps(4), infinite.analytic_problem(problem)
    shared = ("targets", "partition", "kernel", "targets_test", "kernel_test")
    rng, runs = np.random.default_rng(3), []
    for _ in range(3):
        z = rng.normal(size=(7, 2))
        drawn = Problem(**{k: getattr(mean_problem, k) for k in shared}, f0=z[:5], f0_test=z[5:])
        runs.append(dynamics.closed_form(drawn, "dgd", MIXING, lr=0.3).steps(4))
    drive = form.paired(runs)
    assert drive.shape == (3, 5, 3, 7, 2)
    mean = np.concatenate([moments.mean.predictions, moments.mean.test_predictions], 2)
    for run, driven in zip(runs, drive, strict=True):
        preds = np.concatenate([run.predictions, run.test_predictions], 2)
        assert np.allclose(preds, mean + driven, rtol=0, atol=1e-10)
    paired = ensembles.errors(moments, runs, drive)
    plain = ensembles.errors(moments, runs)
    assert paired.mean.max() < 1e-10 and paired.mean_floor.max() < 1e-10
    assert plain.mean[1:].min() > 1e-3 and plain.mean_floor[1:].min() > 1e-3
    assert np.array_equal(paired.variance, plain.variance)


@pytest.mark.bad_input
def test_paired_needs_step_zero_and_ensemble_errors_a_drive_of_the_runs_shape():
    problem = small_problem()
    form = infinite.closed_form(problem, "dgd", MIXING, lr=0.3)
    runs = [
        dynamics.closed_form(infinite.analytic_problem(problem), "dgd", MIXING, lr=0.3).at([2, 4])
    ] * 2
    with pytest.raises(ValueError, match="must save step 0"):
        form.paired(runs)
    with pytest.raises(ValueError, match=r"initial outputs must have shape \(7, m\)"):
        form.response(np.zeros((5, 2)), [1])
    moments = form.steps(4)
    runs = [moments.mean, moments.mean]
    with pytest.raises(ValueError, match="drive must have the runs' shape"):
        ensembles.errors(moments, runs, np.zeros((2, 5, 3, 5, 2)))


def test_ensemble_trains_each_initialization_as_train_does():
    model = models.mlp(16, 1, 2)
    starts = [model.init_fn(jax.random.PRNGKey(s), (-1, 3))[1] for s in range(3)]
    problem = small_problem(model, starts[0])
    together = simulate.train_ensemble(
        problem, starts, "cta", MIXING, lr=0.2, steps=7, progress=False
    )
    for params, run in zip(starts, together, strict=True):
        alone = simulate.train(
            small_problem(model, params), "cta", MIXING, lr=0.2, steps=7, progress=False
        )
        assert np.allclose(run.predictions, alone.predictions, rtol=1e-10, atol=1e-12)
        assert np.allclose(run.test_predictions, alone.test_predictions, rtol=1e-10, atol=1e-12)
        assert np.allclose(run.consensus_distance, alone.consensus_distance, atol=1e-12)


def test_ensemble_errors_sit_at_the_noise_floor_for_draws_of_the_prediction():
    form = infinite.closed_form(small_problem(), "dgd", MIXING, lr=0.3)
    moments = form.steps(4)
    exact = ensembles.errors(moments, [moments.expected, moments.expected])
    assert exact.median("mean") == 0.0 and exact.median("mean_floor") == 0.0


def test_log_loss_gap_until_is_the_running_maximum():
    form = infinite.closed_form(small_problem(), "dgd", MIXING, lr=0.3)
    a, b = form.steps(6).mean, form.steps(6).expected
    gaps = metrics.log_loss_gaps(a, b)
    assert np.allclose(
        metrics.log_loss_gap_until(a, b, [0, 3, 6]), np.maximum.accumulate(gaps)[[0, 3, 6]]
    )


# bad input


@pytest.mark.bad_input
def test_nngp_of_a_plain_function_names_the_supported_models():
    with pytest.raises(
        ValueError,
        match=r"analytic kernels exist only for the stax models .* "
        r"supported: companion\.models\.mlp",
    ):
        analytic.nngp(lambda p, x: x, np.ones((2, 3)))


@pytest.mark.bad_input
def test_infinite_width_needs_a_model():
    problem = Problem(
        targets=np.ones((2, 1)),
        partition=[np.array([0]), np.array([1])],
        kernel=np.eye(2),
        f0=np.zeros((2, 1)),
    )
    with pytest.raises(ValueError, match=r"needs a problem built from a model with inputs"):
        infinite.closed_form(problem, "dgd", np.full((2, 2), 0.5), lr=0.1)


@pytest.mark.bad_input
def test_infinite_width_refuses_the_standard_parameterization():
    problem = small_problem(models.mlp(8, 1, 2, parameterization="standard"))
    with pytest.raises(ValueError, match=r"uses the 'standard' parameterization, whose NTK grows"):
        infinite.closed_form(problem, "dgd", MIXING, lr=0.1)


@pytest.mark.bad_input
def test_covariance_refuses_bad_steps():
    form = infinite.closed_form(small_problem(), "dgd", MIXING, lr=0.3)
    with pytest.raises(ValueError, match=r"steps must be a 1-D array of step indices >= 0"):
        form.covariance([-1])


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("starts", "message"),
    [
        ([], r"initializations is empty: pass at least one parameter pytree"),
        ({"a": np.ones(1)}, r"initializations must be a list of parameter pytrees"),
        ([{"a": np.ones(1)}, {"a": np.ones(2)}], r"initializations differ in structure or leaf"),
    ],
    ids=["empty", "a single pytree", "different shapes"],
)
def test_train_ensemble_refuses_bad_initializations(starts, message):
    problem = Problem(
        targets=np.ones((2, 1)),
        partition=[np.array([0]), np.array([1])],
        inputs=np.ones((2, 1)),
        apply_fn=lambda p, x: x * p["a"][0],
        params={"a": np.ones(1)},
    )
    with pytest.raises(ValueError, match=message):
        simulate.train_ensemble(problem, starts, "dgd", np.full((2, 2), 0.5), lr=0.1, steps=2)


@pytest.mark.bad_input
def test_ensemble_errors_refuse_a_single_run_and_short_moments():
    form = infinite.closed_form(small_problem(), "dgd", MIXING, lr=0.3)
    short, long = form.steps(2), form.steps(4)
    with pytest.raises(ValueError, match=r"need at least 2 runs that saved the same steps"):
        ensembles.errors(short, [short.expected])
    with pytest.raises(ValueError, match=r"the moments stop at step 2"):
        ensembles.errors(short, [long.expected, long.expected])


@pytest.mark.bad_input
def test_log_loss_gap_until_refuses_unsaved_horizons():
    form = infinite.closed_form(small_problem(), "dgd", MIXING, lr=0.3)
    run = form.steps(3).mean
    with pytest.raises(ValueError, match=r"horizons \[7\] must be steps the run saved"):
        metrics.log_loss_gap_until(run, run, [7])
