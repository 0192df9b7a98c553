"""The data sets (digits; MNIST-1D, generated) and their partitions across agents.

Inputs are centred by the training mean and scaled to unit L2 norm per sample, so every
input lies on the unit sphere, where the NTK of a stax MLP depends only on angles. Targets
are one-hot (optionally centred). The training set is split across ``Q`` agents by one of
three seeded schemes: ``"iid"``, label-sorted ``"shards"``, or ``"dirichlet"`` label skew.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits

PARTITION_SCHEMES = ("iid", "shards", "dirichlet")


@dataclass(frozen=True)
class Dataset:
    """Train and test split of a classification data set (float64 arrays).

    Attributes:
        x_train: Inputs, shape (n_train, d).
        y_train: Targets, shape (n_train, C): one-hot, or one-hot minus 1/C if centred.
        labels_train: Integer class labels, shape (n_train,).
        x_test: Inputs, shape (n_test, d); n_test may be 0.
        y_test: Targets, shape (n_test, C).
        labels_test: Integer class labels, shape (n_test,).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    labels_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels_test: np.ndarray

    @property
    def num_classes(self) -> int:
        """Number of output channels C."""
        return self.y_train.shape[1]


def _split(
    indices: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``size`` of ``indices`` (stratified when both parts can hold every class).

    Stratification keeps class proportions in small training sets; it needs at least one
    sample per class on both sides, otherwise the draw is uniformly random.
    """
    if size == len(indices):
        return np.sort(indices), np.empty(0, dtype=indices.dtype)
    classes, counts = np.unique(labels[indices], return_counts=True)
    rest = len(indices) - size
    if min(size, rest) < len(classes) or counts.min() < 2:
        order = rng.permutation(indices)
        return np.sort(order[:size]), np.sort(order[size:])
    # Largest-remainder allocation of ``size`` slots in proportion to the class counts.
    quota = counts * size / len(indices)
    take = np.floor(quota).astype(int)
    extra = np.argsort(-(quota - take), kind="stable")[: size - take.sum()]
    take[extra] += 1
    chosen, left = [], []
    for cls, k in zip(classes, take, strict=True):
        members = rng.permutation(indices[labels[indices] == cls])
        chosen.append(members[:k])
        left.append(members[k:])
    return np.sort(np.concatenate(chosen)), np.sort(np.concatenate(left))


def load_digits_dataset(
    n_train: int,
    n_test: int = 0,
    *,
    seed: int = 0,
    center_targets: bool = False,
    classes: int = 10,
) -> Dataset:
    """Load scikit-learn's 8x8 digits (shipped with scikit-learn: no download).

    Only digits ``0 .. classes-1`` are used. The train/test split is seeded and stratified
    by class when each side can hold every class, uniformly random otherwise. Inputs are
    centred by the *training* mean and then scaled to unit L2 norm per sample.

    Args:
        n_train: Number of training samples (>= 1).
        n_test: Number of test samples (>= 0).
        seed: Seed of the split.
        center_targets: Subtract 1/C from the one-hot targets, so each target sums to 0.
        classes: Number of classes C, from 2 to 10.

    Returns:
        A :class:`Dataset` with 64 input features and C outputs.

    Raises:
        ValueError: If ``classes`` is out of range or the sizes do not fit the data.

    Example:
        >>> data = load_digits_dataset(20, 10, seed=1, classes=3)
        >>> data.x_train.shape, data.y_train.shape, data.x_test.shape
        ((20, 64), (20, 3), (10, 64))
        >>> bool(np.allclose(np.linalg.norm(data.x_train, axis=1), 1.0))
        True
    """
    if not 2 <= classes <= 10:
        raise ValueError(f"classes={classes} is out of range; pick an integer from 2 to 10.")
    integers = all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (n_train, n_test)
    )
    if not integers or n_train < 1 or n_test < 0:
        raise ValueError(f"n_train={n_train}, n_test={n_test}: need n_train >= 1 and n_test >= 0.")
    features, targets = load_digits(return_X_y=True)
    pool = np.flatnonzero(np.asarray(targets) < classes)
    if n_train + n_test > len(pool):
        raise ValueError(
            f"n_train + n_test = {n_train + n_test} exceeds the {len(pool)} digits with "
            f"classes={classes}; reduce n_train or n_test (or raise classes)."
        )
    labels = np.asarray(targets, dtype=np.int64)
    rng = np.random.default_rng(seed)
    chosen, _ = _split(pool, labels, n_train + n_test, rng)
    train, test = _split(chosen, labels, n_train, rng)

    inputs = np.asarray(features, dtype=np.float64)
    return _prepared(inputs, labels, train, test, classes, center_targets)


def _prepared(
    inputs: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    classes: int,
    center_targets: bool,
) -> Dataset:
    """The rows ``train`` and ``test``, centred by the training mean, each scaled to unit
    norm, with one-hot targets (minus 1/C when centred)."""
    mean = inputs[train].mean(axis=0)

    def prepare(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = inputs[idx] - mean
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        # A sample equal to the training mean has no direction; leave it at the origin.
        x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
        y = np.eye(classes)[labels[idx]] - (1.0 / classes if center_targets else 0.0)
        return x, y, labels[idx]

    return Dataset(*prepare(train), *prepare(test))


#: Samples MNIST-1D's generator draws by default (its train split keeps 4000 of them).
MNIST1D_SAMPLES = 5000


@functools.lru_cache(maxsize=4)
def _mnist1d(generated: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D's inputs (generated, 40) and labels, from the package's generator only.

    ``make_dataset`` reseeds Python's and NumPy's global generators; their states are
    put back afterwards, so loading the data leaves no trace on other random draws.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # never get_dataset: it downloads
    from mnist1d.utils import ObjectView

    defaults: dict = get_dataset_args(as_dict=True)  # pyright: ignore[reportAssignmentType]
    args = ObjectView(defaults | {"num_samples": generated})
    # the generator draws from the legacy global state: save it, and put it back below
    states = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        made = make_dataset(args)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])  # noqa: NPY002
    x = np.concatenate([made["x"], made["x_test"]]).astype(np.float64)
    labels = np.concatenate([made["y"], made["y_test"]]).astype(np.int64)
    return x, labels


def load_mnist1d_dataset(
    n_train: int,
    n_test: int = 0,
    *,
    seed: int = 0,
    center_targets: bool = False,
    generated: int = MNIST1D_SAMPLES,
) -> Dataset:
    """A subset of MNIST-1D (Greydanus 2020, arXiv:2011.14439): 40-sample 1-D signals of ten
    digit templates, shifted, scaled, sheared and noised. The package's own generator
    (``mnist1d.data.make_dataset``, its default arguments and seed 42) builds ``generated``
    signals in code, nothing is downloaded; from them a seeded stratified split draws
    ``n_train`` and ``n_test``, prepared as digits are (centred by the training mean, unit
    L2 norm per sample, one-hot targets).

    Args:
        n_train, n_test: sizes of the subset (n_train >= 1, n_test >= 0).
        seed: seed of the subset.
        center_targets: one-hot targets minus 1/10.
        generated: signals generated (the standard 5000; fewer generate faster and are
            another draw of the same process).

    Example:
        >>> d = load_mnist1d_dataset(20, 10, seed=0, generated=200)
        >>> d.x_train.shape, d.y_train.shape, d.num_classes
        ((20, 40), (20, 10), 10)
    """
    integers = all(
        isinstance(v, int | np.integer) and not isinstance(v, bool)
        for v in (n_train, n_test, generated)
    )
    if not integers or n_train < 1 or n_test < 0 or generated < 10:
        raise ValueError(
            f"n_train={n_train!r}, n_test={n_test!r}, generated={generated!r}: need integers "
            "n_train >= 1, n_test >= 0 and generated >= 10"
        )
    if n_train + n_test > generated:
        raise ValueError(
            f"n_train + n_test = {n_train + n_test} exceeds the {generated} generated "
            "signals: reduce them or raise generated"
        )
    inputs, labels = _mnist1d(int(generated))
    rng = np.random.default_rng(seed)
    chosen, _ = _split(np.arange(len(labels)), labels, n_train + n_test, rng)
    train, test = _split(chosen, labels, n_train, rng)
    return _prepared(inputs, labels, train, test, 10, center_targets)


def _dirichlet(
    labels: np.ndarray, num_agents: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Split each class across agents in Dirichlet(alpha) proportions, then fill empties."""
    parts: list[list[np.ndarray]] = [[] for _ in range(num_agents)]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.round(np.cumsum(rng.dirichlet(np.full(num_agents, alpha))) * len(members))
        for agent, chunk in enumerate(np.split(members, cuts[:-1].astype(int))):
            parts[agent].append(chunk)
    merged = [np.concatenate(p) for p in parts]
    # Small alpha can leave an agent with nothing; every agent needs a local loss, so move
    # one sample at a time from the largest agent (deterministic given the draw).
    for agent in range(num_agents):
        if len(merged[agent]) == 0:
            donor = int(np.argmax([len(p) for p in merged]))
            merged[agent], merged[donor] = merged[donor][-1:], merged[donor][:-1]
    return merged


def partition_indices(
    labels: np.ndarray,
    num_agents: int,
    *,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    num_classes: int | None = None,
) -> list[np.ndarray]:
    """Split training rows across agents.

    Schemes:
        ``"iid"``: a seeded shuffle cut into ``num_agents`` near-equal parts.
        ``"shards"``: rows sorted by label (ties in random order) cut into contiguous
        shards, so each agent sees one or a few classes.
        ``"dirichlet"``: the per-class variant: for each class independently, its rows
        are split across the agents in proportions drawn from Dirichlet(alpha, ..., alpha)
        (so agent sizes differ too). Smaller alpha means stronger label skew (each class
        concentrated on few agents); large alpha approaches equal shares. Agents left
        empty receive one row from the largest agent.

    Args:
        labels: Integer labels of the n training rows, shape (n,).
        num_agents: Number of agents Q, from 1 to n.
        scheme: One of ``"iid"``, ``"shards"``, ``"dirichlet"``.
        alpha: Dirichlet concentration (> 0); used by ``"dirichlet"`` only.
        seed: Seed of the partition.
        num_classes: The number of classes C, when known: the label-skewed schemes
            (``"shards"``, ``"dirichlet"``) then refuse labels in which a class has no row,
            since no agent would hold it.

    Returns:
        Q sorted, disjoint, non-empty int64 index arrays that together cover ``range(n)``.
        Sizes may differ between agents.

    Raises:
        ValueError: For a bad ``num_agents``, ``scheme``, ``alpha`` or ``labels``.

    Example:
        >>> labels = np.array([0, 0, 1, 1, 2])
        >>> [labels[p].tolist() for p in partition_indices(labels, 2, scheme="shards")]
        [[0, 0, 1], [1, 2]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a non-empty 1-D integer array, got shape {labels.shape} and "
            f"dtype {labels.dtype}; pass e.g. Dataset.labels_train."
        )
    n = labels.size
    if not 1 <= num_agents <= n:
        raise ValueError(
            f"num_agents={num_agents} must be between 1 and the number of rows n={n}; "
            "every agent needs at least one sample."
        )
    if scheme not in PARTITION_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; valid schemes are {PARTITION_SCHEMES}.")
    if not alpha > 0:
        raise ValueError(f"alpha={alpha} must be > 0 (smaller alpha means stronger skew).")
    if num_classes is not None and scheme != "iid":
        counts = np.bincount(labels, minlength=num_classes)
        if (counts == 0).any():
            raise ValueError(
                f"class {int(np.argmin(counts))} has no training row, so no agent would hold "
                f"it under the {scheme!r} partition: use more training samples (at least one "
                "per class) or fewer classes"
            )
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        parts = np.array_split(rng.permutation(n), num_agents)
    elif scheme == "shards":
        shuffled = rng.permutation(n)
        order = shuffled[np.argsort(labels[shuffled], kind="stable")]
        parts = np.array_split(order, num_agents)
    else:
        parts = _dirichlet(labels, num_agents, alpha, rng)
    return [np.sort(p).astype(np.int64) for p in parts]


def principal_components(dataset: Dataset, dims: int) -> Dataset:
    """The dataset with inputs projected on the ``dims`` leading principal directions of the
    training inputs, each sample scaled back to unit norm.

    Useful where the raw pixels are ill-conditioned: the 64 pixels of digits include
    near-constant ones, whose tiny variances make some dynamics take millions of steps.

    Example:
        >>> d = principal_components(load_digits_dataset(20, 5, seed=0), 4)
        >>> d.x_train.shape, d.x_test.shape
        ((20, 4), (5, 4))
        >>> bool(np.allclose(np.linalg.norm(d.x_train, axis=1), 1.0))
        True
    """
    if not (isinstance(dims, int | np.integer) and 1 <= dims <= dataset.x_train.shape[1]):
        raise ValueError(
            f"dims={dims!r} must be an integer from 1 to the {dataset.x_train.shape[1]} input "
            "features"
        )
    mean = dataset.x_train.mean(axis=0)
    directions = np.linalg.svd(dataset.x_train - mean, full_matrices=False)[2][:dims]

    def project(x: np.ndarray) -> np.ndarray:
        z = (x - mean) @ directions.T
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        return np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)

    return Dataset(
        project(dataset.x_train),
        dataset.y_train,
        dataset.labels_train,
        project(dataset.x_test),
        dataset.y_test,
        dataset.labels_test,
    )


def partitioner(
    dataset: Dataset, *, scheme: str = "iid", alpha: float = 0.5, seed: int = 0
) -> Callable[[int], list[np.ndarray]]:
    """The split of ``dataset``'s training rows for any number of agents:
    :func:`partition_indices` with this scheme, skew and seed.

    Example:
        >>> split = partitioner(load_digits_dataset(12, 0, seed=0))
        >>> [len(rows) for rows in split(3)]
        [4, 4, 4]
    """

    def partition(num_agents: int) -> list[np.ndarray]:
        return partition_indices(
            dataset.labels_train,
            num_agents,
            scheme=scheme,
            alpha=alpha,
            seed=seed,
            num_classes=dataset.num_classes,
        )

    return partition
