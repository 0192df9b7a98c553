"""A user's data file and edge list: the format, the partition rules and every refusal."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from companion import data, predict, userdata

N, D = 12, 3


def arrays(**changes) -> dict:
    rng = np.random.default_rng(0)
    base = dict(
        x=rng.normal(size=(N, D)),
        y=np.arange(N) % 3,
        x_test=rng.normal(size=(4, D)),
        y_test=np.array([0, 1, 2, 1]),
    )
    return {k: v for k, v in (base | changes).items() if v is not None}


def saved(tmp_path, **changes):
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays(**changes))
    return path


# --- the format -----------------------------------------------------------------------


def test_labels_become_centred_one_hot_targets(tmp_path):
    mine = userdata.load(saved(tmp_path))
    assert mine.classification and mine.num_classes == 3
    np.testing.assert_allclose(mine.targets[0], [2 / 3, -1 / 3, -1 / 3])
    assert mine.labels_test.tolist() == [0, 1, 2, 1]
    assert mine.source.endswith("mine.npz")


def test_one_hot_rows_and_float_labels_read_as_labels():
    onehot = userdata.load(arrays(y=np.eye(3)[np.arange(N) % 3]), center_targets=False)
    floats = userdata.load(arrays(y=(np.arange(N) % 3).astype(float)), center_targets=False)
    assert onehot.labels.tolist() == floats.labels.tolist() == (np.arange(N) % 3).tolist()
    np.testing.assert_array_equal(onehot.targets, np.eye(3)[np.arange(N) % 3])


def test_float_targets_are_regression():
    targets = np.random.default_rng(1).normal(size=(N, 2))
    mine = userdata.load(arrays(y=targets, y_test=np.zeros((4, 2))))
    assert not mine.classification and mine.labels is None
    np.testing.assert_array_equal(mine.targets, targets)
    assert mine.dataset().labels_train.tolist() == [0] * N


def test_no_test_side():
    mine = userdata.load(arrays(x_test=None, y_test=None))
    assert mine.x_test.shape == (0, D) and mine.targets_test.shape == (0, 3)
    assert mine.dataset().x_test.shape == (0, D)


def test_contiguous_rule_and_file_partition():
    mine = userdata.load(arrays())
    assert [p.tolist() for p in userdata.partition(mine, 3)] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
    ]
    agents = np.array([1, 0] * (N // 2))
    parts = userdata.partition(userdata.load(arrays(partition=agents)))
    assert [p.tolist() for p in parts] == [list(range(1, N, 2)), list(range(0, N, 2))]


def test_dirichlet_rule_is_the_books():
    mine = userdata.load(arrays())
    ours = userdata.partition(mine, 3, rule="dirichlet", alpha=0.3, seed=4)
    books = data.partition_indices(
        mine.labels, 3, scheme="dirichlet", alpha=0.3, seed=4, num_classes=3
    )
    assert [p.tolist() for p in ours] == [p.tolist() for p in books]


def test_edge_list(tmp_path):
    path = tmp_path / "graph.txt"
    path.write_text("# a path and a chord\n0 1\n1,2\n2 3  # comment\n\n3 0\n")
    graph = userdata.read_edges(path)
    assert sorted(graph.edges) == [(0, 1), (0, 3), (1, 2), (2, 3)]
    assert nx.is_connected(graph) and graph.graph["name"] == "graph"


def test_memory_estimate_counts_the_kernel():
    assert userdata.memory_estimate(1000, 10, 0, 1, 0) == 8 * 3 * 10_000**2


def test_mnist1d_is_generated_and_leaves_the_global_state():
    np.random.seed(123)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    d = data.load_mnist1d_dataset(30, 10, seed=0, generated=200)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    assert d.x_train.shape == (30, 40) and d.num_classes == 10
    np.testing.assert_allclose(np.linalg.norm(d.x_train, axis=1), 1.0)
    again = data.load_mnist1d_dataset(30, 10, seed=0, generated=200)
    np.testing.assert_array_equal(d.x_train, again.x_train)


# --- refusals -------------------------------------------------------------------------

BAD_FILES = {
    "missing x": (dict(x=None), "missing key(s) 'x'"),
    "missing y": (dict(y=None), "missing key(s) 'y'"),
    "misnamed key": (dict(X=np.ones((N, D))), "rename 'X' -> 'x'"),
    "unknown key": (dict(labels=np.ones(N)), "unknown key(s) 'labels'"),
    "x is 1-D": (dict(x=np.ones(N)), "must be (n, d)"),
    "x is 3-D": (dict(x=np.ones((N, D, 2))), "must be (n, d)"),
    "x has no features": (dict(x=np.ones((N, 0))), "must be (n, d)"),
    "x has NaN": (dict(x=np.where(np.eye(N, D) > 0, np.nan, 1.0)), "NaN or inf"),
    "x has inf": (dict(x=np.full((N, D), np.inf)), "NaN or inf"),
    "x is text": (dict(x=np.full((N, D), "a")), "not numbers"),
    "y too short": (dict(y=np.arange(N - 1) % 3), "one per row of 'x'"),
    "y is 3-D": (dict(y=np.ones((N, 2, 2))), "one per row of 'x'"),
    "labels not integers": (dict(y=np.full(N, 0.5)), "not integers"),
    "negative labels": (dict(y=np.arange(N) - 1), "has label -1"),
    "one class": (dict(y=np.zeros(N, dtype=int)), "single class"),
    "y has NaN": (dict(y=np.full((N, 2), np.nan)), "NaN or inf"),
    "x_test without y_test": (dict(y_test=None), "'x_test' without 'y_test'"),
    "y_test without x_test": (dict(x_test=None), "'y_test' without 'x_test'"),
    "x_test has other features": (dict(x_test=np.ones((4, D + 1))), "features"),
    "y_test label out of range": (dict(y_test=np.array([0, 1, 2, 3])), "outside 0 .. 2"),
    "y_test floats for labels": (dict(y_test=np.full((4, 3), 0.3)), "labels too"),
    "partition leaves samples out": (dict(partition=np.zeros(N - 2)), "none is left out"),
    "partition negative agent": (dict(partition=np.full(N, -1)), "outside 0 .. Q-1"),
    "partition not integers": (dict(partition=np.full(N, 0.5)), "non-integer agents"),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_with_the_fix(tmp_path, case):
    changes, message = BAD_FILES[case]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        userdata.load(saved(tmp_path, **changes))


@pytest.mark.bad_input
def test_float_test_targets_of_other_width_are_refused():
    with pytest.raises(ValueError, match="give both the same number of target columns"):
        userdata.load(arrays(y=np.ones((N, 2)) * 0.3, y_test=np.ones((4, 3)) * 0.3))


@pytest.mark.bad_input
def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="no data file"):
        userdata.load(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="not a readable .npz"):
        userdata.load(tmp_path / "text.npz")


BAD_PARTITIONS = {
    "agent outside 0..Q-1": (dict(partition=np.arange(N) % 4), 3, {}, "give --agents 4"),
    "an agent holds nothing": (dict(partition=np.arange(N) % 2 * 2), 3, {}, "agent 1"),
    "fewer samples than agents": ({}, N + 1, {}, "at most 12 agents"),
    "no number of agents": ({}, None, {}, "give the number of agents"),
    "unknown rule": ({}, 3, dict(rule="random"), "unknown partition rule"),
    "alpha not positive": ({}, 3, dict(rule="dirichlet", alpha=0.0), "alpha=0.0"),
    "dirichlet on regression": (
        dict(y=np.ones((N, 1)), y_test=np.ones((4, 1))),
        3,
        dict(rule="dirichlet"),
        "regression targets",
    ),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", list(BAD_PARTITIONS))
def test_bad_partition_is_refused(case):
    changes, agents, options, message = BAD_PARTITIONS[case]
    mine = userdata.load(arrays(**changes))
    with pytest.raises(ValueError, match=message):
        userdata.partition(mine, agents, **options)


BAD_EDGES = {
    "disconnected": ("0 1\n2 3\n", None, "disconnected: 2 components"),
    "unknown node": ("0 1\n1 5\n", 4, "unknown node 5"),
    "negative node": ("0 1\n-1 0\n", 3, "unknown node -1"),
    "isolated agent": ("0 1\n1 2\n", 4, "disconnected"),
    "self-loop": ("0 1\n1 1\n", None, "self-loop at node 1"),
    "malformed line": ("0 1\n1 2 3\n", None, "line 2: '1 2 3' is not an edge"),
    "no edges": ("# nothing\n", None, "lists no edges"),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", list(BAD_EDGES))
def test_bad_edge_list_is_refused(tmp_path, case):
    text, agents, message = BAD_EDGES[case]
    path = tmp_path / "graph.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        userdata.read_edges(path, agents)


@pytest.mark.bad_input
def test_missing_edge_list(tmp_path):
    with pytest.raises(ValueError, match="no edge-list file"):
        userdata.read_edges(tmp_path / "absent.txt")


@pytest.mark.bad_input
def test_graph_of_other_size_than_the_agents():
    with pytest.raises(ValueError, match="3 nodes but there are 4 agents"):
        predict.predict(
            arrays(partition=np.arange(N) % 4), "affine", graph=nx.path_graph(3), num_agents=4
        )


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(width=0), "width=0"),
        (dict(model="resnet"), "unknown model 'resnet'"),
        (dict(graph="ring"), "unknown graph 'ring'"),
        (dict(lr=0.1, lr_fraction=0.5), "not both"),
        (dict(lr_fraction=-1.0), "lr_fraction=-1.0"),
        (dict(steps=0), "steps must be a positive integer"),
        (dict(save_every=0), "save_every must be a positive integer"),
        (dict(model=lambda p, x: x), "apply_fn with params="),
    ],
)
def test_bad_prediction_settings(kwargs, message):
    options = dict(model="mlp", width=8, depth=1, num_agents=3, steps=2) | kwargs
    with pytest.raises(ValueError, match=message):
        predict.predict(arrays(), **options)


@pytest.mark.bad_input
def test_step_above_the_exact_threshold_needs_allow_unstable():
    options = dict(model="affine", num_agents=3, steps=3, progress=False)
    with pytest.raises(ValueError, match="at or above the exact stability threshold"):
        predict.predict(arrays(), lr_fraction=1.5, **options)
    unstable = predict.predict(arrays(), lr_fraction=1.5, allow_unstable=True, **options)
    assert unstable.settings["lr_fraction"] == pytest.approx(1.5)


@pytest.mark.bad_input
def test_too_large_for_memory_is_refused_with_its_estimate():
    with pytest.raises(ValueError, match=r"needs about .* GiB .* more than the .* GiB allowed"):
        predict.predict(arrays(), "affine", num_agents=3, steps=5, memory=1000)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("output", "kernel", "message"),
    [
        ("curves.txt", None, "must end in .json"),
        ("curves.json", "arrays.txt", "must end in .npz"),
        ("folder", None, "is a folder"),
    ],
)
def test_bad_output_paths_are_refused_first(tmp_path, output, kernel, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.json").mkdir()
    output = tmp_path / (output + ".json" if output == "folder" else output)
    with pytest.raises(ValueError, match=message):
        predict.check_outputs(output, kernel=None if kernel is None else tmp_path / kernel)
