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
# # Infinite width
#
# The paper's closed forms predict one network: the one whose empirical NTK and initial
# outputs $f_0$ at $\theta_0$ they are given {cite}`chaudhari2025p2p`. Draw $\theta_0$ again
# and the prediction changes. This chapter predicts what does not depend on the draw: for
# an infinitely wide network, the whole distribution over initializations of every
# agent's predictions under DGD, ATC and CTA on any graph, its mean and covariance, and
# the expected local and global losses, exactly and without sampling. Neural-tangents
# predicts the same for centralized gradient descent
# (`predict.gradient_descent_mse_ensemble`, {cite}`novak2020neural`), and we check that
# the two agree where they overlap. Then we train ensembles of real networks from
# independent initializations and watch them approach the prediction as the width grows,
# ask which of the two predictions describes a *single* network better, and map where the
# paper's closed form stays within 5% of training, over width and training time.

# %% tags=["parameters"]
# fmt: off
quick = False  # small sizes for CI
num_agents = 4  # agents Q on each graph
samples_per_agent = 10  # training samples per agent; n is Q times this [quick: 5]
n_test = 20  # held-out digits whose predictions are predicted too [quick: 10]
depth = 2  # hidden layers of the ReLU MLP (NTK parameterization)
lr_scale = 0.5  # step size eta as a fraction of 1 / max_q lambda_max(Theta_qq / n_q), analytic NTK
steps = 200  # gradient steps per run [quick: 30]
save_every = 10  # steps between recorded predictions [quick: 5]
widths = [16, 32, 64, 128, 256]  # hidden widths of the ensembles [quick: [16, 256]]
seeds = 16  # initializations per ensemble (theta_0 seeded 0, 1, ...)
graphs = ["cycle", "star", "complete"]  # topologies [quick: ["cycle"]]
algorithms = ["dgd", "atc", "cta"]  # algorithms [quick: ["dgd"]]
peer_steps = [0, 1, 10, 100, 1000]  # steps of the check against neural-tangents
seed = 0  # seeds the data split and the partition
# fmt: on

# %% [markdown]
# We import the helper package (which switches JAX to float64), neural-tangents for the
# peer check, and the plot theme.

# %%
import collections

import neural_tangents as nt
import numpy as np
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from companion import cost, experiments, infinite, metrics, models, plotting, simulate
from companion import problem as problem_lib
from companion.book import report
from companion.trajectory import relative_error

plotting.theme()

# %% [markdown]
# (infinite-theory)=
# ## The distribution over initializations
#
# Three hypotheses:
#
# 1. The network is an MLP in the NTK parameterization, with weights and biases drawn
#    i.i.d. from centred Gaussians, and its hidden widths go to infinity. Then its
#    initial outputs on any finite set of inputs become a centred Gaussian vector with
#    covariance $\Sigma \otimes I_C$, where $\Sigma$ is the NNGP kernel, independent
#    across the $C$ outputs {cite}`lee2018deep,matthews2018gaussian`, and its empirical
#    NTK becomes the deterministic $\Theta \otimes I_C$ {cite}`jacot2018ntk`.
# 2. The network trains as its linearization {eq}`eq-linearization` around $\theta_0$ for
#    the whole run. Lee et al. prove this at infinite width for centralized gradient
#    descent with a small enough step size {cite}`lee2019wide`; for DGD, ATC and CTA it
#    is the premise of the paper's closed forms, and here a hypothesis that the ensembles
#    below put to the test.
# 3. All agents start from the same $\theta_0$, mix with a doubly stochastic $W$ and use
#    one step size $\eta$.
#
# Under hypothesis 2 each agent's predictions follow the dual recursion {eq}`eq-dual`
# with $K = \Theta \otimes I_C$. Its gradient is linear in $F - y$, mixing is linear, and
# every agent starts from the same initial outputs, so by induction on $k$ agent $q$'s
# predictions on the $n$ training and $n_*$ test inputs are affine in the initial outputs
# $z = [f_0; f_{0*}]$ on both:
#
# $$
# \begin{bmatrix} F_q(k) \\ F_{*q}(k) \end{bmatrix} = A_{q,k}\, z + b_{q,k},
# $$ (eq-infinite-affine)
#
# where $A_{q,k}$ and $b_{q,k}$ depend on $\Theta$, $W$, $\eta$, the partition and the
# targets, but not on $z$. With $z$ centred with covariance $\Sigma \otimes I_C$
# (hypothesis 1), over initializations:
#
# - the **mean** is $b_{q,k}$: the closed form run from $f_0 = 0$ with the analytic NTK;
# - the **covariance** is $A_{q,k} (\Sigma \otimes I_C) A_{q,k}^\top$, and the cross
#   covariance of two agents is $A_{q,k} (\Sigma \otimes I_C) A_{r,k}^\top$;
# - the **expected local loss** is the loss of the mean plus half the trace of agent
#   $q$'s own block of the covariance, divided by $n_q$:
#   $\mathbb{E}\,L_q(\theta_q) = L_q(\bar F_q) + \frac{1}{2 n_q} \operatorname{tr}
#   \big(S_q \operatorname{Cov}(F_q) S_q^\top\big)$, because $\mathbb{E}\|u\|^2 =
#   \|\mathbb{E} u\|^2 + \operatorname{tr}\operatorname{Cov}(u)$. The same holds for the
#   global loss $L(\theta_q)$, for $L(\bar\theta)$ (whose predictions are the average of
#   the agents'), for the test loss, and for the squared consensus and parameter distances
#   {eq}`eq-param-distance`, which are quadratic forms of the dual coefficients, affine in
#   $z$ too.
#
# These are exact at infinite width, with no sampling. Only the first two moments of $z$
# enter, so mean, covariance and expected losses hold for any centred initial outputs
# with covariance $\Sigma \otimes I_C$; Gaussianity is what makes the mean $\pm 2$
# standard deviations a 95% band. Every output behaves alike, so `companion.infinite`
# carries the fluctuations for one output only, as $A_k \Phi$ with $\Sigma = \Phi
# \Phi^\top$, and forms covariance blocks only at the steps asked for.
#
# We draw the data once. The step size comes from the analytic NTK
# (`infinite.analytic_problem` is the problem of the mean: $\Theta \otimes I_C$ and
# $f_0 = 0$), so that every width and every initialization trains with the same $\eta$,
# the one the prediction uses.

# %%
split = dict(
    num_agents=num_agents, samples_per_agent=samples_per_agent, n_test=n_test, seed=seed
)
networks = {w: models.mlp(w, depth, 10) for w in widths}
base = problem_lib.digits(networks[max(widths)], **split)
lr = lr_scale / infinite.analytic_problem(base).curvature
mixings = experiments.mixings(num_agents, graphs)
cells = [(topo, alg) for topo in graphs for alg in algorithms]
n = base.num_samples
print(f"Q = {num_agents}, n = {n}, n_test = {n_test}, eta = {lr:.3g}")

# %% [markdown]
# `infinite.closed_form` builds the prediction for one (graph, algorithm); `steps` gives
# the mean, the variances and the expected losses at every step.

# %%
forms = {
    cell: infinite.closed_form(base, cell[1], mixings[cell[0]], lr=lr) for cell in cells
}
moments = {cell: form.steps(steps) for cell, form in forms.items()}

# %% [markdown]
# (infinite-peer)=
# ## Peer check: neural-tangents' infinite ensemble
#
# With one agent ($Q = 1$, $W = [1]$), and for ATC on the complete graph with uniform
# weights $W = \mathbf{1}\mathbf{1}^\top / Q$ and equal shares of the data, which is
# centralized gradient descent ({doc}`04_atc`), every agent's mean and covariance must be
# those of `neural_tangents.predict.gradient_descent_mse_ensemble`. Three conventions
# separate the two:
#
# - neural-tangents solves the gradient *flow* of the loss normalized by `y.size` $= nC$,
#   so at learning rate 1 its time $t$ is our flow time $T$ times $C$;
# - it has no discrete-time predictor, but $k$ steps of gradient descent,
#   $(I - \eta\Theta/n)^k$, are exactly its flow at $t = k$ under the kernel
#   $\Theta' = -nC \log(I - \eta\Theta/n)$, which has the same eigenvectors; the test
#   kernel maps the same way, $\Theta'_* = \Theta_* \Theta^{-1}\Theta'$, so that
#   $\Theta'_*\Theta'^{-1} = \Theta_*\Theta^{-1}$;
# - its covariance is per output ($n \times n$); ours is that $\otimes\, I_C$.
#
# `flow_kernels` builds $\Theta'$ and $\Theta'_*$ on the eigenvectors of $\Theta$.


# %%
def flow_kernels(form):
    """Train and test-train kernels whose flow at t = k is k steps of size form.lr."""
    values, vectors = np.linalg.eigh(form.ntk[:n])
    gain = -n * base.num_outputs * np.log1p(-form.lr * values / n) / values
    return (vectors * gain * values) @ vectors.T, form.ntk[n:] @ (vectors * gain) @ vectors.T


# %% [markdown]
# neural-tangents asks a `kernel_fn` for the kernels; ours hands over the NNGP kernels
# and the mapped NTKs.

# %%
Kernels = collections.namedtuple("Kernels", "nngp ntk")


def kernel_fn_of(form):
    """A neural-tangents kernel_fn serving our kernels (train, test-train, test-test)."""
    train_ntk, test_ntk = flow_kernels(form)
    sigma = form.nngp

    def kernel_fn(x1, x2, get):
        if x2 is not None:
            k = Kernels(sigma[n:, :n], test_ntk)
        elif np.array_equal(x1, base.inputs):
            k = Kernels(sigma[:n, :n], train_ntk)
        else:
            k = Kernels(sigma[n:, n:], None)
        return getattr(k, get) if isinstance(get, str) else k

    return kernel_fn


# %% [markdown]
# `peer_error` compares mean and covariance on the training and the test inputs at
# `peer_steps`, for every agent, and returns the largest relative error.


# %%
def peer_error(form):
    """Largest relative error of our moments against neural-tangents', over agents."""
    fn = kernel_fn_of(form)
    predict = nt.predict.gradient_descent_mse_ensemble(fn, base.inputs, base.targets)
    t = np.asarray(peer_steps, dtype=float)
    theirs = [predict(t, x, "ntk", compute_cov=True) for x in (None, base.inputs_test)]
    ours, cov = form.steps(max(peer_steps)), form.covariance(peer_steps)
    means = (ours.mean.predictions, ours.mean.test_predictions)
    blocks = (cov[..., :n, :n], cov[..., n:, n:])
    return max(
        max(relative_error(m[peer_steps, q], mean), relative_error(c[:, q], var))
        for m, c, (mean, var) in zip(means, blocks, theirs, strict=True)
        for q in range(m.shape[1])
    )


# %% [markdown]
# The two settings: one agent holding all the data, and ATC on the complete graph with
# uniform weights, whose agents hold equal shares.

# %%
single = problem_lib.Problem(
    targets=base.targets,
    partition=[np.arange(n)],
    inputs=base.inputs,
    model=base.model,
    params=base.params,
    inputs_test=base.inputs_test,
    targets_test=base.targets_test,
)
uniform = np.full((num_agents, num_agents), 1 / num_agents)
peer = {
    "one agent": peer_error(infinite.closed_form(single, "dgd", np.eye(1), lr=lr)),
    "ATC, complete, uniform": peer_error(infinite.closed_form(base, "atc", uniform, lr=lr)),
}
print(f"shares: {sorted({len(rows) for rows in base.partition})}")
pd.Series(peer).map(lambda e: f"{e:.1e}").rename("max relative error")

# %% [markdown]
# Both agree to rounding error (two different eigendecompositions). The mapped kernel is
# what makes the discrete steps comparable at all; with $\Theta$ itself, neural-tangents'
# flow at $t = C\eta k$ differs from $k$ steps by the discretization error that
# {doc}`03_dgd` measures.

# %% [markdown]
# (infinite-ensembles)=
# ## Ensembles of real networks
#
# For every width of `widths` we draw `seeds` initializations $\theta_0$ and train the
# networks from all of them at once (`experiments.ensemble`, which vmaps
# `simulate.train_ensemble` over the initializations; a unit test checks that each run is
# the run of that initialization trained alone) with the same algorithm, graph and step
# size, recording predictions every `save_every` steps. Beside each network,
# `experiments.ensemble` keeps the paper's closed form for that network (its empirical
# NTK and $f_0$ at $\theta_0$), and the same closed form at 1.2 times the step size.

# %%
every = simulate.SaveAt(every=save_every)
problems = {
    w: {s: problem_lib.digits(networks[w], init_seed=s, **split) for s in range(seeds)}
    for w in widths
}
runs = {
    (w, *cell): experiments.ensemble(
        problems[w].__getitem__,
        cell[1],
        mixings[cell[0]],
        lr=lr,
        steps=steps,
        seeds=range(seeds),
        save_at=every,
    )
    for w in widths
    for cell in cells
}
saved = every.resolve(steps)

# %% [markdown]
# {numref}`fig-infinite-bands` follows one number through training: each agent's
# prediction of the true class of the first test digit, at the largest width. The lines
# and bands are the infinite-width mean and mean $\pm 2$ standard deviations; the markers
# and bars are the sample mean and $\pm 2$ sample standard deviations of the `seeds`
# networks.

# %%
widest, digit = max(widths), 0
label = int(np.argmax(base.targets_test[digit]))
pick = (slice(None), slice(None), digit, label)
sample = {
    cell: np.stack([o.test_predictions[pick] for o in runs[widest, *cell].observed])
    for cell in cells
}

# %% mystnb={"figure": {"caption": "Prediction of each agent (colours) for the true class of the first test digit: infinite-width mean (lines) and mean plus or minus two standard deviations (bands), against the sample mean (markers) and plus or minus two sample standard deviations (bars) of an ensemble of networks at the largest width, for each graph (rows) and algorithm (columns).", "name": "fig-infinite-bands"}}
fig = plotting.ensemble_bands(
    {cell: moments[cell].mean.test_predictions[pick] for cell in cells},
    {cell: np.sqrt(moments[cell].test_variance[:, :, digit]) for cell in cells},
    {cell: values.mean(0) for cell, values in sample.items()},
    {cell: values.std(0, ddof=1) for cell, values in sample.items()},
    saved,
    ylabel=f"output {label}, test digit {digit}",
    seeds=seeds,
)

# %% [markdown]
# (infinite-width-errors)=
# ## The ensembles approach the prediction
#
# `infinite.ensemble_errors` compares, at every saved step and for every agent, the
# sample mean of the networks' predictions (training and test inputs) with the predicted
# mean, relative to the size of the targets; their summed sample variance with the
# predicted one; and their mean global loss $\frac1S\sum_s L(\theta_q)$ with the expected
# one. Each error comes with its noise floor: what `seeds` draws from the predicted
# distribution would show by chance. As a control, the same errors are measured against
# the infinite-width prediction at 1.2 times the step size.

# %%
control_moments = {
    cell: infinite.closed_form(base, cell[1], mixings[cell[0]], lr=1.2 * lr).steps(steps)
    for cell in cells
}
errors, control_errors = (
    {
        (w, *cell): infinite.ensemble_errors(source[cell], runs[w, *cell].observed)
        for w in widths
        for cell in cells
    }
    for source in (moments, control_moments)
)

# %% [markdown]
# Each error is summarized per setting by its median over agents and steps; by width, we
# show the median over the (graph, algorithm) settings and their range.


# %%
def by_setting(table, name, how="median"):
    """(settings, widths) array of one summary of one error."""
    return np.array([[getattr(table[w, *cell], how)(name) for w in widths] for cell in cells])


quantities = {"mean": "ensemble mean", "variance": "ensemble variance", "loss": "mean loss"}
summary = pd.DataFrame(
    {
        (label, column): np.median(values, 0)
        for name, label in quantities.items()
        for column, values in (
            ("error", by_setting(errors, name)),
            ("noise floor", by_setting(errors, f"{name}_floor")),
            ("beyond noise", by_setting(errors, name, "excess")),
            ("control", by_setting(control_errors, name)),
        )
    },
    index=pd.Index(widths, name="width"),
)
summary.round(4)
