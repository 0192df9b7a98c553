"""Infinite-width kernels of the stax models, expanded to every output.

neural-tangents' ``stax`` gives the scalar NTK ``Theta_inf`` and NNGP ``Sigma_inf`` of the
networks that :mod:`companion.models` builds in closed form. At infinite width the output
channels decouple, so the full kernels are ``Theta_inf (x) I_C`` and ``Sigma_inf (x) I_C``
in sample-major order (row ``i * C + c``, as in :mod:`companion.ntk`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from companion.models import Model
from companion.ntk import check_inputs

__all__ = ["SUPPORTED", "nngp", "ntk"]


#: What the analytic kernels cover: the layers whose neural-tangents ``stax`` kernel_fn is
#: exact, as built by :mod:`companion.models`.
SUPPORTED = (
    "companion.models.mlp (stax Dense layers with relu, erf or gelu activations) and "
    "companion.models.affine"
)


def _analytic(model: Model, x1: Any, x2: Any, out_dim: int | None, get: str) -> np.ndarray:
    """The scalar ``model.kernel_fn(x1, x2, get)`` expanded to ``K (x) I_C``."""
    if not isinstance(model, Model) or model.kernel_fn is None:
        raise ValueError(
            f"analytic kernels exist only for the stax models of companion.models (mlp, "
            f"affine), got {type(model).__name__} without a kernel_fn: build the network "
            f"with one of them; supported: {SUPPORTED}."
        )
    x1, x2 = check_inputs(x1, x2)
    out_dim = model.out_dim if out_dim is None else out_dim
    if out_dim is None:
        raise ValueError(
            f"the analytic {get.upper()} needs the number of outputs; pass out_dim= for "
            "models without a spec."
        )
    try:
        scalar = model.kernel_fn(x1, x2, get)
    except NotImplementedError as error:
        raise ValueError(
            f"stax has no analytic {get.upper()} for this architecture ({error}); "
            f"supported: {SUPPORTED}."
        ) from None
    return np.kron(np.asarray(scalar, dtype=np.float64), np.eye(out_dim))


def ntk(model: Model, x1: Any, x2: Any = None, *, out_dim: int | None = None) -> np.ndarray:
    """Infinite-width NTK expanded to full outputs, ``K_inf (x) I_C``.

    ``K_inf = model.kernel_fn(x1, x2, "ntk")``. At infinite width the output channels
    decouple, so this Kronecker form is exact there (and exact at any width for the
    affine model); a finite network's :func:`companion.ntk.empirical_ntk` fluctuates around it.

    Args:
        model: A :class:`~companion.models.Model` with a ``kernel_fn`` (see ``SUPPORTED``).
        x1: Inputs, shape (n1, d).
        x2: Inputs, shape (n2, d); None means ``x1``.
        out_dim: Number of outputs C; needed only when ``model.spec`` does not record it
            (``out_dim=1`` gives the scalar kernel).

    Returns:
        float64 array of shape (n1 * C, n2 * C), sample-major.

    Raises:
        ValueError: For a model without analytic kernels (naming those that have them),
            or inputs as for :func:`companion.ntk.empirical_ntk`.

    Example:
        >>> from companion.models import affine
        >>> ntk(affine(2), np.ones((1, 3))).tolist()
        [[4.0, 0.0], [0.0, 4.0]]
    """
    return _analytic(model, x1, x2, out_dim, "ntk")


def nngp(model: Model, x1: Any, x2: Any = None, *, out_dim: int | None = None) -> np.ndarray:
    """Infinite-width NNGP kernel expanded to full outputs, ``Sigma_inf (x) I_C``.

    ``Sigma_inf = model.kernel_fn(x1, x2, "nngp")`` is the covariance of the initial
    outputs ``f(x; theta_0)`` over random initializations, in the limit of infinite width
    (NTK parameterization), where they form a centred Gaussian process, independent across
    outputs (Lee et al., NeurIPS 2019). Same layout and arguments as :func:`ntk`.

    Example:
        >>> from companion.models import affine
        >>> nngp(affine(2, w_std=3.0), np.ones((1, 3))).tolist()
        [[9.0, 0.0], [0.0, 9.0]]
    """
    return _analytic(model, x1, x2, out_dim, "nngp")
