"""Our closed forms against neural-tangents' predictors, where the two overlap.

:func:`flow_max_rel_err` checks the single-agent gradient flow against
``neural_tangents.predict.gradient_descent_mse``, whose loss is normalized by
``y.size = n C`` instead of ``n``: its time runs C times slower, so our flow at ``t`` is
theirs at ``C t`` (with the full ``(n, n, C, C)`` kernel and ``trace_axes=()``).
:func:`max_rel_err` checks the infinite-width moments against its infinite ensemble.

``neural_tangents.predict.gradient_descent_mse_ensemble`` gives the mean and covariance
over initializations of an infinitely wide network trained by centralized gradient *flow*
on the loss normalized by ``y.size = n C``. Two conventions separate it from
:mod:`companion.infinite`: its time is our flow time times C, and it has no discrete-time
predictor. But ``k`` steps of gradient descent, ``(I - eta Theta / n)^k``, are exactly its
flow at ``t = k`` under the kernel ``Theta' = -n C log(I - eta Theta / n)`` (the same
eigenvectors), with the test kernel mapped as ``Theta'_* = Theta_* Theta^-1 Theta'``.
Where the two overlap (one agent, or ATC on the complete graph with uniform weights and
equal shares: centralized gradient descent) every agent's moments must agree to rounding.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import jax.numpy as jnp
import neural_tangents as nt
import numpy as np

from companion.dynamics import ClosedForm
from companion.infinite import InfiniteWidth
from companion.trajectory import relative_error

__all__ = ["flow_kernels", "flow_max_rel_err", "max_rel_err"]

#: What neural-tangents reads from a ``kernel_fn``: attributes named after the kernels.
_Kernels = collections.namedtuple("_Kernels", "nngp ntk")


def flow_kernels(form: InfiniteWidth) -> tuple[np.ndarray, np.ndarray]:
    """The train and test-train kernels whose gradient flow at ``t = k`` is ``k`` steps of
    size ``form.lr`` (on the eigenvectors of the scalar analytic NTK)."""
    n, c = form.problem.num_samples, form.problem.num_outputs
    values, vectors = np.linalg.eigh(form.ntk[:n])
    gain = -n * c * np.log1p(-form.lr * values / n) / values
    return (vectors * gain * values) @ vectors.T, form.ntk[n:] @ (vectors * gain) @ vectors.T


def _kernel_fn(form: InfiniteWidth):
    """A neural-tangents ``kernel_fn`` serving our kernels: the NNGP kernels and the mapped
    NTKs of the training, test-train and test-test inputs."""
    n, train = form.problem.num_samples, np.asarray(form.problem.inputs)
    train_ntk, test_ntk = flow_kernels(form)
    sigma = form.nngp

    def kernel_fn(x1, x2, get):
        if x2 is not None:
            kernels = _Kernels(sigma[n:, :n], test_ntk)
        elif np.array_equal(x1, train):
            kernels = _Kernels(sigma[:n, :n], train_ntk)
        else:
            kernels = _Kernels(sigma[n:, n:], None)
        return getattr(kernels, get) if isinstance(get, str) else kernels

    return kernel_fn


def max_rel_err(form: InfiniteWidth, steps: Sequence[int]) -> float:
    """Largest relative error of our mean and covariance (training and test inputs, every
    agent, at ``steps``) against neural-tangents' infinite ensemble.

    Raises:
        ValueError: for a problem without a test side (neural-tangents predicts both).

    Example:
        >>> import companion.problem as pl
        >>> from companion import infinite, models
        >>> p = pl.digits(models.mlp(8, 1, 10), num_agents=1, samples_per_agent=6, n_test=3)
        >>> form = infinite.closed_form(p, "dgd", np.eye(1), lr=0.5)
        >>> max_rel_err(form, [0, 3, 20]) < 1e-10
        True
    """
    p = form.problem
    if p.inputs is None or p.inputs_test is None or p.targets_test is None:
        raise ValueError(
            "the peer check compares test predictions too: give the problem a test side"
        )
    n, x_test = p.num_samples, jnp.asarray(p.inputs_test)
    predict = nt.predict.gradient_descent_mse_ensemble(
        _kernel_fn(form),  # type: ignore[arg-type]  # serves kernels, not a stax layer
        jnp.asarray(p.inputs),
        jnp.asarray(p.targets),
    )
    t = jnp.asarray(steps, dtype=float)
    theirs = [predict(t, x, "ntk", compute_cov=True) for x in (None, x_test)]
    ours, cov = form.steps(int(max(steps))), form.covariance(steps)
    means = (ours.mean.predictions, np.asarray(ours.mean.test_predictions))
    blocks = (cov[..., :n, :n], cov[..., n:, n:])
    return max(
        max(
            relative_error(m[list(steps), q], np.asarray(mean)),
            relative_error(c[:, q], np.asarray(var)),
        )
        for m, c, (mean, var) in zip(means, blocks, theirs, strict=True)
        for q in range(p.num_agents)
    )


def flow_max_rel_err(form: ClosedForm, times: Sequence[float] | np.ndarray) -> float:
    """Largest relative error of the gradient flow ``F(t) = y + exp(-K t / n)(f_0 - y)``
    of a one-agent closed form (:meth:`companion.dynamics.ClosedForm.flow`) against
    ``neural_tangents.predict.gradient_descent_mse`` at ``C t``, on the training and the
    test predictions.

    Raises:
        ValueError: for a closed form of more than one agent, or without a test side.

    Example:
        >>> import companion.problem as pl
        >>> from companion import dynamics, models
        >>> p = pl.digits(models.mlp(8, 1, 10), num_agents=1, samples_per_agent=6, n_test=3)
        >>> form = dynamics.closed_form(p, "dgd", np.eye(1), lr=0.5 / p.curvature)
        >>> flow_max_rel_err(form, [0.0, 1.0, 10.0]) < 1e-8
        True
    """
    p, times = form.problem, np.asarray(times, dtype=float)
    if p.num_agents != 1 or p.kernel_test is None or p.f0_test is None:
        raise ValueError(
            f"neural-tangents' gradient_descent_mse is centralized and predicts test inputs "
            f"too: give a closed form of one agent with a test side, got {p.num_agents} "
            f"agents{'' if p.kernel_test is not None else ' and no test side'}"
        )
    ours = form.flow(times)
    (n, c), n_test = p.f0.shape, p.f0_test.shape[0]
    kernel = p.kernel.reshape(n, c, n, c).transpose(0, 2, 1, 3)
    kernel_test = p.kernel_test.reshape(n_test, c, n, c).transpose(0, 2, 1, 3)
    predict = nt.predict.gradient_descent_mse(
        jnp.asarray(kernel), jnp.asarray(p.targets), trace_axes=()
    )
    train, test = predict(
        c * times, jnp.asarray(p.f0), jnp.asarray(p.f0_test), jnp.asarray(kernel_test)
    )
    return max(
        relative_error(ours.predictions[:, 0], np.asarray(train)),
        relative_error(np.asarray(ours.test_predictions)[:, 0], np.asarray(test)),
    )
