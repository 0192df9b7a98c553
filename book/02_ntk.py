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
# # NTK linearization
#
# The paper's closed forms rest on one premise: a wide network trained by gradient descent
# stays close to its first-order Taylor expansion around the initialization $\theta_0$,
#
# $$
# f_{\mathrm{lin}}(x; \theta) = f(x; \theta_0) + J(x)\,(\theta - \theta_0),
# \qquad J(x) = \left.\frac{\partial f(x;\theta)}{\partial \theta}\right|_{\theta_0},
# $$
#
# {cite}`jacot2018ntk,lee2019wide`. The linearized model is affine in $\theta$, so under
# the squared loss its training is a linear recursion driven by the empirical neural
# tangent kernel (NTK) $K = J J^\top$ on the training inputs ({ref}`closed-forms-dual`). This chapter checks the premise on
# one agent ($Q = 1$, mixing matrix $W = [1]$, i.e. ordinary centralized gradient descent)
# before the following chapters spread the data over a graph:
#
# 1. a wide MLP trained against its linearization on digits;
# 2. the empirical NTK against the analytic infinite-width NTK as width grows;
# 3. how far the parameters move during training, against width (the *lazy* regime);
# 4. the closed form of centralized gradient descent against training of the linearized
#    model, and its continuous-time limit against `neural_tangents.predict`.

# %% tags=["parameters"]
# fmt: off
quick = False  # small sizes for CI
width = 1024  # hidden width of the network in the first experiment [quick: 128] [min: 1]
depth = 2  # hidden layers of the ReLU MLP (NTK parameterization) [min: 1]
samples = 64  # training samples, all held by the single agent [quick: 32] [min: 1]
n_test = 100  # test samples [quick: 50] [min: 1]
steps = 200  # gradient-descent steps [quick: 60] [min: 1]
lr_fraction = 0.5  # step size eta as a fraction of 1 / lambda_max(K / n) [min: 0.0]
ntk_samples = 20  # inputs on which empirical and analytic NTKs are compared [min: 2]
ntk_widths = [64, 128, 256, 512, 1024, 2048, 4096]  # kernel comparison [quick: [32, 64, 128, 256, 512]] [min: 1]
ntk_seeds = 5  # initializations per width of the kernel comparison [min: 2]
sweep_widths = [64, 128, 256, 512, 1024]  # lazy-training sweep [quick: [32, 64, 128]] [min: 1]
seeds = 5  # initializations per width of the lazy-training sweep [min: 1]
seed = 0  # seed of the data split and of theta_0 [min: 0]
# fmt: on

# %% [markdown]
# We import the helper package (which switches JAX to float64) and the book's plot theme.

# %%
import jax
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree

from companion import (
    analytic,
    cost,
    data,
    dynamics,
    metrics,
    models,
    ntk,
    plotting,
    simulate,
)
from companion import problem as problem_lib
from companion.book import report
from companion.experiments import Comparison
from companion.rates import (
    compare_slopes,
    median_interval,
    per_seed_slopes,
    rate_margin,
)
from companion.trajectory import relative_error

import neural_tangents as nt

plotting.theme()

# %% [markdown]
# ## A wide network against its linearization
#
# `companion.problem.digits` loads `samples` digits (inputs centred and scaled
# to unit norm, one-hot targets centred to zero mean), initializes a ReLU MLP with
# $\theta_0$ drawn from `seed` and computes the full-output empirical NTK, an
# $m \times m$ matrix with $m = nC$ ($C = 10$ classes). With one agent the local loss is
# the global loss $L(\theta) = \frac{1}{2n}\sum_i \|f(x_i;\theta) - y_i\|^2$, and the step
# size is quoted in units of $1/\lambda_{\max}(K/n)$, the curvature of $L$ in function
# space (gradient descent on $f_{\mathrm{lin}}$ is stable below $2/\lambda_{\max}$).

# %%
single = np.eye(1)  # Q = 1: the mixing matrix W = [1]
split = dict(num_agents=1, samples_per_agent=samples, n_test=n_test, seed=seed)
lazy_split = split | {"n_test": 0}  # the lazy-training sweep needs no test side
problem = problem_lib.digits(models.mlp(width, depth, 10), **split)
lr = lr_fraction / problem.curvature
num_params = ravel_pytree(problem.params)[0].size
print(
    f"P = {num_params:,} parameters, m = {problem.kernel.shape[0]} outputs, eta = {lr:.3g}"
)

# %% [markdown]
# `companion.simulate.train` runs the same gradient-descent loop on the network and, with
# `linearize=True`, on $f_{\mathrm{lin}}$ (one Jacobian-vector product per step, as in
# `neural_tangents.linearize`); both start from the same $\theta_0$.

# %%
network = simulate.train(problem, "dgd", single, lr=lr, steps=steps, progress=False)
linearized = simulate.train(
    problem, "dgd", single, lr=lr, steps=steps, linearize=True, progress=False
)

# %% [markdown]
# The two training-loss curves lie on top of each other. The right panel zooms in on
# their difference: the relative distance between the network's and the linearized
# model's predictions, on the training and on the test inputs.

# %% mystnb={"figure": {"caption": "Left: training loss of the MLP and of its linearization under the same gradient descent. Right: relative distance between their predictions on training and test inputs.", "name": "fig-ntk-linearization"}}
gaps = {
    "training inputs": np.linalg.norm(
        (network.predictions - linearized.predictions)[:, 0], axis=(1, 2)
    )
    / np.linalg.norm(linearized.predictions[:, 0], axis=(1, 2)),
    "test inputs": np.linalg.norm(
        (network.test_predictions - linearized.test_predictions)[:, 0], axis=(1, 2)
    )
    / np.linalg.norm(linearized.test_predictions[:, 0], axis=(1, 2)),
}
fig = plotting.ntk_linearization(
    network.steps,
    network.mean_global_loss,
    linearized.mean_global_loss,
    gaps,
    title=f"ReLU MLP, width {width}, depth {depth}, n = {samples}",
)

# %% [markdown]
# The gap starts at zero (both models equal $f(\cdot;\theta_0)$ there) and grows with the
# distance travelled. Test accuracy, read off the argmax of the ten outputs, is the same
# story seen through a coarser lens.

# %%
pd.DataFrame(
    {
        "final training loss": [
            network.mean_global_loss[-1],
            linearized.mean_global_loss[-1],
        ],
        "final test accuracy": [
            network.test_accuracy[-1, 0],
            linearized.test_accuracy[-1, 0],
        ],
        "max prediction gap": [gaps["training inputs"].max(), np.nan],
    },
    index=["network", "linearized"],
).round(4)

# %% [markdown]
# (ntk-closed-form)=
# ## The closed form of centralized gradient descent
#
# For $f_{\mathrm{lin}}$ the predictions on the training inputs obey
# $F_{k+1} = F_k - \frac{\eta}{n} K (F_k - y)$, so
# $F_k = y + (I - \frac{\eta}{n} K)^k (f_0 - y)$: no network and no parameters are needed,
# only $K$. This is the $Q = 1$ case of the dual recursion {eq}`eq-dual`, and
# `companion.dynamics.closed_form` evaluates it, test predictions included. It must
# reproduce the linearized training run to rounding error.

# %%
single_form = dynamics.closed_form(problem, "dgd", single, lr=lr)
closed = single_form.steps(steps)
centralized_err = Comparison(predicted=closed, observed=linearized).max_rel_err
print(f"closed form vs linearized training: relative error {centralized_err:.1e}")
print(
    f"vs the network: {relative_error(closed.mean_global_loss, network.mean_global_loss):.2e} (loss curve)"
)

# %% [markdown]
# In continuous time ($t = k\eta$) the recursion becomes the gradient flow
# $F(t) = y + e^{-Kt/n}(f_0 - y)$, `ClosedForm.flow`. `neural_tangents`
# {cite}`novak2020neural` ships the same flow as `predict.gradient_descent_mse`, with one
# difference of units: it normalizes the squared loss by `y.size` $= nC$ instead of $n$,
# so its time runs $C$ times slower, and ours at time $t$ equals theirs at $C\,t$ (with
# the full $(n, n, C, C)$ kernel and `trace_axes=()`).

# %%
times = np.linspace(0.0, steps * lr, 11)
ours = single_form.flow(times)
n, c = problem.f0.shape
kernel_4d = problem.kernel.reshape(n, c, n, c).transpose(0, 2, 1, 3)
kernel_test_4d = problem.kernel_test.reshape(n_test, c, n, c).transpose(0, 2, 1, 3)
nt_predict = nt.predict.gradient_descent_mse(kernel_4d, problem.targets, trace_axes=())
nt_train, nt_test = nt_predict(c * times, problem.f0, problem.f0_test, kernel_test_4d)
flow_err = max(
    relative_error(ours.predictions[:, 0], np.asarray(nt_train)),
    relative_error(ours.test_predictions[:, 0], np.asarray(nt_test)),
)
print(f"our flow vs neural_tangents: relative error {flow_err:.1e}")

# %% [markdown]
# Both agree to rounding error (the remaining digits come from two different
# eigendecompositions of $K$). Without the factor $C$ the two would disagree at every
# $t > 0$, which is the easiest mistake to make when comparing against `neural_tangents`.
#
# (ntk-width)=
# ## The empirical NTK converges to the analytic one
#
# At initialization the empirical NTK is random: it depends on $\theta_0$. As the width
# grows it concentrates around a deterministic limit $K_\infty \otimes I_C$, which
# `neural_tangents.stax` computes analytically (`companion.analytic.ntk`). Central
# limit arguments give fluctuations of order $1/\sqrt{\text{width}}$, so the relative
# Frobenius distance $\|K - K_\infty \otimes I_C\|_F / \|K_\infty \otimes I_C\|_F$ should
# fall with slope about $-1/2$ on a log-log plot. We measure it over `ntk_seeds`
# initializations per width, and, as a control, the distance to the analytic NTK of a
# network one layer deeper: a wrong limit, which the empirical kernel must not approach.

# %%
x_kernel = data.load_digits_dataset(ntk_samples, seed=seed).x_train
limits_by_depth = {
    d: analytic.ntk(models.mlp(8, d, 10), x_kernel) for d in (depth, depth + 1)
}


def distances_at(w):
    """(limit depth, seed) distances of the empirical NTK at width w to both limits."""
    model = models.mlp(w, depth, 10)
    keys = [jax.random.PRNGKey(seed + s) for s in range(ntk_seeds)]
    kernels = [
        ntk.empirical_ntk(model, model.init_fn(k, (-1, 64))[1], x_kernel) for k in keys
    ]
    return [
        [relative_error(k, limit) for k in kernels]
        for limit in limits_by_depth.values()
    ]


distances, control = np.transpose([distances_at(w) for w in ntk_widths], (1, 2, 0))

# %% [markdown]
# The analytic kernels do not depend on the width (they are limits), so each is computed
# once. The dots are single initializations, the markers their median, the dashed lines the
# fitted power laws ({numref}`fig-ntk-width`).

# %% mystnb={"figure": {"caption": "Relative Frobenius distance between the empirical NTK and the analytic NTK of the same network (falling) and of a network one layer deeper (the control), against hidden width (log-log), with least-squares slopes and the theoretical slope -1/2.", "name": "fig-ntk-width"}}
fig = plotting.ntk_width_scaling(
    ntk_widths,
    {"to its own limit": distances, "to a deeper network's limit (control)": control},
    ylabel=r"$\|K - K_\infty \otimes I\|_F \,/\, \|K_\infty \otimes I\|_F$",
    title=f"ReLU MLP, depth {depth}, {ntk_samples} digits",
    reference=-0.5,
)

# %% [markdown]
# The medians over seeds and their least-squares slopes against width:

# %%
median_distance, median_control = np.median(distances, 0), np.median(control, 0)
width_slope = cost.loglog_slope(ntk_widths, median_distance)
control_slope = cost.loglog_slope(ntk_widths, median_control)
seed_slopes = per_seed_slopes(ntk_widths, distances)  # one slope per seed
pd.DataFrame(
    {"width": ntk_widths, "own limit": median_distance, "deeper limit": median_control}
).round(4)

# %% [markdown]
# (ntk-drift)=
# ## Lazy training: the kernel barely moves
#
# Why does the linearization hold? In the NTK parameterization a hidden layer's weights are
# $O(1)$ each, so $\|\theta_0\| \propto \sqrt{P}$, which grows like the width, while the
# distance travelled, $\|\theta_k - \theta_0\|^2 = \alpha_k^\top K \alpha_k$ for
# $f_{\mathrm{lin}}$ {eq}`eq-param-distance`, is a quantity of the kernel, which converges.
# What the closed form needs is that the *kernel* stays put. We measure how far it moves,
# $\|K_T - K_0\|_F / \|K_0\|_F$ with $K_T$ the empirical NTK at the trained parameters,
# for `seeds` initializations at each width of `sweep_widths`. Two rates are known: Lee et
# al. bound the movement by $O(1/\sqrt{\text{width}})$ {cite}`lee2019wide`, and Dyer and
# Gur-Ari find it falls like $1/\text{width}$ {cite}`dyer2020asymptotics`. As a control we
# also measure the distance of $K_T$ to the initial kernel of another initialization,
# which mixes the movement with the seed-to-seed fluctuations of the previous section.


# %%
def lazy_run(w, s):
    """Train width w from initialization s; how far the parameters and the kernel move."""
    p, other = (
        problem_lib.digits(models.mlp(w, depth, 10), **lazy_split, init_seed=i)
        for i in (s, s + 1000)
    )
    eta, end = lr_fraction / p.curvature, simulate.SaveAt(steps=(steps,))
    run = simulate.train(
        p, "dgd", single, lr=eta, steps=steps, save_at=end, progress=False
    )
    own, another = (
        metrics.kernel_drift(p.network, run.final_params, p.inputs, k)[0]
        for k in (p.kernel, other.kernel)
    )
    return {
        "relative change": run.param_distance[-1, 0]
        / np.linalg.norm(ravel_pytree(p.params)[0]),
        "kernel drift": own,
        "to another seed's kernel": another,
    }


# %% [markdown]
# Every width and seed, then the medians over seeds:

# %%
lazy = pd.DataFrame(
    [
        {"width": w, "seed": s} | lazy_run(w, s)
        for w in sweep_widths
        for s in range(seeds)
    ]
)
lazy_median = lazy.groupby("width").median().drop(columns="seed")
by_width = {  # (seeds, widths) of each measurement
    c: lazy.pivot(index="seed", columns="width", values=c).to_numpy()
    for c in ("kernel drift", "to another seed's kernel")
}
drift = compare_slopes(sweep_widths, *by_width.values())
lazy_median.round(4)

# %% [markdown]
# {numref}`fig-ntk-lazy` puts the measured drift, its control and the relative parameter
# change on one log-log scale, with the two literature rates for reference.

# %% mystnb={"figure": {"caption": "Kernel drift during training, distance to another initialization's kernel (control) and relative parameter change against hidden width (log-log), seeds as dots, with fitted slopes.", "name": "fig-ntk-lazy"}}
by_seed = {
    name: lazy.pivot(index="seed", columns="width", values=column).to_numpy()
    for name, column in (
        (r"$\|K_T - K_0\|_F / \|K_0\|_F$", "kernel drift"),
        ("to another seed's $K_0$ (control)", "to another seed's kernel"),
        (r"$\|\theta_T - \theta_0\| / \|\theta_0\|$", "relative change"),
    )
}
fig = plotting.ntk_width_scaling(
    sweep_widths,
    by_seed,
    ylabel="relative change",
    reference=-1.0,
    title=f"after {steps} steps of gradient descent, n = {samples}",
)

# %% [markdown]
# The kernel moves: at the widths of most experiments in this book it ends tens of
# percent away from where it started ({numref}`fig-ntk-lazy`). That is why the closed
# forms hold better at larger widths and over shorter horizons, and it is what
# {doc}`08_networks` maps.
#
# We record the claims, each slope with an interval over seeds: every seed gets its own
# log-log slope (seed $s$ at every width), and the median's 95% bootstrap interval is
# shown beside it. The distance to the limit falling with width confirms the textbook
# convergence; its only comparison, the distance to a deeper network's limit, is wrong by
# construction, so it is an observation. Its *rate* has a rival: the finite-width
# correction to the mean kernel is of order $1/\text{width}$, so the distance could fall
# at that rate instead of the $1/\sqrt{\text{width}}$ of the fluctuations. The claim
# passes if the per-seed slopes lie within $[-0.75, -0.25]$ and the power law
# $c/\sqrt{\text{width}}$ fits the distances better than $c/\text{width}$ (smaller RMS
# log residual, $c$ fitted), seed by seed. The drift falling with width is an observation too (its control,
# shuffled widths, cannot pass). Its rate is judged against the drift one would see if
# training only added the kernel's seed-to-seed fluctuations, measured at the same widths
# as the distance of $K_T$ to another seed's $K_0$: the drift claim passes only if its
# slope's interval lies entirely below the rival's.

# %%
slope_table = pd.DataFrame(
    {
        name: {"median slope": np.median(v)}
        | dict(zip(("low", "high"), median_interval(v)[1], strict=True))
        for name, v in (
            ("distance to the limit", seed_slopes),
            ("kernel drift", drift.ours),
            ("to another seed's K_0 (rival)", drift.rival),
        )
    }
).T
slope_table.round(3)

# %% tags=["nbval-check-output", "remove-input"]
falls = metrics.fall_factor(median_distance) >= 2
report.record(
    "ntk.rel_dist_to_analytic_by_width",
    dict(zip(ntk_widths, median_distance, strict=True)),
    kind="observation",
    passed=falls,
    section="ntk-width",
    control_value=dict(zip(ntk_widths, median_control, strict=True)),
    control_passed=metrics.fall_factor(median_control) >= 2,
    control="the distance to the analytic NTK of a network one layer deeper",
    statement="median over seeds of the relative Frobenius distance of the empirical to the "
    "analytic NTK, by width; passes when it falls by a factor 2 or more over the sweep. An "
    "observation: its only comparison, another network's limit, is wrong by construction",
    paper="wide networks are close to their linearization (NTK regime)",
)
print(f"NTK distance falls by 2x or more: {falls}")

# %% tags=["nbval-check-output", "remove-input"]
in_range = bool(np.all((-0.75 <= seed_slopes) & (seed_slopes <= -0.25)))
report.record(
    "ntk.width_slope",
    float(np.median(seed_slopes)),
    kind="empirical",
    passed=in_range,
    rival="the 1/width rate of the finite-width correction to the mean kernel: per "
    "seed, the misfit (RMS log residual) of c/width against that of c/sqrt(width)",
    **rate_margin(ntk_widths, distances, -0.5, -1.0).fields(),
    section="ntk-width",
    statement="median over seeds of the per-seed log-log slope of the NTK distance "
    f"against width ({ntk_seeds} seeds); passes when every seed's slope lies in "
    "[-0.75, -0.25] (theory -1/2) and c/sqrt(width) fits better than c/width",
)
print(f"every seed's slope in [-0.75, -0.25]: {in_range}")

# %% tags=["nbval-check-output", "remove-input"]
correlation = metrics.rank_correlation(lazy["width"], lazy["kernel drift"])
shuffled = np.random.default_rng(seed).permutation(lazy["width"].to_numpy())
shuffled_correlation = metrics.rank_correlation(shuffled, lazy["kernel drift"])
report.record(
    "ntk.drift_by_width",
    lazy_median["kernel drift"].to_dict(),
    kind="observation",
    passed=correlation <= -0.8,
    section="ntk-drift",
    control_value=shuffled_correlation,
    control_passed=shuffled_correlation <= -0.8,
    control="the rank correlation with the widths shuffled among the runs",
    statement="median over seeds of ||K_T - K_0||_F / ||K_0||_F after training, by width; "
    "passes when the rank correlation of width and drift over every run is at most -0.8. "
    "An observation: its only comparison, shuffled widths, is wrong by construction",
)
print(f"drift falls with width: {correlation <= -0.8}")

# %% tags=["nbval-check-output", "remove-input"]
low, high = drift.ours_interval
report.record(
    "ntk.drift_slope",
    float(np.median(drift.ours)),
    kind="empirical",
    passed=drift.apart,
    rival="the kernel's seed-to-seed fluctuations: per-seed slope of the distance of "
    "K_T to another seed's K_0, at the same widths",
    **drift.margin.fields(),
    section="ntk-drift",
    statement=f"median over {seeds} seeds of the per-seed log-log slope of the kernel "
    f"drift against width, 95% interval [{low:.3g}, {high:.3g}]; passes when that "
    "interval lies below the rival's (Lee et al. bound -1/2, Dyer and Gur-Ari find -1)",
)
print(f"drift slope apart from the rival's: {drift.apart}")

# %% [markdown]
# The factor-2 fall of the distance to the limit
# {claim}`ntk.rel_dist_to_analytic_by_width:verdict`, and its rate gives
# {claim}`ntk.width_slope`. The drift's slope is
# {claim}`ntk.drift_slope:value` against the rival's {claim}`ntk.drift_slope:rival`
# (margin {claim}`ntk.drift_slope:margin`, interval {claim}`ntk.drift_slope:interval`):
# the claim {claim}`ntk.drift_slope:verdict`.

# %% [markdown]
# And the two exactness claims:

# %% tags=["nbval-check-output"]
report.record(
    "centralized.max_rel_err",
    centralized_err,
    kind="exact",
    bound=1e-10,
    section="ntk-closed-form",
    statement="closed form of centralized GD (Q = 1) against training of the linearized MLP",
)
report.record(
    "flow_single_agent_vs_neural_tangents.max_rel_err",
    flow_err,
    kind="exact",
    bound=1e-8,
    section="ntk-closed-form",
    statement="single-agent gradient flow against neural_tangents.predict."
    "gradient_descent_mse (time scaled by C), train and test predictions",
)
print(f"closed form = linearized training (< 1e-10): {centralized_err < 1e-10}")
print(f"flow = neural_tangents (< 1e-8): {flow_err < 1e-8}")

# %% [markdown]
# The closed form and the flow hold to rounding error, as they must: they are algebra,
# not approximation. The network itself is only *close* to its linearization, and closer
# the wider it is; how that closeness degrades with the length of training and with the
# graph is the subject of the topology chapters.
#
# ## In this chapter we
#
# - trained a wide ReLU MLP and its linearization with the same gradient descent and saw
#   their losses and predictions stay close, with a gap that grows along training;
# - reproduced training of the linearized model exactly with the closed form
#   $F_k = y + (I - \frac{\eta}{n}K)^k(f_0 - y)$, and its gradient flow with
#   `neural_tangents.predict.gradient_descent_mse` once time is rescaled by $C$;
# - measured the empirical NTK approaching the analytic infinite-width NTK, and judged
#   its rate, seed by seed, against the $1/\text{width}$ rate of the mean's correction;
# - measured how far the kernel moves during training: tens of percent at moderate
#   widths, and judged the rate at which it falls against the seed-to-seed fluctuations
#   of the kernel, which is why the closed forms of the next chapters describe wide
#   networks, and short runs best.
