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
# # Changing graphs
#
# The paper's experiments keep one graph for the whole run {cite}`chaudhari2025p2p`.
# Deployed peer-to-peer learning does not: links fail, and some schemes change the
# topology on purpose every round. For the linearized network a step with mixing matrix
# $W(k)$ is still the affine map of the closed forms ({doc}`closed_forms`), with $W(k)$ in
# place of $W$:
#
# $$
# F(k+1) = M\big(W(k)\big)\, F(k) + c\big(W(k)\big),
# $$
#
# so the trajectory is the product of the per-step maps, computed by the same recursion
# at the same cost per step. This chapter draws three schedules, checks the product
# against training on one realization, derives the *expected* dynamics of random
# schedules and checks them by Monte Carlo, and compares schedules at equal
# communication.

# %% tags=["parameters"]
quick = False  # small sizes for CI
width = 256  # hidden width of the ReLU MLP [quick: 64] [min: 1]
# agents Q; a power of two for the exponential graphs
num_agents = 8  # [quick: 4] [min: 2]
samples_per_agent = 2  # digits per agent [min: 1]
base_graph = "cycle"  # base graph of the random schedules (a companion.graphs topology)
link_probability = 0.6  # probability that a link is up at a step [min: 0.0] [max: 1.0]
# link probabilities of the sweep
probabilities = [0.2, 0.4, 0.6, 0.8, 1.0]  # [quick: [0.3, 1.0]] [min: 0.0] [max: 1.0]
# algorithms checked against training
algorithms = ["dgd", "atc", "cta"]  # [quick: ["atc"]]
lr_scale = 0.5  # eta times the largest local curvature L_max [min: 0.0]
steps = 100  # length of every run [quick: 40] [min: 1]
mc_agents = 4  # agents on the base graph of the Monte Carlo experiment [min: 3]
realizations = 1000  # Monte Carlo realizations per block [quick: 300] [min: 2]
blocks = 5  # independent Monte Carlo blocks (seeds of the realizations) [min: 1]
mc_steps = 40  # steps of the Monte Carlo experiment [quick: 25] [min: 1]
seed = 0  # seed of data, partition, theta_0 and the schedules [min: 0]

# %% [markdown]
# We import the helper package (float64) and the plot theme.

# %%
import numpy as np
import pandas as pd

from companion import (
    dynamics,
    experiments,
    graphs,
    metrics,
    models,
    moments,
    monte_carlo,
    plotting,
    schedules,
)
from companion import problem as problem_lib
from companion.book import claims, report
from companion.trajectory import relative_error

plotting.theme()

# %% [markdown]
# (changing-schedules)=
# ## Three schedules
#
# - **One-peer exponential graph** {cite}`ying2021exponential`: at step $k$ agent $i$
#   averages with agent $i + 2^{k \bmod \log_2 Q}$, $W(k) = (I + P_k)/2$. One message per
#   agent per step.
# - **Random link failures** {cite}`kar2008sensor`: each edge of a base graph is up with
#   probability $p$, independently at every step, and $W(k)$ is the Metropolis-Hastings
#   matrix of the links that are up, so it stays doubly stochastic.
# - **Randomized gossip** {cite}`boyd2006gossip`: one edge, drawn uniformly, averages its
#   two agents, $W(k) = I - \tfrac12 (e_i - e_j)(e_i - e_j)^\top$.
#
# The random schedules draw from the edges of a base graph, `base_graph` (the cycle
# unless the parameters say otherwise). {numref}`fig-changing-schedules` shows the first
# three matrices of each.

# %%
base = graphs.topology(base_graph, num_agents, seed=seed)
schedule_set = {
    "one-peer exponential": schedules.one_peer_exponential(num_agents),
    "random links": schedules.random_links(base, link_probability, seed=seed),
    "randomized gossip": schedules.randomized_gossip(base, seed=seed),
}

# %% [markdown]
# Each schedule is a seeded value: `matrices(k)` returns its first $k$ matrices, the same
# ones the closed form and training will use, and `reseeded` draws another realization of
# a random schedule from the same law.

# %% mystnb={"figure": {"caption": "The first three mixing matrices W(0), W(1), W(2) of each schedule (darker is larger).", "name": "fig-changing-schedules"}}
drawn = {
    f"{name}, W({k})": w
    for name, schedule in schedule_set.items()
    for k, w in enumerate(schedule.matrices(3))
}
fig = plotting.mixing_heatmaps(drawn)

# %% [markdown]
# (changing-exact)=
# ## Exact on every realization
#
# The problem is the one of the algorithm chapters: digits split evenly across $Q$
# agents, a wide ReLU MLP at $\theta_0$ and its full-output NTK. For each schedule and
# algorithm we run the closed form through the realized $W(k)$ and train the linearized
# network on the same realization.

# %%
mlp = models.mlp(width, 2, 10)
net = problem_lib.digits(
    mlp,
    num_agents=num_agents,
    samples_per_agent=samples_per_agent,
    n_test=20,
    seed=seed,
)

# %% [markdown]
# Every (schedule, algorithm) pair runs the closed form and trains the linearized network
# for `steps` steps through the same realized $W(0), W(1), \dots$; the error is the
# relative distance between the two trajectories of every agent's predictions.

# %%
lr = lr_scale / net.curvature
exact = experiments.grid(
    net, schedule_set, algorithms, lr=lr, steps=steps, linearize=True, progress=False
)
exact_err = {
    k: metrics.prediction_error(c.predicted, c.observed) for k, c in exact.items()
}
print({k: f"{v:.1e}" for k, v in exact_err.items()})

# %% [markdown]
# The product of the per-step maps is the trajectory, to rounding (worst error
# {claim}`timevarying.linearized_max_rel_err:value` over schedules and algorithms). The
# check can fail: the closed form of the same schedule under another seed (another
# realization) misses the run by far more. The control reuses the random-links run of
# the first algorithm above, so it costs one more closed form and no training.

# %%
links = schedule_set["random links"]
other = dynamics.closed_form(net, algorithms[0], links.reseeded(seed + 1), lr=lr)
run = exact["random links", algorithms[0]].observed
control_err = relative_error(other.steps(steps).predictions, run.predictions)
print(f"another realization's closed form vs this run: {control_err:.2g}")

# %% [markdown]
# (changing-one-peer)=
# ## The one-peer exponential graph averages exactly
#
# For $Q = 2^\tau$, write agent indices in binary. $W(j)$ averages each agent with the
# one whose index differs by $2^j$; after the steps $j = 0, \dots, \tau - 1$ every agent
# holds the average over all $2^\tau$ indices, so any $\tau$ consecutive matrices multiply
# to $\mathbf{1}\mathbf{1}^\top/Q$ {cite}`ying2021exponential`. With one message per
# agent per step this is exact consensus in $\log_2 Q$ steps. We check the product for
# every starting step of a period: `average_gap(length, start)` is the largest entry of
# $|W(\text{start} + \text{length} - 1) \cdots W(\text{start}) - \mathbf{1}\mathbf{1}^\top/Q|$.

# %%
one_peer = schedule_set["one-peer exponential"]
period = one_peer.period
one_peer_err = max(one_peer.average_gap(period, start) for start in range(period))
short_err = one_peer.average_gap(period - 1)
print(
    f"log2 Q = {period} steps: {one_peer_err:.1e}; {period - 1} steps: {short_err:.2g}"
)

# %% [markdown]
# The last number is the control: one step fewer is far from the average. The exactness
# needs $Q$ to be a power of two, and `schedules.one_peer_exponential` refuses any other
# number of agents rather than build a schedule without this property.
#
# (changing-communication)=
# ## Equal communication
#
# A fair comparison of graphs counts messages, not steps: the static exponential graph
# (every agent averages itself and its $\log_2 Q$ out-neighbours $i + 2^j$) sends
# $\log_2 Q$ messages per agent per step, the complete graph $Q - 1$, the cycle 2, the
# one-peer exponential graph 1. {numref}`fig-changing-messages` plots plain consensus
# $x \leftarrow W(k) x$ from a random start against the messages sent.

# %%
start = np.random.default_rng(seed).normal(size=num_agents)
static = experiments.mixings(num_agents, ("cycle", "complete"))
by_cost = {  # (mixing, messages per agent per step)
    "cycle": (static["cycle"], 2),
    "static exponential": (schedules.static_exponential(num_agents), period),
    "complete": (static["complete"], num_agents - 1),
    "one-peer exponential": (one_peer, 1),
}

# %% [markdown]
# Every graph gets the same budget of messages per agent, enough for $4 \log_2 Q$ steps of
# the complete graph, and runs as many steps as its cost per step allows; the one-peer
# exponential graph, at one message per step, takes the most steps.

# %% mystnb={"figure": {"caption": "Consensus x <- W(k) x from a random start: distance to the average against the messages each agent has sent. The one-peer exponential graph reaches the average exactly after log2 Q steps (the curve stops at rounding level).", "name": "fig-changing-messages"}}
budget = 4 * period * (num_agents - 1)  # messages per agent on the x axis
curves = schedules.consensus_by_messages(by_cost, start, budget)
fig = plotting.disagreement_by_messages(curves, title=f"Q = {num_agents}")

# %% [markdown]
# (changing-expected)=
# ## Expected dynamics of random schedules
#
# Let the $W(k)$ be independent and identically distributed. $F(k)$ depends only on
# $W(0), \dots, W(k-1)$, so it is independent of $W(k)$, and $M$ and $c$ are affine in
# $W$ for all three algorithms: DGD mixes the state, ATC the state after the gradient step
# (so its offset $c$ is mixed too), CTA the state before it. Taking expectations,
#
# $$
# \mathbb{E}F(k+1) = M\big(\mathbb{E}W\big)\, \mathbb{E}F(k) + c\big(\mathbb{E}W\big),
# $$
#
# exactly: the mean follows the closed form with the expected mixing matrix. The second
# moment of $z = [F; 1]$ follows $S(k+1) = \mathbb{E}\,[A\, S(k)\, A^\top]$ with
# $A = \begin{bmatrix} M & c \\ 0 & 1\end{bmatrix}$, a sum over the realizations of one
# draw, exact for small graphs.
#
# $\mathbb{E}W$ is not the naive guess. Under link failures the weight of an edge
# depends on the random degrees of its ends, so $\mathbb{E}W$ is neither the base
# graph's Metropolis matrix nor $pW + (1-p)I$; we compute it exactly from the
# binomial distributions of the degrees. On the 4-cycle at $p = 0.7$:

# %%
four = schedules.random_links(graphs.topology("cycle", 4), 0.7)
base4 = graphs.mixing_matrix(graphs.topology("cycle", 4))
print(
    f"E[W]_01 = {four.expected[0, 1]:.5f}, p W_01 + (1 - p) * 0 = {0.7 * base4[0, 1]:.5f}"
)

# %% [markdown]
# The first number is the exact expectation, the second the naive guess $pW + (1-p)I$ on
# the same edge; their gap is the error of the rival that the Monte Carlo check of the
# mean uses below.
#
# We check both moments by Monte Carlo on the base graph with `mc_agents` agents and two
# digits per agent (small enough for the exact second moment), DGD, links up with
# probability $p$. Neighbouring entries of the trajectory are strongly correlated, so no single entry
# is a test; we pool the z-scores (Monte Carlo mean minus prediction, over its standard
# error) over steps, agents and outputs. If the prediction is right their mean is near 0,
# their variance near 1, and about 99.7% lie within 3 standard errors. Entries that do not
# vary (step 0, a common $f_0$) are compared exactly.
#
# The same correlation makes the pooled statistics of one Monte Carlo run noisy: when a
# few slow modes dominate late steps, thousands of z-scores carry the information of a
# few independent ones, and their variance can land well away from 1 for a correct
# prediction. So we repeat the Monte Carlo in `blocks` independent blocks of
# `realizations` each (different seeds) and judge the median over blocks, reporting the
# spread. The small problem is the same MLP on fewer agents; its closed form on the
# random-links schedule is built once and reused by every realization.

# %%
small = problem_lib.digits(mlp, num_agents=mc_agents, samples_per_agent=2, seed=seed)
small_lr = lr_scale / small.curvature
mc_graph = graphs.topology(base_graph, mc_agents, seed=seed)
mc_schedule = schedules.random_links(mc_graph, link_probability, seed=seed)
mc_form = dynamics.closed_form(small, "dgd", mc_schedule, lr=small_lr)

# %% [markdown]
# Each block reruns the recursion of the one validated closed form on `realizations`
# re-seeded schedules; block $b$ uses the seeds $b R, \dots, (b + 1) R - 1$ with
# $R$ = `realizations`, so the blocks are independent. The exact moments need no sampling:

# %%
block_samples = moments.realization_blocks(
    mc_form, mc_steps, size=realizations, blocks=blocks
)
mean = moments.mean(small, "dgd", mc_schedule, lr=small_lr, steps=mc_steps).predictions
second = moments.second_moment(small, "dgd", mc_schedule, lr=small_lr, steps=mc_steps)

# %% [markdown]
# The rivals are the two cheap predictions a reader might make without the exact law of
# the random links: for the mean, the closed form with $pW + (1-p)I$; for the second
# moment, the square of the mean, which ignores the randomness of the links.

# %%
naive = moments.naive_mean(
    small, "dgd", mc_graph, link_probability, lr=small_lr, steps=mc_steps
).predictions
predictions = {
    "mean": (1, mean),
    "mean, control": (1, naive),
    "second moment": (2, second),
    "second moment, control": (2, mean**2),
}

# %% [markdown]
# Each prediction is scored on the same blocks: the second moments against the squared
# samples, the means against the samples. The table gives the median, minimum and maximum
# over blocks of the 3-standard-error fraction, the z mean and the z variance.

# %%
z_scores = {
    name: monte_carlo.z_over_blocks(block_samples, predicted, power=power)
    for name, (power, predicted) in predictions.items()
}
pd.DataFrame({name: z.summary() for name, z in z_scores.items()}).T.round(3)

# %% [markdown]
# The correct predictions sit at a median z mean near 0 and variance near 1 with nearly
# every entry within 3 standard errors; the spread columns show how far one block alone
# can stray. The rivals miss by far more.
#
# {numref}`fig-changing-band` shows one output of every agent in the first block: the
# Monte Carlo mean
# (markers) on the predicted mean (lines), and the Monte Carlo band (shaded, 2.3% to
# 97.7% of the realizations) against two predicted standard deviations (dashed).

# %% mystnb={"figure": {"caption": "Random link failures on the base graph (a cycle unless base_graph says otherwise), DGD: Monte Carlo over realizations (markers: mean; shaded: central 95% of realizations) against the exact expected dynamics (line: mean; dashed: mean plus or minus two standard deviations from the exact second moment).", "name": "fig-changing-band"}}
output = (0, 0, 0)  # sample 0, class 0 of every agent
fig = plotting.expected_band(
    block_samples[0][:, :, :, output[1], output[2]],
    mean[:, :, output[1], output[2]],
    second[:, :, output[1], output[2]],
    title=f"random links, p = {link_probability:g}, {realizations} realizations (block 0)",
)

# %% [markdown]
# Where the shaded band and the dashed lines agree, the exact second moment describes the
# spread of the realizations, not only their mean: the randomness of the links moves each
# run away from the mean by an amount the closed form predicts without sampling.

# %% [markdown]
# (changing-probability)=
# ## Link probability, rate and limit
#
# How much do failing links slow learning down, and do they change where it ends? In the
# interpolating regime (positive definite NTK) the state where every agent predicts the
# targets is a fixed point of *every* step map: the local gradients vanish there, and
# any doubly stochastic $W(k)$ maps identical agents to themselves. So whatever the
# realization, if the dynamics converge they converge there, and the expected dynamics,
# a static closed form with the doubly stochastic $\mathbb{E}W$ (connected for $p > 0$),
# converge there by the limit statement ({ref}`limit-theorem`). For each $p$ we compute
# the rate of the expected dynamics, $\rho\big(M(\mathbb{E}W)\big)$, solve its fixed
# point exactly and compare it with the targets, and run one realization of ATC. The
# check holds by construction (every doubly stochastic step fixes $\mathbf{1} \otimes y$,
# the state where every agent predicts the targets): it guards the fixed-point solver,
# not a property of random links.

# %%
sweep = {p: schedules.random_links(base, p, seed=seed) for p in probabilities}
realized = {
    p: dynamics.closed_form(net, "atc", s, lr=lr).steps(steps) for p, s in sweep.items()
}
expected = {p: moments.expected_limit(net, "atc", s, lr=lr) for p, s in sweep.items()}
limit_err = {p: e.limit_error for p, e in expected.items()}

# %% [markdown]
# By link probability: the rate of the expected dynamics (the spectral radius of ATC's
# iteration map with $\mathbb{E}W$; closer to 1 is a slower approach), its limit against
# the targets, and the final global loss of the one realization:

# %%
pd.DataFrame(
    {
        "rate of the mean": {p: e.rate for p, e in expected.items()},
        "limit vs targets": limit_err,
        "final global loss": {p: t.mean_global_loss[-1] for p, t in realized.items()},
    }
).rename_axis("p")

# %% [markdown]
# Fewer links leave the limit where it is and change how fast the runs approach it. The
# long-run rate is set by the slowest mode, which here comes from the smallest
# eigenvalues of the kernel, the slow directions of any gradient method, so it can move
# little with $p$ (the printed rates say how much);
# {numref}`fig-changing-probability` shows the differences in the transient and in the
# consensus distance.

# %% mystnb={"figure": {"caption": "ATC under random link failures on the base graph, one realization per link probability p: global training loss (closed form).", "name": "fig-changing-probability"}}
fig = plotting.algorithm_comparison(
    {f"p = {p:g}": t for p, t in realized.items()},
    title=f"ATC, random links on the {base_graph}",
)

# %% [markdown]
# ## Recorded numbers

# %% tags=["nbval-check-output"]
report.record(
    "timevarying.linearized_max_rel_err",
    max(exact_err.values()),
    kind="exact",
    bound=claims.EXACT,
    statement="closed form through the realized W(k) vs training of the linearized network, "
    f"one-peer exponential, random links and randomized gossip, {', '.join(algorithms)}: "
    "worst relative error of the predictions",
    section="changing-exact",
)
print(max(exact_err.values()) < claims.EXACT)

# %% [markdown]
# The one-peer product is a theorem for $Q$ a power of two; its bound allows only
# rounding, and the one-step-shorter product printed above is its control.

# %% tags=["nbval-check-output"]
report.record(
    "one_peer.exact_average_max_abs",
    one_peer_err,
    kind="theorem",
    bound=1e-12,
    statement="product of log2 Q consecutive one-peer exponential matrices minus 11^T/Q, "
    "largest entry, every starting step",
    section="changing-one-peer",
)
print(one_peer_err < 1e-12)

# %% [markdown]
# The limit of the expected dynamics, for every link probability of the sweep:

# %% tags=["nbval-check-output"]
report.record(
    "random_links.expected_limit_max_rel_err",
    max(limit_err.values()),
    kind="theorem",
    bound=claims.LIMIT,
    statement="interpolating regime: exact fixed point of ATC's expected dynamics under random "
    "link failures vs the targets, worst agent, every link probability of the sweep. Holds "
    "by construction: every doubly stochastic step fixes 1 (x) y, so this checks the solver",
    section="changing-probability",
)
print(max(limit_err.values()) < claims.LIMIT)

# %% [markdown]
# The Monte Carlo claims pass when the medians over blocks of the pooled z-scores look
# standard (z mean within 0.1 of 0, variance in [0.8, 1.25], at least 98% within 3
# standard errors), entries that do not vary match exactly, and the exact moment beats its
# rival, the cheap prediction above (mean: $pW + (1-p)I$; second moment: the squared
# mean), on every block: the misfit $|\log \overline{z^2}|$ of each block's z-scores
# (zero for standard ones) is paired over the `blocks` blocks.


# %% tags=["nbval-check-output"]
for claim, key in (("mean", "mean"), ("second_moment", "second moment")):
    z, control = z_scores[key], z_scores[f"{key}, control"]
    report.record(
        f"random_links.{claim}_within_3se_fraction",
        z.summary(),
        kind="empirical",
        passed=z.standard() and z.exact_max_abs <= claims.EXACT,
        rival="mean: closed form with pW + (1-p)I; second moment: the squared mean "
        "(z misfit |log mean z^2| per block, paired over blocks)",
        **monte_carlo.margin(z, control).fields(),
        statement=f"Monte Carlo ({blocks} blocks of {realizations} realizations) vs the "
        f"exact {key} of DGD under random link failures: pooled z-scores over steps, "
        "agents and outputs, median over blocks (and range)",
        section="changing-expected",
    )
print(z_scores["mean"].standard(), z_scores["second moment"].standard())

# %% [markdown]
# ## In this chapter we
#
# - ran the closed form through a schedule of mixing matrices, the product of per-step
#   maps, and matched it to training of the linearized network on the same realization,
#   to rounding, for the one-peer exponential graph, random link failures and randomized
#   gossip;
# - checked that the one-peer exponential graph averages exactly in $\log_2 Q$ steps,
#   and compared schedules at equal communication;
# - derived the exact expected dynamics of independent random mixing (the closed form
#   with $\mathbb{E}W$, computed exactly from the random degrees) and its exact second
#   moment, and checked both by Monte Carlo with pooled z-scores, against two wrong
#   predictions that fail the same test;
# - showed that the link probability changes the transient and the rate of the expected
#   dynamics, not their limit, the centralized interpolant;
# - judged each exact moment against its cheap rival by a paired margin over independent
#   Monte Carlo blocks, so the verdict does not hang on one block's noise.
