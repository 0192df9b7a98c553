"""``companion predict``: the arrays it saves are the ones it used, an independent recursion
from them reproduces its curves, and the command runs end to end on a small file."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from neural_tangents import stax

from companion import graphs, predict, usermodels
from companion.book import cli

N, D, C = 18, 4, 3
EXACT = 1e-10  # float64 recursions of the same map, relative to the curves' scale


def arrays() -> dict:
    rng = np.random.default_rng(3)
    return dict(
        x=rng.normal(size=(N, D)) / 2,
        y=np.arange(N) % C,
        x_test=rng.normal(size=(6, D)) / 2,
        y_test=np.arange(6) % C,
    )


@pytest.fixture(scope="module", name="saved")
def _saved(tmp_path_factory):
    """A prediction written to disk, with its arrays."""
    folder = tmp_path_factory.mktemp("predict")
    result = predict.predict(
        arrays(), "mlp", width=16, depth=1, graph="star", num_agents=3, steps=40, seed=2
    )
    result.write(folder / "curves.json", kernel=folder / "arrays.npz")
    return result, folder


def dgd_from_arrays(z) -> dict[str, np.ndarray]:
    """DGD on the linearized network in its dual form, written out with numpy alone:
    ``alpha_q <- sum_r W_qr alpha_r - lr w_q * (f0 + K alpha_q - y)``, where ``w_q`` is
    ``1/n_q`` on agent q's outputs and the predictions are ``f0 + K alpha_q``."""
    kernel, f0, y, w, lr = z["kernel"], z["f0"].ravel(), z["targets"].ravel(), z["mixing"], z["lr"]
    agents = z["partition"]
    q, c = w.shape[0], z["targets"].shape[1]
    weights = np.stack([np.repeat((agents == a) / np.sum(agents == a), c) for a in range(q)])
    alpha = np.zeros((q, len(f0)))
    rows: dict[str, list] = {k: [] for k in ("average", "global", "local", "consensus", "test")}

    def loss(f, wq):
        return 0.5 * np.sum(wq * (f - y) ** 2)

    for step in range(int(z["steps"][-1]) + 1):
        if step in z["steps"]:
            f = f0 + alpha @ kernel.T
            f_bar = f0 + kernel @ alpha.mean(0)
            spread = alpha - alpha.mean(0)
            rows["average"].append(np.mean([loss(f_bar, wq) for wq in weights]))
            rows["global"].append([np.mean([loss(fq, wr) for wr in weights]) for fq in f])
            rows["local"].append([loss(fq, wq) for fq, wq in zip(f, weights, strict=True)])
            rows["consensus"].append(np.sqrt(np.mean(np.sum(spread * (spread @ kernel), 1))))
            test = z["f0_test"].ravel() + alpha @ z["kernel_test"].T
            rows["test"].append(
                0.5 * np.sum((test - z["targets_test"].ravel()) ** 2, 1) / len(z["targets_test"])
            )
        alpha = w @ alpha - lr * weights * (f0 + alpha @ kernel.T - y)
    return {k: np.array(v) for k, v in rows.items()}


def test_saved_arrays_are_what_the_prediction_used(saved):
    result, folder = saved
    z = np.load(folder / "arrays.npz")
    p = result.problem
    for name, used in [
        ("kernel", p.kernel),
        ("kernel_test", p.kernel_test),
        ("f0", p.f0),
        ("f0_test", p.f0_test),
        ("targets", p.targets),
        ("targets_test", p.targets_test),
        ("mixing", result.mixing),
    ]:
        np.testing.assert_array_equal(z[name], used)
    assert [np.flatnonzero(z["partition"] == q).tolist() for q in range(3)] == [
        rows.tolist() for rows in p.partition
    ]
    assert float(z["lr"]) == result.settings["lr"]
    np.testing.assert_array_equal(
        result.mixing, graphs.mixing_matrix(graphs.topology("star", 3), "metropolis")
    )


def test_independent_recursion_reproduces_the_curves(saved):
    _, folder = saved
    doc = json.loads((folder / "curves.json").read_text())
    ours = dgd_from_arrays(np.load(folder / "arrays.npz"))
    assert doc["steps"] == list(range(0, 41))
    for key, field in [
        ("average", "average_loss"),
        ("global", "global_loss"),
        ("local", "local_loss"),
        ("consensus", "consensus_distance"),
        ("test", "test_loss"),
    ]:
        curve = np.array(doc[field])
        scale = np.abs(curve).max()
        assert np.abs(ours[key] - curve).max() <= EXACT * scale, field
    assert doc["settings"]["algorithm"] == "dgd" and doc["settings"]["num_agents"] == 3


def test_affine_training_check_is_exact_and_the_rival_is_not():
    """The affine model is its own linearization: the closed form equals training to
    rounding, while the rival (1.2 times the step) is measurably off."""
    result = predict.predict(arrays(), "affine", num_agents=3, steps=30, train=True, progress=False)
    agreement = result.agreement()
    assert agreement is not None
    assert agreement["closed form"]["final_loss_rel_err"] < 1e-9
    assert agreement["rival"]["final_loss_rel_err"] > 1e-3
    assert result.rival is not None and result.rival.lr == pytest.approx(
        1.2 * result.settings["lr"]
    )
    doc = result.curves()
    assert doc["trained"]["steps"] == doc["steps"] and "1.2" in doc["rival"]


def test_apply_fn_with_params_and_a_conv_net():
    def apply_fn(params, x):
        return x @ params["a"]

    params = {"a": np.zeros((D, C))}
    linear = predict.predict(arrays(), apply_fn, params=params, num_agents=3, steps=5)
    assert linear.settings["model"] == {"name": "apply_fn"}
    conv = usermodels.stax_model(
        stax.serial(stax.Conv(4, (3,), padding="SAME"), stax.Relu(), stax.Flatten(), stax.Dense(C)),
        (D, 1),
    )
    result = predict.predict(arrays(), conv, num_agents=3, steps=5)
    _, init = conv.init_fn(jax.random.PRNGKey(0), (-1, D))
    np.testing.assert_allclose(result.problem.f0, conv.apply_fn(init, arrays()["x"]))


def test_cli_end_to_end_on_a_tiny_file(tmp_path, capsys):
    data = tmp_path / "mine.npz"
    np.savez(data, **arrays())
    edges = tmp_path / "edges.txt"
    edges.write_text("0 1\n1 2\n2 0\n")
    out = tmp_path / "out" / "mine.json"
    common = [str(data), "--agents", "3", "--model", "affine", "--steps", "20"]
    code = cli.main(
        [
            "predict",
            *common,
            "--edges",
            str(edges),
            "--lr-fraction",
            "0.4",
            "--train",
            "--save-kernel",
            str(tmp_path / "k.npz"),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "final_loss_rel_err" in printed and "rival" in printed
    doc = json.loads(out.read_text())
    assert doc["settings"]["lr_fraction"] == pytest.approx(0.4)
    assert doc["settings"]["graph"] == str(edges)
    assert out.with_suffix(".png").stat().st_size > 0
    assert set(np.load(tmp_path / "k.npz").files) >= {"kernel", "f0", "targets", "partition"}


@pytest.mark.bad_input
def test_cli_failure_leaves_no_partial_output(tmp_path, capsys):
    data = tmp_path / "mine.npz"
    np.savez(data, **arrays())
    out = tmp_path / "fail.json"
    args = [str(data), "--agents", "3", "--model", "affine", "--lr-fraction", "2", "-o", str(out)]
    assert cli.main(["predict", *args, "--save-kernel", str(tmp_path / "k.npz")]) == 2
    assert "--allow-unstable" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz"]


def test_tune_on_user_data(tmp_path, capsys):
    data = tmp_path / "mine.npz"
    np.savez(data, **arrays())
    out = tmp_path / "grid.csv"
    code = cli.main(
        [
            "tune",
            "--data",
            str(data),
            "--agents",
            "3",
            "--widths",
            "8",
            "--depth",
            "1",
            "--topologies",
            "cycle",
            "complete",
            "--rules",
            "lazy",
            "--algorithms",
            "dgd",
            "--fractions",
            "0.5",
            "--budget",
            "20",
            "--target",
            "0.1",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    assert out.read_text().count("\n") == 3  # header and two configurations
    assert "closed form's pick" in capsys.readouterr().out
