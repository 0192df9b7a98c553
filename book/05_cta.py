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
# # CTA diffusion
#
# Combine-then-adapt (CTA) diffusion reverses ATC's order: every agent first *combines*
# its neighbours' iterates, then takes a gradient step on its own data *at the combined
# point*, {eq}`eq-cta`. Its iteration matrix is ATC's two factors in the other order,
#
# $$
# F(k+1) = \big(I - \eta\,\mathrm{blockdiag}_q(K D_q)\big)(W \otimes I_m)\, F(k) + c,
# $$
#
# (page {doc}`closed_forms`), so ATC and CTA share their eigenvalues. The paper's claim is
# again a closed form for every agent of a wide network {cite}`chaudhari2025p2p`. This
# chapter checks it against training and follows it to its limit, then puts DGD, ATC and
# CTA side by side on one graph, shows why, from a common start, CTA is ATC seen at a
# different moment of the step, and measures how each discrete recursion approaches its
# gradient flow as the step size shrinks.

# %% tags=["parameters"]
quick = False  # small sizes for CI
seed = 0  # seeds the data split and the partition (theta_0: 0, 1, ...) [min: 0]
num_agents = 4  # agents on the graph [min: 2]
topology = "cycle"  # the graph (Metropolis-Hastings weights)
samples_per_agent = 10  # local training digits [quick: 5] [min: 1]
n_test = 100  # test digits for the test loss [quick: 30] [min: 1]
width = 512  # MLP hidden width (NTK parameterization) [quick: 128] [min: 1]
depth = 2  # MLP hidden layers [min: 1]
lr_scale = 0.5  # step size as a multiple of 1 / L_max [min: 0.0]
steps = 200  # updates per run [quick: 60] [min: 1]
doublings = 20  # last step of the limit: 2 to this power [quick: 16] [min: 1]
seeds = 5  # initializations of the real network [min: 1]
# the flow comparison halves the step size this many times
halvings = 3  # [quick: 2] [min: 1]

# %% [markdown]
# We import the helper package (float64), its driver of the algorithm chapters
# (`companion.validation`) and the plot theme.

# %%
import numpy as np

from companion import models, plotting, validation
from companion.book import claims, report
from companion.trajectory import relative_error

plotting.theme()

# %% [markdown]
# (cta-experiment)=
# ## The experiment
#
# The problem of the DGD and ATC chapters ({ref}`dgd-experiment`), built the same way by
# `validation.Experiment`, with CTA's update:

# %%
net = models.mlp(width, depth, 10)
split = dict(num_agents=num_agents, samples_per_agent=samples_per_agent, n_test=n_test)
lengths = dict(steps=steps, seeds=seeds, doublings=doublings, seed=seed)
cta = validation.Experiment("cta", net, topology, lr_scale, **split, **lengths)

# %% [markdown]
# (cta-training)=
# ## Closed form against training
#
# The linearized network, for which the closed form is exact, so that the worst relative
# error of the agents' losses and predictions measures rounding alone:

# %%
print(f"linearized: max relative error {cta.linearized.max_rel_err:.1e}")

# %% [markdown]
# (cta-network)=
# ### The real network
#
# The real network over several initializations, with the 20% step-size control of the
# DGD chapter ({ref}`dgd-network`). The table shows the closed form's median, smallest and
# largest error over the initializations:

# %%
cta.runs.summary().loc["closed form"].round(3)

# %% [markdown]
# {numref}`fig-cta-panels`: closed form (lines) against the two training runs (markers).

# %% mystnb={"figure": {"caption": "CTA on the cycle: closed form (lines) against training of the linearized network and of the real network (markers), per agent (colours).", "name": "fig-cta-panels"}}
title = f"CTA, {topology}, width {width}"
fig = plotting.dynamics_panels(cta.linearized.predicted, cta.trained, title=title)

# %% [markdown]
# Again the linearized network is on the lines to rounding error and the real network
# within the medians of the table. At step 1 CTA and DGD coincide: mixing a consensus
# changes nothing, so both take each agent's own gradient at $\theta_0$.
#
# (cta-limit)=
# ## The limit
#
# The hypotheses of the {ref}`limit statement <limit-theorem>` hold as for DGD
# ({ref}`dgd-limit`), so every agent reaches the centralized minimum-norm interpolant
# ({numref}`fig-cta-limit`).

# %% mystnb={"figure": {"caption": "Distance of the worst agent to the centralized limit under CTA: training residual, test predictions against NTK regression, parameter norm against the minimum norm.", "name": "fig-cta-limit"}}
approaches = {"cta": cta.approach}
fig = plotting.limit_gaps(approaches, title="CTA reaches the centralized solution")

# %% [markdown]
# (cta-side-by-side)=
# ## DGD, ATC and CTA side by side
#
# The closed forms of the three algorithms on the same cycle, step size and $\theta_0$
# (exact for the linearized network, as the three chapters showed), in
# {numref}`fig-algorithms`:

# %%
runs = cta.closed_forms(("dgd", "atc", "cta"))

# %% mystnb={"figure": {"caption": "DGD, ATC and CTA on the same cycle and step size (closed forms): global loss at the network average, consensus distance of the parameters, and test loss.", "name": "fig-algorithms"}}
fig = plotting.algorithm_comparison(runs, title=f"DGD, ATC and CTA, {topology}")

# %% [markdown]
# A table of the final global loss, at the agents' parameters and at their average, the
# mean local loss for contrast, the largest and the final consensus distance, and the
# final test loss (`validation.endpoints`):

# %%
validation.endpoints(runs).round(4)

# %% [markdown]
# ATC keeps the smallest disagreement, while CTA looks like DGD. The two diffusion
# strategies are one and the same from a common start. If $\phi(k) =
# \theta^{\mathrm{ATC}}(k)$ (true at $k = 0$, where both are $\theta_0$), then
# $\phi(k+1) = W\theta^{\mathrm{CTA}}(k+1) = W\big(\phi(k) - \eta\nabla L(\phi(k))\big)
# = \theta^{\mathrm{ATC}}(k+1)$: CTA's *combined* points are exactly ATC's iterates, and
# CTA's iterates are ATC's adapted points $\psi(k)$, before their combine step. We check
# $(W \otimes I)F^{\mathrm{CTA}}(k) = F^{\mathrm{ATC}}(k)$ on the closed forms:

# %%
mixed_cta = np.einsum("qr,krnc->kqnc", cta.mixing, runs["cta"].predictions)
cta_is_atc = relative_error(mixed_cta, runs["atc"].predictions)
print(f"relative error of W F_CTA against F_ATC: {cta_is_atc:.1e}")

# %% [markdown]
# **Why the three reach consensus differently.** In DGD the fresh gradient step is never
# mixed within the step: each agent's disagreement receives its full local gradient,
# damped by $W$ only one step later. In ATC the gradient steps are averaged before anyone
# keeps them; in CTA the gradient is taken at already averaged points, which are ATC's
# iterates. The recorded disagreement of the two diffusion strategies differs only by
# whether one looks after the combine step (ATC) or after the adapt step (CTA). In the
# interpolation regime every local gradient vanishes at the common interpolant, so all
# three converge to exact consensus; the graph and the algorithm shape the transient.
#
# (cta-flows)=
# ## Discrete steps and their flows
#
# Each recursion is the explicit Euler step of its gradient flow {eq}`eq-flow`, whose
# generator keeps $1/\eta$ in front of the mixing term. Halving the step size `halvings`
# times over the same horizon, we measure the gap between the discrete predictions and the
# flow of the same step size, every agent, at ten times along the run
# (`validation.flow_orders`, one `discretization.flow_gaps` per algorithm). The DGD
# chapter explains why the gap can shrink at all despite the stiff mixing term
# ({ref}`dgd-flow`): the disagreement modes die within a few steps in both, and what
# remains moves by $O(\eta)$ per step. The printed numbers are the log-log slopes of the
# gap against $\eta$, one per algorithm.

# %%
orders = validation.flow_orders(cta, ("dgd", "atc", "cta"), halvings)
gap_slope = orders.slopes
print({name: f"{slope:.2f}" for name, slope in gap_slope.items()})

# %% [markdown]
# {numref}`fig-flow-gaps` shows first-order convergence for all three. A deliberately
# wrong pairing, every step size against the flow of the largest one (as if the flow did
# not depend on $\eta$), does not converge: its gap tends to the distance between two
# flows. It reuses the same recursions and flows.

# %% mystnb={"figure": {"caption": "Gap between each discrete recursion and its own gradient flow against the step size, over the same horizon (log-log).", "name": "fig-flow-gaps"}}
wrong_slope = orders.control_slopes
fig = plotting.flow_gaps(orders.own, title=f"{topology}, width {width}")

# %% [markdown]
# ## Recorded numbers
#
# The claims of every algorithm chapter, with the bounds, rival and controls of the DGD
# chapter ({ref}`dgd-network`):

# %% tags=["nbval-check-output"]
cta_claims = claims.algorithm_chapter(cta)

# %% [markdown]
# Against the rival that the graph does not matter, the final-loss error is
# {claim}`cta.network.final_loss_rel_err` and the log-loss gap
# {claim}`cta.network.log_loss_gap`. The worst agent's final local loss, at this one
# width: {claim}`cta.network.worst_agent_loss_rel_err_by_width`.
#
# The identity between CTA and ATC (bound $10^{-10}$), and the flows: the gap of each
# algorithm falls like $\eta^s$ with $s$ in $[0.75, 1.25]$ (first order), while the wrong
# pairing's slope must fall outside.

# %% tags=["nbval-check-output"]
identity_claim = claims.CTA_IS_ATC.record(cta_is_atc)

# %% [markdown]
# The flows, with the wrong pairing as the control that must fail the same test:

# %% tags=["nbval-check-output"]
first_order = all(0.75 <= s <= 1.25 for s in gap_slope.values())
report.record(
    "flow.gap_slope_by_algorithm",
    gap_slope,
    kind="theorem",
    passed=first_order,
    control_value=wrong_slope,
    control="every step size against the flow of the largest one",
    control_passed=all(0.75 <= s <= 1.25 for s in wrong_slope.values()),
    statement=f"log-log slope of the discrete-to-flow gap against the step size over "
    f"{halvings + 1} step sizes, by algorithm; passes within [0.75, 1.25]",
    section="cta-flows",
)
print(f"every recursion converges to its flow at first order: {first_order}")
print(f"CTA mixed equals ATC (< 1e-10): {cta_is_atc < claims.EXACT}")

# %% [markdown]
# ## In this chapter we
#
# - evaluated CTA's closed form, $F' = (W\otimes I)F$, $F \leftarrow F' - \eta g(F')$,
#   matched it to training of the linearized network to machine precision, compared it
#   with the real network against the rival that the graph does not matter (the
#   final-loss claim {claim}`cta.network.final_loss_rel_err:verdict`), and followed it to
#   the centralized limit;
# - saw that ATC and CTA iterate the same two matrices in opposite orders, and that from a
#   common start CTA's combined points are exactly ATC's iterates;
# - compared DGD, ATC and CTA on one graph: the same limit, different transients;
# - measured each recursion converging to its own gradient flow at first order in $\eta$.
