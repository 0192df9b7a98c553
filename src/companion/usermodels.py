"""The user's model: an MLP or the affine model by name, a neural-tangents ``stax``
triple, or any ``apply_fn`` with its ``params``, as a :class:`companion.problem.Problem`
on the user's data (:mod:`companion.userdata`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from companion import models
from companion.problem import Problem, from_dataset
from companion.userdata import UserData

__all__ = ["MODELS", "network", "problem", "stax_model"]

#: Models by name (the CLI's ``--model``).
MODELS = ("mlp", "affine")


def network(
    name: str,
    out_dim: int,
    *,
    width: int = 512,
    depth: int = 2,
    activation: str = "relu",
    parameterization: str = "ntk",
) -> models.Model:
    """The model ``name`` (:data:`MODELS`) with ``out_dim`` outputs.

    Example:
        >>> network("mlp", 3, width=8, depth=1).spec.widths
        (8, 3)
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if name == "affine":
        return models.affine(out_dim)
    return models.mlp(
        width, depth, out_dim, activation=activation, parameterization=parameterization
    )


def stax_model(layers: tuple, input_shape: tuple[int, ...]) -> models.Model:
    """A neural-tangents ``stax`` triple ``(init_fn, apply_fn, kernel_fn)`` as a model of
    flat rows: each row of d = prod(input_shape) features is reshaped to ``input_shape``
    (e.g. ``(40, 1)``: a signal of length 40 with one channel for ``stax.Conv``).

    Example:
        >>> from neural_tangents import stax
        >>> conv = stax_model(stax.serial(stax.Conv(2, (3,), padding="SAME"),
        ...                   stax.Flatten(), stax.Dense(3)), (5, 1))
        >>> _, params = conv.init_fn(jax.random.PRNGKey(0), (-1, 5))
        >>> conv.apply_fn(params, np.ones((4, 5))).shape
        (4, 3)
    """
    if not (isinstance(layers, tuple) and len(layers) == 3 and all(map(callable, layers))):
        raise ValueError(
            "layers must be a stax triple (init_fn, apply_fn, kernel_fn), as stax.serial(...) "
            "returns it"
        )
    init_fn, apply_fn, kernel_fn = layers
    shape = tuple(int(s) for s in input_shape)

    def init(key: jax.Array, flat_shape: tuple[int, ...]) -> tuple[tuple[int, ...], Any]:
        if math.prod(shape) != flat_shape[-1]:
            raise ValueError(
                f"input_shape {shape} holds {math.prod(shape)} features, the data "
                f"{flat_shape[-1]}: give an input_shape whose product is the number of features"
            )
        return init_fn(key, (-1, *shape))

    def apply(params: Any, x: Any, **kwargs: Any) -> Any:
        return apply_fn(params, x.reshape(len(x), *shape), **kwargs)

    return models.Model(init, apply, kernel_fn, None)


def problem(
    data: UserData,
    model: str | models.Model | Callable[..., Any],
    partition: Sequence[np.ndarray],
    *,
    params: Any = None,
    seed: int = 0,
    **architecture: Any,
) -> tuple[Problem, dict[str, Any]]:
    """The problem of ``model`` on ``data`` split by ``partition``, and a description of
    the model for the settings.

    ``model`` is a name of :data:`MODELS` (built by :func:`network` with
    ``architecture``), a :class:`companion.models.Model` or a ``stax`` triple of flat
    inputs (initialized from ``jax.random.PRNGKey(seed)``; other input shapes through
    :func:`stax_model`), or an ``apply_fn(params, x)`` with its ``params``.

    Example:
        >>> from companion import userdata
        >>> d = userdata.load({"x": np.eye(4), "y": np.array([0, 1, 0, 1])})
        >>> p, described = problem(d, "affine", [np.arange(2), np.arange(2, 4)])
        >>> p.kernel.shape, described
        ((8, 8), {'name': 'affine'})
    """
    if isinstance(model, str):
        built = network(model, data.num_classes, **architecture)
        described = {"name": model} | (architecture if model == "mlp" else {})
        return from_dataset(built, data.dataset(), partition, seed=seed), described
    if isinstance(model, tuple):
        model = stax_model(model, (data.x.shape[1],))
    if isinstance(model, models.Model):
        if params is not None:
            raise ValueError("a Model is initialized from seed: pass params only with an apply_fn")
        return from_dataset(model, data.dataset(), partition, seed=seed), {"name": "stax model"}
    if not callable(model) or params is None:
        raise ValueError(
            f"model must be one of {', '.join(MODELS)}, a companion.models.Model (or "
            "usermodels.stax_model(stax.serial(...), input_shape)), or an apply_fn with params="
        )
    test = len(data.x_test) > 0
    built = Problem(
        targets=data.targets,
        partition=partition,
        inputs=data.x,
        apply_fn=model,
        params=params,
        inputs_test=data.x_test if test else None,
        targets_test=data.targets_test if test else None,
    )
    return built, {"name": "apply_fn"}
