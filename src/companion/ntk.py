"""Neural tangent kernels in sample-major order (row ``i * C + c``).

The empirical NTK is ``K = J(x1) J(x2)^T`` with ``J`` the Jacobian of the flattened outputs,
so row ``i * C + c`` belongs to sample ``i``, output ``c``. For the MLPs of
:func:`companion.models.mlp` it is computed layer by layer without forming ``J``: a Dense
layer ``z = a * h @ W + c * b`` contributes

    ``(a^2 h(x) . h(x') + c^2) * (s_c(x) . s_c'(x'))``

where ``h`` is the layer input and ``s_c = d f_c / d z`` the output sensitivity, obtained
by backpropagating the C output basis vectors at once. The sum over layers is exact.
Anything else falls back to neural-tangents' Jacobian contraction (implementation 1);
implementation 3 (structured derivatives) fails on the pinned jax and is never used.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np

from companion._checks import check_float64
from companion.models import MLPSpec, Model

# Each block of K computed at once is capped at this many bytes, which keeps transient
# memory well below K itself once K is large (K is 200 MB at m = 5000).
BLOCK_BYTES = 16 * 2**20


def check_inputs(x1: Any, x2: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Return float64 copies of the inputs after checking shape and finiteness."""
    checked = []
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            checked.append(None)
            continue
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(
                f"{name} must be a non-empty 2-D array (samples, features), got shape "
                f"{x.shape}; reshape a single sample with x[None, :]."
            )
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or inf; clean or drop those samples.")
        checked.append(x)
    if checked[1] is not None and checked[1].shape[1] != checked[0].shape[1]:
        raise ValueError(
            f"x1 has {checked[0].shape[1]} features but x2 has {checked[1].shape[1]}; "
            "both must come from the same input space."
        )
    return checked[0], checked[1]


def _block_samples(n: int, cap: int, block_size: int | None) -> int:
    """Samples per block: ``block_size`` if given, else at most ``cap``, balanced."""
    if block_size is not None:
        if not isinstance(block_size, int | np.integer) or block_size < 1:
            raise ValueError(f"block_size={block_size!r} must be a positive integer or None.")
        return min(int(block_size), n)
    # Equal-sized blocks waste less on the zero padding of the last block.
    return math.ceil(n / math.ceil(n / cap))


def _dense_params(spec: MLPSpec, params: Any, in_dim: int) -> list[tuple[Any, Any]]:
    """Pick the (W, b) pairs out of stax.serial params, checking them against ``spec``."""
    depth = len(spec.widths) - 1
    hint = "pass the params returned by this model's init_fn"
    if not isinstance(params, list | tuple) or len(params) != 2 * depth + 1:
        raise ValueError(f"params do not match {depth} hidden layers plus readout; {hint}.")
    weights = [tuple(params[2 * layer]) for layer in range(depth + 1)]
    fan_in = in_dim
    for layer, ((w, b), width) in enumerate(zip(weights, spec.widths, strict=True)):
        if jnp.shape(w) != (fan_in, width) or (b is None) == spec.bias:
            raise ValueError(
                f"Dense layer {layer} has W of shape {jnp.shape(w)} and "
                f"{'no ' if b is None else ''}bias, expected ({fan_in}, {width}) and "
                f"{'a' if spec.bias else 'no'} bias; {hint}."
            )
        fan_in = width
    return weights


@functools.partial(jax.jit, static_argnums=0)
def _forward(
    spec: MLPSpec, weights: list[tuple[Any, Any]], x: jax.Array
) -> tuple[list[jax.Array], list[jax.Array]]:
    """Inputs of every Dense layer and activation slopes of every hidden layer."""
    inputs, slopes = [], []
    h = x
    for w, b in weights[:-1]:
        a, c = spec.layer_scales(h.shape[1])
        z = a * h @ w if b is None else a * h @ w + c * b
        inputs.append(h)
        # Forward-mode with unit tangents gives the elementwise derivative of the very
        # activation stax applies (including its convention at kinks).
        h, slope = jax.jvp(spec.activate, (z,), (jnp.ones_like(z),))
        slopes.append(slope)
    inputs.append(h)
    return inputs, slopes


@jax.jit
def _backprop(sens: jax.Array, w: jax.Array, scale: float, slope: jax.Array) -> jax.Array:
    """Sensitivities (n, C, width) of the outputs one Dense layer further down."""
    # Scale the (n, C, width) sensitivities, never the width x width weight matrix: that
    # copy dominated the cost at width 4096.
    return ((scale * sens) @ w.T) * slope[:, None, :]


@functools.partial(jax.jit, static_argnames="traced")
def _layer_block(
    h1: jax.Array,
    h2: jax.Array,
    s1: jax.Array,
    s2: jax.Array,
    a: float,
    c: float,
    traced: bool,
) -> jax.Array:
    """One Dense layer's contribution to a block of rows of K (or of the traced K)."""
    gram = a**2 * (h1 @ h2.T) + c**2
    n1, out_dim, _ = s1.shape
    if traced:
        sens = s1.reshape(n1, -1) @ s2.reshape(s2.shape[0], -1).T / out_dim
        return gram * sens
    sens = jnp.einsum("icu,jdu->icjd", s1, s2)
    return (gram[:, None, :, None] * sens).reshape(n1 * out_dim, -1)


def _tiles(n: int, size: int) -> list[tuple[int, int]]:
    """(start, stop) of consecutive blocks of ``size`` samples covering ``range(n)``."""
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _structured_ntk(
    spec: MLPSpec,
    params: Any,
    x1: np.ndarray,
    x2: np.ndarray | None,
    block_size: int | None,
    traced: bool,
) -> np.ndarray:
    """Layer-wise NTK of a stax MLP: exact, and never forms the m x P Jacobian."""
    weights = _dense_params(spec, params, x1.shape[1])
    out_dim = spec.widths[-1]
    c_rows = 1 if traced else out_dim
    # A tile of (size * C)^2 float64 entries stays within BLOCK_BYTES.
    cap = max(1, math.isqrt(BLOCK_BYTES // 8) // c_rows)
    # For x2 = None both sides are the same arrays and only tiles on or above the
    # diagonal are computed, which halves the work for large train-train kernels.
    symmetric = x2 is None
    sides = (x1,) if symmetric else (x1, x2)
    sizes = [_block_samples(len(x), cap, block_size) for x in sides]
    # Zero rows pad each side to whole tiles so every tile has one shape (one compilation).
    padded = [np.pad(x, ((0, -len(x) % n), (0, 0))) for x, n in zip(sides, sizes, strict=True)]
    forward = [jax.tree_util.tree_map(np.asarray, _forward(spec, weights, x)) for x in padded]
    inputs, slopes = [f[0] for f in forward], [f[1] for f in forward]
    sens = [np.broadcast_to(np.eye(out_dim), (len(x), out_dim, out_dim)) for x in padded]
    last = len(sides) - 1
    size1, size2 = sizes[0], sizes[last]
    tiles1, tiles2 = _tiles(len(x1), size1), _tiles(len(sides[last]), size2)
    kernel = np.zeros((len(x1) * c_rows, len(sides[last]) * c_rows))
    # Top-down over layers so only one layer's sensitivities are alive at a time.
    for layer in reversed(range(len(weights))):
        a, c = spec.layer_scales(weights[layer][0].shape[0])
        for i, (r0, r1) in enumerate(tiles1):
            for c0, c1 in tiles2[i if symmetric else 0 :]:
                block = _layer_block(
                    inputs[0][layer][r0 : r0 + size1],
                    inputs[last][layer][c0 : c0 + size2],
                    sens[0][r0 : r0 + size1],
                    sens[last][c0 : c0 + size2],
                    a,
                    c,
                    traced,
                )
                rows, cols = slice(r0 * c_rows, r1 * c_rows), slice(c0 * c_rows, c1 * c_rows)
                kernel[rows, cols] += np.asarray(block)[: (r1 - r0) * c_rows, : (c1 - c0) * c_rows]
        if layer > 0:
            sens = [
                np.asarray(_backprop(s, weights[layer][0], a, slope[layer - 1]))
                for s, slope in zip(sens, slopes, strict=True)
            ]
    if symmetric:
        for i, (r0, r1) in enumerate(tiles1):
            for c0, c1 in tiles1[:i]:
                rows, cols = slice(r0 * c_rows, r1 * c_rows), slice(c0 * c_rows, c1 * c_rows)
                kernel[rows, cols] = kernel[cols, rows].T
    return kernel


@functools.lru_cache(maxsize=16)
def _nt_kernel_fn(apply_fn: Callable[..., Any], traced: bool) -> Callable[..., Any]:
    """Jitted neural-tangents Jacobian contraction, cached so repeated calls reuse it."""
    return jax.jit(
        nt.empirical_ntk_fn(
            apply_fn,
            trace_axes=(-1,) if traced else (),
            vmap_axes=0,
            implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION,
        )
    )


def _fallback_ntk(
    apply_fn: Callable[..., Any],
    params: Any,
    x1: np.ndarray,
    x2: np.ndarray | None,
    block_size: int | None,
    traced: bool,
) -> np.ndarray:
    """Row blocks of neural-tangents' implementation 1, reshaped to sample-major order."""
    x2 = x1 if x2 is None else x2
    out_shape = jax.eval_shape(apply_fn, params, x1[:1]).shape
    if len(out_shape) != 2:
        raise ValueError(
            f"apply_fn must map (n, d) inputs to (n, C) outputs, got {out_shape} for one "
            "sample; flatten the outputs in apply_fn."
        )
    out_dim = out_shape[1]
    n1, n2 = x1.shape[0], x2.shape[0]
    rows = _block_samples(n1, max(1, BLOCK_BYTES // (8 * out_dim**2 * n2)), block_size)
    x1p = np.pad(x1, ((0, -n1 % rows), (0, 0)))
    kernel_fn = _nt_kernel_fn(apply_fn, traced)
    blocks = []
    for start in range(0, n1, rows):
        block = np.asarray(kernel_fn(x1p[start : start + rows], x2, params))
        if not traced:
            # (b, n2, C, C) -> (b, C, n2, C): sample-major, output-minor.
            block = block.transpose(0, 2, 1, 3).reshape(rows * out_dim, n2 * out_dim)
        blocks.append(block)
    c_rows = 1 if traced else out_dim
    return np.concatenate(blocks)[: n1 * c_rows]


def _kernel(
    model_or_apply_fn: Model | Callable[..., Any],
    params: Any,
    x1: Any,
    x2: Any,
    block_size: int | None,
    traced: bool,
) -> np.ndarray:
    x1, x2 = check_inputs(x1, x2)
    if isinstance(model_or_apply_fn, Model):
        if isinstance(model_or_apply_fn.spec, MLPSpec):
            return _structured_ntk(model_or_apply_fn.spec, params, x1, x2, block_size, traced)
        apply_fn = model_or_apply_fn.apply_fn
    elif callable(model_or_apply_fn):
        apply_fn = model_or_apply_fn
    else:
        raise ValueError(
            f"expected a companion Model or an apply_fn, got {type(model_or_apply_fn)}."
        )
    return _fallback_ntk(apply_fn, params, x1, x2, block_size, traced)


def empirical_ntk(
    model_or_apply_fn: Model | Callable[..., Any],
    params: Any,
    x1: Any,
    x2: Any = None,
    *,
    block_size: int | None = None,
) -> np.ndarray:
    """Full-output empirical NTK ``J(x1) J(x2)^T`` at ``params``.

    Models from :func:`companion.models.mlp` use the exact layer-wise computation (module
    docstring); any other model or plain ``apply_fn`` uses neural-tangents'
    implementation 1 with ``vmap_axes=0`` (so outputs of one sample must not depend on
    the other samples in the batch).

    Args:
        model_or_apply_fn: A :class:`~companion.models.Model` or ``apply_fn(params, x)``
            returning (n, C) outputs.
        params: Parameters at which to linearize (``theta_0``).
        x1: Inputs, shape (n1, d).
        x2: Inputs, shape (n2, d); None means ``x1`` (the train-train kernel).
        block_size: Samples per block (tile of K, or row block in the fallback); None
            keeps each block under ``BLOCK_BYTES``. Smaller blocks lower peak memory, not
            the result. For MLPs the peak is about K plus three copies of the output
            sensitivities of one layer (8 * m * width bytes each): 2.3x the bytes of K at
            m = 5000 and width 1024, more once width approaches m.

    Returns:
        float64 array of shape (n1 * C, n2 * C); entry ``[i*C + c, j*C + e]`` is
        ``<d f_c(x1_i)/d theta, d f_e(x2_j)/d theta>``.

    Raises:
        ValueError: For non-2-D, empty or non-finite inputs, mismatched features, or
            params that do not fit the model.

    Example:
        >>> from companion.models import mlp
        >>> model = mlp(8, 2, 3)
        >>> _, params = model.init_fn(jax.random.PRNGKey(0), (-1, 4))
        >>> x = np.ones((5, 4))
        >>> empirical_ntk(model, params, x).shape, empirical_ntk(model, params, x, x[:2]).shape
        ((15, 15), (15, 6))
    """
    check_float64("the empirical NTK")
    return _kernel(model_or_apply_fn, params, x1, x2, block_size, traced=False)


def traced_ntk(
    model_or_apply_fn: Model | Callable[..., Any],
    params: Any,
    x1: Any,
    x2: Any = None,
    *,
    block_size: int | None = None,
) -> np.ndarray:
    """Output-averaged empirical NTK ``K_scalar[i, j] = (1/C) sum_c K[iC+c, jC+c]``.

    This is an approximation: using ``K_scalar (x) I_C`` in place of the full-output
    kernel drops the cross-output blocks and the differences between the diagonal ones,
    both of which vanish only at infinite width. It costs C
    times less than :func:`empirical_ntk`. Arguments as for :func:`empirical_ntk`.

    Returns:
        float64 array of shape (n1, n2).

    Example:
        >>> from companion.models import mlp
        >>> model = mlp(8, 1, 3)
        >>> _, params = model.init_fn(jax.random.PRNGKey(0), (-1, 4))
        >>> x = np.eye(4)
        >>> full = empirical_ntk(model, params, x).reshape(4, 3, 4, 3)
        >>> bool(np.allclose(traced_ntk(model, params, x), np.einsum("icjc->ij", full) / 3))
        True
    """
    return _kernel(model_or_apply_fn, params, x1, x2, block_size, traced=True)
