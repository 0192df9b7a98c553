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
# # Distributed gradient descent
#
# In distributed gradient descent (DGD) every agent mixes its neighbours' parameters and
# takes a gradient step on its own data, both from the same iterate, {eq}`eq-dgd`. For the
# linearized network its predictions follow the affine map
#
# $$
# F(k+1) = \big(W \otimes I_m - \eta\,\mathrm{blockdiag}_q(K D_q)\big)\, F(k) + c,
# $$
#
# derived on the page {doc}`closed_forms`. The paper's claim for DGD
# {cite}`chaudhari2025p2p` is that this closed form describes the parameters and errors of
# every agent of a wide network. This chapter checks it against training of the
# linearized network (where it must be exact), of the real network (where it can only be
# close), follows its gradient flow, and follows it to its limit. All agents start from
# the same $\theta_0$.

# %% tags=["parameters"]
quick = False  # small sizes for CI
width = 512  # hidden width of the ReLU MLP (NTK parameterization) [quick: 128]
depth = 2  # hidden layers
num_agents = 4  # agents Q
samples_per_agent = 10  # training samples per agent (Q times this in all) [quick: 5]
n_test = 100  # test samples (kept different from n) [quick: 30]
topology = "cycle"  # communication graph, Metropolis-Hastings weights
lr_scale = 0.5  # step size in units of 1 / max_q lambda_max(K_qq / n_q)
steps = 200  # DGD steps of the training runs [quick: 60]
doublings = 20  # the limit is examined up to step 2**doublings [quick: 16]
seed = 0  # seeds the data split, the partition and theta_0

# %% [markdown]
# We import the helper package (which switches JAX to float64) and the book's plot theme.

# %%
import numpy as np

from companion import dynamics, experiments, graphs, limits, models, plotting, stability
from companion import problem as problem_lib
from companion.book import claims
from companion.trajectory import relative_error

plotting.theme()

# %% [markdown]
# (dgd-experiment)=
# ## The experiment
#
# `problem.digits` splits digits evenly across the agents, initializes the MLP at
# $\theta_0$ and computes its full-output empirical NTK on the training and test inputs.
# The step size is a fraction of the inverse of the largest local curvature
# $L_{\max} = \max_q \lambda_{\max}(K_{qq}/n_q)$. `dynamics.closed_form` validates all of
# it once and returns a handle that answers every later query.

# %%
model = models.mlp(width, depth, 10)
problem = problem_lib.digits(
    model,
    num_agents=num_agents,
    samples_per_agent=samples_per_agent,
    n_test=n_test,
    seed=seed,
)
mixing = graphs.mixing_matrix(graphs.topology(topology, num_agents), "metropolis")
lr = lr_scale / problem.curvature
form = dynamics.closed_form(problem, "dgd", mixing, lr=lr)
print(f"m = n C = {problem.kernel.shape[0]} outputs, Q = {num_agents}, eta = {lr:.3g}")

# %% [markdown]
# The step size must keep the recursion stable. For a symmetric $W$ the paper's condition
# $\eta\,L_{\max} < 1 + \lambda_{\min}(W)$ is sufficient; the exact threshold is where the
# spectral radius of the iteration matrix reaches 1 ({doc}`06_stability`).

# %%
exact_threshold = stability.max_stable_lr(problem, "dgd", mixing)
print(
    f"eta L_max = {lr_scale}, sufficient bound 1 + lambda_min(W) = "
    f"{1 + np.linalg.eigvalsh(mixing)[0]:.3f}"
)
print(f"exact threshold / eta = {exact_threshold / lr:.2f}")

# %% [markdown]
# (dgd-training)=
# ## Closed form against training
#
# `experiments.compare` evaluates the closed form for steps $0, \dots, K$ and trains $Q$
# copies of a model with the DGD update (`companion.simulate.train`): first the linearized
# network $f_{\mathrm{lin}}$, for which the closed form is exact, then the real network,
# whose NTK moves during training.

# %%
linearized = experiments.compare(
    problem, "dgd", mixing, lr=lr, steps=steps, linearize=True
)
network = experiments.compare(problem, "dgd", mixing, lr=lr, steps=steps)
print(f"linearized network: max relative error {linearized.max_rel_err:.1e}")
print(f"network: relative error of the mean local loss {network.mean_loss_error:.3f}")

# %% [markdown]
# {numref}`fig-dgd-panels` shows, agent by agent, the local loss each agent sees, the mean
# local loss $\frac1Q\sum_q L_q(\theta_q)$, the consensus distance
# $\big(\frac1Q\sum_q\|\theta_q - \bar\theta\|^2\big)^{1/2}$ and the distance travelled
# $\|\theta_q - \theta_0\|$, the last two computed from the kernel through
# {eq}`eq-param-distance`.

# %% mystnb={"figure": {"caption": "DGD on the cycle: closed form (lines) against training of the linearized network and of the real network (markers), per agent (colours).", "name": "fig-dgd-panels"}}
observed = {
    "linearized network": linearized.observed,
    f"network, width {width}": network.observed,
}
title = f"DGD, {topology}, Q = {num_agents}, width {width}"
fig = plotting.dynamics_panels(linearized.predicted, observed, title=title)

# %% [markdown]
# The linearized network sits on the lines to machine precision. The real network
# follows them closely: its losses fall slightly faster or slower as its kernel drifts,
# and its parameters move a little further than the linear model's. Consensus distance
# first grows, because each agent pulls toward its own data, and then shrinks as the local
# gradients vanish.
#
# (dgd-flow)=
# ## Discrete steps and the flow
#
# The gradient flow {eq}`eq-flow` of DGD keeps the step size in its generator,
# $A = -\frac1\eta (I - W)\otimes I_m - \mathrm{blockdiag}_q(K D_q)$: a smaller step mixes
# more often per unit of time. We pair each discrete run with the flow of its own step
# size, at $\eta$ and at $\eta/4$ (four times as many steps to the same time $t$).

# %%
horizon, times = steps * lr, np.linspace(0, steps * lr, 41)
finer = dynamics.closed_form(problem, "dgd", mixing, lr=lr / 4)
flows = {f"flow, eta = {s.lr:.2g}": s.flow(times) for s in (form, finer)}
runs = {
    f"discrete, eta = {lr:.2g}": linearized.predicted,
    f"discrete, eta = {lr / 4:.2g}": finer.steps(4 * steps),
}

# %% [markdown]
# {numref}`fig-dgd-flow` puts them side by side.

# %% mystnb={"figure": {"caption": "Mean local loss of DGD's gradient flow (lines) and of the discrete recursion (markers) at two step sizes, against time t = k eta.", "name": "fig-dgd-flow"}}
fig = plotting.flow_vs_steps(
    flows, runs, title=f"DGD, {topology}: discrete steps vs flow"
)

# %% [markdown]
# Each discrete run tracks its flow, and the smaller step tracks its flow more closely:
# the recursion is the explicit Euler discretization of the flow. The two flows differ:
# with the smaller step the agents mix four times as often per unit of time. The relative
# gap of the final mean local loss:

# %%
pairs = zip(("eta", "eta/4"), runs.values(), flows.values(), strict=True)
flow_gap = {
    name: abs(run.mean_loss[-1] - flow.mean_loss[-1]) / flow.mean_loss[-1]
    for name, run, flow in pairs
}
print({k: f"{v:.3f}" for k, v in flow_gap.items()})

# %% [markdown]
# The flow is driven by the paper's state-transition matrix: $F(t) - F^\star =
# \Phi(t, 0)\,(F(0) - F^\star)$ with $F^\star = \mathbf{1} \otimes y$ (shown in the next
# section to be the fixed point). `ClosedForm.transition` gives $\Phi$; applied to the
# initial gap it reproduces the flow at the horizon:

# %%
start = np.tile((problem.f0 - problem.targets).ravel(), num_agents)
end = form.transition(horizon) @ start + np.tile(problem.targets.ravel(), num_agents)
flow_end = flows[f"flow, eta = {lr:.2g}"].predictions[-1].ravel()
print(f"Phi(t, 0) against the flow: relative error {relative_error(end, flow_end):.1e}")

# %% [markdown]
# (dgd-limit)=
# ## The limit: centralized minimum-norm interpolation
#
# At $F_q = y$ for all $q$ every local gradient vanishes and mixing leaves a consensus
# untouched, so $F^\star = \mathbf{1} \otimes y$ is a fixed point. When $K$ is positive
# definite ($P > m$, distinct inputs) every agent's coefficients converge to
# $\alpha^\star = K^{-1}(y - f_0)$: every agent interpolates the training data, reaches
# the centralized minimum-norm solution $\theta^\star = \theta_0 + J^\top K^{-1}(y - f_0)$,
# and predicts on test inputs like centralized NTK regression
# $f_0(X^\star) + K(X^\star, X)\,K^{-1}(y - f_0)$. `limits.approach` evaluates the closed
# form at steps $1, 2, 4, \dots, 2^{20}$ by repeated squaring and measures the three gaps,
# each relative to its value at $\theta_0$.

# %%
approach = limits.approach(form, doublings=doublings)
kernel_eigs = np.linalg.eigvalsh(problem.kernel)
print(f"condition number of K: {kernel_eigs[-1] / kernel_eigs[0]:.1e}")
print(
    f"slowest mode: about {problem.num_samples / (lr * kernel_eigs[0]):.1e} steps per e-fold"
)

# %% [markdown]
# {numref}`fig-dgd-limit` follows the worst agent.

# %% mystnb={"figure": {"caption": "Distance of the worst agent to the centralized limit: training residual, test predictions against centralized NTK regression, and parameter norm against the minimum norm.", "name": "fig-dgd-limit"}}
fig = plotting.limit_gaps(
    {"dgd": approach}, title="DGD converges to the centralized solution"
)

# %% [markdown]
# The gaps fall slowly at first (one e-fold every $n / (\eta\,\lambda_{\min}(K))$ steps,
# set by the slowest kernel direction) and then drop to rounding level.
#
# ## Recorded numbers
#
# The closed form must match the linearized network to $10^{-10}$ (float64) and reach the
# limit to $10^{-8}$ at step $2^{20}$ (rounding of 20 squarings of a matrix conditioned
# like $K$). The real-network error is recorded with a loose bound of 0.1.

# %% tags=["nbval-check-output"]
recorded = claims.algorithm_chapter(
    "dgd",
    linearized=linearized,
    network=network,
    approach=approach,
    width=width,
    doublings=doublings,
    sections={"training": "dgd-training", "limit": "dgd-limit"},
)

# %% [markdown]
# ## In this chapter we
#
# - evaluated DGD's closed form {eq}`eq-dual` on $Qm$ predictions and matched it to
#   training of the linearized network to machine precision, and to the real width-512
#   network within a few percent of the loss curve;
# - saw the discrete recursion approach its gradient flow as $\eta$ shrinks, and the flow
#   reproduced by the state-transition matrix $\Phi(t, 0)$;
# - followed the closed form to its limit: every agent interpolates, reaches the
#   centralized minimum-norm solution, and predicts like centralized NTK regression.
