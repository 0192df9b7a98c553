# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Many agents, many devices
#
# Every chapter so far kept all $Q$ agents in one `vmap` on one device. Sixty-four agents
# with width-4096 networks, or a closed form at $m = 10^4$, outgrow that device. This
# chapter puts the agents on a line of devices with JAX's own runtime: `shard_map` over a
# device mesh, `lax.ppermute` to send a row to a neighbour's device, and
# `jax.distributed` to join several processes or hosts. That is what decentralized
# training libraries do with MPI or NCCL, BlueFog's `neighbor_allreduce` for one
# {cite}`ying2021bluefog`. The agents run the very step functions of the previous
# chapters (`companion.sharded` only changes where they live), so the first thing to check
# is that nothing else changes: a sharded run must equal the one-device run to rounding.
# Then we count what the devices send each other, and time it.

# %% tags=["parameters"]
quick = False  # small sizes for CI
# CPU devices emulated in a fresh process; 0 uses this machine's own
emulated_devices = 8  # [min: 0]
num_agents = 16  # agents Q of the drawn plans; 8 devices must divide it [min: 8]
max_agents = 256  # the traffic table's Q run over powers of two from 8 to this [min: 8]
# hidden width of the 3-layer MLP whose parameters each agent sends
width = 1024  # [min: 1]
all_cases = True  # every equality case; False runs two [quick: False]
timing_agents = 8  # agents of the timed DGD run (a cycle) [min: 2]
timing_width = 128  # hidden width of the timed run [quick: 16] [min: 1]
timing_steps = 100  # steps of the timed run [quick: 5] [min: 1]
repeats = 3  # warm repetitions per timing (the median is reported) [quick: 1] [min: 1]

# %% [markdown]
# We import the helper package (float64 throughout) and the plot theme.

# %%
import os

import numpy as np
import pandas as pd

from companion import cost, graphs, plotting
from companion.book import report
from companion.sharded import check, matchings

plotting.theme()

# %% [markdown]
# (devices-matchings)=
# ## From a graph to matchings
#
# With $D$ devices, device $d$ holds the $A = Q/D$ consecutive agents
# $dA, \dots, dA + A - 1$ and computes their gradients. Mixing,
# $(W \otimes I)\,\theta$, needs on each device the parameters of every neighbour of its
# agents; a neighbour on another device $d$ must be sent over. Everything device $d$ sends
# device $e$ is one *arc* $d \to e$.
#
# A `ppermute` moves one buffer from each device to at most one other, and each device
# receives at most one. So the arcs must be grouped into rounds in which no device sends
# twice or receives twice: matchings of the bipartite graph whose left side are the
# senders and right side the receivers. König's line-colouring theorem
# {cite}`konig1916graphen` says the edges of a bipartite graph can be coloured with as many
# colours as its largest degree $\Delta$, here the most devices one device exchanges
# with, and no schedule can do with fewer, since a device takes one buffer per round.
# `companion.sharded.matchings.colour_arcs` finds such a colouring by recolouring
# alternating paths. On a cycle the two colours are the shifts $+1$ and $-1$.
#
# The cycle, the 2-D torus and the star, with `num_agents` agents on 8 devices:

# %%
shown = {}
for name in ("cycle", "torus", "star"):
    graph = graphs.topology(name, num_agents)
    mixing = graphs.mixing_matrix(graph)
    shown[name] = (
        graph,
        matchings.plan(mixing, 8, "matchings"),
        matchings.plan(mixing, 8),
    )

# %% [markdown]
# {numref}`fig-devices-plans` draws each: on the left the agents in their device's colour,
# on the right the devices and the arcs between them, coloured by the ppermute that carries
# them.

# %% mystnb={"figure": {"caption": "Left: agents coloured by the device that holds them (two per device); dark edges join agents on different devices. Right: the arcs between devices, one colour per ppermute; in one colour no device sends twice or receives twice.", "name": "fig-devices-plans"}}
fig = plotting.device_plans(
    {name: (g, p.schedule.rounds, 8) for name, (g, p, _) in shown.items()}
)

# %% [markdown]
# Each ppermute's buffer holds, on every device, the largest number of rows any arc of its
# colour carries (shorter arcs are padded), so the rows moved per mixing count that
# padding too. The largest device degree and the rounds found:

# %%
pd.DataFrame(
    {
        name: {
            "largest device degree": p.degree,
            "ppermutes": p.schedule.collectives,
            "rows per mixing": p.schedule.rows_moved,
            "all-gather rows": p.schedule.allgather_rows,
            "the rule picks": "all-gather" if auto.schedule.allgather else "matchings",
        }
        for name, (_, p, auto) in shown.items()
    }
).T

# %% [markdown]
# The star's hub must hear from every agent, so its device receives as many rows by
# matchings as an all-gather delivers to every device. That is the rule
# `companion.sharded` states for choosing one `all_gather` instead: **when the busiest
# device would receive at least $(D - 1)A$ rows by matchings, the matchings do an
# all-gather's work on the critical path in more collectives, and one all-gather is
# used.** It fires for the star and the complete graph. On a cycle the busiest device
# receives two rows against $(D - 1)A$, so it never fires on a cycle of more than three
# devices.
#
# (devices-emulated)=
# ## Eight devices on one machine
#
# This kernel's JAX already runs on this machine's one CPU device, and XLA reads how many
# CPU devices to create once, when JAX starts. So the runs on several devices happen in a
# fresh Python process, which the next cell starts with the equivalent of
#
# ```bash
# XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \
#     .venv/bin/python -m companion.sharded.check
# ```
#
# (with `emulated_devices = 0` it uses the machine's real devices instead, e.g. its GPUs).
# It compares sharded runs with the one-device path, measures the collectives of the
# compiled program, and times both paths; everything below comes from its one JSON
# result.

# %%
row_floats = cost.mlp_parameters(width, 3, 64, 10)  # one agent's parameters
sizes = [2**k for k in range(3, max_agents.bit_length())]  # 8, 16, ..., max_agents
args = ["--sizes", ",".join(map(str, sizes)), "--row-floats", str(row_floats)]
args += ["--timing", f"{timing_agents},{timing_width},{timing_steps},{repeats}"]

# %% [markdown]
# The arguments name what the subprocess measures beyond the equality cases: the numbers
# of agents of the traffic table (powers of two up to `max_agents`), the floats each agent
# sends (`row_floats`, the parameters of an MLP with 3 hidden layers of width `width` on
# 64 inputs and 10 outputs), and the timed run. The chapter needs at least two devices
# and stops with an error if the subprocess found fewer:

# %%
measured = check.emulated(emulated_devices, args + ([] if all_cases else ["--quick"]))
devices = measured["devices"]
if devices < 2:
    raise ValueError(
        f"this chapter needs 2 or more devices, found {devices}: emulate 8"
    )
print(f"{devices} {measured['platform']} devices in the subprocess")

# %% [markdown]
# (devices-equality)=
# ## The same numbers, sharded
#
# Each case trains (the network, or its linearization) or runs the dual closed form for
# six steps, once sharded and once in one `vmap`, on digits with a small MLP and two
# samples per agent. The full design has 13 cases: every pair of graph, algorithm, kind
# and agents per device (1, 2 or 4) meets in one of them, except the torus with one agent
# per device (its 16 agents would need 16 devices); the star's training is forced to use
# matchings and the cycle's closed form an all-gather, so both exchanges are checked.
# With `all_cases = False` (quick mode) two of them run; the unit tests run all 13. The
# table lists the cases this run compared. The difference is the largest absolute
# difference over every field of the `Trajectory` (losses, distances, every agent's
# predictions on training and test inputs) and the final parameters. The control, for the
# first case of each kind, scores the same sharded run against the one-device run on the
# *path*, the cycle with one edge removed: what a schedule that lost one message would
# look like.

# %%
cases = pd.DataFrame(measured["equality"])
exchange = np.where(cases["allgather"], "all-gather", "matchings")
cases = cases.assign(exchange=exchange).set_index(["graph", "algorithm", "kind"])
columns = ["num_agents", "per_device", "exchange", "collectives", "max_abs_diff"]
cases[columns + ["control_max_abs_diff"]].style.format(
    {"max_abs_diff": "{:.1e}", "control_max_abs_diff": "{:.2f}"}, na_rep=""
)

# %% [markdown]
# The two paths add the same terms in the same order (each agent's neighbours in the same
# slots), so what remains is the order of the sums over all agents (for the network
# average and the consensus distance), which `psum` adds device by device. The worst
# case, against the control:

# %%
max_abs_diff = float(cases["max_abs_diff"].max())
control_diff = float(cases["control_max_abs_diff"].min())
print(f"largest difference {max_abs_diff:.1e}; control at least {control_diff:.2f}")

# %% [markdown]
# The largest difference, {claim}`sharded.max_abs_diff:value`, is rounding; the path
# graph's run differs by at least {claim}`sharded.max_abs_diff:control`.
#
# (devices-traffic)=
# ## Bytes per step
#
# One mixing per step (each algorithm mixes once) moves every sent agent's parameters:
# `row_floats` float64 for the 3-layer width-`width` MLP. The plan *counts* the rows
# moved, padding included; the subprocess *measures* the bytes from the compiled
# program, reading each `collective-permute` (its buffer shape times its source-target
# pairs) and `all-gather` in the optimized HLO, compiled for the real shapes without
# allocating them. Counted (lines) and measured (markers), on the devices of the table
# below:

# %% mystnb={"figure": {"caption": "Bytes one mixing moves between devices against the number of agents: by matchings on the cycle and the torus, and by an all-gather. Lines are counted from the plan, markers measured from the compiled program.", "name": "fig-devices-traffic"}}
traffic = pd.DataFrame(measured["traffic"])
fig = plotting.traffic(measured["traffic"], title=f"{row_floats:,} float64 per agent")

# %% [markdown]
# On the cycle the matchings move the same two rows per device whatever $Q$: $2D$ rows per
# mixing against the all-gather's $D(D-1)A$, a ratio $2/((D-1)A)$. On the torus an agent
# per device has four neighbours, and a block of a whole row of the torus per device
# has two. The table gives the ratio to the all-gather and what the rule would pick:

# %%
traffic = traffic.assign(
    ratio=traffic["measured_bytes"] / traffic["allgather_measured_bytes"],
    megabytes=traffic["measured_bytes"] / 1e6,
).set_index(["graph", "num_agents"])
traffic[["devices", "ppermutes", "megabytes", "ratio", "auto"]].round(4)

# %% [markdown]
# (devices-time)=
# ## Wall time, as measured
#
# Finally the subprocess timed DGD training of `timing_agents` width-`timing_width`
# networks on a cycle, sharded over its devices and in one `vmap`, median of `repeats`
# warm runs.

# %%
timing = measured["timing"]
speed = {k: timing[k] * 1e3 for k in ("sharded", "one_device")}
print({k: f"{v:.2f} ms per step" for k, v in speed.items()})

# %% tags=["remove-input"]
report.record(
    "sharded.step_ms",
    speed | {"cores": os.cpu_count() or 1},
    kind="observation",
    passed=speed["sharded"] >= speed["one_device"],
    statement=f"warm milliseconds per DGD training step of {timing_agents} width-"
    f"{timing_width} networks on the cycle, sharded over emulated devices and in one vmap, "
    f"median of {repeats}, on {measured['platform']} devices; holds when sharding is no "
    "faster, as emulated devices sharing the machine's cores cannot be (on real "
    "accelerators a failure is a speedup)",
    section="devices-time",
)

# %% [markdown]
# {claim}`sharded.step_ms:value.sharded` ms per step sharded against
# {claim}`sharded.step_ms:value.one_device` ms in one `vmap` (the observation
# {claim}`sharded.step_ms:verdict`). **Emulated devices are not extra hardware:** they are
# threads of one XLA process sharing this machine's {claim}`sharded.step_ms:value.cores`
# cores, so sharding can only add the cost of its collectives and smaller kernels here.
# These numbers measure that overhead, not a speedup; one needs devices with their own
# compute and memory for that.
#
# ## On real accelerators
#
# On a machine with GPUs, install the CUDA build of the pinned JAX into the book's
# environment and run this chapter on the real devices:
#
# ```bash
# .venv/bin/pip install "jax[cuda12]==0.4.35"
# .venv/bin/companion run devices -p emulated_devices 0
# ```
#
# The number of GPUs must divide the agents of each run (the runs choose the most devices
# that do). Several hosts, or one process per GPU, join with
# `companion.sharded.initialize()`, which reads `JAX_COORDINATOR_ADDRESS`,
# `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` (the README shows the commands); the test
# suite runs it with two processes on one machine and gets the single-process result.
#
# ## Recorded numbers
#
# First the equality (exact: rounding only, with the path graph as control), over the
# graphs, algorithms and kinds this run compared:

# %%
levels = cases.index.names  # graph, algorithm, kind
ran = "; ".join(", ".join(sorted(set(cases.index.get_level_values(k)))) for k in levels)

# %% [markdown]
# The claim's statement says how many runs were compared and what they covered (`ran`:
# the graphs, algorithms and kinds of the cases above), so a quick run's record says that
# it compared two cases, not 13:

# %% tags=["nbval-check-output"]
report.record(
    "sharded.max_abs_diff",
    max_abs_diff,
    kind="exact",
    bound=1e-12,
    control_value=control_diff,
    control="the one-device run on the path graph (the cycle less one edge)",
    statement=f"largest |sharded - one-device| over every Trajectory field and the final "
    f"parameters, {len(cases)} runs on {devices} devices ({ran})",
    section="devices-equality",
)
print(f"sharded equals one-device to 1e-12: {max_abs_diff <= 1e-12}")

# %% [markdown]
# Then the compiled program's bytes against the plan's count (exact), scored as a
# relative difference; the control scores the compiled matchings against the
# all-gather's count:

# %%
counted = traffic[["counted_bytes", "allgather_bytes"]].to_numpy()
compiled = traffic[["measured_bytes", "allgather_measured_bytes"]].to_numpy()

# %% [markdown]
# Each row of `counted` and `compiled` is one graph and $Q$ of the traffic table, its two
# columns the matchings and the all-gather; the count is exact, so the claim asks for
# equality to rounding, and the control pairs the compiled matchings with the wrong count:

# %% tags=["nbval-check-output"]
report.record(
    "sharded.compiled_bytes_equal_count",
    float(np.max(np.abs(compiled - counted) / counted)),
    kind="exact",
    bound=1e-12,
    control_value=float(np.max(np.abs(compiled[:, 0] - counted[:, 1]) / counted[:, 1])),
    control="the all-gather's count against the compiled matchings",
    statement="bytes the compiled program's collectives move per mixing against the "
    "plan's count, largest relative difference over every graph and Q, both exchanges",
    section="devices-traffic",
)
print(f"compiled bytes equal the count: {np.array_equal(compiled, counted)}")

# %% [markdown]
# König's bound (theorem: the arcs form a bipartite sender-receiver graph, and a device
# takes one buffer per round) holds for every plan the chapter built:

# %%
plans = [p for _, p, _ in shown.values()]
plans += [
    matchings.plan(graphs.mixing_matrix(check.connected_graph(g, q)), d, "matchings")
    for (g, q), d in traffic["devices"].items()
]
konig = all(p.degree == p.schedule.collectives for p in plans)

# %% [markdown]
# That is the three drawn plans and, rebuilt here from the same graphs, the matchings of
# every row of the traffic table: each plan's ppermutes against its largest device degree.

# %% tags=["nbval-check-output"]
report.record(
    "sharded.ppermutes_equal_max_degree",
    konig,
    kind="theorem",
    statement="the ppermutes of every plan equal the largest number of devices one device "
    "exchanges with (König: the arcs form a bipartite sender-receiver graph, and a device "
    "takes one buffer per round, so no schedule has fewer)",
    section="devices-matchings",
)
print(f"ppermutes = largest device degree: {konig}")

# %% [markdown]
# And the cycle's measured ratio to the all-gather is the counted $2/((D-1)A)$ (theorem:
# the count of {ref}`devices-traffic`):

# %%
cycle = traffic.loc["cycle"]
formula = 2 / ((cycle["devices"] - 1) * cycle.index / cycle["devices"])
ratios = dict(zip(cycle.index.astype(str), cycle["ratio"].round(6), strict=True))

# %% [markdown]
# `formula` is $2/((D-1)A)$ with $A = Q/D$ for each $Q$ of the table; the recorded value
# is the measured ratio by $Q$, rounded to six digits, and the claim holds when the two
# agree to a relative $10^{-12}$:

# %% tags=["nbval-check-output"]
report.record(
    "sharded.cycle_bytes_vs_allgather",
    ratios,
    kind="theorem",
    passed=bool(np.allclose(cycle["ratio"], formula, rtol=1e-12, atol=0)),
    statement="bytes per mixing by matchings over an all-gather on the cycle, by Q; the "
    "count says 2 / ((D - 1) A) with A = Q / D agents per device",
    section="devices-traffic",
)
print(f"cycle ratio at Q = {sizes[0]}: {ratios[str(sizes[0])]:.3f}")

# %% [markdown]
# ## In this chapter we
#
# - sharded the agents over a line of devices with `shard_map`, the step functions and
#   the algorithms unchanged, and turned the graph into rounds of `ppermute`s: matchings
#   of the devices' arcs, as few as König's theorem allows, with one all-gather by a
#   stated rule for dense graphs;
# - checked on 8 emulated devices that sharded training (real and linearized) and the
#   sharded closed form equal the one-device path to rounding, on four graphs, three
#   algorithms and 1, 2 and 4 agents per device, while the path graph's run does not;
# - counted the bytes per step and measured them from the compiled program: on the cycle
#   the matchings send two rows per device whatever $Q$, a small fraction of an
#   all-gather;
# - timed both paths and said what the time means here: emulated devices share this
#   machine's cores, so it measures overhead, and the same chapter runs on real devices
#   with one parameter.
