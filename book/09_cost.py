# ---
# jupyter:
#   companion:
#     inputs: [_build/bench.json]
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
# # Cost and scale
#
# The closed forms of the previous chapters are only useful if predicting a training run
# costs less than running it. This chapter measures where the time goes in the book's
# pipeline (an empirical NTK, then the dual recursion) and in the thing it predicts
# (decentralized training of $Q$ real networks), fits the measured costs to operation
# counts, and turns the fit into a table that tells a reader how large a problem fits their
# machine.
#
# The three stages grow differently. For $n$ samples with $C$ outputs ($m = nC$), an MLP of
# width $w$ with $P$ parameters, $Q$ agents and $k$ steps:
#
# | stage | operations | memory |
# | --- | --- | --- |
# | structured empirical NTK (`companion.ntk`) | $m^2 w + m w^2$ per layer | $m^2$ (the kernel) |
# | Jacobian-contraction NTK (neural-tangents) | $m^2 P \approx m^2 w^2$ | $m P$ (the Jacobian) |
# | closed form, dual recursion | $k\,(m^2 + Q^2 m)$ | $Q m$ state, $(k+1) Q m$ stored |
# | real training, predictions recorded every step | $k\,(6 + 2Q)\, n P$ | $Q P$ |
#
# The dual step costs $O(m^2 + Q^2 m)$ ({ref}`closed-forms-dual`): agent $q$'s gradient
# term needs only the $n_q C$ rows of $K$ that belong to its own samples, and the
# predictions on all outputs are carried along by the same updates.

# %% tags=["parameters"]
quick = False  # small sizes for CI
width = 256  # hidden width of the pipeline comparison [quick: 64] [min: 1]
num_samples = 100  # training samples n; m is 10 n [quick: 40] [min: 1]
num_agents = 4  # agents Q [min: 2]
steps = 100  # steps of the closed form and of training [quick: 30] [min: 1]
ntk_ns = [25, 50, 100, 200]  # samples of the NTK scaling [quick: [10, 20]] [min: 1]
ntk_widths = [64, 128, 256, 512]  # widths of the NTK scaling [quick: [32, 64]] [min: 1]
dual_ns = [50, 100, 200]  # samples, closed-form scaling [quick: [20, 40]] [min: 1]
dual_agents = [2, 4, 8, 16]  # agents, closed-form scaling [quick: [2, 4]] [min: 1]
sim_agents = [2, 4, 8]  # agents, training scaling (width 64) [quick: [2, 4]] [min: 1]
# widths of the training scaling, Q 4
sim_widths = [32, 64, 128, 256]  # [quick: [16, 32]] [min: 1]
sim_samples = 48  # samples of the training scaling [quick: 12] [min: 1]
scaling_steps = 100  # steps of the scaling runs [quick: 10] [min: 1]
repeats = 3  # warm repetitions per timing (the median is reported) [quick: 1] [min: 1]
# samples of the check against neural-tangents
reference_samples = 20  # [quick: 10] [min: 1]
reference_width = 128  # width of the check against neural-tangents [quick: 32] [min: 1]
seed = 0  # seed of data, partition and theta_0 [min: 0]

# %% [markdown]
# We import the helper package (float64 throughout) and the plot theme; neural-tangents,
# whose Jacobian contraction is the reference for the NTK, comes in through
# `companion.cost`.

# %%
import json

import numpy as np
import pandas as pd

from companion import cost, plotting
from companion.book import paths, report

plotting.theme()

# %% [markdown]
# (cost-ntk)=
# ## The structured NTK is the Jacobian contraction, without the Jacobian
#
# `companion.ntk.empirical_ntk` sums, over the Dense layers, the Gram matrix of the layer
# inputs times the Gram matrix of the backpropagated output sensitivities. That is an exact
# rewriting of $J J^\top$, not an approximation, so it must agree with neural-tangents'
# implementation 1 (which forms $J$) to rounding error. We check it on a small problem,
# with neural-tangents' kernel laid out sample-major like ours
# (`companion.cost.reference_ntk`); the metric is the largest entry of the difference,
# relative to the largest entry of the reference.

# %%
small, _ = cost.setup(reference_samples, num_agents=4, width=reference_width, seed=seed)
reference = cost.reference_ntk(small)
ours = cost.compute_ntk(small)
ntk_rel_diff = float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))

# %% [markdown]
# ## One prediction against one training run
#
# On one problem (digits, an iid split over a cycle of $Q$ agents, a 3-layer ReLU MLP) we
# time the three stages: the NTK, the closed form with the kernel in hand, and DGD training
# of the $Q$ real networks for the same number of steps. Each figure is the median of
# `repeats` warm calls; the first call, which compiles, is not timed. The step size is
# half the sufficient DGD bound (`companion.cost.stable_lr`), and the closed form is built
# once, outside the clock, so its time is that of the recursion alone.

# %%
problem, mixing = cost.setup(num_samples, num_agents=num_agents, width=width, seed=seed)
lr = cost.stable_lr(problem, mixing)
stage_seconds = cost.stages(problem, mixing, lr=lr, steps=steps, repeats=repeats)

# %% [markdown]
# The bar chart puts the three side by side. The prediction is the sum of the first two.

# %% mystnb={"figure": {"caption": "Wall time of the NTK, the closed form (kernel in hand) and real DGD training of Q networks on one problem, median of warm repetitions (log scale).", "name": "fig-cost-stages"}}
fig = plotting.bars(
    stage_seconds,
    ylabel="wall time (s)",
    title=f"m = {10 * num_samples}, Q = {num_agents}, width {width}, {steps} steps",
    log=True,
)

# %% [markdown]
# ## How each stage scales
#
# `companion.cost.sweep` varies one size at a time and fits the log-log slope of the
# measured time. Next to it is the slope of the leading-order operation count over the same
# sizes: a power law only holds once the leading term dominates, so the "theory" slope is
# that of the count itself (for the NTK, $m^2 w + m w^2$ is between linear and quadratic in
# $w$), not an idealized exponent. First the NTK, against $m$ and against the width.

# %%
ntk_m, ntk_w = f"NTK vs m (width {width})", f"NTK vs width (n = {ntk_ns[1]})"
runs = {
    ntk_m: cost.sweep("ntk", "n", ntk_ns, width=width, repeats=repeats),
    ntk_w: cost.sweep("ntk", "width", ntk_widths, n=ntk_ns[1], repeats=repeats),
}

# %% [markdown]
# Then the closed form (DGD, kernel in hand, including `dynamics.predict`'s stability
# check) against $m$ and $Q$, each run `scaling_steps` steps long.

# %%
dual_m, shared = "closed form vs m (Q = 4)", dict(steps=scaling_steps, repeats=repeats)
runs[dual_m] = cost.sweep("closed_form", "n", dual_ns, **shared)
runs[f"closed form vs Q (n = {dual_ns[-1]})"] = cost.sweep(
    "closed_form", "num_agents", dual_agents, n=dual_ns[-1], **shared
)

# %% [markdown]
# Last, real training against $Q$ at width 64 and against the width at $Q = 4$, on
# `sim_samples` samples and for as many steps.

# %%
runs[f"training vs Q (n = {sim_samples}, width 64)"] = cost.sweep(
    "training", "num_agents", sim_agents, n=sim_samples, width=64, **shared
)
runs[f"training vs width (n = {sim_samples}, Q = 4)"] = cost.sweep(
    "training", "width", sim_widths, n=sim_samples, **shared
)

# %% [markdown]
# Each panel shows the measured times and the operation count rescaled to pass through the
# middle measurement, so only the shapes are compared.

# %% mystnb={"figure": {"caption": "Measured wall time (markers) and leading-order operation count (dashed, rescaled) against one size at a time; legends give both log-log slopes.", "name": "fig-cost-scaling"}}
fig = plotting.cost_scaling(runs)

# %% [markdown]
# The table lists the fitted slopes. At the small sizes a chapter can afford, fixed costs
# (Python dispatch, array copies, the validation of inputs) flatten the measured curves, so
# measured slopes sit below the counted ones; the benchmark suite (`make bench`) repeats
# these sweeps at larger sizes. At a fixed $m$ the closed form's count grows only through
# the mixing term $Q^2 m$, which is small next to $m^2$ until $Q$ approaches $\sqrt{m}$.

# %%
cost.slopes(runs).round(2)

# %% [markdown]
# ## Where the time goes
#
# - **The NTK** is the only stage that touches the network's width. The structured path
#   never forms the $m \times P$ Jacobian: its work is $m^2$ times the width (the
#   sensitivity Grams) plus $m$ times width squared (backpropagating $C$ output directions),
#   against $m^2 P \approx m^2 w^2$ for the Jacobian contraction. At width 1024 that is a
#   factor of about a thousand in operations, and the Jacobian alone would need
#   $8 m P$ bytes (17 GB at $m = 1000$).
# - **The closed form** never sees the network: each step multiplies every agent's residual
#   on its own $n_q C$ outputs by those rows of the $m \times m$ kernel ($m^2$ in all) and
#   mixes the $Q \times m$ state ($Q^2 m$), so it is cheap as long as $K$ fits in memory.
# - **Training** backpropagates each agent through its own rows only ($6 n P$ per step in
#   all, padded to the largest agent so uneven partitions share one compiled `vmap`). A step
#   that records every agent's predictions on all $n$ inputs adds a forward pass of
#   $2 Q n P$; `simulate.SaveAt` chooses the steps that record, and the per-step local
#   losses come from the gradient's own outputs.
#
# The memory of a prediction is the kernel ($8 m^2$ bytes: 0.2 GB at $m = 5000$, 3.2 GB at
# $m = 20000$) plus the stored predictions of every agent at every step
# ($8 (k+1) Q m$ bytes). The structured NTK works in blocks of rows, so its peak stays a
# small multiple of the kernel itself.
#
# ## What fits your machine
#
# Dividing each measured time by its operation count gives seconds per operation for this
# machine; `companion.cost.estimate` multiplies them back for a problem that was never run.
# The rates come from the largest size of the sweeps in $m$, where fixed costs weigh least.

# %%
rates = {
    stage: cost.fit_seconds_per_op(runs[name]["ops"][-1:], runs[name]["seconds"][-1:])
    for stage, name in (("ntk", ntk_m), ("closed_form", dual_m))
}

# %% [markdown]
# With these rates, `companion.cost.estimates` gives the time of the NTK, of the closed
# form and of both, and the memory, for problems up to $m = 20000$ at two widths and two
# numbers of agents, to two significant digits:

# %%
sizes = [(m, q, w) for m in (1000, 5000, 20000) for q in (4, 16) for w in (1024, 4096)]
cost.estimates(rates, sizes).map(lambda v: float(f"{v:.2g}"))

# %% [markdown]
# Read the table as orders of magnitude: the rates were measured at small sizes on a shared
# machine, and BLAS runs faster per operation on large matrices, so large problems tend to
# come in below the estimate. Two limits are hard ones. The kernel must fit in memory
# ($m = 20000$ needs 3.2 GB before anything else), and the spectral closed form at arbitrary
# steps (`ClosedForm.at`) eigendecomposes a $Qm \times Qm$ matrix, which is
# practical only up to `dynamics.SPECTRAL_LIMIT` $= 3000$ and otherwise falls back to the
# recursion.
#
# When `make bench` has been run, its figures (all measured in one run) are in
# `_build/bench.json`; we show the key ratios if the file is there.

# %%
bench_path = paths.build_dir() / "bench.json"
bench = json.loads(bench_path.read_text()) if bench_path.is_file() else {}
keys = ["ntk.speedup", "ntk.max_rel_diff", "ntk.peak_memory_ratio"]
keys += ["predict.speedup_vs_training", "simulate.speedup_vs_python_loop"]
pd.Series({k: bench[k] for k in keys if k in bench}, dtype=float).map(
    lambda v: f"{v:.3g}"
)

# %% [markdown]
# We record the one robust number of this chapter, the agreement of the structured NTK with
# neural-tangents, and print only quantities that do not depend on the machine's speed:
# that agreement and the exponents of the operation counts.

# %% tags=["nbval-check-output"]
report.record(
    "cost.ntk_matches_neural_tangents",
    ntk_rel_diff,
    kind="exact",
    bound=1e-12,
    statement="max |K_structured - K_neural_tangents| / max |K| for a 3-layer ReLU MLP on "
    "digits (C = 10)",
    section="cost-ntk",
)
count_slope = cost.loglog_slope(
    [1000, 4000], [cost.operations("ntk", n=m // 10) for m in (1000, 4000)]
)
print(f"structured NTK equals neural-tangents to 1e-12: {ntk_rel_diff <= 1e-12}")
print(f"NTK operation count slope in m at width 1024: {count_slope:.1f}")
print(f"kernel memory at m = 5000: {8 * 5000**2 / 1e9:.1f} GB")

# %% [markdown]
# ## In this chapter we
#
# - checked that the structured NTK equals neural-tangents' Jacobian contraction to
#   rounding error while never forming the $m \times P$ Jacobian;
# - timed the NTK, the closed form and real training on one problem, and measured how each
#   grows with $m$, $Q$ and the width next to its operation count;
# - saw that the NTK is the only stage that depends on the width, that the dual recursion
#   costs $m^2 + Q^2 m$ per step, and that simulated training pays its forward pass on all
#   inputs only at the steps that record predictions;
# - turned the measurements into an estimate of seconds and gigabytes for a reader's own
#   problem, with the kernel's $8 m^2$ bytes as the hard limit.
