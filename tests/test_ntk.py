"""Tests of companion.ntk against neural-tangents implementation 1."""

import jax
import neural_tangents as nt
import numpy as np
import pytest

from companion.analytic import ntk as analytic_ntk
from companion.models import affine, mlp
from companion.ntk import empirical_ntk, traced_ntk

RNG = np.random.default_rng(0)
X1 = RNG.normal(size=(7, 5))
X2 = RNG.normal(size=(4, 5))


def reference_ntk(apply_fn, params, x1, x2, trace=False):
    """neural-tangents implementation 1 (never 3: broken on our pins), sample-major."""
    fn = nt.empirical_ntk_fn(
        apply_fn, trace_axes=(-1,) if trace else (), vmap_axes=0, implementation=1
    )
    k = np.asarray(fn(x1, x2, params))
    if trace:
        return k
    n1, n2, c, _ = k.shape
    return k.transpose(0, 2, 1, 3).reshape(n1 * c, n2 * c)


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


# A covering set: each depth, activation, parameterization and bias setting appears, and
# each pair of settings appears at least once, at a few seconds per case.
CASES = [
    (1, "relu", "ntk", True),
    (2, "relu", "standard", False),
    (3, "relu", "ntk", False),
    (1, "erf", "standard", False),
    (2, "erf", "ntk", True),
    (3, "erf", "standard", True),
    (2, "gelu", "ntk", False),
    (3, "relu", "standard", True),
]


@pytest.mark.bad_input
@pytest.mark.parametrize(("depth", "activation", "parameterization", "bias"), CASES)
def test_structured_matches_neural_tangents(depth, activation, parameterization, bias):
    model = mlp(16, depth, 3, activation=activation, parameterization=parameterization, bias=bias)
    _, params = model.init_fn(jax.random.PRNGKey(depth), (-1, 5))
    expected = reference_ntk(model.apply_fn, params, X1, X2)
    kernel = empirical_ntk(model, params, X1, X2, block_size=3)  # 3 does not divide 7
    assert kernel.shape == (21, 12)
    assert rel_err(kernel, expected) < 1e-12
    traced = traced_ntk(model, params, X1, X2, block_size=2)
    assert rel_err(traced, reference_ntk(model.apply_fn, params, X1, X2, trace=True)) < 1e-12


def test_train_train_kernel_tiles_and_symmetry():
    # x2 = None computes tiles on and above the diagonal only and mirrors the rest.
    model = mlp(16, 2, 3)
    _, params = model.init_fn(jax.random.PRNGKey(1), (-1, 5))
    expected = reference_ntk(model.apply_fn, params, X1, X1)
    for block_size in (None, 1, 3):
        kernel = empirical_ntk(model, params, X1, block_size=block_size)
        assert rel_err(kernel, expected) < 1e-12
        assert rel_err(kernel.T, kernel) < 1e-14
    assert np.linalg.eigvalsh(kernel).min() > -1e-10
    traced = traced_ntk(model, params, X1, block_size=2)
    assert rel_err(traced, reference_ntk(model.apply_fn, params, X1, X1, trace=True)) < 1e-12


def test_sample_major_order():
    # Row i*C + c is the gradient of output c at sample i: check one entry by hand.
    model = mlp(6, 1, 2)
    _, params = model.init_fn(jax.random.PRNGKey(2), (-1, 5))

    def grad(i, c):
        g = jax.grad(lambda p: model.apply_fn(p, X1[i : i + 1])[0, c])(params)
        return np.concatenate([np.ravel(leaf) for leaf in jax.tree_util.tree_leaves(g)])

    kernel = empirical_ntk(model, params, X1)
    assert kernel[2 * 2 + 1, 4 * 2 + 0] == pytest.approx(grad(2, 1) @ grad(4, 0), rel=1e-12)


def test_fallback_affine_is_exact():
    model = affine(3, b_std=0.3)
    _, params = model.init_fn(jax.random.PRNGKey(3), (-1, 5))
    exact = np.kron(X1 @ X2.T + 1, np.eye(3))
    np.testing.assert_allclose(empirical_ntk(model, params, X1, X2, block_size=2), exact)
    np.testing.assert_allclose(empirical_ntk(model.apply_fn, params, X1, X2), exact)
    np.testing.assert_allclose(analytic_ntk(model, X1, X2), exact)
    np.testing.assert_allclose(traced_ntk(model, params, X1, X2), X1 @ X2.T + 1)


def test_analytic_close_to_empirical_at_large_width():
    # Finite-width fluctuations of the NTK shrink like 1/sqrt(width); at width 2048 the
    # relative Frobenius distance is a few percent, we allow 0.1.
    x = X1[:4] / np.linalg.norm(X1[:4], axis=1, keepdims=True)
    model = mlp(2048, 2, 2)
    _, params = model.init_fn(jax.random.PRNGKey(4), (-1, 5))
    empirical = empirical_ntk(model, params, x)
    analytic = analytic_ntk(model, x)
    assert analytic.shape == (8, 8)
    assert np.linalg.norm(empirical - analytic) / np.linalg.norm(analytic) < 0.1


@pytest.mark.parametrize(
    ("x1", "x2", "kwargs", "match"),
    [
        (np.ones(5), None, {}, "x1 must be a non-empty 2-D array"),
        (np.ones((0, 5)), None, {}, "x1 must be a non-empty 2-D array"),
        (np.full((2, 5), np.nan), None, {}, "x1 contains NaN or inf"),
        (np.ones((2, 5)), np.full((2, 5), np.inf), {}, "x2 contains NaN or inf"),
        (np.ones((2, 5)), np.ones((2, 4)), {}, "x1 has 5 features but x2 has 4"),
        (np.ones((2, 5)), None, {"block_size": 0}, "block_size=0 must be a positive"),
        (np.ones((2, 4)), None, {}, r"expected \(4, 8\)"),
    ],
)
def test_bad_inputs(x1, x2, kwargs, match):
    model = mlp(8, 1, 2)
    _, params = model.init_fn(jax.random.PRNGKey(0), (-1, 5))
    with pytest.raises(ValueError, match=match):
        empirical_ntk(model, params, x1, x2, **kwargs)


@pytest.mark.bad_input
def test_bad_params_and_models():
    model = mlp(8, 1, 2)
    _, params = mlp(8, 2, 2).init_fn(jax.random.PRNGKey(0), (-1, 5))
    with pytest.raises(ValueError, match="params do not match 1 hidden layers"):
        empirical_ntk(model, params, X1)
    _, no_bias = mlp(8, 1, 2, bias=False).init_fn(jax.random.PRNGKey(0), (-1, 5))
    with pytest.raises(ValueError, match="expected .* a bias"):
        empirical_ntk(model, no_bias, X1)
    with pytest.raises(ValueError, match="expected a companion Model or an apply_fn"):
        empirical_ntk("mlp", params, X1)
    with pytest.raises(ValueError, match=r"\(n, C\) outputs"):
        empirical_ntk(lambda p, x: x.sum(axis=1), None, X1)
    no_spec = type(model)(model.init_fn, model.apply_fn, model.kernel_fn, None)
    with pytest.raises(ValueError, match="pass out_dim="):
        analytic_ntk(no_spec, X1)
    assert analytic_ntk(no_spec, X1, out_dim=2).shape == (14, 14)
