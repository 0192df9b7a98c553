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
# # Heterogeneous data
#
# The paper's agents hold i.i.d. shares of the data {cite}`chaudhari2025p2p`. In practice
# each agent sees its own mix of classes. This chapter splits the same digits across the
# same agents with more and more label skew and asks what changes: whether the closed form
# stays exact, how the transient and the consensus distance respond, where the dynamics
# end, and how well the closed form still describes real networks.

# %% tags=["parameters"]
quick = False  # small sizes for CI
# hidden width of the ReLU MLP for the closed-form experiments
width = 256  # [quick: 64] [min: 1]
num_agents = 4  # agents Q on a cycle [min: 2]
samples_per_agent = 8  # digits per agent on average [quick: 4] [min: 1]
# Dirichlet concentrations of the sweep
alphas = [0.1, 0.5, 1.0, 10.0]  # [quick: [0.1, 10.0]] [min: 0.0]
lr_scale = 0.5  # eta times the largest local curvature L_max [min: 0.0]
steps = 150  # length of every run [quick: 50] [min: 1]
widths = [64, 256, 1024]  # widths of the real networks [quick: [64, 256]] [min: 1]
# digits per agent in the real-network section
network_samples_per_agent = 25  # [quick: 10] [min: 1]
seeds = 5  # network initializations per (partition, width) [min: 1]
dims = 8  # principal components of the affine model outside interpolation [min: 1]
# samples per agent of the affine model (above interpolation)
biased_per_agent = 20  # [quick: 5] [min: 1]
seed = 0  # seed of data, partitions and the first theta_0 [min: 0]

# %% [markdown]
# We import the helper package (float64) and the plot theme.

# %%
from IPython.display import display

from companion import (
    data,
    experiments,
    graphs,
    heterogeneity,
    metrics,
    models,
    plotting,
)
from companion import problem as problem_lib
from companion.book import claims, report

plotting.theme()

# %% [markdown]
# (noniid-partitions)=
# ## Label skew by a Dirichlet draw
#
# `companion.data.partition_indices(..., scheme="dirichlet", alpha=α)` splits *each
# class* across the agents in proportions drawn from $\mathrm{Dirichlet}(\alpha, \dots,
# \alpha)$, independently per class: the per-class variant common in federated learning
# benchmarks. Agent sizes therefore differ too. A small $\alpha$ puts most of each class on
# one or two agents (strong skew); a large $\alpha$ gives near-equal shares, approaching the
# i.i.d. split. An agent left empty receives one row from the largest agent, so every
# agent has a local loss. {numref}`fig-noniid-partitions` shows the same digits under each
# partition.

# %% mystnb={"figure": {"caption": "Class counts of each agent (colours: digit classes) under the Dirichlet partitions and the i.i.d. split of the same digits.", "name": "fig-noniid-partitions"}}
digits = data.load_digits_dataset(
    num_agents * samples_per_agent, 50, seed=seed, center_targets=True
)
schemes = heterogeneity.schemes(alphas)
partitions = heterogeneity.partitions(
    digits.labels_train, num_agents, schemes, seed=seed
)
fig = plotting.label_mix(
    {n: [digits.labels_train[r] for r in p] for n, p in partitions.items()}
)

# %% [markdown]
# (noniid-exact)=
# ## The closed form stays exact
#
# Nothing in the derivation of the closed forms ({doc}`closed_forms`) assumes i.i.d.
# shares: each agent's gradient involves only its own rows, whatever they are. We check
# DGD on the cycle for every partition against training of the linearized network, with
# one step size for all partitions: `lr_scale` over the largest local curvature
# $L_{\max}$ of any of them (skew raises $L_{\max}$: an agent holding many samples of one
# class has a local kernel block with a large top eigenvalue), so that only the data
# differ between the runs.

# %%
mlp = models.mlp(width, 2, 10)
cycle = graphs.mixing_matrix(graphs.topology("cycle", num_agents))

# %% [markdown]
# One problem per partition: the same network at the same $\theta_0$ on the same digits,
# so every problem has the same kernel and the same initial predictions, and only who
# holds which rows differs. The step size is shared, set by the largest $L_{\max}$:

# %%
problems = {
    name: problem_lib.from_dataset(mlp, digits, parts, seed=seed)
    for name, parts in partitions.items()
}
lr = lr_scale / max(p.curvature for p in problems.values())  # one step size for all

# %% [markdown]
# Each comparison runs the closed form and trains the linearized network for `steps`
# steps from the same $\theta_0$; the error is the relative distance between the two
# trajectories of every agent's predictions on every training input, over all steps, so
# an error in the transient would show even where both runs end at the same limit.

# %%
linearized = {
    name: experiments.compare(p, "dgd", cycle, lr=lr, steps=steps, linearize=True)
    for name, p in problems.items()
}
exact_err = {
    name: metrics.prediction_error(c.predicted, c.observed)
    for name, c in linearized.items()
}
print({k: f"{v:.1e}" for k, v in exact_err.items()})

# %% [markdown]
# Every partition matches to rounding (worst error
# {claim}`noniid.linearized_max_rel_err:value`): skew changes which rows enter each
# agent's gradient, not the algebra of the closed form.
#
# (noniid-transient)=
# ## Transient and consensus distance
#
# {numref}`fig-noniid-transient` shows the global loss at the network average, the
# consensus distance and the test loss for each partition, at the common step size. The
# curves are the closed form's, from the comparisons above: no further training is needed,
# and since the step size is shared the partitions differ only through their data.

# %% mystnb={"figure": {"caption": "DGD on the cycle, linearized network, closed form: global loss at the network average, consensus distance and test loss, for each partition of the same digits.", "name": "fig-noniid-transient"}}
transients = {name: c.predicted for name, c in linearized.items()}
fig = plotting.algorithm_comparison(transients, title=f"DGD, cycle, Q = {num_agents}")

# %% [markdown]
# The agents of a skewed partition pull towards different local fits. The table gives
# each partition's largest local curvature, and the consensus distance at its peak and at
# the last step, from the largest peak down:

# %%
heterogeneity.consensus_table(problems, transients).round(5)

# %% [markdown]
# The peak measures how far the agents drift apart while their local fits pull them in
# different directions; the last column shows how much of that drift the mixing has
# removed by the end of the run, at the same step size for every partition.

# %% [markdown]
# (noniid-limit)=
# ## The limit: partition-free when interpolating, biased otherwise
#
# With a positive definite kernel the centralized problem interpolates, and every agent
# converges to the centralized minimum-norm interpolant ({ref}`limit-theorem`), whose
# training predictions are the targets: the limit cannot depend on who holds which rows.
# We solve each partition's fixed point exactly (`limits.fixed_point`) and compare it
# with the targets. This holds by construction: any fixed point of a positive definite
# problem interpolates, whoever holds the rows, so the check guards the solver and the
# kernel's definiteness, not a property of heterogeneous data.

# %%
partition_free_err = heterogeneity.interpolation_gap(problems, cycle, lr=lr)
print(f"worst agent's limit vs the targets, every partition: {partition_free_err:.1e}")

# %% [markdown]
# Outside the interpolation regime this fails, and the same computation shows it. We take
# the affine model on the leading `dims` principal components with `biased_per_agent`
# samples per agent, more than the $d + 1$ it can interpolate, so DGD with a fixed step
# ends at a biased point ({ref}`affine-regimes`), and that point depends on the partition.
# Its kernel has rank at most `dims` + 1, below the number of samples, so it is singular
# and the hypothesis of the interpolating check fails:

# %%
many = data.principal_components(
    data.load_digits_dataset(
        num_agents * biased_per_agent, seed=seed, center_targets=True
    ),
    dims,
)

# %% [markdown]
# The same schemes split these rows, with the same seed, so the i.i.d. split and each
# Dirichlet split again differ only in who holds which rows:

# %%
many_partitions = heterogeneity.partitions(
    many.labels_train, num_agents, schemes, seed=seed
)

# %% [markdown]
# For each partition we solve DGD's fixed point exactly at the step size $0.25 / L_{\max}$
# and compare it with that partition's centralized least-squares fit
# (`limits.centralized`), the point centralized gradient descent on the global loss
# reaches; we also measure how far each Dirichlet partition's centralized fit lies from the
# i.i.d. split's. The bias and the agents' sizes, by partition:

# %%
biased = heterogeneity.biased_fits(
    models.affine(10), many, many_partitions, cycle, seed=seed
)
print({k: f"{v:.2e}" for k, v in biased.bias.items()}, biased.sizes)

# %% [markdown]
# Each partition has its own bias away from its centralized solution. The centralized
# least-squares fit itself is *not* the same for every partition: the global loss weights
# every agent equally, so a sample's weight is one over its agent's size, and the
# Dirichlet draws give the agents unequal sizes (printed above). Against the i.i.d.
# split's fit (equal sizes) the Dirichlet partitions' fits move by
# {claim}`noniid.centralized_fit_shift:value` (relative distance). The spread of the bias
# across partitions is the control of the interpolating claim: the same metric, where its
# hypothesis fails, does not vanish.
#
# (noniid-network)=
# ## Real networks
#
# How well does the closed form describe real networks under skew, and does that change
# with width? This section takes more digits, `network_samples_per_agent` per agent,
# split by the same schemes: with few samples the networks fit them almost exactly
# within the run, and the relative error of a nearly vanishing final loss says more about
# the tail than about the dynamics. For every partition and width we train the network
# from `seeds` initializations and compare with the closed form: the median over seeds
# of the worst agent's relative error of its final local loss (a metric of
# {ref}`dgd-network`; under skew the agents' losses are what differ).


# %%
net_digits = data.load_digits_dataset(
    num_agents * network_samples_per_agent, 50, seed=seed, center_targets=True
)
net_partitions = heterogeneity.partitions(
    net_digits.labels_train, num_agents, schemes, seed=seed
)

# %% [markdown]
# Every (partition, width) pair trains a ReLU MLP of two hidden layers with DGD on the
# cycle from `seeds` initializations, each at the step size `lr_scale` over its own
# $L_{\max}$, beside its closed form and the closed form at 1.2 times that step:

# %%
network = heterogeneity.network_runs(
    net_digits,
    net_partitions,
    widths,
    cycle,
    lr_scale=lr_scale,
    steps=steps,
    seeds=seeds,
    seed=seed,
)

# %% [markdown]
# The closed form credits the partition: it predicts each agent from the rows that agent
# holds. Its rivals are the strongest cheap predictions that do without that credit, scored
# by the same metric on the same networks: the closed form at 1.2 times the step size (a
# metric that cannot tell a 20% error in the step size does not resolve the dynamics), and
# the closed form of the i.i.d. split of the same data, with the same step size and
# initialization, scored on each agent's own rows (what heterogeneity is credited with).
# The units are (partition, initialization) pairs; the i.i.d. split is judged by the step
# rival alone, since its i.i.d. rival is the closed form itself. The table gives the
# medians over initializations; a negative margin means the rival is closer to training.


# %% [markdown]
# `heterogeneity.judge` scores, at one width, the closed form and both rivals by that
# metric on every (partition, initialization) pair. The first table has one row per
# partition and width: the medians over initializations of the closed form's error and of
# each rival's. The second has one row per width and rival: the paired margin, the median
# improvement of the closed form over the rival across the pairs it applies to, with its
# 95% bootstrap interval.

# %%
judged = {
    w: heterogeneity.judge({n: network[n, w] for n in schemes}, "iid", cycle)
    for w in widths
}
table, margins = heterogeneity.judged_tables(judged)
display(table.round(3), margins[["ours", "rival", "margin", "interval"]].round(3))

# %% [markdown]
# {numref}`fig-noniid-width` plots the closed form's error against width for each
# partition.

# %% mystnb={"figure": {"caption": "Worst agent's relative error of its final local loss, closed form against trained networks (median over initializations, bars from minimum to maximum), by width, one line per partition.", "name": "fig-noniid-width"}}
spreads = heterogeneity.error_spreads(network, "worst_agent_loss_rel_err")
fig = plotting.error_by_partition(
    spreads, ylabel="worst agent's final local loss, rel. error"
)

# %% [markdown]
# Each bar spans the initializations of one partition and width. A line that falls with
# width belongs to a partition whose networks approach their linearization as they widen,
# the regime where the closed form is exact; the claims below judge the smallest and the
# largest width against both rivals.

# %% [markdown]
# ## Recorded numbers

# %% tags=["nbval-check-output"]
report.record(
    "noniid.linearized_max_rel_err",
    max(exact_err.values()),
    kind="exact",
    bound=claims.EXACT,
    statement="closed form vs training of the linearized network, DGD on the cycle, every "
    "Dirichlet partition and the i.i.d. split: worst relative error of the predictions",
    section="noniid-exact",
)
print(max(exact_err.values()) < claims.EXACT)

# %% [markdown]
# The limit check holds for a positive definite kernel, the hypothesis of
# {ref}`limit-theorem`; a partition cannot break it, so it guards the fixed-point solver.

# %% tags=["nbval-check-output"]
report.record(
    "noniid.limit_partition_independent_max_rel_err",
    partition_free_err,
    kind="theorem",
    bound=claims.LIMIT,
    statement="interpolating regime (positive definite NTK): every agent's exact DGD fixed "
    "point vs the targets, worst over agents and partitions",
    section="noniid-limit",
)
print(partition_free_err < claims.LIMIT)

# %% [markdown]
# The outside-interpolation shift of the centralized fit, and the real networks at the
# smallest and the largest width: each partition's closed form within the book's agreement
# bound, and its margin over the stronger rival above zero. Each network claim carries
# both rivals' medians and the margin over the stronger one with its interval, so the
# report shows which rival came closest to the trained networks.

# %% tags=["nbval-check-output"]
report.record(
    "noniid.centralized_fit_shift",
    biased.shift,
    kind="observation",
    passed=min(biased.shift.values()) > claims.LIMIT,
    statement="affine model outside interpolation: relative distance of each Dirichlet "
    "partition's centralized least-squares fit from the i.i.d. split's; the global loss "
    "weights agents equally, so unequal agent sizes move it (passes if every one moves)",
    section="noniid-limit",
)
print(min(biased.shift.values()) > claims.LIMIT)

# %% tags=["nbval-check-output"]
network_claims = {
    claim_id: report.record(
        claim_id,
        judged[w].medians(),
        kind="empirical",
        passed=all(v <= claims.AGREEMENT for v in judged[w].medians().values()),
        **judged[w].fields(),
        statement=f"real networks of width {w}, DGD on the cycle: relative error of the "
        f"worst agent's final local loss, closed form vs training, median over {seeds} "
        f"initializations, by partition (bound {claims.AGREEMENT:g} each)",
        section="noniid-network",
    )
    for claim_id, w in (
        ("noniid.network_err_smallest_width", min(widths)),
        ("noniid.network_err_by_alpha", max(widths)),
    )
}
print({k: c["passed"] for k, c in network_claims.items()})

# %% [markdown]
# At the largest width the claim {claim}`noniid.network_err_by_alpha:verdict`: by
# partition {claim}`noniid.network_err_by_alpha`. At the smallest width it
# {claim}`noniid.network_err_smallest_width:verdict`: by partition
# {claim}`noniid.network_err_smallest_width`; where that margin is negative, the rival
# is closer to the trained networks than the closed form.

# %% [markdown]
# ## In this chapter we
#
# - split the same digits across agents by per-class Dirichlet proportions and by an
#   i.i.d. shuffle, and checked that the closed form stays exact for the linearized
#   network under every split;
# - measured how skew changes the largest local curvature (hence the stable step size)
#   and the consensus distance at a common step size;
# - showed that with a positive definite kernel every partition ends at the same
#   centralized interpolant, while outside interpolation the biased fixed point depends
#   on the partition, and that the centralized fit itself moves with the agents' sizes;
# - measured how well the closed form describes real networks under skew, by width,
#   against the closed form at a wrong step size and the closed form of the i.i.d. split,
#   and recorded the paired margin over the stronger of the two at the smallest and the
#   largest width.
