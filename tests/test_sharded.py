"""Agents sharded over devices: the plan of matchings, equality with the one-device path on
8 emulated devices and across two processes, and every bad input.

The emulated devices and the second process need a fresh interpreter (XLA reads
``--xla_force_host_platform_device_count`` once, when JAX starts), so those tests run
``companion.sharded.check`` in subprocesses, each bounded in time.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import subprocess
import sys
from collections import Counter

import jax.experimental
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import dynamics, graphs, simulate, stability
from companion.sharded import check, distributed, matchings, mesh, run

TOLERANCE = 1e-12  # float64: sharded and one-device runs add the same terms


def mixing_of(name: str, q: int) -> np.ndarray:
    return graphs.mixing_matrix(check.connected_graph(name, q))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 24), st.floats(0.05, 1.0), st.integers(0, 10_000), st.booleans())
def test_arcs_are_coloured_into_matchings_with_as_many_rounds_as_the_largest_degree(
    nodes, p, seed, directed
):
    arcs = list(nx.gnp_random_graph(nodes, p, seed=seed, directed=directed).edges())
    arcs += [] if directed else [(v, u) for u, v in arcs]
    rounds = matchings.colour_arcs(arcs)
    assert sorted(a for r in rounds for a in r) == sorted(arcs)
    bipartite = nx.Graph([(("send", u), ("receive", v)) for u, v in arcs])
    for r in rounds:
        assert nx.is_matching(bipartite, {(("send", u), ("receive", v)) for u, v in r})
    degrees = Counter(("send", u) for u, _ in arcs) + Counter(("receive", v) for _, v in arcs)
    assert len(rounds) == max(degrees.values(), default=0)  # König: no fewer rounds can do


@pytest.mark.parametrize("name", ["cycle", "star", "torus", "random_geometric", "complete"])
@pytest.mark.parametrize("devices", [1, 2, 4, 8])
@pytest.mark.parametrize("exchange", ["matchings", "allgather"])
def test_each_device_reads_the_rows_that_mixing_needs(name, devices, exchange):
    """The plan's buffers, replayed in NumPy on every device, give W x."""
    w = mixing_of(name, 16)
    p = matchings.plan(w, devices, exchange)
    x = np.random.default_rng(0).normal(size=(16, 3))
    per = 16 // devices
    mixed = np.zeros_like(x)
    for e in range(devices):
        own = x[e * per : (e + 1) * per]
        if p.schedule.allgather:
            source = x
        else:
            buffers = [np.zeros((width, 3)) for width in p.schedule.widths]
            for buffer, rows, pairs in zip(buffers, p.sends, p.schedule.rounds, strict=True):
                for d in [d for d, to in pairs if to == e]:
                    buffer[:] = x[d * per + rows.reshape(devices, -1)[d]]
            source = np.concatenate([own, *buffers])
        agents = slice(e * per, (e + 1) * per)
        mixed[agents] = np.einsum("qs,qsk->qk", p.weight[agents], source[p.index[agents]])
    np.testing.assert_allclose(mixed, w @ x, rtol=0, atol=1e-14)


def test_the_cycle_needs_two_ppermutes_and_a_star_an_allgather():
    cycle = matchings.plan(mixing_of("cycle", 8), 8).schedule
    assert (cycle.collectives, cycle.rows_moved, cycle.allgather_rows) == (2, 16, 56)
    assert not cycle.allgather
    assert matchings.plan(mixing_of("star", 8), 8).schedule.allgather
    star = matchings.plan(mixing_of("star", 8), 8, "matchings").schedule
    assert (star.collectives, star.rows_moved) == (7, 14)


def test_one_device_mesh_equals_the_vmap_path(mlp_problem, mixing_for, stable_lr):
    w = mixing_for("cycle")
    lr = stable_lr("cta", mlp_problem, w)
    options = dict(lr=lr, steps=5, progress=False, check=False, save_at=simulate.SaveAt(every=2))
    sharded = run.train(mlp_problem, "cta", w, devices=1, **options)
    assert (
        check.max_abs_diff(sharded, simulate.train(mlp_problem, "cta", w, **options)) <= TOLERANCE
    )
    form = run.closed_form(mlp_problem, "cta", w, lr=lr, devices=1).steps(5)
    reference = dynamics.closed_form(mlp_problem, "cta", w, lr=lr).steps(5)
    assert check.max_abs_diff(form, reference) <= TOLERANCE


def quiet_environment(**extra: str) -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **extra)


def test_sharded_equals_the_vmap_path_on_8_emulated_devices():
    """Every graph, algorithm, kind and number of agents per device of
    `check.equality_cases`, and the bytes of the compiled collectives, in one subprocess."""
    result = check.emulated(8, ["--parts", "equality,traffic", "--sizes", "8,16"], timeout=300)
    cases = result["equality"]
    assert result["devices"] == 8
    assert {c["graph"] for c in cases} == set(check.GRAPHS)
    assert {c["algorithm"] for c in cases} == set(check.ALGORITHMS)
    assert {c["kind"] for c in cases} == set(check.KINDS)
    assert {c["per_device"] for c in cases} == {1, 2, 4}
    assert {c["allgather"] for c in cases} == {True, False}
    factors = {"graph": check.GRAPHS, "algorithm": check.ALGORITHMS, "kind": check.KINDS}
    factors["per_device"] = (1, 2, 4)
    for a, b in itertools.combinations(factors, 2):  # every pair of factors meets ...
        met = {(c[a], c[b]) for c in cases}
        missing = set(itertools.product(factors[a], factors[b])) - met
        assert missing <= {("torus", 1)}, (a, b, missing)  # ... but 16 agents on 16 devices
    for case in cases:
        assert case["max_abs_diff"] <= TOLERANCE, case
    controls = [c["control_max_abs_diff"] for c in cases if c["control_max_abs_diff"] is not None]
    assert len(controls) == len(check.KINDS)
    assert min(controls) > 1e-3  # the same comparison sees a wrong graph
    for row in result["traffic"]:
        assert row["measured_bytes"] == row["counted_bytes"], row
        assert row["allgather_measured_bytes"] == row["allgather_bytes"], row
        assert row["measured_ppermutes"] == row["ppermutes"], row
    cycle = [r for r in result["traffic"] if r["graph"] == "cycle"]
    assert [r["counted_bytes"] / r["allgather_bytes"] for r in cycle] == [2 / 7, 1 / 7]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_single_process_result():
    """Two processes on 127.0.0.1 (gloo), one CPU device each, two agents per device."""
    command = [sys.executable, "-m", "companion.sharded.check", "--parts", "processes"]
    address = f"127.0.0.1:{free_port()}"
    workers = [
        subprocess.Popen(
            command,
            env=quiet_environment(
                JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(rank)
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=180)
            assert worker.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:  # a hung run is killed, never left behind
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    problem = check.small_problem(4)
    w = graphs.mixing_matrix(graphs.topology("cycle", 4))
    lr = 0.5 * stability.sufficient_lr_bound(problem, w, algorithm="atc")
    alone = simulate.train(problem, "atc", w, lr=lr, steps=check.STEPS, progress=False, check=False)
    form = dynamics.closed_form(problem, "atc", w, lr=lr).steps(check.STEPS)
    for rank, output in enumerate(outputs):
        assert output["devices"] == 2
        got = output["processes"]
        assert (got["process"], got["processes"]) == (rank, 2)
        np.testing.assert_allclose(got["local_loss"], alone.local_loss, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(
            got["predictions"], alone.predictions[-1], rtol=0, atol=TOLERANCE
        )
        np.testing.assert_allclose(
            got["closed_form_predictions"], form.predictions[-1], rtol=0, atol=TOLERANCE
        )


# --- bad inputs --------------------------------------------------------------------------


def two_device_cycle_layout() -> mesh.AgentMesh:
    """The layout of an 8-agent cycle on two devices (one CPU device stands in for the
    mesh: only the schedule is read)."""
    layout = mesh.agent_mesh(mixing_of("cycle", 8), devices=1)
    return dataclasses.replace(layout, schedule=matchings.plan(mixing_of("cycle", 8), 2).schedule)


BAD = {
    "uneven split": (
        lambda: matchings.plan(mixing_of("cycle", 10), 4),
        r"10 agents cannot be split evenly over 4 devices \(every device holds the same "
        r"number of agents\): use a device count that divides 10 \(devices=k with k in "
        r"\[1, 2\]\), or a multiple of 4 agents",
    ),
    "zero devices": (
        lambda: matchings.plan(mixing_of("cycle", 4), 0),
        r"the number of devices must be a positive integer, got 0",
    ),
    "unknown exchange": (
        lambda: matchings.plan(mixing_of("cycle", 4), 1, "ring"),
        r"unknown exchange 'ring': use one of auto, matchings, allgather",
    ),
    "too many devices": (
        lambda: mesh.resolve_devices(3),
        r"devices=3 but JAX sees 1 device\(s\): pass a count from 1 to 1",
    ),
    "not a device": (
        lambda: mesh.resolve_devices(["gpu:0"]),
        r"devices must be distinct entries of jax.devices\(\) \(got \['gpu:0'\]\)",
    ),
    "another graph's layout": (
        lambda: two_device_cycle_layout().tables(mixing_of("star", 8)),
        r"this mixing matrix needs other collectives than the mesh layout was planned for "
        r"\(another sparsity pattern\): build the layout with companion.sharded.agent_mesh",
    ),
    "missing variables": (
        lambda: distributed.initialize({"JAX_PROCESS_ID": "0"}),
        r"JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES not set: a multi-process run needs all "
        r"of JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID",
    ),
    "address without port": (
        lambda: distributed.initialize(
            {"JAX_COORDINATOR_ADDRESS": "node0", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}
        ),
        r"JAX_COORDINATOR_ADDRESS must be host:port \(process 0's host and a free port\), "
        r"got 'node0'",
    ),
    "count not an integer": (
        lambda: distributed.initialize(
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}
        ),
        r"JAX_NUM_PROCESSES must be an integer, got 'two'",
    ),
    "rank out of range": (
        lambda: distributed.initialize(
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}
        ),
        r"JAX_PROCESS_ID=2 with JAX_NUM_PROCESSES=2: ranks run from 0 to JAX_NUM_PROCESSES - 1",
    ),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_with_a_message_naming_the_fix(case):
    call, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.bad_input
def test_sharded_training_validates_the_mixing_matrix_first(mlp_problem):
    with pytest.raises(ValueError, match=r"mixing is 4 x 4 but the problem has 5 agents"):
        run.train(mlp_problem, "dgd", mixing_of("cycle", 4), lr=0.1, steps=2, devices=1)


@pytest.mark.bad_input
@pytest.mark.parametrize("what", ["sharded training", "the sharded closed form"])
def test_sharded_entry_points_refuse_float32(what, mlp_problem, mixing_for):
    w = mixing_for("cycle")
    calls = {
        "sharded training": lambda: run.train(mlp_problem, "dgd", w, lr=0.1, steps=2, devices=1),
        "the sharded closed form": lambda: run.closed_form(mlp_problem, "dgd", w, lr=0.1),
    }
    message = rf"{what} needs float64, but JAX is computing in float32"
    with jax.experimental.disable_x64(), pytest.raises(ValueError, match=message):
        calls[what]()
