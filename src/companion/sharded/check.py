"""Sharded runs against the one-device path, on the devices this process sees.

``python -m companion.sharded.check [--quick] [--parts equality,traffic,timing]`` prints
one JSON object:

- ``equality``: sharded training (real and linearized) and the sharded closed form against
  the ``vmap`` path on the cycle, the star, the 2-D torus and a random geometric graph,
  for DGD, ATC and CTA with 1, 2 and 4 agents per device; the largest absolute difference
  over every field of the `Trajectory` and the final parameters, and for the first case of
  each kind a control (the one-device run on the path graph, the cycle less one edge);
- ``traffic``: per Q, the rows and bytes one mixing moves, counted from the plan and
  measured from the compiled program's collectives, against an all-gather;
- ``timing``: warm wall time per step of sharded and one-device training.

Emulated CPU devices must be requested before JAX starts, which a running notebook kernel
cannot do; :func:`emulated` runs this module in a fresh interpreter with
``--xla_force_host_platform_device_count`` (or on the machine's real devices) and returns
the parsed result.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import jax
import networkx as nx
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from companion import algorithms, cost, dynamics, graphs, models, simulate, stability
from companion import problem as problem_lib
from companion.agents import STACKED, Stacked
from companion.sharded import distributed, matchings, mesh, run
from companion.trajectory import Trajectory

GRAPHS = ("cycle", "star", "torus", "random_geometric")
ALGORITHMS = tuple(algorithms.ALGORITHMS)
KINDS = ("training", "linearized", "closed_form")
QUICK = {("cycle", "training"), ("torus", "closed_form")}  # the cases of --quick
STEPS = 6  # steps of every equality case
FLOAT_BYTES = {"f64": 8, "f32": 4, "s64": 8, "s32": 4, "u32": 4, "pred": 1}


@dataclasses.dataclass(frozen=True)
class Case:
    """One sharded run to compare: ``kind`` is "training", "linearized" or "closed_form"."""

    graph: str
    algorithm: str
    kind: str
    num_agents: int
    per_device: int
    exchange: str = "auto"


def connected_graph(name: str, num_agents: int) -> nx.Graph:
    """``graphs.topology(name, num_agents)``; for the random geometric graph, the first
    connected draw of radius 0.5 over seeds 0, 1, ..."""
    for seed in range(100):
        graph = graphs.topology(name, num_agents, seed=seed)
        if nx.is_connected(graph):
            return graph
    raise ValueError(f"no connected {name} graph on {num_agents} agents in 100 seeds")


def equality_cases(quick: bool = False) -> list[Case]:
    """Every graph with every algorithm, each pair in one of the three kinds, with 1, 2 and
    4 agents per device in rotation (the torus has 16 agents, so 2 or 4 per device); the
    star's training by matchings, the cycle's closed form by all-gather and one random
    geometric run by matchings, where the rule would choose the other. So every pair of
    graph, algorithm, kind and agents per device meets, except the torus with one agent per
    device. ``quick``: the cycle's training (one agent per device) and the torus's closed
    form (four)."""
    cases = []
    for g, graph in enumerate(GRAPHS):
        for a, algorithm in enumerate(ALGORITHMS):
            kind = KINDS[(g + a) % 3]
            per = (1, 2, 4)[(g + 2 * a) % 3]
            per, q = (max(per, 2), 16) if graph == "torus" else (per, 8 * per)
            forced = {("star", "training"), ("random_geometric", "closed_form")}
            exchange = "matchings" if (graph, kind) in forced else "auto"
            exchange = "allgather" if (graph, kind) == ("cycle", "closed_form") else exchange
            cases.append(Case(graph, algorithm, kind, q, per, exchange))
    # The torus's 16 agents never sit one per device (that needs 16 devices), which leaves
    # CTA and linearized training without that case: one more run gives it them.
    cases.append(Case("star", "cta", "linearized", 8, 1))
    if quick:
        return [c for c in cases if (c.graph, c.kind) in QUICK]
    return cases


def usable_devices(num_agents: int, wanted: int | None = None) -> int:
    """The most devices, at most ``wanted`` and at most JAX's count, that divide Q."""
    most = min(len(jax.devices()), wanted or num_agents)
    return max(d for d in range(1, most + 1) if num_agents % d == 0)


@functools.lru_cache(maxsize=8)
def small_problem(num_agents: int) -> problem_lib.Problem:
    """Digits, two per agent, and one small MLP (one model, so runs share compilations)."""
    return problem_lib.digits(_model(), num_agents=num_agents, samples_per_agent=2, n_test=4)


@functools.lru_cache(maxsize=1)
def _model() -> models.Model:
    return models.mlp(16, 2, 10)


def max_abs_diff(a: Trajectory, b: Trajectory) -> float:
    """The largest absolute difference over every array of two trajectories (and their
    final parameters, when both have them)."""
    fields = [f.name for f in dataclasses.fields(Trajectory) if f.name != "final_params"]
    pairs = [(getattr(a, f), getattr(b, f)) for f in fields]
    pairs = [(x, y) for x, y in pairs if isinstance(x, np.ndarray) and x.dtype.kind == "f"]
    if a.final_params is not None and b.final_params is not None:
        leaves = [jax.tree_util.tree_leaves(t.final_params) for t in (a, b)]
        pairs += list(zip(*leaves, strict=True))
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in pairs)


def compare(case: Case, control: bool = True) -> dict:
    """The sharded run of ``case`` against the one-device run and, with ``control``,
    against the one-device run on the path graph (None otherwise)."""
    problem = small_problem(case.num_agents)
    mixing = graphs.mixing_matrix(connected_graph(case.graph, case.num_agents))
    path = graphs.mixing_matrix(graphs.topology("path", case.num_agents))
    lr = 0.5 * min(
        stability.sufficient_lr_bound(problem, w, algorithm=case.algorithm) for w in (mixing, path)
    )
    devices = usable_devices(case.num_agents, case.num_agents // case.per_device)
    layout = mesh.agent_mesh(mixing, devices=devices, exchange=case.exchange)
    options: dict[str, Any] = dict(lr=lr, steps=STEPS, check=False, progress=False)
    options.update(linearize=case.kind == "linearized", save_at=simulate.SaveAt(every=2))

    def run_on(w: np.ndarray, where: Stacked = STACKED) -> Trajectory:
        if case.kind == "closed_form":
            form = dynamics.closed_form(problem, case.algorithm, w, lr=lr, layout=where)
            return form.steps(STEPS)
        return simulate.train(problem, case.algorithm, w, layout=where, **options)

    sharded = run_on(mixing, layout)
    return dataclasses.asdict(case) | {
        "devices": devices,
        "per_device": case.num_agents // devices,
        "allgather": layout.schedule.allgather,
        "collectives": layout.schedule.collectives,
        "max_abs_diff": max_abs_diff(sharded, run_on(mixing)),
        "control_max_abs_diff": max_abs_diff(sharded, run_on(path)) if control else None,
    }


def traffic(hlo: str, num_devices: int) -> dict:
    """Collectives of a compiled (SPMD-partitioned) program and the bytes they move
    between devices: a collective-permute moves its buffer once per source-target pair,
    an all-gather delivers everyone else's share to each of ``num_devices`` devices."""
    shape = r"(?P<dtype>[a-z]+\d*)\[(?P<dims>[\d,]*)\]"
    permutes = gathers = moved = 0
    for line in hlo.splitlines():
        found = re.search(rf"= {shape}\S* (?P<op>collective-permute|all-gather)\(", line)
        if not found:
            continue
        dims = [int(d) for d in found["dims"].split(",") if d]
        size = FLOAT_BYTES[found["dtype"]] * int(np.prod(dims))
        if found["op"] == "collective-permute":
            permutes += 1
            pairs = re.findall(r"\{\d+,\d+\}", line.split("source_target_pairs=")[1])
            moved += size * len(pairs)
        else:
            gathers += 1
            moved += size * (num_devices - 1)  # each device receives D - 1 of D shares
    return {"ppermutes": permutes, "allgathers": gathers, "bytes": moved}


def compiled_traffic(mixing: np.ndarray, row_floats: int, num_devices: int, exchange: str):
    """:func:`traffic` of one mixing of ``row_floats`` float64 per agent, compiled for
    shapes only (nothing of that size is allocated), and the layout."""
    layout = mesh.agent_mesh(mixing, devices=num_devices, exchange=exchange)
    tables = layout.put(layout.tables(mixing), 0)
    sharding = NamedSharding(layout.mesh, PartitionSpec(mesh.AXIS))
    state = jax.ShapeDtypeStruct((len(mixing), row_floats), np.float64, sharding=sharding)
    mix = layout.compile(lambda x, t: layout.mix(x, t, t[1]), (0, 0), 0)
    return traffic(mix.lower(state, tables).compile().as_text(), num_devices), layout


def communication(name: str, sizes: Sequence[int], row_floats: int, num_devices: int) -> list:
    """Per Q: the bytes one mixing of ``row_floats`` float64 per agent moves on
    ``num_devices`` devices, by matchings and by an all-gather, counted from the plan and
    measured from the compiled program."""
    rows = []
    for q in sizes:
        mixing = graphs.mixing_matrix(connected_graph(name, q))
        measured, layout = compiled_traffic(mixing, row_floats, num_devices, "matchings")
        gathered, _ = compiled_traffic(mixing, row_floats, num_devices, "allgather")
        schedule = layout.schedule
        rows.append(
            {
                "graph": name,
                "num_agents": q,
                "devices": num_devices,
                "ppermutes": schedule.collectives,
                "measured_ppermutes": measured["ppermutes"],
                "counted_bytes": 8 * row_floats * schedule.rows_moved,
                "measured_bytes": measured["bytes"],
                "allgather_bytes": 8 * row_floats * schedule.allgather_rows,
                "allgather_measured_bytes": gathered["bytes"],
                "auto": "allgather"
                if matchings.plan(mixing, num_devices).schedule.allgather
                else "matchings",
            }
        )
    return rows


def timing(num_agents: int, width: int, steps: int, repeats: int) -> dict:
    """Warm seconds per step of DGD training, sharded over every device and on one."""
    problem, _ = cost.setup(8 * num_agents, num_agents=num_agents, width=width)
    mixing = graphs.mixing_matrix(graphs.topology("cycle", num_agents))
    lr = cost.stable_lr(problem, mixing)
    options: dict[str, Any] = dict(lr=lr, steps=steps, progress=False, check=False)
    devices = usable_devices(num_agents)
    last = simulate.SaveAt(steps=(steps,))
    seconds = {
        "sharded": cost.median_seconds(
            lambda: run.train(problem, "dgd", mixing, save_at=last, devices=devices, **options),
            repeats=repeats,
        ).median,
        "one_device": cost.median_seconds(
            lambda: simulate.train(problem, "dgd", mixing, save_at=last, **options),
            repeats=repeats,
        ).median,
    }
    return {k: v / steps for k, v in seconds.items()} | {
        "num_agents": num_agents,
        "width": width,
        "devices": devices,
    }


def across_processes() -> dict:
    """ATC training and the closed form of a 4-agent cycle on every device of every
    process (run under :func:`companion.sharded.initialize`); every process returns the
    whole result."""
    problem = small_problem(4)
    mixing = graphs.mixing_matrix(graphs.topology("cycle", 4))
    lr = 0.5 * stability.sufficient_lr_bound(problem, mixing, algorithm="atc")
    trained = run.train(
        problem, "atc", mixing, lr=lr, steps=STEPS, progress=False, check=False, chunk=4
    )
    form = run.closed_form(problem, "atc", mixing, lr=lr).steps(STEPS)
    return {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "lr": lr,
        "local_loss": trained.local_loss.tolist(),
        "predictions": trained.predictions[-1].tolist(),
        "closed_form_predictions": form.predictions[-1].tolist(),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m companion.sharded.check")
    parser.add_argument("--quick", action="store_true", help="fewer cases and sizes")
    parser.add_argument("--parts", default="equality,traffic,timing")
    parser.add_argument("--sizes", default="8,16,32,64,128,256", help="Q of the traffic table")
    parser.add_argument("--row-floats", type=int, default=1000, help="floats per agent")
    parser.add_argument("--timing", default="8,64,50,3", help="Q, width, steps, repeats")
    args = parser.parse_args(argv)
    distributed.initialize()  # several processes, when the environment describes them
    parts, count = args.parts.split(","), len(jax.devices())
    spread = usable_devices(2**20, count)  # the traffic table's Q are powers of two
    result: dict = {"devices": count, "platform": jax.devices()[0].platform}
    if "processes" in parts:
        result["processes"] = across_processes()
    if "equality" in parts:
        cases = equality_cases(args.quick)
        first = {c.kind: c for c in reversed(cases)}.values()  # a control for each kind
        result["equality"] = [compare(c, control=c in first) for c in cases]
    if "traffic" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        squares = [q for q in sizes if np.sqrt(q) % 1 == 0]  # the torus needs side x side
        result["traffic"] = communication("cycle", sizes, args.row_floats, spread)
        result["traffic"] += communication("torus", squares, args.row_floats, spread)
    if "timing" in parts:
        q, width, steps, repeats = (int(v) for v in args.timing.split(","))
        result["timing"] = timing(q, width, steps, repeats)
    return result


def emulated(devices: int, args: Sequence[str] = (), *, timeout: float = 600) -> dict:
    """Run this module in a fresh interpreter on ``devices`` emulated CPU devices (0: the
    machine's own devices, e.g. its GPUs) and return its JSON result.

    Raises:
        RuntimeError: the run failed or timed out; the message carries its stderr.
    """
    env = dict(os.environ)
    if devices:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
        env["JAX_PLATFORMS"] = "cpu"
    command = [sys.executable, "-m", "companion.sharded.check", *args]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"{' '.join(command)} ran past {timeout} s") from error
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(main()))
