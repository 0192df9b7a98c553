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
# # Stochastic gradients
#
# The paper's agents take full-batch gradients of their local losses
# {cite}`chaudhari2025p2p`. Deployed peer-to-peer training uses mini-batches
# {cite}`lian2017decentralized`. For the linearized network a mini-batch step is still
# an affine map of the state, but a random one: it depends on which rows the batch drew.
# This is the situation of the random mixing matrices of {doc}`11_changing_graphs`, and
# again the first two moments are exact. This chapter (our reconstruction: the paper does
# not treat mini-batches) derives them, checks them by enumerating every batch sequence of
# a tiny problem and by Monte Carlo, finds the exact mean-square stability limit by batch
# size, and confronts the predicted spread with ensembles of real networks trained on
# independent batch sequences. It ends with the trade-off between batch size, messages and
# gradient evaluations.

# %% tags=["parameters"]
quick = False  # small sizes for CI
width = 128  # hidden width, linearized sections [quick: 32] [min: 1]
classes = 3  # digit classes C [min: 2] [max: 10]
num_agents = 4  # agents Q on a cycle [min: 3]
samples_per_agent = 4  # rows per agent, stability and Monte Carlo [quick: 2] [min: 2]
algorithm = "atc"  # algorithm of the Monte Carlo, the map and the networks
mc_lr = 0.5  # Monte Carlo step over the batch-1 mean-square threshold [min: 0.0]
mc_steps = 40  # steps of the Monte Carlo [quick: 20] [min: 1]
realizations = 1000  # batch sequences per Monte Carlo block [quick: 300] [min: 2]
net_samples_per_agent = 6  # rows per agent of the real networks [quick: 4] [min: 2]
widths = [64, 128, 256]  # widths of the real networks [quick: [32, 64]] [min: 1]
seeds = 5  # initializations theta_0 per width [min: 2]
ensemble = 16  # batch sequences per initialization [quick: 6] [min: 2]
net_steps = 100  # steps of the network runs [quick: 30] [min: 1]
net_lr = 0.5  # network step size over the full-batch threshold [min: 0.0]
band_batch = 2  # batch size of the band comparison [min: 1]
# batch sizes of the cost comparison
cost_batches = [1, 2, 3, 6]  # [quick: [1, 4]] [min: 1]
seed = 0  # seed of the data and partitions [min: 0]

# %% [markdown]
# We import the helper package (float64) and the plot theme; `sgd_sequences` holds runs
# over many batch sequences (listed, drawn or trained), `sgd_networks` measures them.

# %%
import numpy as np
import pandas as pd

from companion import (
    graphs,
    plotting,
    sampling,
    sgd_networks,
    sgd_sequences,
    sgd_stability,
    simulate,
)
from companion.book import claims, report
from companion.plotting import sgd as sgd_plots

plotting.theme()

# %% [markdown]
# Every problem of the chapter is digits of `classes` classes split evenly across the
# agents, a two-layer ReLU MLP at $\theta_0$ and its empirical NTK.

# %%
import functools

from companion import data, models
from companion import problem as problem_lib


@functools.cache
def mlp(width):
    """One model per width, so the compiled training is reused across initializations."""
    return models.mlp(width, 2, classes)


def digits_problem(width, per_agent, init=0, n_test=0, agents=num_agents):
    """Digits of `classes` classes split i.i.d. over the agents; theta_0 from `init`."""
    dataset = data.load_digits_dataset(
        agents * per_agent, n_test, seed=seed, center_targets=True, classes=classes
    )
    partition = data.partitioner(dataset, scheme="iid", seed=seed)(agents)
    return problem_lib.from_dataset(mlp(width), dataset, partition, seed=init)


# %% [markdown]
# (sgd-samplers)=
# ## Two samplers
#
# At step $k$ agent $q$ draws a batch from its own $n_q$ rows, independently of the other
# agents, of the earlier steps and of the state, and weights the rows it drew so that the
# batch gradient is unbiased for its full local gradient:
#
# - **fixed size** (`sampling.fixed_size`): $b_q$ rows without replacement, weight
#   $1/b_q$;
# - **independent inclusion** (`sampling.independent`): each row with probability
#   $\rho_q$, weight $1/(\rho_q n_q)$.
#
# What the moments need is $\mathbb{E}[1_i 1_j]$ of the inclusion indicators: $b/n$ on
# the diagonal and $b(b-1)/(n(n-1))$ off it for a fixed size, $\rho$ and $\rho^2$ for
# independent inclusion. For $b = 2$ of $n = 3$ rows and for $\rho = 0.5$:

# %%
tiny = digits_problem(width, 3, agents=2)
print(sampling.fixed_size(tiny, 2).inclusion(0).round(4))
print(sampling.independent(tiny, 0.5).inclusion(0))

# %% [markdown]
# Each of the three pairs has probability 1/3, and each row is in two of them;
# independent inclusion leaves the indicators uncorrelated, the diagonal's square off it.
#
# (sgd-mean)=
# ## The mean is the full-batch closed form
#
# As in {doc}`closed_forms`, $\theta_q(k) - \theta_0 = J^\top \alpha_q(k)$. Agent $q$'s
# mini-batch gradient in these dual coordinates is $\Xi_q(k)\, e_q$: its residual
# $e_q = K\alpha_q + f_0 - y$ on its own rows, weighted by the batch weights
# $\Xi_q(k)$, at the point where the algorithm takes its gradient (CTA: the mixed point).
# One step of $z = [\alpha; 1]$ is $z \leftarrow A(\Xi)\, z$ with
# $A(\Xi) = \bar A - \eta \hat L (\Xi - D) \hat R$: $\bar A$ the full-batch step
# ($D = \mathbb{E}\,\Xi$, weights $1/n_q$), $\hat R z$ the residual at the gradient point
# and $\hat L$ what the step does to a gradient (the identity for DGD and CTA, the mix for
# ATC).
#
# **Theorem.** Suppose (i) the model is the linearized network (the kernel stays at
# $\theta_0$), (ii) every agent's batch weights are unbiased, $\mathbb{E}\,\Xi_q(k) = D_q$,
# and (iii) the batches of step $k$ are drawn independently of those of earlier steps.
# Then $\mathbb{E}\, z(k)$ follows the full-batch recursion exactly, for DGD, ATC and CTA.
#
# *Proof.* $z(k)$ depends only on the batches of steps $0, \dots, k-1$, so by (iii) it is
# independent of $\Xi(k)$, and $A$ is affine in $\Xi$:
# $\mathbb{E}[A(\Xi_k) z(k)] = A(\mathbb{E}\,\Xi_k)\, \mathbb{E}\, z(k) = \bar A\,
# \mathbb{E}\, z(k)$. $\square$
#
# We check it without using it: on a tiny problem (two agents of three rows, two classes)
# we list every batch sequence with its probability, run the linearized dynamics on each
# and sum. The same sum gives the second moment, which the next section derives. Each
# sampler runs for as many steps as keeps the list short: three steps of the fixed size
# (three pairs per agent) and two of independent inclusion (eight subsets per agent). For
# every algorithm the enumerated mean is held against the full-batch closed form, and the
# enumerated second moment against the exact one, each as the largest entrywise error
# over the largest entry, at a step size of 0.4 over $L_{\max}$.

# %%
tiny_w = graphs.mixing_matrix(graphs.topology("complete", 2))
tiny_samplers = {
    "b = 2": (sampling.fixed_size(tiny, 2), 3),
    "rho = 0.5": (sampling.independent(tiny, 0.5), 2),
}
tiny_lr = 0.4 / tiny.curvature
enumerated = sgd_sequences.enumeration_errors(tiny, tiny_w, tiny_lr, tiny_samplers)
pd.DataFrame(enumerated.table())

# %% [markdown]
# Both columns sit at rounding for all six rows: the mean is the full-batch closed form,
# as the theorem says, and the second moment of the next section is exact.
#
# (sgd-second)=
# ## The second moment, with the state-dependent noise
#
# With $S = \mathbb{E}[z z^\top]$, the same independence gives, exactly,
#
# $$
# S(k+1) = \bar A\, S(k)\, \bar A^\top
#   + \eta^2 \hat L\, \mathcal{N}\big(\hat R\, S(k)\, \hat R^\top\big)\, \hat L^\top,
# \qquad
# \mathcal{N}(V) = \operatorname{blockdiag}_q\big(C_q \circ V_{qq}\big),
# $$
#
# where $C_q$ is the covariance of agent $q$'s weighted indicators
# ($\tfrac{n-b}{b n^2}$ on the diagonal and $-\tfrac{n-b}{b n^2 (n-1)}$ off it for a fixed
# size; $\tfrac{1-\rho}{\rho n^2} I$ for independent inclusion), repeated over the $C$
# outputs of a row. The sampling term is block-diagonal over agents (their batches are
# independent) and a Hadamard product inside a block. The noise depends on the state
# through $\hat R S \hat R^\top$, the second moment of the residuals: it shrinks as the
# residuals do. The enumeration above matches it to rounding for every algorithm and both
# samplers. The full batch has $C_q = 0$ and gives back the closed form.
#
# *Cost.* The state has $(Qm+1)^2$ numbers. A step costs $O(Q^3 m^2)$ for the mixing and
# $O(Q m^3)$ for the gradients (each agent reads only its own rows), the sampling term
# the same order; the full-batch recursion costs $O(m^2 + Q^2 m)$ per step. On the book's
# 2-core machine a step took about 0.01 s at $Qm = 192$, 0.1 s at 768, 1 s at 1536 and
# 4 s at 3072: a minute of 100 steps reaches $Qm \approx 1000$. Below we time one step
# at this chapter's sizes.

# %% [markdown]
# (sgd-stability)=
# ## Mean-square stability
#
# Without the offset, the second moment follows $S \leftarrow T(S)$, a linear operator on
# $Qm \times Qm$ matrices; the iterates are mean-square stable exactly when its spectral
# radius is below 1 {cite}`wu2018sgd`. $T$ maps positive semidefinite matrices to
# positive semidefinite ones, so the radius is itself an eigenvalue and crosses 1 through
# the eigenvalue 1. Since the sampling term is positive semidefinite,
# $\rho(T) \ge \rho(\bar A)^2$: the mean-square threshold is at most the full-batch one.
# The eigenvalues of $T$ cluster near 1 (the kernel's slow modes), so instead of bisecting
# on $\rho(T)$ we solve for the step size where the *noise gain*
# $\rho\big((I - \bar A(\cdot)\bar A^\top)^{-1}\Pi\big)$ is 1, which for positive
# operators is where $\rho(T) = 1$; we then check $\rho(T) = 1$ there. The problem:
# `num_agents` agents with `samples_per_agent` rows each on a cycle with lazy Metropolis
# weights $(I + W)/2$, positive semidefinite, so that every full-batch threshold is one
# exact eigenvalue problem ({doc}`06_stability`).
#
# For every algorithm and batch size (one row, half the rows, all of them) we solve for
# the mean-square threshold, divide it by the full-batch threshold, and evaluate $\rho(T)$
# at it, which must be 1. The full batch needs no such check: its threshold is the
# full-batch one by construction, and its ratio must be exactly 1.

# %%
cycle = graphs.mixing_matrix(graphs.topology("cycle", num_agents), "lazy")
small = digits_problem(width, samples_per_agent)
batches = sorted({1, max(1, samples_per_agent // 2), samples_per_agent})
thresholds = sgd_stability.thresholds_by_batch(small, cycle, batches)
pd.DataFrame(thresholds.table())

# %% [markdown]
# Every ratio is at most 1, as the positivity argument requires, and the smallest batch
# loses the most: the sampling term is $(n-b)/b$ times one fixed operator, and $T$ grows
# with it. The thresholds of ATC and CTA coincide: with $\Phi$ the mix applied to both
# sides of $S$ and $G$ the rest of a step, ATC's operator is $\Phi \circ G$ and CTA's
# $G \circ \Phi$, which share their nonzero spectrum.
#
# {numref}`fig-sgd-map` maps $\rho(T)$ over batch size and step size for the chapter's
# algorithm, beside the thresholds of all three.

# %% mystnb={"figure": {"caption": "Left: log10 of the spectral radius of the second-moment operator by batch size and step size (a fraction of the full-batch threshold); white is the mean-square boundary, red unstable. Right: the exact mean-square threshold of each algorithm against batch size, over its full-batch threshold.", "name": "fig-sgd-map"}}
map_fractions = [0.5, 0.75, 0.9, 1.0, 1.1]  # step sizes over the full-batch threshold
radii = sgd_stability.stability_map(small, algorithm, cycle, batches, map_fractions)
fig = sgd_plots.stability_map(
    batches, map_fractions, radii, thresholds.by_algorithm(), title=algorithm.upper()
)

# %% [markdown]
# Above the threshold the second moment grows, though below the full-batch threshold the
# mean still converges. {numref}`fig-sgd-divergence` follows $\mathbb{E}[L(\bar\theta)]$ for batch 1 at 0.9 and
# 1.1 times its mean-square threshold: exact (lines) and the average over
# `realizations` batch sequences of the linearized dynamics, each exactly linearized
# training on its sequence (markers). The batch-1 threshold `ms_lr` also sets the step
# size of the Monte Carlo section. The curves run three times the Monte Carlo horizon,
# long enough for the unstable one to turn upward; the same `realizations` batch
# sequences (seeds $0, 1, \dots$) serve both step sizes.

# %%
one = sampling.fixed_size(small, 1)
ms_lr = sgd_stability.mean_square_lr(small, algorithm, cycle, one)
exact_curves, sampled_curves = sgd_sequences.loss_curves(
    small,
    algorithm,
    cycle,
    one,
    threshold=ms_lr,
    factors=(0.9, 1.1),
    steps=3 * mc_steps,
    count=realizations,
)

# %% mystnb={"figure": {"caption": "Batch 1: expected global loss at the network average, exact second moment (lines) and Monte Carlo average over batch sequences (markers), below and above the mean-square threshold.", "name": "fig-sgd-divergence"}}
fig = sgd_plots.mean_square_runs(
    np.arange(3 * mc_steps + 1), exact_curves, sampled_curves, ylabel="E L(theta_bar)"
)

# %% [markdown]
# (sgd-monte-carlo)=
# ## Monte Carlo against the exact covariance
#
# At `mc_lr` times the batch-1 threshold we draw five independent blocks of
# `realizations` batch sequences and pool the z-scores of the second moment of every
# agent's training predictions over steps, agents and outputs, as in
# {ref}`changing-expected`. The rival is the SDE-style approximation
# {cite}`li2017sme`: the gradient-noise covariance frozen at its value at $\theta_0$
# (`noise="fixed"`). It has the right mean and the wrong spread once the residuals shrink.

# %%
mc = sgd_sequences.monte_carlo(
    small,
    algorithm,
    cycle,
    one,
    lr=mc_lr * ms_lr,
    steps=mc_steps,
    size=realizations,
    blocks=5,
)
pd.DataFrame(mc.table()).T.round(3)

# %% [markdown]
# Per prediction: the median over blocks (and range) of the fraction of z-scores within
# three standard errors, of their mean and of their variance. {numref}`fig-sgd-band`
# shows one output per agent from the first block.

# %% mystnb={"figure": {"caption": "Batch 1, one training output of every agent: Monte Carlo over batch sequences (markers: mean; shaded: central 95%) against the exact moments (line: mean, the full-batch closed form; dashed: two standard deviations from the exact second moment).", "name": "fig-sgd-band"}}
fig = plotting.expected_band(
    mc.blocks[0][:, :, :, 0, 0],
    mc.exact.mean[:, :, 0, 0],
    mc.exact.second[:, :, 0, 0],
    title=f"{algorithm.upper()}, batch 1, {realizations} batch sequences (block 0)",
)

# %% [markdown]
# (sgd-networks)=
# ## Real networks
#
# Now the networks themselves. For each width and each of `seeds` initializations we
# train `ensemble` networks from the same $\theta_0$ on independent batch sequences (batch
# `band_batch`, vmapped over sequences) and compare the summed variance of every agent's
# training and test predictions with the exact second moment of the linearized model at
# that $\theta_0$, and with the fixed-noise rival. Beside each error stands its noise
# floor: the standard error of the ensemble's variance itself. The runs and the moments
# are read every fifth step.

# %%
net_runs, every_fifth = {}, simulate.SaveAt(every=5)
for w in widths:
    for init in range(seeds):
        p = digits_problem(w, net_samples_per_agent, init=init, n_test=20)
        net_runs[w, init] = sgd_sequences.ensemble(
            p,
            algorithm,
            cycle,
            fraction=net_lr,
            batch=band_batch,
            steps=net_steps,
            members=ensemble,
            save_at=every_fifth,
        )

# %% [markdown]
# Each ensemble's error is reduced to its median over the saved steps, then to the median
# over initializations, by width; the noise floor the same way.

# %%
band = sgd_networks.band_by_width(net_runs)
pd.DataFrame(band.table()).rename_axis("width")

# %% mystnb={"figure": {"caption": "Real networks: relative error of the summed variance of the agents' predictions over batch sequences, median over initializations, against width; the exact second moment of the linearized model, the fixed-noise rival, and the ensembles' noise floor.", "name": "fig-sgd-widths"}}
fig = sgd_plots.band_errors_by_width(
    band.exact, band.fixed, band.floor, rival_label="fixed noise"
)

# %% [markdown]
# (sgd-cost)=
# ## Batch size, messages and gradient evaluations
#
# At the largest width and the same step size, a smaller batch costs fewer gradient
# evaluations per step but adds noise, so it needs more steps, hence more messages, to
# reach a target $\mathbb{E}[L(\bar\theta)]$. We predict the steps to the target from the
# exact expected loss and measure them on the ensembles' mean loss (the target: the
# geometric midpoint of the start and the highest final mean loss, so every ensemble
# reaches it). The rival ignores the SGD noise: it predicts the full-batch closed form's
# steps for every batch, so its gradient evaluations grow in proportion to the batch, as
# the linear scaling rule assumes {cite}`goyal2017large`.

# %%
cost_runs = [
    sgd_networks.batch_costs(net_runs[max(widths), init], cost_batches)
    for init in range(seeds)
]
pd.DataFrame(cost_runs[0].table()).T

# %% [markdown]
# Where a batch size is the band comparison's, its ensembles are reused rather than
# trained again. The table is the first initialization's: steps, messages (two per edge
# and step) and gradient evaluations (rows per agent and step, over all agents) to the
# target.

# %% mystnb={"figure": {"caption": "Largest width, first initialization: steps, messages and gradient evaluations (over all agents) to the target E L(theta_bar), by batch size: trained ensembles (markers), the exact moments (line) and the rival that ignores the SGD noise (dashed).", "name": "fig-sgd-cost"}}
tables = [cost_runs[0].table(which) for which in ("trained", "predicted", "rival")]
fig = sgd_plots.cost_by_batch(*tables, rival_label="noise ignored")

# %% [markdown]
# The cost of the exact second moment against the full-batch closed form, warm seconds per
# step at the sizes of the stability and network sections (columns: $Qm$):

# %%
timed = (small, net_runs[max(widths), 0].problem)
seconds = {
    p.output_weights.size: sgd_networks.step_seconds(p, algorithm, cycle) for p in timed
}
pd.DataFrame(seconds).rename_axis("seconds per step")

# %% [markdown]
# ## Recorded numbers
#
# The two exactness checks of the enumeration: the theorem on the mean and the second
# moment, each the worst case over the three algorithms and the two samplers.

# %% tags=["remove-input"]
report.record(
    "sgd.mean_equals_full_batch_max_rel_err",
    enumerated.worst_mean,
    kind="theorem",
    bound=claims.EXACT,
    statement="linearized network, unbiased batches drawn independently of the past: mean "
    "over every batch sequence of a tiny problem vs the full-batch closed form, worst of "
    "DGD, ATC, CTA and both samplers",
    section="sgd-mean",
)
report.record(
    "sgd.second_moment_enumeration_max_rel_err",
    enumerated.worst_second,
    kind="exact",
    bound=claims.EXACT,
    statement="exact second moment vs the enumeration of every batch sequence of a tiny "
    "problem, worst of DGD, ATC, CTA and both samplers",
    section="sgd-second",
)
print(enumerated.worst_mean < claims.EXACT, enumerated.worst_second < claims.EXACT)

# %% [markdown]
# The thresholds by batch size pass when they are what the theory of
# {ref}`sgd-stability` requires of them.

# %% tags=["remove-input"]
report.record(
    "sgd.mean_square_threshold_by_batch",
    thresholds.ratios,
    kind="exact",
    passed=thresholds.consistent(claims.EXACT),
    statement=f"exact mean-square threshold over the full-batch threshold, by algorithm and "
    f"batch size ({samples_per_agent} rows per agent, {num_agents} agents on a cycle); "
    "passes if the second-moment operator's radius is 1 there to 1e-10 (largest gap "
    f"{thresholds.largest_gap:.1e}), no threshold exceeds the full batch's and the full "
    "batch gives it back",
    section="sgd-stability",
)
print(thresholds.largest_gap <= claims.EXACT, thresholds.largest_ratio <= 1 + 1e-12)

# %% [markdown]
# The Monte Carlo claim passes when the medians over blocks of the pooled z-scores of the
# second moment look standard (as in {ref}`changing-expected`) and the exact moment beats
# the fixed-noise rival on the z misfit $|\log \overline{z^2}|$, paired over blocks.

# %% tags=["remove-input"]
report.record(
    "sgd.linearized_within_3se_fraction",
    mc.z_exact.summary(),
    kind="empirical",
    passed=mc.z_exact.standard() and mc.z_exact.exact_max_abs <= claims.EXACT,
    rival="SDE-style: the gradient-noise covariance frozen at theta_0 (z misfit "
    "|log mean z^2| per block, paired over blocks)",
    **mc.margin().fields(),
    statement=f"Monte Carlo ({len(mc.blocks)} blocks of {realizations} batch sequences, "
    f"batch 1, {algorithm.upper()}) vs the exact second moment of every agent's training "
    "predictions: pooled z-scores, median over blocks (and range)",
    section="sgd-monte-carlo",
)
print(mc.z_exact.standard(), mc.z_fixed.standard())

# %% [markdown]
# The real networks: our band error at each width (with the noise floor beside it), the
# rival's, and the margin over the rival at the largest width, paired over
# initializations; it passes if our error falls from the smallest to the largest width.

# %% tags=["remove-input"]
report.record(
    "sgd.network_band_err_by_width",
    band.value(),
    kind="empirical",
    passed=band.falls,
    rival="SDE-style fixed noise: the gradient-noise covariance frozen at theta_0",
    **band.fields(),
    statement=f"real networks, {algorithm.upper()} with batch {band_batch}, ensembles of "
    f"{ensemble} batch sequences from one theta_0: relative error of the summed variance of "
    f"all predictions, median over steps and over {seeds} initializations, by width "
    "(floor_W: the ensembles' noise floor); margin at the largest width",
    section="sgd-networks",
)
print(band.margin)

# %% [markdown]
# The cost claim: the mean over batch sizes of $|\log(\text{predicted}/\text{trained})|$
# of the steps to the target, median over initializations, against the rival that ignores
# the noise; it passes within the book's agreement bound {claim}`sgd.cost_to_target_by_batch:bound`.

# %% tags=["remove-input"]
cost_margin = sgd_networks.cost_margin(cost_runs)
report.record(
    "sgd.cost_to_target_by_batch",
    sgd_networks.cost_summary(cost_runs) | {"error": cost_margin.ours},
    kind="empirical",
    bound=claims.AGREEMENT,
    passed=cost_margin.ours <= claims.AGREEMENT,
    rival="SGD noise ignored: the full-batch closed form's steps for every batch",
    **cost_margin.fields(),
    statement=f"width {max(widths)}, {algorithm.upper()}: steps to a target E L(theta_bar) "
    f"by batch size {cost_batches}, exact moments vs ensembles of {ensemble} trained "
    "networks, mean |log ratio| over batch sizes, median over "
    f"{seeds} initializations (bN_*: medians of trained steps, predicted steps, messages, "
    "gradient evaluations)",
    section="sgd-cost",
)
print(cost_margin)

# %% tags=["nbval-check-output"]
print(mc.z_exact.standard(), thresholds.largest_ratio <= 1 + 1e-12)

# %% [markdown]
# ## What the numbers say
#
# - The mean over every batch sequence equals the full-batch closed form to
#   {claim}`sgd.mean_equals_full_batch_max_rel_err:value`, and the exact second moment
#   equals the enumeration to {claim}`sgd.second_moment_enumeration_max_rel_err:value`.
# - The mean-square threshold of ATC with batch 1 is
#   {claim}`sgd.mean_square_threshold_by_batch:value.atc_b1` of its full-batch threshold,
#   DGD's {claim}`sgd.mean_square_threshold_by_batch:value.dgd_b1` (the claim
#   {claim}`sgd.mean_square_threshold_by_batch:verdict`).
# - Monte Carlo against the exact second moment: in the median block a fraction
#   {claim}`sgd.linearized_within_3se_fraction:value.within_3se_median` of the z-scores lie
#   within three standard errors, and their variance is
#   {claim}`sgd.linearized_within_3se_fraction:value.variance_median` (1 when the covariance
#   is right). The fixed-noise rival's z misfit is
#   {claim}`sgd.linearized_within_3se_fraction:rival`, and the exact moment's is smaller by
#   {claim}`sgd.linearized_within_3se_fraction:margin`
#   {claim}`sgd.linearized_within_3se_fraction:interval`: the claim
#   {claim}`sgd.linearized_within_3se_fraction:verdict`.
# - Real networks, band error by width, with its noise floor:
#   {claim}`sgd.network_band_err_by_width`.
# - The predicted steps to the target miss the trained ones by
#   {claim}`sgd.cost_to_target_by_batch:value.error` (the mean over batch sizes of
#   $|\log(\text{predicted}/\text{trained})|$), against {claim}`sgd.cost_to_target_by_batch:rival` for the rival that ignores the noise:
#   a margin of {claim}`sgd.cost_to_target_by_batch:margin`
#   {claim}`sgd.cost_to_target_by_batch:interval`, so the claim
#   {claim}`sgd.cost_to_target_by_batch:verdict`. The steps, messages and gradient
#   evaluations by batch size are in the table and the figure of {ref}`sgd-cost`.
#
# ## In this chapter we
#
# - wrote mini-batch DGD, ATC and CTA on the linearized network as random affine maps and
#   proved that their mean is the full-batch closed form;
# - derived the exact second moment with the state-dependent sampling noise, block-diagonal
#   over agents and a Hadamard product inside a block, and checked it against every batch
#   sequence of a tiny problem and by Monte Carlo, against the fixed-noise approximation;
# - found the exact mean-square threshold by batch size for all three algorithms, at most
#   the full-batch one, and mapped the spectral radius of the second-moment operator;
# - compared the predicted spread with ensembles of real networks over batch sequences by
#   width, and the steps, messages and gradient evaluations to a target by batch size.
