"""Mini-batch samplers: which of its own rows each agent's gradient sees at each step.

At step k agent q draws a batch from its own rows ``S_q`` (``n_q`` of them), independently
of every other agent, of every other step and of the state, and weights the rows it drew
so that the batch gradient is unbiased for the full local gradient (weights ``1/n_q``):

- :func:`fixed_size`: ``b_q`` rows drawn uniformly without replacement, weight ``1/b_q``;
- :func:`independent`: each row included independently with probability ``rho_q``,
  weight ``1/(rho_q n_q)`` (the batch size is random, ``rho_q n_q`` on average).

What the exact moments need is the law of the inclusion indicators ``1_i``:
:meth:`Sampler.inclusion` is ``E[1_i 1_j]`` (``b/n`` on the diagonal and
``b(b-1)/(n(n-1))`` off it without replacement; ``rho`` and ``rho^2`` for independent
inclusion), and :meth:`Sampler.weight_covariance` the covariance of the weighted indicators
``w_i 1_i``, which vanishes for the full batch. A sampler holds a seed (an integer or a
``jax.random`` key): the same seed gives the same batches, step by step, however a run is
cut into pieces (:meth:`Sampler.weights`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from companion.problem import Problem

__all__ = ["KINDS", "Sampler", "fixed_size", "full_batch", "independent"]

KINDS = ("fixed_size", "independent")
SUPPORT_LIMIT = 4096  # most batches of one agent listed by Sampler.support


def _key(seed: Any) -> tuple[int, int]:
    """A raw ``jax.random`` key (two uint32 words) from an int seed or a key."""
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed must be a non-negative integer or a jax key, got {seed}")
        return int(seed) >> 32, int(seed) & 0xFFFFFFFF  # the words of jax.random.PRNGKey
    if isinstance(seed, jax.Array) and jax.numpy.issubdtype(seed.dtype, jax.dtypes.prng_key):
        seed = jax.random.key_data(seed)  # a typed key: its raw words
    words = np.asarray(seed) if isinstance(seed, tuple | list | np.ndarray | jax.Array) else None
    if words is None or words.shape != (2,) or not np.issubdtype(words.dtype, np.integer):
        raise ValueError(
            f"seed must be a non-negative integer or a jax key (two uint32 words), got {seed!r}"
        )
    return int(words[0]), int(words[1])


def _per_agent(value: Any, count: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        array = np.full(count, float(array))
    if array.shape != (count,) or not np.isfinite(array).all():
        raise ValueError(
            f"{name} must be one number or one per agent ({count} agents), got {value!r}"
        )
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class Sampler:
    """Each agent's mini-batch at every step; build it with :func:`fixed_size` or
    :func:`independent`.

    Attributes:
        kind: ``"fixed_size"`` or ``"independent"``.
        sizes: ``n_q``, the rows of each agent.
        batches: ``b_q`` (fixed size) or ``rho_q`` (independent), per agent.
        key: the two words of the seed (as a raw ``jax.random`` key) the batches are
            drawn from.
        width: the padded row count of :attr:`companion.problem.Problem.own_rows`.
    """

    kind: str
    sizes: tuple[int, ...]
    batches: tuple[float, ...]
    key: tuple[int, int]
    width: int

    @property
    def num_agents(self) -> int:
        """Q."""
        return len(self.sizes)

    @property
    def name(self) -> str:
        """A short label: ``b = 2`` or ``rho = 0.5`` (or the list of per-agent values)."""
        values = sorted(set(self.batches))
        shown = ", ".join(f"{v:g}" for v in values)
        symbol = "b" if self.kind == "fixed_size" else "rho"
        return f"{symbol} = {shown}" if len(values) == 1 else f"{symbol} in ({shown})"

    @property
    def factors(self) -> np.ndarray:
        """(Q,) the weight of a drawn row: ``1/b_q`` or ``1/(rho_q n_q)``."""
        batches, sizes = np.asarray(self.batches), np.asarray(self.sizes, dtype=float)
        return 1.0 / (batches if self.kind == "fixed_size" else batches * sizes)

    @property
    def expected_batch(self) -> np.ndarray:
        """(Q,) the expected number of rows drawn per step: ``b_q`` or ``rho_q n_q``, the
        gradient evaluations of one step."""
        batches = np.asarray(self.batches)
        return batches if self.kind == "fixed_size" else batches * np.asarray(self.sizes)

    @property
    def is_full(self) -> bool:
        """Whether every agent draws all its rows at every step (the full batch)."""
        return bool(np.allclose(self.expected_batch, self.sizes, rtol=0, atol=0))

    def inclusion(self, agent: int) -> np.ndarray:
        """(n_q, n_q) ``E[1_i 1_j]`` of the inclusion indicators of one agent's rows.

        Example:
            >>> p = Problem(targets=np.zeros((3, 1)), partition=[np.arange(3)],
            ...             kernel=np.eye(3), f0=np.zeros((3, 1)))
            >>> fixed_size(p, 2).inclusion(0).round(4).tolist()[0]
            [0.6667, 0.3333, 0.3333]
        """
        n, batch = self.sizes[agent], self.batches[agent]
        if self.kind == "fixed_size":
            off = batch * (batch - 1) / (n * (n - 1)) if n > 1 else 0.0
            diagonal = batch / n
        else:
            off, diagonal = batch**2, batch
        return np.full((n, n), off) + (diagonal - off) * np.eye(n)

    def weight_covariance(self, agent: int) -> np.ndarray:
        """(n_q, n_q) the covariance of the weighted indicators ``w_i 1_i`` (mean
        ``1/n_q`` each), ``factor^2 E[1_i 1_j] - 1/n_q^2`` simplified so that the full batch
        gives exactly zero: ``(n - b) / (b n^2)`` on the diagonal and ``-(n - b) / (b n^2
        (n - 1))`` off it without replacement; ``(1 - rho) / (rho n^2)`` times I for
        independent inclusion."""
        n, batch = self.sizes[agent], self.batches[agent]
        if self.kind == "independent":
            return (1 - batch) / (batch * n**2) * np.eye(n)
        scale = (n - batch) / (batch * n**2)
        off = -scale / (n - 1) if n > 1 else 0.0
        return np.full((n, n), off) + (scale - off) * np.eye(n)

    def padded_covariance(self) -> np.ndarray:
        """(Q, L, L) :meth:`weight_covariance` of every agent, padded with zeros to the
        width of :attr:`companion.problem.Problem.own_rows`."""
        out = np.zeros((self.num_agents, self.width, self.width))
        for q, n in enumerate(self.sizes):
            out[q, :n, :n] = self.weight_covariance(q)
        return out

    def weights(self, steps: int, start: int = 0) -> np.ndarray:
        """(steps, Q, L) the row weights of steps ``start .. start + steps - 1``; step k
        draws from ``fold_in(key, k)``, so any split of a run into pieces draws the same.

        Example:
            >>> p = Problem(targets=np.zeros((4, 1)), partition=[np.arange(4)],
            ...             kernel=np.eye(4), f0=np.zeros((4, 1)))
            >>> w = fixed_size(p, 2, seed=3).weights(5)
            >>> (w > 0).sum(-1).ravel().tolist(), float(w.max())
            ([2, 2, 2, 2, 2], 0.5)
            >>> bool(np.array_equal(w[3:], fixed_size(p, 2, seed=3).weights(2, start=3)))
            True
        """
        return self.sequences([self.key], steps, start)[0]

    def sequences(self, seeds: Sequence[Any], steps: int, start: int = 0) -> np.ndarray:
        """(S, steps, Q, L): :meth:`weights` of ``reseeded(seed)`` for each of ``seeds``
        (Monte Carlo over batch sequences). Each sequence draws the uniforms of steps
        ``0 .. start + steps - 1`` from NumPy's generator seeded by the key's two words and
        keeps the last ``steps``: without replacement, the ``b_q`` rows with the smallest
        uniforms (a uniform subset); independently, the rows whose uniform is below
        ``rho_q``."""
        real = np.arange(self.width)[None, :] < np.asarray(self.sizes)[:, None]
        uniform = np.stack(
            [
                np.random.default_rng(np.array(_key(seed), dtype=np.uint64)).random(
                    (start + steps, self.num_agents, self.width)
                )[start:]
                for seed in seeds
            ]
        )
        batches = np.asarray(self.batches)[:, None]
        if self.kind == "fixed_size":
            ranks = np.argsort(np.argsort(np.where(real, uniform, 2.0), -1), -1)
            chosen = ranks < batches
        else:
            chosen = real & (uniform < batches)
        return np.where(chosen, self.factors[:, None], 0.0)

    def reseeded(self, seed: Any) -> Sampler:
        """The same sampler with another seed (an int or a jax key)."""
        return dataclasses.replace(self, key=_key(seed))

    def support(self, agent: int) -> list[tuple[float, np.ndarray]]:
        """Every batch agent ``agent`` can draw with its probability, as ``(p, weights)``
        with weights over its ``n_q`` rows: for exact enumeration on tiny problems.

        Raises:
            ValueError: above ``SUPPORT_LIMIT`` batches.
        """
        n, batch, factor = self.sizes[agent], self.batches[agent], self.factors[agent]
        if self.kind == "fixed_size":
            subsets = list(itertools.combinations(range(n), int(batch)))
            probabilities = [1.0 / math.comb(n, int(batch))] * len(subsets)
        else:
            subsets = [s for r in range(n + 1) for s in itertools.combinations(range(n), r)]
            probabilities = [batch ** len(s) * (1 - batch) ** (n - len(s)) for s in subsets]
        if len(subsets) > SUPPORT_LIMIT:
            raise ValueError(
                f"agent {agent} can draw {len(subsets)} batches, more than {SUPPORT_LIMIT}: "
                "enumerate on a smaller problem (fewer rows per agent)"
            )
        out = []
        for p, subset in zip(probabilities, subsets, strict=True):
            weights = np.zeros(n)
            weights[list(subset)] = factor
            out.append((float(p), weights))
        return [(p, w) for p, w in out if p > 0]


def _sizes(problem: Problem) -> tuple[tuple[int, ...], int]:
    sizes = tuple(len(rows) for rows in problem.partition)
    return sizes, problem.own_rows[0].shape[1]


def fixed_size(problem: Problem, batch: int | Sequence[int], *, seed: Any = 0) -> Sampler:
    """Batches of ``b_q`` rows drawn uniformly without replacement from each agent's own
    rows, weighted ``1/b_q``.

    Args:
        problem: the problem whose partition the batches are drawn from.
        batch: ``b_q``, one integer for every agent or one per agent, ``1 <= b_q <= n_q``.
        seed: an integer or a ``jax.random`` key.

    Example:
        >>> p = Problem(targets=np.zeros((3, 1)), partition=[np.arange(2), np.arange(2, 3)],
        ...             kernel=np.eye(3), f0=np.zeros((3, 1)))
        >>> fixed_size(p, [2, 1]).factors.tolist()
        [0.5, 1.0]
        >>> fixed_size(p, 2)
        Traceback (most recent call last):
        ...
        ValueError: batch size 2 of agent 1 is outside 1..n_q = 1: ...
    """
    sizes, width = _sizes(problem)
    values = _per_agent(batch, len(sizes), "batch")
    for q, (b, n) in enumerate(zip(values, sizes, strict=True)):
        if b != int(b):
            raise ValueError(f"batch size {b:g} of agent {q} is not an integer: pass whole rows")
        if not 1 <= b <= n:
            raise ValueError(
                f"batch size {b:g} of agent {q} is outside 1..n_q = {n}: a batch needs at "
                f"least one row and at most the agent's {n} rows (b = n_q is the full batch)"
            )
    return Sampler("fixed_size", sizes, tuple(float(b) for b in values), _key(seed), width)


def independent(problem: Problem, rho: float | Sequence[float], *, seed: Any = 0) -> Sampler:
    """Each own row included independently with probability ``rho_q``, weighted
    ``1/(rho_q n_q)``.

    Example:
        >>> p = Problem(targets=np.zeros((2, 1)), partition=[np.arange(2)],
        ...             kernel=np.eye(2), f0=np.zeros((2, 1)))
        >>> independent(p, 0.5).inclusion(0).tolist()
        [[0.5, 0.25], [0.25, 0.5]]
        >>> independent(p, 0.0)
        Traceback (most recent call last):
        ...
        ValueError: rho = 0 of agent 0 is outside (0, 1]: ...
    """
    sizes, width = _sizes(problem)
    values = _per_agent(rho, len(sizes), "rho")
    for q, r in enumerate(values):
        if not 0 < r <= 1:
            raise ValueError(
                f"rho = {r:g} of agent {q} is outside (0, 1]: it is the probability that a row "
                "is in the batch; rho = 1 is the full batch"
            )
    return Sampler("independent", sizes, tuple(float(r) for r in values), _key(seed), width)


def full_batch(problem: Problem) -> Sampler:
    """Every agent's whole local set at every step: :func:`fixed_size` with ``b_q = n_q``."""
    return fixed_size(problem, [len(rows) for rows in problem.partition])
