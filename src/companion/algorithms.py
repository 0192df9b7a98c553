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
spells out an algorithm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ALGORITHMS", "ATC", "CTA", "DGD", "Algorithm", "get"]


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A decentralized algorithm as an order of "gradient", "mix" and "step".

    Attributes:
        name: ``"dgd"``, ``"atc"`` or ``"cta"``.
        order: the three operations in the order one step applies them.
        title: the name readers know it by.
    """

    name: str
    order: tuple[str, str, str]
    title: str

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


DGD = Algorithm("dgd", ("gradient", "mix", "step"), "DGD")
ATC = Algorithm("atc", ("gradient", "step", "mix"), "ATC diffusion")
CTA = Algorithm("cta", ("mix", "gradient", "step"), "CTA diffusion")

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
