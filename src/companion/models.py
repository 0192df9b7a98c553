"""Models of the book: neural-tangents ``stax`` MLPs and the affine model.

Every model is a :class:`Model` with the stax convention ``init_fn(key, input_shape) ->
(output_shape, params)`` and ``apply_fn(params, x)``, plus ``kernel_fn`` (the analytic
infinite-width kernels) and ``spec``, a small description of the architecture that lets
:mod:`companion.ntk` compute the empirical NTK layer by layer instead of through the full
Jacobian.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from neural_tangents import stax

# Elementwise activations whose stax layers have an analytic kernel_fn after Dense.
ACTIVATIONS: dict[str, Callable[[], Any]] = {
    "relu": stax.Relu,
    "erf": stax.Erf,
    "gelu": stax.Gelu,
}
# He initialization keeps ReLU pre-activations at unit scale through depth; for the smooth
# activations unit weight variance is the usual choice.
DEFAULT_W_STD = {"relu": math.sqrt(2.0), "erf": 1.0, "gelu": 1.0}
PARAMETERIZATIONS = ("ntk", "standard")


@dataclass(frozen=True)
class MLPSpec:
    """Architecture of :func:`mlp`: ``len(widths) - 1`` hidden layers then a readout.

    Attributes:
        widths: Output width of every Dense layer; the last entry is the output dim C.
        activation: Name of the elementwise activation (a key of ``ACTIVATIONS``).
        parameterization: ``"ntk"`` or ``"standard"`` (as in ``stax.Dense``).
        w_std: Weight standard deviation sigma_w of every Dense layer.
        b_std: Bias standard deviation sigma_b (unused when ``bias`` is False).
        bias: Whether the Dense layers have biases.
    """

    widths: tuple[int, ...]
    activation: str
    parameterization: str
    w_std: float
    b_std: float
    bias: bool

    def activate(self, z: jax.Array) -> jax.Array:
        """Apply the stax activation layer itself, so derivatives match stax exactly."""
        return ACTIVATIONS[self.activation]()[1]((), z)

    def layer_scales(self, fan_in: int) -> tuple[float, float]:
        """Multipliers ``(a, c)`` with ``z = a * h @ W + c * b`` for a Dense layer.

        Mirrors ``stax.Dense.apply_fn``: NTK parameterization scales in the forward pass
        (``a = sigma_w / sqrt(fan_in)``, ``c = sigma_b``), standard parameterization puts
        the scale into the initialization (``a = c = 1``). ``c = 0`` without bias.
        """
        bias_scale = 0.0 if not self.bias else self.b_std
        if self.parameterization == "ntk":
            return self.w_std / math.sqrt(fan_in), bias_scale
        return 1.0, 1.0 if self.bias else 0.0


@dataclass(frozen=True)
class AffineSpec:
    """Architecture of :func:`affine`: ``f(x) = x @ A + b`` with C outputs."""

    out_dim: int
    w_std: float
    b_std: float


@dataclass(frozen=True)
class Model:
    """A model in the stax convention.

    Attributes:
        init_fn: ``init_fn(key, input_shape) -> (output_shape, params)``.
        apply_fn: ``apply_fn(params, x) -> outputs`` of shape (n, C).
        kernel_fn: ``kernel_fn(x1, x2, get)`` analytic kernels, ``get`` in
            ``"nngp"``/``"ntk"`` (or a tuple of them); scalar (n1, n2) kernels, the
            full-output kernel being ``K (x) I_C``.
        spec: :class:`MLPSpec`, :class:`AffineSpec`, or None for other architectures.
    """

    init_fn: Callable[..., Any]
    apply_fn: Callable[..., Any]
    kernel_fn: Callable[..., Any]
    spec: MLPSpec | AffineSpec | None = None

    @property
    def out_dim(self) -> int | None:
        """Number of outputs C when the spec records it, else None."""
        if isinstance(self.spec, MLPSpec):
            return self.spec.widths[-1]
        if isinstance(self.spec, AffineSpec):
            return self.spec.out_dim
        return None


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}.")


def mlp(
    width: int,
    depth: int,
    out_dim: int,
    *,
    activation: str = "relu",
    parameterization: str = "ntk",
    bias: bool = True,
    w_std: float | None = None,
    b_std: float = 0.05,
) -> Model:
    """A stax MLP: ``depth`` x (Dense(width), activation), then Dense(out_dim).

    Every Dense layer, readout included, uses the same ``w_std`` and ``b_std``
    (NTK parameterization by default).

    Args:
        width: Hidden width (>= 1).
        depth: Number of hidden layers (>= 0; 0 gives one Dense layer).
        out_dim: Number of outputs C (>= 1).
        activation: One of ``"relu"``, ``"erf"``, ``"gelu"``.
        parameterization: ``"ntk"`` or ``"standard"``.
        bias: Whether Dense layers carry biases.
        w_std: Weight standard deviation; None picks sqrt(2) for ReLU and 1 otherwise.
        b_std: Bias standard deviation (>= 0).

    Returns:
        A :class:`Model` whose ``spec`` is an :class:`MLPSpec`.

    Raises:
        ValueError: For a bad size, activation, parameterization or standard deviation.

    Example:
        >>> model = mlp(16, 2, 3)
        >>> shape, params = model.init_fn(jax.random.PRNGKey(0), (-1, 4))
        >>> shape, model.apply_fn(params, jnp.ones((5, 4))).shape
        ((-1, 3), (5, 3))
    """
    _check_positive_int("width", width)
    _check_positive_int("depth", depth, minimum=0)
    _check_positive_int("out_dim", out_dim)
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {tuple(ACTIVATIONS)}.")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"unknown parameterization {parameterization!r}; valid: {PARAMETERIZATIONS}."
        )
    w_std = DEFAULT_W_STD[activation] if w_std is None else float(w_std)
    if not (w_std > 0 and b_std >= 0 and math.isfinite(w_std) and math.isfinite(b_std)):
        raise ValueError(f"need finite w_std > 0 and b_std >= 0, got {w_std}, {b_std}.")

    def dense(n: int) -> Any:
        return stax.Dense(
            n, W_std=w_std, b_std=b_std if bias else None, parameterization=parameterization
        )

    layers = [layer for _ in range(depth) for layer in (dense(width), ACTIVATIONS[activation]())]
    init_fn, apply_fn, kernel_fn = stax.serial(*layers, dense(out_dim))
    spec = MLPSpec(
        widths=(width,) * depth + (out_dim,),
        activation=activation,
        parameterization=parameterization,
        w_std=w_std,
        b_std=float(b_std),
        bias=bias,
    )
    return Model(init_fn, apply_fn, kernel_fn, spec)


def affine(out_dim: int, *, w_std: float = 1.0, b_std: float = 0.0) -> Model:
    """The affine model ``f(x) = x @ A + b``.

    ``A`` (d x C) starts as N(0, w_std^2 / d), ``b`` (C,) as N(0, b_std^2); ``b_std = 0``
    starts from the zero bias. The model is its own linearization, so its NTK
    ``(x1 . x2 + 1) I_C`` is exact at every parameter value, and ``kernel_fn`` returns
    it (``"ntk"``) together with the prior output covariance ``w_std^2/d x1 . x2 +
    b_std^2`` (``"nngp"``).

    Args:
        out_dim: Number of outputs C (>= 1).
        w_std: Standard deviation scale of ``A`` at initialization (>= 0).
        b_std: Standard deviation of ``b`` at initialization (>= 0).

    Returns:
        A :class:`Model` whose ``spec`` is an :class:`AffineSpec`.

    Example:
        >>> model = affine(2)
        >>> shape, (a, b) = model.init_fn(jax.random.PRNGKey(0), (-1, 3))
        >>> shape, a.shape, b.shape
        ((-1, 2), (3, 2), (2,))
        >>> model.kernel_fn(jnp.ones((1, 3)), None, "ntk").tolist()
        [[4.0]]
    """
    _check_positive_int("out_dim", out_dim)
    if not (w_std >= 0 and b_std >= 0 and math.isfinite(w_std) and math.isfinite(b_std)):
        raise ValueError(f"need finite w_std >= 0 and b_std >= 0, got {w_std}, {b_std}.")

    def init_fn(key: jax.Array, input_shape: tuple[int, ...]) -> tuple[tuple[int, ...], Any]:
        key_a, key_b = jax.random.split(key)
        in_dim = input_shape[-1]
        a = w_std / math.sqrt(in_dim) * jax.random.normal(key_a, (in_dim, out_dim))
        b = b_std * jax.random.normal(key_b, (out_dim,))
        return tuple(input_shape[:-1]) + (out_dim,), (a, b)

    def apply_fn(params: Any, x: jax.Array, **kwargs: Any) -> jax.Array:
        a, b = params
        return x @ a + b[None, :]

    def kernel_fn(x1: jax.Array, x2: jax.Array | None = None, get: Any = "ntk") -> Any:
        x2 = x1 if x2 is None else x2
        dot = jnp.asarray(x1) @ jnp.asarray(x2).T
        kernels = {"ntk": dot + 1.0, "nngp": w_std**2 / jnp.shape(x1)[-1] * dot + b_std**2}
        names = (get,) if isinstance(get, str) else tuple(get)
        unknown = [g for g in names if g not in kernels]
        if unknown:
            raise ValueError(f"unknown kernel {unknown}; the affine model offers 'ntk', 'nngp'.")
        values = tuple(kernels[g] for g in names)
        return values[0] if isinstance(get, str) else values

    return Model(init_fn, apply_fn, kernel_fn, AffineSpec(out_dim, float(w_std), float(b_std)))
