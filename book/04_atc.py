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
# # ATC diffusion
#
# Adapt-then-combine (ATC) diffusion first *adapts*, with a gradient step on each agent's
# own data, and then *combines* the neighbours' adapted iterates, {eq}`eq-atc`. For the
# linearized network its predictions follow
#
# $$
# F(k+1) = (W \otimes I_m)\big(I - \eta\,\mathrm{blockdiag}_q(K D_q)\big)\, F(k) + c,
# $$
#
# the product of the two factors whose difference is DGD's matrix (page
# {doc}`closed_forms`): each agent's gradient step is averaged over its neighbourhood
# before anyone keeps it. The paper's claim is the same as for DGD
# {cite}`chaudhari2025p2p`: this closed form describes every agent of a wide network. This
# chapter checks it against training, shows the one case where ATC is exactly centralized
# gradient descent (the complete graph with uniform weights), and follows it to its
# limit. All agents start from the same $\theta_0$.

# %% tags=["parameters"]
quick = False  # small sizes for CI
width = 512  # hidden width, ReLU MLP in NTK parameterization [quick: 128] [min: 1]
depth = 2  # hidden layers of the MLP [min: 1]
num_agents = 4  # number of agents Q [min: 2]
samples_per_agent = 10  # digits per agent [quick: 5] [min: 1]
n_test = 100  # held-out test digits [quick: 30] [min: 1]
topology = "cycle"  # graph of the first experiment (Metropolis-Hastings weights)
lr_scale = 0.5  # eta times the largest local curvature L_max [min: 0.0]
steps = 200  # length of every ATC run [quick: 60] [min: 1]
doublings = 20  # the limit is checked at step 2**doublings [quick: 16] [min: 1]
seeds = 5  # network initializations compared with the closed form [min: 1]
seed = 0  # seed of data and partition (theta_0 is seeded 0, 1, ...) [min: 0]

# %% [markdown]
# We import the helper package (float64), its driver of the algorithm chapters
# (`companion.validation`) and the plot theme.

# %%
from companion import models, plotting, validation
from companion.book import claims

plotting.theme()

# %% [markdown]
# (atc-experiment)=
# ## The experiment
#
# The problem is the one of the DGD chapter ({ref}`dgd-experiment`): digits split evenly
# across $Q$ agents on a cycle, a wide ReLU MLP at $\theta_0$ and its full-output NTK, and
# further initializations of the same network on the same data. Only the algorithm
# changes: the same `validation.Experiment`, now with ATC's update.

# %%
model = models.mlp(width, depth, 10)
split = dict(num_agents=num_agents, samples_per_agent=samples_per_agent, n_test=n_test)
lengths = dict(steps=steps, seeds=seeds, doublings=doublings, seed=seed)
atc = validation.Experiment("atc", model, topology, lr_scale, **split, **lengths)
print(f"m = {atc.problem.kernel.shape[0]}, Q = {num_agents}, eta = {atc.lr:.3g}")

# %% [markdown]
# (atc-training)=
# ## Closed form against training
#
# First the linearized network, for which the closed form is exact: the worst relative
# error over every agent's losses and predictions is rounding.

# %%
print(f"closed form vs linearized training: {atc.linearized.max_rel_err:.1e}")

# %% [markdown]
# (atc-network)=
# ### The real network
#
# Then the real network, trained by the same ATC update from each initialization, next to
# the closed form and to the control of the DGD chapter ({ref}`dgd-network`): the closed
# form at a step size 20% off. The table gives the closed form's median, smallest and
# largest error over the initializations, on the metrics of the DGD chapter.

# %%
atc.runs.summary().loc["closed form"].round(3)

# %% [markdown]
# {numref}`fig-atc-panels` shows the closed form and the two training runs agent by
# agent.

# %% mystnb={"figure": {"caption": "ATC on the cycle: closed form (lines) against training of the linearized network and of the real network (markers), per agent (colours).", "name": "fig-atc-panels"}}
fig = plotting.dynamics_panels(
    atc.linearized.predicted, atc.trained, title=f"ATC, {topology}, width {width}"
)

# %% [markdown]
# The linearized network is on the lines to rounding error; the real network departs as
# its kernel drifts, by the medians of the table. Compared with DGD the consensus distance
# after the first step is smaller: the combine step averages the fresh gradient steps, so
# no agent moves on its own data alone.
#
# (atc-centralized)=
# ## The complete graph is centralized gradient descent
#
# Take the complete graph with uniform weights $W = \mathbf{1}\mathbf{1}^\top / Q$. All
# agents start at $\theta_0$; if they agree at step $k$, the combine step gives every agent
#
# $$
# \theta(k+1) = \frac{1}{Q}\sum_{r} \big(\theta(k) - \eta \nabla L_r(\theta(k))\big)
# = \theta(k) - \eta\, \nabla L(\theta(k)), \qquad L = \frac{1}{Q}\sum_r L_r,
# $$
#
# so by induction ATC *is* centralized gradient descent on the global loss
# {eq}`eq-global-loss`, for the linearized model and for the real network alike. With
# equal local sizes $n_q = n/Q$ the global loss is the plain mean squared error that a
# single agent holding all $n$ samples minimizes. Our iid partition has equal sizes:

# %%
sizes = {len(rows) for rows in atc.problem.partition}
print(f"local sizes n_q: {sizes}")
assert len(sizes) == 1, "the single-agent baseline below needs equal local sizes"

# %% [markdown]
# We run ATC on the complete graph and the same problem with one agent holding all the
# data ($W = [1]$), both as closed form and as training of the real network
# (`validation.centralized`, which refuses unequal local sizes too), and measure the
# worst relative error of any agent's predictions against the single agent's:

# %%
centralized = validation.centralized(atc)
centralized_err = centralized.errors
print({k: f"{v:.1e}" for k, v in centralized_err.items()})

# %% [markdown]
# Every agent's predictions equal the centralized ones, for the closed form and for the
# trained network. {numref}`fig-atc-centralized` adds DGD on the same complete graph,
# which is *not* centralized gradient descent.

# %% mystnb={"figure": {"caption": "Complete graph with uniform weights: ATC (Q agents), centralized gradient descent (one agent with all data) and DGD, closed forms.", "name": "fig-atc-centralized"}}
dgd_complete = atc.closed_forms(["dgd"], centralized.mixing)["dgd"]
fig = plotting.algorithm_comparison(
    {
        "centralized": centralized.central.predicted,
        "atc": centralized.complete.predicted,
        "dgd": dgd_complete,
    },
    title=rf"Complete graph, $W = \mathbf{{1}}\mathbf{{1}}^\top/{num_agents}$",
)

# %% [markdown]
# The consensus distance of ATC on the complete graph is exactly zero at every step (the
# legend says so, since a log axis cannot draw it): the combine step erases every
# disagreement the adapt step creates. DGD mixes first and then steps on each agent's own
# gradient, so its agents disagree after every step.
#
# (atc-limit)=
# ## The limit
#
# The hypotheses of the {ref}`limit statement <limit-theorem>` hold as for DGD
# ({ref}`dgd-limit`), so every agent converges to the centralized minimum-norm
# interpolant and its test predictions to centralized NTK regression
# ({numref}`fig-atc-limit`), at steps $1, 2, 4, \dots$ up to $2^{\text{doublings}}$.

# %% mystnb={"figure": {"caption": "Distance of the worst agent to the centralized limit under ATC: training residual, test predictions against NTK regression, parameter norm against the minimum norm.", "name": "fig-atc-limit"}}
fig = plotting.limit_gaps(
    {"atc": atc.approach}, title="ATC reaches the centralized solution"
)

# %% [markdown]
# ## Recorded numbers
#
# The claims every algorithm chapter makes, with the bounds, rival and controls of the DGD
# chapter ({ref}`dgd-network`), and the identity with centralized gradient descent, to
# $10^{-10}$ for the closed form and for the trained network alike, since the identity
# above holds for any model.

# %% tags=["nbval-check-output"]
atc_claims = claims.algorithm_chapter(atc)

# %% [markdown]
# Against the rival that the graph does not matter (the complete graph's closed form,
# which for ATC is centralized gradient descent, as the section above shows), the
# final-loss error is {claim}`atc.network.final_loss_rel_err` and the log-loss gap
# {claim}`atc.network.log_loss_gap`. The worst agent's final local loss, at this one
# width: {claim}`atc.network.worst_agent_loss_rel_err_by_width`.
#
# The identity with centralized gradient descent, the worse of the closed form's and the
# trained network's errors:

# %% tags=["nbval-check-output"]
complete_claim = claims.ATC_IS_CENTRALIZED.record(max(centralized_err.values()))

# %% [markdown]
# ## In this chapter we
#
# - evaluated ATC's closed form $F \leftarrow (W \otimes I)(F - \eta g(F))$ and matched
#   it to training of the linearized network to machine precision and to the real
#   network over several initializations, against the rival that the graph does not
#   matter: the final-loss claim {claim}`atc.network.final_loss_rel_err:verdict`;
# - showed that on the complete graph with $W = \mathbf{1}\mathbf{1}^\top/Q$ ATC is
#   exactly centralized gradient descent on $\frac1Q\sum_q L_q$, for the real network too;
# - followed it to the same limit as DGD: the centralized minimum-norm solution and NTK
#   regression on test inputs.
