"""Tests of companion.models: stax MLPs and the affine model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from companion.models import AffineSpec, MLPSpec, Model, affine, mlp

KEY = jax.random.PRNGKey(0)


@pytest.mark.bad_input
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("activation", ["relu", "erf", "gelu"])
def test_mlp_shapes(parameterization, activation):
    model = mlp(12, 2, 4, activation=activation, parameterization=parameterization)
    out_shape, params = model.init_fn(KEY, (-1, 5))
    assert out_shape == (-1, 4)
    assert isinstance(model, Model) and isinstance(model.spec, MLPSpec)
    assert model.spec.widths == (12, 12, 4) and model.out_dim == 4
    assert [p[0].shape for p in params if p] == [(5, 12), (12, 12), (12, 4)]
    out = model.apply_fn(params, jnp.ones((3, 5)))
    assert out.shape == (3, 4) and out.dtype == jnp.float64
    assert model.kernel_fn(np.ones((3, 5)), None, "ntk").shape == (3, 3)


def test_mlp_defaults_and_bias():
    assert mlp(8, 1, 2).spec.w_std == pytest.approx(np.sqrt(2.0))
    assert mlp(8, 1, 2, activation="erf").spec.w_std == 1.0
    _, params = mlp(8, 1, 2, bias=False).init_fn(KEY, (-1, 3))
    assert all(p[1] is None for p in params if p)
    assert mlp(8, 0, 2).spec.widths == (2,)


def test_standard_parameterization_scales_init():
    # Standard parameterization puts sigma_w / sqrt(fan_in) into the weights themselves.
    _, params = mlp(2000, 1, 1, parameterization="standard", w_std=2.0).init_fn(KEY, (-1, 400))
    assert float(jnp.std(params[0][0])) == pytest.approx(2.0 / np.sqrt(400), rel=0.01)


def test_affine_model():
    model = affine(3, w_std=1.0, b_std=0.5)
    assert isinstance(model.spec, AffineSpec) and model.out_dim == 3
    shape, (a, b) = model.init_fn(KEY, (-1, 4))
    assert shape == (-1, 3) and a.shape == (4, 3) and b.shape == (3,)
    x = np.arange(8.0).reshape(2, 4)
    np.testing.assert_allclose(model.apply_fn((a, b), x), x @ a + b[None, :])
    ntk, nngp = model.kernel_fn(x, None, ("ntk", "nngp"))
    np.testing.assert_allclose(ntk, x @ x.T + 1)
    np.testing.assert_allclose(nngp, x @ x.T / 4 + 0.25)
    with pytest.raises(ValueError, match="unknown kernel"):
        model.kernel_fn(x, None, "cov")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 0}, "width=0 must be an integer >= 1"),
        ({"depth": -1}, "depth=-1 must be an integer >= 0"),
        ({"out_dim": 0}, "out_dim=0"),
        ({"activation": "tanh"}, "unknown activation 'tanh'.*relu"),
        ({"parameterization": "mup"}, "unknown parameterization 'mup'"),
        ({"w_std": -1.0}, "w_std > 0"),
        ({"b_std": float("nan")}, "b_std >= 0"),
    ],
)
def test_mlp_errors(kwargs, match):
    args = {"width": 8, "depth": 1, "out_dim": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        mlp(**args)


@pytest.mark.bad_input
def test_affine_errors():
    with pytest.raises(ValueError, match="out_dim=0"):
        affine(0)
    with pytest.raises(ValueError, match="w_std >= 0"):
        affine(2, w_std=-1.0)
