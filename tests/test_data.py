"""Tests of companion.data: digits preprocessing and partitions."""

import numpy as np
import pytest

from companion.data import Dataset, load_digits_dataset, partition_indices


def test_shapes_and_dtypes():
    data = load_digits_dataset(30, 12, seed=0)
    assert isinstance(data, Dataset)
    assert data.x_train.shape == (30, 64) and data.x_test.shape == (12, 64)
    assert data.y_train.shape == (30, 10) and data.y_test.shape == (12, 10)
    assert data.labels_train.shape == (30,) and data.labels_test.shape == (12,)
    assert data.x_train.dtype == np.float64 and data.y_train.dtype == np.float64
    assert data.num_classes == 10


def test_normalization_and_targets():
    data = load_digits_dataset(50, 20, seed=3)
    np.testing.assert_allclose(np.linalg.norm(data.x_train, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(data.x_test, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(data.y_train.argmax(axis=1), data.labels_train)
    np.testing.assert_array_equal(data.y_train.sum(axis=1), 1.0)
    centred = load_digits_dataset(50, 20, seed=3, center_targets=True)
    np.testing.assert_allclose(centred.y_train.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(centred.y_train, data.y_train - 0.1)


def test_train_mean_centring():
    from sklearn.datasets import load_digits

    data = load_digits_dataset(1797, 0, seed=0)  # all digits, rows in their original order
    centred = load_digits().data - load_digits().data.mean(axis=0)
    expected = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    np.testing.assert_allclose(data.x_train, expected, rtol=1e-12)


def test_determinism_and_disjoint_split():
    a = load_digits_dataset(40, 30, seed=7)
    b = load_digits_dataset(40, 30, seed=7)
    c = load_digits_dataset(40, 30, seed=8)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_train, c.x_train)
    train_rows = {r.tobytes() for r in a.x_train}
    assert not any(r.tobytes() in train_rows for r in a.x_test)


def test_stratified_and_classes():
    data = load_digits_dataset(100, 50, seed=0)
    assert np.bincount(data.labels_train, minlength=10).tolist() == [10] * 10
    few = load_digits_dataset(20, 0, seed=0, classes=3)
    assert few.y_train.shape == (20, 3) and set(few.labels_train) <= {0, 1, 2}
    tiny = load_digits_dataset(4, 2, seed=0)  # too small to stratify: random split
    assert tiny.x_train.shape == (4, 64) and tiny.x_test.shape == (2, 64)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_train": 1000, "n_test": 800}, "exceeds the 1797"),
        ({"n_train": 10, "classes": 11}, "classes=11 is out of range"),
        ({"n_train": 10, "classes": 1}, "classes=1 is out of range"),
        ({"n_train": 0}, "n_train >= 1"),
        ({"n_train": 400, "classes": 2}, "exceeds the"),
    ],
)
def test_load_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits_dataset(**kwargs)


def _check_partition(parts, n, num_agents):
    assert len(parts) == num_agents
    assert all(len(p) > 0 for p in parts)
    assert all(np.all(np.diff(p) > 0) for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


@pytest.mark.parametrize("scheme", ["iid", "shards", "dirichlet"])
@pytest.mark.parametrize("num_agents", [1, 3, 7])
def test_partitions_cover_disjoint_nonempty(scheme, num_agents):
    labels = load_digits_dataset(50, seed=1).labels_train
    parts = partition_indices(labels, num_agents, scheme=scheme, alpha=0.1, seed=4)
    _check_partition(parts, 50, num_agents)
    again = partition_indices(labels, num_agents, scheme=scheme, alpha=0.1, seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again, strict=True))


def test_partition_schemes_behave():
    labels = np.repeat(np.arange(4), 5)
    iid = partition_indices(labels, 3, scheme="iid")
    assert sorted(len(p) for p in iid) == [6, 7, 7]  # uneven sizes when Q does not divide n
    shards = partition_indices(labels, 4, scheme="shards")
    assert [np.unique(labels[p]).tolist() for p in shards] == [[0], [1], [2], [3]]
    skewed = partition_indices(labels, 4, scheme="dirichlet", alpha=0.01, seed=2)
    _check_partition(skewed, 20, 4)
    assert max(len(np.unique(labels[p])) for p in skewed) <= 2


def test_dirichlet_fills_empty_agents():
    labels = np.zeros(6, dtype=int)  # one class: Dirichlet(0.01) puts nearly all on one agent
    parts = partition_indices(labels, 6, scheme="dirichlet", alpha=0.01, seed=0)
    _check_partition(parts, 6, 6)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((np.arange(5), 0), {}, "num_agents=0 must be between 1"),
        ((np.arange(5), 6), {}, "num_agents=6 must be between 1"),
        ((np.arange(5), 2), {"scheme": "random"}, "unknown scheme 'random'.*iid"),
        ((np.arange(5), 2), {"scheme": "dirichlet", "alpha": 0.0}, "alpha=0.0 must be > 0"),
        ((np.ones((2, 2), dtype=int), 2), {}, "1-D integer array"),
        ((np.array([0.5, 1.5]), 1), {}, "1-D integer array"),
    ],
)
def test_partition_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        partition_indices(*args, **kwargs)
