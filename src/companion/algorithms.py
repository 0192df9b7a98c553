"""DGD, ATC and CTA: the one place where the three algorithms are defined.

A step of each algorithm is three operations on a state ``x`` (parameters, dual
coefficients, predictions, or a matrix representing an affine map of them):

- ``"gradient"``: evaluate the local gradients ``g`` at the current state;
- ``"mix"``: replace the state by its mixture ``(W (x) I) x``;
- ``"step"``: ``x <- x - eta g``.

The algorithms differ only in where the mix sits (the composition *is* the algorithm):

=====  ==========================  ==============================================
name   order                       update
=====  ==========================  ==============================================
DGD    gradient, mix, step         ``x <- W x - eta g(x)``
ATC    gradient, step, mix         ``x <- W (x - eta g(x))``
CTA    mix, gradient, step         ``x <- W x - eta g(W x)``
=====  ==========================  ==============================================

Every consumer (the dual and primal closed forms, real training, the iteration matrix and
the limits) runs :meth:`Algorithm.update` with its own three operations, so no other module
spells out an algorithm. What is proven about each algorithm's stability lives on its entry
too (:class:`Theory`), so no other module asks which algorithm it has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ALGORITHMS", "ATC", "CTA", "DGD", "Algorithm", "Theory", "get"]


@dataclasses.dataclass(frozen=True)
class Theory:
    """What the stability chapter proves about one algorithm on the linearized model, for a
    doubly stochastic W and ``L_max = max_q lambda_max(K_qq / n_q)``.

    With W symmetric the iteration matrix is similar to a symmetric one (DGD) or to a product
    of W with one (ATC, CTA), and -1 is an eigenvalue exactly when ``1 / eta`` is an
    eigenvalue of the m x m matrix ``f(W)[a(i), a(j)] Khat[i, j]``
    (:func:`companion.stability.minus_one_crossing`).

    Attributes:
        mixed_gradient: whether a step's gradient term passes through W (ATC mixes after
            the step, CTA evaluates the gradient at the mixed state); then
            ``f(W) = W (I + W)^{-1}``, otherwise (DGD) ``f(W) = (I + W)^{-1}``.
        bound_needs_symmetric: whether the sufficient bound is ``(1 + lambda_min(W)) /
            L_max``, proven for symmetric W only (DGD); otherwise it is ``2 / L_max`` for
            every doubly stochastic W (``||W||_2 = 1``).
        crossing_needs_psd: whether the -1 crossing is the exact threshold only for
            positive semidefinite W (ATC, CTA: with W indefinite a complex pair can leave the
            unit circle first); otherwise it is exact for every symmetric W.
    """

    mixed_gradient: bool
    bound_needs_symmetric: bool
    crossing_needs_psd: bool

    def sufficient_bound(self, curvature: float, lambda_min: float | None) -> float | None:
        """The sufficient (not necessary) stable step size, given ``L_max`` and
        ``lambda_min(W)`` (None for a W that is not symmetric); None where none is proven.

        Example:
            >>> DGD.theory.sufficient_bound(2.0, -0.5), ATC.theory.sufficient_bound(2.0, None)
            (0.25, 1.0)
        """
        if not self.bound_needs_symmetric:
            return 2.0 / curvature
        return None if lambda_min is None else (1.0 + lambda_min) / curvature

    def crossing_factor(self, evals: np.ndarray) -> np.ndarray:
        """``f`` at the eigenvalues of a symmetric W.

        Example:
            >>> DGD.theory.crossing_factor(np.array([0.5])), CTA.theory.crossing_factor(
            ...     np.array([0.5]))
            (array([0.66666667]), array([0.33333333]))
        """
        return (evals if self.mixed_gradient else 1.0) / (1.0 + evals)

    def crossing_is_threshold(self, symmetric: bool, lambda_min: float) -> bool:
        """Whether the -1 crossing is the exact threshold for this W.

        Example:
            >>> DGD.theory.crossing_is_threshold(True, -0.3), ATC.theory.crossing_is_threshold(
            ...     True, -0.3)
            (True, False)
        """
        return symmetric and (not self.crossing_needs_psd or lambda_min >= -1e-12)

    def bisection_start(self, curvature: float) -> float:
        """A step size known to be stable, where a scan for the threshold starts: the
        sufficient bound where it holds for every W, else ``2**-10 / L_max``."""
        return self.sufficient_bound(curvature, None) or 2.0**-10 / curvature


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A decentralized algorithm as an order of "gradient", "mix" and "step".

    Attributes:
        name: ``"dgd"``, ``"atc"`` or ``"cta"``.
        order: the three operations in the order one step applies them.
        title: the name readers know it by.
        theory: what is proven about its stability (:class:`Theory`).
    """

    name: str
    order: tuple[str, str, str]
    title: str
    theory: Theory

    @property
    def gradient_at_start(self) -> bool:
        """Whether the gradient is taken at the state the step starts from (DGD, ATC), so
        the local losses of that state come with it; CTA takes it at the mixed state.

        Example:
            >>> DGD.gradient_at_start, CTA.gradient_at_start
            (True, False)
        """
        return self.order[0] == "gradient"

    def update(
        self,
        state: Any,
        *,
        mix: Callable[[Any], Any],
        gradient: Callable[[Any], Any],
        step: Callable[[Any, Any], Any],
    ) -> Any:
        """One step of the algorithm on ``state``.

        Args:
            state: anything the three operations accept (arrays, pytrees, tuples).
            mix: ``state -> (W (x) I) state``.
            gradient: ``state -> g``, the local gradients at that state.
            step: ``(state, g) -> state - eta g``.

        Example:
            >>> ATC.update(4.0, mix=lambda x: x / 2, gradient=lambda x: x,
            ...            step=lambda x, g: x - 0.5 * g)
            1.0
        """
        grad = None
        for operation in self.order:
            if operation == "gradient":
                grad = gradient(state)
            elif operation == "mix":
                state = mix(state)
            else:
                state = step(state, grad)
        return state

    def affine_map(
        self,
        *,
        mix: Callable[[np.ndarray], np.ndarray],
        linear: Callable[[np.ndarray], np.ndarray],
        offset: np.ndarray,
        lr: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(M, c)`` of the step ``x <- M x + c`` when mixing is linear and the gradient
        is affine, ``g(x) = linear(x) + offset``.

        The step is applied to the augmented matrix ``[I | 0]`` whose columns represent
        ``z -> X z + x``; both operations act on every column, and the offset of the
        gradient enters the last one.

        Args:
            mix: linear map applied to the columns of a (size, k) array.
            linear: the linear part of the gradient, on the columns of a (size, k) array.
            offset: the gradient at ``x = 0``, shape (size,).
            lr: step size eta.

        Example:
            >>> m, c = DGD.affine_map(mix=lambda s: 0.5 * s, linear=lambda s: 2 * s,
            ...                       offset=np.ones(1), lr=0.1)
            >>> m.tolist(), c.tolist()
            ([[0.3]], [-0.1])
        """
        size = offset.size

        def gradient(state: np.ndarray) -> np.ndarray:
            grad = linear(state)
            grad[:, size] += offset
            return grad

        start = np.eye(size, size + 1)
        out = self.update(start, mix=mix, gradient=gradient, step=lambda s, g: s - lr * g)
        return out[:, :size], out[:, size]


_DIFFUSION = Theory(mixed_gradient=True, bound_needs_symmetric=False, crossing_needs_psd=True)
DGD = Algorithm(
    "dgd",
    ("gradient", "mix", "step"),
    "DGD",
    Theory(mixed_gradient=False, bound_needs_symmetric=True, crossing_needs_psd=False),
)
ATC = Algorithm("atc", ("gradient", "step", "mix"), "ATC diffusion", _DIFFUSION)
CTA = Algorithm("cta", ("mix", "gradient", "step"), "CTA diffusion", _DIFFUSION)

#: The table of algorithms, by name.
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (DGD, ATC, CTA)}


def get(algorithm: str | Algorithm) -> Algorithm:
    """The :class:`Algorithm` named ``algorithm`` (or ``algorithm`` itself).

    Example:
        >>> get("cta").order
        ('mix', 'gradient', 'step')
        >>> get("sgd")
        Traceback (most recent call last):
        ...
        ValueError: unknown algorithm 'sgd': use one of 'dgd', 'atc', 'cta'
    """
    if isinstance(algorithm, Algorithm):
        return algorithm
    if isinstance(algorithm, str) and algorithm in ALGORITHMS:
        return ALGORITHMS[algorithm]
    names = ", ".join(map(repr, ALGORITHMS))
    raise ValueError(f"unknown algorithm {algorithm!r}: use one of {names}")
