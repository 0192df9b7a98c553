"""Wrong inputs fail at the door with a message that names the problem and the fix."""

from __future__ import annotations

import jax
import jax.experimental
import numpy as np
import pytest

from companion import (
    analytic,
    cost,
    data,
    discretization,
    dynamics,
    experiments,
    graphs,
    limits,
    metrics,
    models,
    ntk,
    simulate,
    stability,
)
from companion import problem as problem_lib
from companion.problem import Problem

pytestmark = pytest.mark.bad_input

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


def _tiny() -> Problem:
    return Problem(
        targets=np.ones((4, 1)),
        partition=[np.array([0, 1]), np.array([2, 3])],
        kernel=np.eye(4),
        f0=np.zeros((4, 1)),
    )


HALF = np.full((2, 2), 0.5)


def _form(lr: float = 0.1, algorithm: str = "dgd"):
    return dynamics.closed_form(_tiny(), algorithm, HALF, lr=lr)


def _params():
    model = models.mlp(4, 1, 2)
    return model, model.init_fn(jax.random.PRNGKey(0), (-1, 3))[1]


def _agreement_pair():
    return _form().steps(2), _form().steps(5)


#: Every public entry point, a wrong input each, and the words its refusal must contain.
ENTRY_POINTS = [
    # graphs
    pytest.param(
        lambda: graphs.topology("cycle", 1),
        r"'cycle' needs an integer number of agents >= 3, got 1",
        id="cycle of one agent",
    ),
    pytest.param(
        lambda: graphs.topology("cycle", -3), r"agents >= 3, got -3", id="negative number of agents"
    ),
    pytest.param(
        lambda: graphs.topology("star", 1.5),
        r"'star' needs an integer number",
        id="fractional number of agents",
    ),
    pytest.param(
        lambda: graphs.topology("torus", 8),
        r"'torus' needs an integer number of agents >= 9",
        id="torus too small",
    ),
    pytest.param(
        lambda: graphs.topology("erdos_renyi", 5, p=1.5),
        r"edge probability p=1\.5 must lie in \[0, 1\]",
        id="edge probability above 1",
    ),
    pytest.param(
        lambda: graphs.topology("erdos_renyi", 5, p=-0.1),
        r"p=-0\.1 must lie in \[0, 1\]",
        id="negative edge probability",
    ),
    pytest.param(
        lambda: graphs.topology("random_geometric", 5, radius=-1),
        r"radius=-1 must be > 0",
        id="negative radius",
    ),
    pytest.param(
        lambda: graphs.topology("moon", 4),
        r"unknown topology 'moon'; choose one of cycle",
        id="unknown topology",
    ),
    pytest.param(
        lambda: graphs.mixing_matrix(graphs.topology("cycle", 4), "foo"),
        r"unknown mixing rule 'foo'; choose one of metropolis, max_degree, laplacian, uniform",
        id="unknown mixing rule",
    ),
    pytest.param(
        lambda: graphs.gossip(HALF, np.ones(2), -1),
        r"steps must be an integer >= 0 \(mixing rounds\), got -1",
        id="gossip negative steps",
    ),
    pytest.param(
        lambda: graphs.gossip(HALF, np.ones(3), 5),
        r"x0 has 3 entries but the matrix is 2 x 2",
        id="gossip start of wrong size",
    ),
    pytest.param(
        lambda: graphs.gossip(HALF, np.ones(2), 5),
        r"x0 is already in consensus",
        id="gossip from consensus",
    ),
    pytest.param(
        lambda: graphs.observed_rate([1.0]), r"at least 2 steps", id="rate of a one-point curve"
    ),
    pytest.param(
        lambda: graphs.observed_rate([1.0, np.nan]),
        r"a finite 1-D curve",
        id="rate of a curve with nan",
    ),
    pytest.param(
        lambda: graphs.spectrum(np.array([[0.5, 0.5], [0.0, 1.0]])),
        r"column 0 of mixing sums to 0\.5",
        id="spectrum of a non-stochastic matrix",
    ),
    pytest.param(
        lambda: experiments.mixings(4, ["moon"]),
        r"unknown topology 'moon'",
        id="mixings of an unknown graph",
    ),
    # data
    pytest.param(
        lambda: data.load_digits_dataset(10, -1),
        r"n_test=-1: need n_train >= 1 and n_test >= 0",
        id="negative test size",
    ),
    pytest.param(
        lambda: data.load_digits_dataset(10.5, 1),
        r"n_train=10\.5, n_test=1: need",
        id="fractional training size",
    ),
    pytest.param(
        lambda: data.partition_indices(np.arange(3), 5),
        r"num_agents=5 must be between 1 and the number of rows n=3",
        id="more agents than samples",
    ),
    pytest.param(
        lambda: data.partition_indices(np.arange(10) % 2, 2, scheme="dirichlet", alpha=-1),
        r"alpha=-1 must be > 0",
        id="negative dirichlet alpha",
    ),
    pytest.param(
        lambda: data.partition_indices(
            np.arange(10) % 2, 2, scheme="dirichlet", alpha=float("nan")
        ),
        r"alpha=nan must be > 0",
        id="nan dirichlet alpha",
    ),
    pytest.param(
        lambda: data.partition_indices(np.array([0, 0, 2, 2]), 2, scheme="shards", num_classes=3),
        r"class 1 has no training row, so no agent would hold it",
        id="class absent from every agent",
    ),
    pytest.param(
        lambda: data.partition_indices(np.array([0, 1, 1]), 2, scheme="dirichlet", num_classes=3),
        r"class 2 has no training row",
        id="last class absent",
    ),
    pytest.param(
        lambda: data.principal_components(data.load_digits_dataset(20, 5), 0),
        r"dims=0 must be an integer from 1 to the 64",
        id="zero principal components",
    ),
    pytest.param(
        lambda: data.principal_components(data.load_digits_dataset(20, 5), 100),
        r"dims=100 must be an integer from 1 to the 64",
        id="too many principal components",
    ),
    pytest.param(
        lambda: problem_lib.digits(models.affine(10), num_agents=0, samples_per_agent=3),
        r"n_train=0",
        id="digits with no agents",
    ),
    pytest.param(
        lambda: problem_lib.digits(
            models.affine(10), num_agents=4, samples_per_agent=1, scheme="shards"
        ),
        r"class \d has no training row",
        id="digits shards missing a class",
    ),
    # models and kernels
    pytest.param(lambda: models.mlp(0, 2, 10), r"width=0 must be an integer >= 1", id="zero width"),
    pytest.param(
        lambda: models.mlp(8, -1, 10), r"depth=-1 must be an integer >= 0", id="negative depth"
    ),
    pytest.param(
        lambda: models.mlp(8, 2, 10, activation="tanh"),
        r"unknown activation 'tanh'; valid: \('relu', 'erf', 'gelu'\)",
        id="unsupported activation",
    ),
    pytest.param(
        lambda: models.mlp(8, 2, 10, parameterization="mu"),
        r"unknown parameterization 'mu'",
        id="unknown parameterization",
    ),
    pytest.param(
        lambda: models.mlp(8, 2, 10, b_std=-1),
        r"need finite w_std > 0 and b_std >= 0",
        id="negative bias std",
    ),
    pytest.param(
        lambda: ntk.empirical_ntk(*_params(), np.full((2, 3), np.nan)),
        r"x1 contains NaN or inf",
        id="kernel of nan inputs",
    ),
    pytest.param(
        lambda: ntk.empirical_ntk(*_params(), np.ones(3)),
        r"x1 must be a non-empty 2-D array \(samples, features\)",
        id="kernel of a 1-D input",
    ),
    pytest.param(
        lambda: analytic.ntk(lambda p, x: x, np.ones((2, 3))),
        r"analytic kernels exist only for the stax models of companion\.models",
        id="analytic kernel of a plain function",
    ),
    # problem
    pytest.param(
        lambda: Problem(
            targets=np.array([[1.0], [np.nan]]),
            partition=[np.array([0]), np.array([1])],
            kernel=np.eye(2),
            f0=np.zeros((2, 1)),
        ),
        r"targets has 1 non-finite entries, first at \[1, 0\]",
        id="nan target",
    ),
    pytest.param(
        lambda: Problem(
            targets=np.ones((2, 1)),
            partition=[np.array([0]), np.array([1])],
            inputs=np.array([[np.inf], [1.0]]),
            apply_fn=lambda p, x: x,
            params={},
        ),
        r"inputs has 1 non-finite entries, first at \[0, 0\]",
        id="infinite input",
    ),
    pytest.param(
        lambda: Problem(
            targets=np.ones((2, 1)),
            partition=[np.array([0]), np.array([1])],
            kernel=np.eye(2),
            f0=np.zeros((2, 1)),
            kernel_test=np.ones((2, 2)),
            f0_test=np.zeros((2, 1)),
            targets_test=np.array([[np.nan], [0.0]]),
        ),
        r"targets_test has 1 non-finite entries",
        id="nan test target",
    ),
    pytest.param(
        lambda: Problem(
            targets=np.ones((2, 1)),
            partition=[np.array([0]), np.array([1])],
            kernel=np.array([[1.0, 2.0], [2.0, 1.0]]),
            f0=np.zeros((2, 1)),
        ),
        r"kernel is not positive semi-definite: its smallest eigenvalue is -1",
        id="kernel with a negative eigenvalue",
    ),
    pytest.param(
        lambda: Problem(
            targets=np.ones((2, 1)),
            partition=np.array([[0], [1]]),
            kernel=np.eye(2),
            f0=np.zeros((2, 1)),
        ),
        r"partition must be a list of integer index arrays, one per agent, got ndarray",
        id="partition as one array",
    ),
    pytest.param(
        lambda: Problem(
            targets=np.ones((2, 1)), partition=[], kernel=np.eye(2), f0=np.zeros((2, 1))
        ),
        r"partition is empty",
        id="no agents",
    ),
    pytest.param(
        lambda: _tiny().replace(foo=1),
        r"Problem has no argument 'foo'; replace one of targets",
        id="replace an unknown field",
    ),
    pytest.param(
        lambda: _tiny().losses(np.ones((3, 3))),
        r"predictions have shape \(3, 3\), expected \(\.\.\., 2, 4, 1\)",
        id="losses of misshaped predictions",
    ),
    # closed forms
    pytest.param(
        lambda: _form().steps([3]), r"steps must be a positive integer", id="steps as a list"
    ),
    pytest.param(
        lambda: _form().at([1.5]),
        r"steps must be a 1-D array of step indices >= 0, got \[1\.5\]",
        id="fractional step",
    ),
    pytest.param(
        lambda: _form().flow([np.nan]),
        r"times must be a 1-D array of finite times >= 0",
        id="nan time",
    ),
    pytest.param(
        lambda: _form().transition(-1.0),
        r"transition needs finite times 0 <= t0 <= t, got t=-1\.0",
        id="negative transition time",
    ),
    pytest.param(
        lambda: _form().transition(1.0, 2.0),
        r"got t=1\.0, t0=2\.0: the flow runs forward",
        id="transition backwards",
    ),
    pytest.param(
        lambda: _form().parameters(3),
        r"this problem has no model: pass model= or apply_fn=",
        id="parameters without a model",
    ),
    # training
    pytest.param(
        lambda: simulate.train(
            train_problem(), "dgd", MIXING, lr=0.1, steps=3, chunk=0, progress=False
        ),
        r"chunk must be a positive integer, got 0",
        id="zero chunk",
    ),
    pytest.param(
        lambda: simulate.SaveAt(every=0).resolve(5),
        r"SaveAt every must be a positive integer, got 0",
        id="save every zero steps",
    ),
    pytest.param(
        lambda: simulate.SaveAt(steps=(-1,)).resolve(5),
        r"SaveAt steps must lie in \[0, 5\]",
        id="save a negative step",
    ),
    pytest.param(
        lambda: simulate.train(train_problem(), "dgd", MIXING, lr=0.1, steps=-2, progress=False),
        r"steps must be a positive integer \(number of updates\), got -2",
        id="negative training steps",
    ),
    # stability
    pytest.param(
        lambda: stability.max_stable_lr(_tiny(), "sgd", HALF),
        r"unknown algorithm 'sgd': use one of 'dgd', 'atc', 'cta'",
        id="threshold of an unknown algorithm",
    ),
    pytest.param(
        lambda: stability.sufficient_lr_bound(_tiny(), np.array([[0.6, 0.4], [0.3, 0.7]])),
        r"column 0 of mixing sums to 0\.9",
        id="bound of a non-stochastic matrix",
    ),
    pytest.param(
        lambda: stability.check_lr(_tiny(), "dgd", HALF, -1.0),
        r"lr must be a positive finite number, got -1\.0",
        id="check a negative step",
    ),
    pytest.param(
        lambda: stability.spectral_radius(_tiny(), "dgd", HALF, 0.0),
        r"lr must be a positive finite number, got 0\.0",
        id="radius at a zero step",
    ),
    # limits
    pytest.param(
        lambda: limits.approach(_form(), doublings=0),
        r"doublings must be an integer >= 1",
        id="approach without doublings",
    ),
    pytest.param(
        lambda: limits.min_norm_coefficients(np.eye(3), np.ones((2, 1)), np.zeros((2, 1))),
        r"kernel has shape \(3, 3\), expected \(2, 2\)",
        id="min norm with a misshaped kernel",
    ),
    pytest.param(
        lambda: limits.ntk_regression(
            np.eye(2), np.eye(3), np.ones((2, 1)), np.zeros((2, 1)), np.zeros((3, 1))
        ),
        r"kernel_test has shape \(3, 3\), expected \(3, 2\)",
        id="regression with a misshaped test kernel",
    ),
    pytest.param(
        lambda: limits.fixed_point(_form(lr=50.0, algorithm="atc")),
        r"the recursion does not converge at lr=50 \(spectral radius",
        id="fixed point of an unstable recursion",
    ),
    # metrics and experiments
    pytest.param(
        lambda: metrics.agreement(*_agreement_pair()),
        r"the prediction did not save every step the training run saved",
        id="agreement at missing steps",
    ),
    pytest.param(
        lambda: metrics.rank_correlation([1, 2, 3], [1, 2]),
        r"two sequences of the same length >= 3, got 3 and 2",
        id="rank correlation of unequal lengths",
    ),
    pytest.param(
        lambda: metrics.spread([]),
        r"spread needs a non-empty list of finite values",
        id="spread of no seeds",
    ),
    pytest.param(
        lambda: metrics.spread([1.0, np.nan]),
        r"spread needs a non-empty list of finite values",
        id="spread with nan",
    ),
    pytest.param(
        lambda: metrics.fall_factor([1.0, 0.0]),
        r"fall_factor needs at least two values ending in a positive one",
        id="fall to zero",
    ),
    pytest.param(
        lambda: experiments.over_seeds(
            lambda s: _tiny(), "dgd", HALF, lr_scale=0.5, steps=3, seeds=[]
        ),
        r"seeds is empty",
        id="no seeds",
    ),
    pytest.param(
        lambda: discretization.flow_gaps(_tiny(), "dgd", HALF, lr=0.1, steps=7, points=3),
        r"steps=7 must be a multiple of points=3",
        id="flow gaps at uneven points",
    ),
    pytest.param(
        lambda: cost.loglog_slope([1], [1]),
        r"need at least two distinct sizes to fit a slope",
        id="slope of one point",
    ),
    pytest.param(
        lambda: cost.operations("magic", n=10), r"unknown stage", id="cost of an unknown stage"
    ),
]


@pytest.mark.filterwarnings("ignore:lr=50 exceeds")
@pytest.mark.parametrize(("call", "message"), ENTRY_POINTS)
def test_entry_point_refuses(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("what", ["the closed form", "training", "the empirical NTK"])
def test_exactness_entry_points_refuse_float32(what):
    model, params = _params()
    calls = {
        "the closed form": lambda: dynamics.closed_form(_tiny(), "dgd", HALF, lr=0.1),
        "training": lambda: simulate.train(train_problem(), "dgd", MIXING, lr=0.1, steps=3),
        "the empirical NTK": lambda: ntk.empirical_ntk(model, params, np.ones((2, 3))),
    }
    message = rf"{what} needs float64, but JAX is computing in float32"
    with jax.experimental.disable_x64(), pytest.raises(ValueError, match=message):
        calls[what]()
