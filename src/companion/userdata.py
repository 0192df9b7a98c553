"""A user's own data set and graph, read and validated once.

The data set is an ``.npz`` file with

- ``x`` (n, d): finite floats, one sample per row, used as given (the book's chapters
  put every sample on the unit sphere; scale yours as you see fit);
- ``y``: (n,) integer class labels, (n, C) one-hot rows, or (n, C) float targets
  (regression); labels become one-hot targets, minus 1/C when centred, as in the book;
- optional ``x_test`` and ``y_test``, in the same format, both or neither;
- optional ``partition`` (n,): the agent (0 .. Q-1) of each training sample.

Without ``partition`` a stated rule splits the rows (:func:`partition`): ``contiguous``
cuts them in file order into Q near-equal blocks; ``dirichlet`` splits each class across
the agents in Dirichlet(alpha) proportions (:func:`companion.data.partition_indices`).
A graph is a name of :data:`companion.graphs.TOPOLOGIES` or an edge-list file
(:func:`read_edges`). Every refusal is a ``ValueError`` that names the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zipfile
from pathlib import Path

import networkx as nx
import numpy as np

from companion import data, graphs

__all__ = ["KEYS", "RULES", "UserData", "load", "memory_estimate", "partition", "read_edges"]

#: The keys a data file may hold, and whether each is required.
KEYS = {"x": True, "y": True, "x_test": False, "y_test": False, "partition": False}
#: Rules that split the rows when the file has no ``partition``.
RULES = ("contiguous", "dirichlet")


@dataclasses.dataclass(frozen=True)
class UserData:
    """A validated data set.

    Attributes:
        x, targets: (n, d) inputs and (n, C) targets.
        labels: (n,) class labels, or None for regression targets.
        x_test, targets_test, labels_test: the test side ((0, d), (0, C) and None when
            the file has none).
        agents: (n,) the file's ``partition``, or None.
        source: where it came from, for messages.
    """

    x: np.ndarray
    targets: np.ndarray
    labels: np.ndarray | None
    x_test: np.ndarray
    targets_test: np.ndarray
    labels_test: np.ndarray | None
    agents: np.ndarray | None
    source: str = "the data"

    @property
    def num_classes(self) -> int:
        """C, the outputs per sample."""
        return self.targets.shape[1]

    @property
    def classification(self) -> bool:
        """Whether ``y`` held class labels (so accuracy means something)."""
        return self.labels is not None

    @classmethod
    def of(cls, dataset: data.Dataset, source: str = "the data") -> UserData:
        """A :class:`companion.data.Dataset` (digits, MNIST-1D) as a user's data set."""
        return cls(
            dataset.x_train,
            dataset.y_train,
            dataset.labels_train,
            dataset.x_test,
            dataset.y_test,
            dataset.labels_test,
            None,
            source,
        )

    def dataset(self) -> data.Dataset:
        """The same data as a :class:`companion.data.Dataset` (labels 0 for regression)."""
        zeros = np.zeros(len(self.x), dtype=np.int64)
        test_zeros = np.zeros(len(self.x_test), dtype=np.int64)
        return data.Dataset(
            self.x,
            self.targets,
            zeros if self.labels is None else self.labels,
            self.x_test,
            self.targets_test,
            test_zeros if self.labels_test is None else self.labels_test,
        )


def _floats(value: np.ndarray, name: str, source: str) -> np.ndarray:
    if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
        raise ValueError(
            f"{source}: '{name}' has dtype {value.dtype}, not numbers: save it as a float array "
            "(e.g. np.asarray(values, dtype=float))"
        )
    array = value.astype(np.float64)
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        raise ValueError(
            f"{source}: '{name}' has {len(bad)} NaN or inf entries, the first at "
            f"{tuple(int(i) for i in bad[0])}: drop or impute those samples before saving"
        )
    return array


def _inputs(value: np.ndarray, name: str, source: str) -> np.ndarray:
    if value.ndim != 2 or 0 in value.shape:
        raise ValueError(
            f"{source}: '{name}' has shape {value.shape}; it must be (n, d) with n >= 1 "
            f"samples and d >= 1 features (flatten each sample: {name}.reshape(len({name}), -1))"
        )
    return _floats(value, name, source)


def _targets(
    value: np.ndarray, name: str, rows: int, source: str, classes: int | None, center: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, C) targets and the labels (None for regression) of ``y`` or ``y_test``."""
    if value.ndim not in (1, 2) or len(value) != rows:
        raise ValueError(
            f"{source}: '{name}' has shape {value.shape}, expected ({rows},) labels or "
            f"({rows}, C) targets: one per row of '{name.replace('y', 'x')}'"
        )
    array = _floats(value, name, source)
    if array.ndim == 2:
        onehot = np.isin(array, (0.0, 1.0)).all() and np.all(array.sum(axis=1) == 1)
        if not onehot or array.shape[1] < 2:
            if classes is not None and array.shape[1] != classes:
                raise ValueError(
                    f"{source}: '{name}' has {array.shape[1]} outputs but 'y' has {classes}: "
                    "give both the same number of target columns"
                )
            return array, None
        array = array.argmax(axis=1).astype(float)
    if not np.all(array == np.round(array)):
        i = int(np.flatnonzero(array != np.round(array))[0])
        raise ValueError(
            f"{source}: '{name}' holds labels that are not integers ({name}[{i}] = {array[i]}): "
            f"class labels are 0 .. C-1; regression targets need shape (n, 1): {name}[:, None]"
        )
    labels = array.astype(np.int64)
    high = int(labels.max()) + 1 if classes is None else classes
    outside = labels[(labels < 0) | (labels >= high)]
    if outside.size:
        raise ValueError(
            f"{source}: '{name}' has label {outside[0]}, outside 0 .. {high - 1}"
            + (" (the classes of 'y')" if classes is not None else "")
            + ": relabel the classes as 0 .. C-1"
        )
    if classes is None and high < 2:
        raise ValueError(
            f"{source}: '{name}' has a single class: classification needs at least two "
            "(or give regression targets of shape (n, 1))"
        )
    onehot = np.eye(high)[labels] - (1.0 / high if center else 0.0)
    return onehot, labels


def _agents(value: np.ndarray, rows: int, source: str) -> np.ndarray:
    if value.shape != (rows,):
        raise ValueError(
            f"{source}: 'partition' has shape {value.shape}, expected ({rows},): the agent of "
            "every training sample, so none is left out"
        )
    array = _floats(value, "partition", source)
    if not np.all(array == np.round(array)):
        raise ValueError(
            f"{source}: 'partition' holds non-integer agents: give each sample's agent as an "
            "integer 0 .. Q-1"
        )
    agents = array.astype(np.int64)
    if agents.min() < 0:
        raise ValueError(
            f"{source}: 'partition' names agent {agents.min()}, outside 0 .. Q-1: agents are "
            "numbered from 0"
        )
    return agents


def _open(path: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"no data file at {path}: save one with numpy.savez(path, x=..., y=...) (the "
            "keys are x, y and optionally x_test, y_test, partition)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path} is not a readable .npz of numeric arrays ({err}): write it with "
            "numpy.savez(path, x=..., y=...), without object arrays"
        ) from None


def load(source: str | os.PathLike | dict, *, center_targets: bool = True) -> UserData:
    """Read and validate a data set: a path to an ``.npz`` or a dict of its arrays.

    Example:
        >>> d = load({"x": np.eye(3), "y": np.array([0, 1, 1])})
        >>> d.targets.tolist(), d.labels.tolist(), d.x_test.shape
        ([[0.5, -0.5], [-0.5, 0.5], [-0.5, 0.5]], [0, 1, 1], (0, 3))
    """
    arrays = {k: np.asarray(v) for k, v in source.items()} if isinstance(source, dict) else None
    name = "the data" if arrays is not None else str(source)
    arrays = _open(source) if arrays is None else arrays  # type: ignore[arg-type]
    unknown = sorted(set(arrays) - set(KEYS))
    missing = [k for k, required in KEYS.items() if required and k not in arrays]
    if unknown or missing:
        lower = {k.lower(): k for k in unknown}
        hint = [f"'{lower[k]}' -> '{k}'" for k in KEYS if k in lower]
        raise ValueError(
            f"{name}: "
            + "; ".join(
                part
                for part in (
                    f"missing key(s) {', '.join(map(repr, missing))}" if missing else "",
                    f"unknown key(s) {', '.join(map(repr, unknown))}" if unknown else "",
                )
                if part
            )
            + f". The keys are {', '.join(KEYS)} (x and y required)"
            + (f"; rename {', '.join(hint)}" if hint else "")
        )
    x = _inputs(arrays["x"], "x", name)
    targets, labels = _targets(arrays["y"], "y", len(x), name, None, center_targets)
    if ("x_test" in arrays) != ("y_test" in arrays):
        given, absent = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise ValueError(f"{name}: '{given}' without '{absent}': give both or neither")
    x_test, targets_test, labels_test = np.zeros((0, x.shape[1])), np.zeros((0, 0)), None
    if "x_test" in arrays:
        x_test = _inputs(arrays["x_test"], "x_test", name)
        if x_test.shape[1] != x.shape[1]:
            raise ValueError(
                f"{name}: 'x_test' has {x_test.shape[1]} features but 'x' has {x.shape[1]}: "
                "both must come from the same input space"
            )
        classes = targets.shape[1]
        if labels is None:
            targets_test, _ = _targets(
                arrays["y_test"], "y_test", len(x_test), name, classes, False
            )
        else:
            targets_test, labels_test = _targets(
                arrays["y_test"], "y_test", len(x_test), name, classes, center_targets
            )
            if labels_test is None:
                raise ValueError(
                    f"{name}: 'y' holds class labels but 'y_test' holds float targets: give "
                    "'y_test' as labels too"
                )
    targets_test = targets_test.reshape(len(x_test), targets.shape[1])
    agents = _agents(arrays["partition"], len(x), name) if "partition" in arrays else None
    return UserData(x, targets, labels, x_test, targets_test, labels_test, agents, name)


def partition(
    dataset: UserData,
    num_agents: int | None = None,
    *,
    rule: str = "contiguous",
    alpha: float = 0.5,
    seed: int = 0,
) -> list[np.ndarray]:
    """The rows of each agent: the file's ``partition`` if it has one, else ``rule``.

    ``num_agents`` may be None with a file partition (Q is then its largest agent + 1).

    Example:
        >>> d = load({"x": np.eye(5), "y": np.array([0, 1, 0, 1, 1])})
        >>> [p.tolist() for p in partition(d, 2)]
        [[0, 1, 2], [3, 4]]
    """
    source = dataset.source
    if num_agents is not None and (
        isinstance(num_agents, bool) or not isinstance(num_agents, int | np.integer)
    ):
        raise ValueError(f"num_agents must be an integer >= 1, got {num_agents!r}")
    if dataset.agents is not None:
        found = int(dataset.agents.max()) + 1
        q = found if num_agents is None else int(num_agents)
        if found > q:
            raise ValueError(
                f"{source}: 'partition' names agent {found - 1}, outside 0 .. {q - 1} for "
                f"{q} agents: give --agents {found} or renumber the agents"
            )
        parts = [np.flatnonzero(dataset.agents == a) for a in range(q)]
        empty = [a for a, rows in enumerate(parts) if rows.size == 0]
        if empty:
            raise ValueError(
                f"{source}: agent {empty[0]} of 0 .. {q - 1} holds no sample in 'partition': "
                "every agent needs a local loss; renumber the agents without gaps"
            )
        return parts
    if num_agents is None:
        raise ValueError("give the number of agents (--agents Q): the file has no 'partition'")
    n = len(dataset.x)
    if not 1 <= num_agents <= n:
        raise ValueError(
            f"{num_agents} agents but only {n} samples: every agent needs at least one "
            "sample; use at most {n} agents or more data".replace("{n}", str(n))
        )
    if rule not in RULES:
        raise ValueError(f"unknown partition rule {rule!r}; choose from {', '.join(RULES)}")
    if rule == "contiguous":
        return [p.astype(np.int64) for p in np.array_split(np.arange(n), num_agents)]
    if dataset.labels is None:
        raise ValueError(
            f"{source}: the dirichlet rule splits classes, and 'y' holds regression targets: "
            "use the contiguous rule or save a 'partition'"
        )
    if not (isinstance(alpha, int | float) and np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha={alpha!r} must be a finite number > 0 (smaller: more skew)")
    return data.partition_indices(
        dataset.labels,
        int(num_agents),
        scheme="dirichlet",
        alpha=alpha,
        seed=seed,
        num_classes=dataset.num_classes,
    )


def read_edges(path: str | os.PathLike, num_agents: int | None = None) -> nx.Graph:
    """The graph of an edge-list file: one edge ``i j`` per line (spaces or a comma),
    nodes 0 .. Q-1, ``#`` starts a comment. Q is ``num_agents`` or the largest node + 1.

    Raises:
        ValueError: a missing file, a malformed line, an unknown node, a self-loop, no
            edges, or a disconnected graph.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no edge-list file at {path}: write one edge 'i j' per line")
    edges = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = re.split(r"[,\s]+", text)
        if len(fields) != 2 or not all(re.fullmatch(r"-?\d+", f) for f in fields):
            raise ValueError(
                f"{path}, line {number}: {line.strip()!r} is not an edge: write two integer "
                "node numbers, 'i j'"
            )
        i, j = (int(f) for f in fields)
        if i == j:
            raise ValueError(
                f"{path}, line {number}: self-loop at node {i}; self-weights live on W's "
                "diagonal: remove the line"
            )
        edges.append((i, j, number))
    if not edges:
        raise ValueError(f"{path} lists no edges: write one edge 'i j' per line")
    q = max(max(i, j) for i, j, _ in edges) + 1 if num_agents is None else int(num_agents)
    for i, j, number in edges:
        bad = next((v for v in (i, j) if not 0 <= v < q), None)
        if bad is not None:
            raise ValueError(
                f"{path}, line {number}: unknown node {bad}; the {q} agents are nodes 0 .. "
                f"{q - 1}: renumber the nodes or give --agents {max(i, j) + 1}"
            )
    graph = nx.Graph()
    graph.add_nodes_from(range(q))
    graph.add_edges_from((i, j) for i, j, _ in edges)
    try:
        graphs.check_connected(graph)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    graph.graph["name"] = path.stem
    return graph


def memory_estimate(num_samples: int, classes: int, num_test: int, agents: int, saved: int) -> int:
    """Bytes the closed form needs, in float64: the kernel and its eigendecomposition
    (three m x m, m = n C), the test kernel, and every agent's training and test
    predictions at each saved step (twice: the recursion's and the record's).

    Example:
        >>> memory_estimate(100, 10, 0, 4, 11) // 2**20  # MiB
        23
    """
    m = num_samples * classes
    per_step = agents * (num_samples + num_test) * classes
    return 8 * (3 * m * m + num_test * classes * m + 2 * saved * per_step)
