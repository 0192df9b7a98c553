"""Every figure of the book, in one seaborn look.

Functions take plain arrays and return the matplotlib ``Figure`` so a chapter can show it
(the last expression of a cell) and a caption can live in the cell metadata.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import seaborn as sns

#: Colours per topology and line styles per algorithm, shared by every chapter.
PALETTE = dict(
    zip(
        ("cycle", "star", "complete", "path", "grid", "torus", "erdos_renyi", "random_geometric"),
        sns.color_palette("colorblind", 8),
        strict=True,
    )
)
ALGORITHM_STYLE = {"dgd": "-", "atc": "--", "cta": ":", "centralized": "-."}


def theme() -> None:
    """Applies the book's seaborn theme (call once per chapter)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 96, "savefig.dpi": 96, "figure.autolayout": True})


def _grid(n: int, width: float = 3.2, height: float = 3.0, cols: int = 4):
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def draw_graphs(graphs: Mapping[str, nx.Graph], seed: int = 0):
    """Draws each graph with a spring layout (``pos`` attributes win where present)."""
    fig, axes = _grid(len(graphs))
    for ax, (name, graph) in zip(axes, graphs.items(), strict=True):
        pos = nx.get_node_attributes(graph, "pos") or nx.spring_layout(graph, seed=seed)
        colour = PALETTE.get(graph.graph.get("name", name), "C0")
        nx.draw_networkx(
            graph, pos, ax=ax, node_color=[colour], node_size=160, font_size=7, edge_color="0.6"
        )
        ax.set_title(f"{name} (Q={graph.number_of_nodes()}, |E|={graph.number_of_edges()})")
        ax.axis("off")
    return fig


def mixing_heatmaps(matrices: Mapping[str, np.ndarray]):
    """Heatmap of each mixing matrix ``W[q, r]``."""
    fig, axes = _grid(len(matrices))
    vmax = max(float(m.max()) for m in matrices.values())
    for ax, (name, w) in zip(axes, matrices.items(), strict=True):
        sns.heatmap(
            w,
            ax=ax,
            vmin=0,
            vmax=vmax,
            cmap="mako_r",
            square=True,
            cbar=False,
            xticklabels=False,
            yticklabels=False,
        )
        ax.set_title(name)
        ax.set_xlabel("agent r")
        ax.set_ylabel("agent q")
    return fig


def spectra(eigenvalues: Mapping[str, np.ndarray]):
    """Eigenvalues of each mixing matrix, sorted, one strip per topology."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, (name, eig) in enumerate(eigenvalues.items()):
        ax.scatter(np.full(eig.size, i), eig, color=PALETTE.get(name, f"C{i}"), s=28)
    ax.set_xticks(range(len(eigenvalues)), list(eigenvalues), rotation=20)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylabel(r"eigenvalue of $W$")
    ax.set_title("Spectra of the mixing matrices")
    return fig


def rate_curves(
    measured: Mapping[str, np.ndarray],
    predicted: Mapping[str, np.ndarray],
    ylabel: str,
    xlabel: str = "step k",
    title: str = "",
    ylim: tuple[float, float] | None = None,
):
    """Measured curves (solid) against predicted ones (dashed), log scale, per topology."""
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, name in enumerate(measured):
        colour = PALETTE.get(name, f"C{i}")
        ax.semilogy(measured[name], color=colour, label=f"{name}: measured")
        ax.semilogy(predicted[name], color=colour, ls="--", lw=1, label=f"{name}: predicted")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def bars(values: Mapping[str, float], ylabel: str, title: str = "", log: bool = False):
    """One bar per named value."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(values)
    ax.bar(
        names,
        [values[n] for n in names],
        color=[PALETTE.get(n, f"C{i}") for i, n in enumerate(names)],
    )
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=20)
    return fig


_COST_LABELS = {"m": "outputs m = n C", "num_agents": "agents Q", "width": "hidden width"}


def cost_scaling(runs: Mapping[str, Mapping], *, cols: int = 3):
    """Log-log cost curves: measured seconds (markers) against the leading-order operation
    count rescaled through the middle point (dashed), each run a panel with both slopes.

    ``runs`` maps a title to a :func:`companion.cost.sweep` result.
    """
    fig, axes = _grid(len(runs), width=3.6, height=3.1, cols=cols)
    for i, (ax, (title, run)) in enumerate(zip(axes, runs.items(), strict=True)):
        x, sec, ops = (np.asarray(run[k], float) for k in ("values", "seconds", "ops"))
        mid = len(x) // 2
        ax.loglog(x, sec, "o-", color=f"C{i}", label=f"measured, slope {run['slope']:.2f}")
        ax.loglog(x, ops * sec[mid] / ops[mid], "--", color="0.4",
                  label=f"operation count, slope {run['theory_slope']:.2f}")  # fmt: skip
        ax.set_xticks(x, [f"{v:g}" for v in x], minor=False)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel(_COST_LABELS.get(run["vary"], run["vary"]))
        ax.set_ylabel("wall time (s)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    return fig


def _cells(comparisons: Mapping) -> tuple[list[str], list[str]]:
    """Row (topology) and column (algorithm) names of a ``(topology, algorithm)`` mapping."""
    topologies = list(dict.fromkeys(t for t, _ in comparisons))
    algorithms = list(dict.fromkeys(a for _, a in comparisons))
    return topologies, algorithms


def loss_grid(
    predicted: Mapping[tuple[str, str], np.ndarray],
    observed: Mapping[tuple[str, str], np.ndarray],
    *,
    mean: bool = False,
    ylabel: str = r"local loss $L_q$",
    markers: int = 12,
):
    """Closed form (lines) against training (markers), one panel per (topology, algorithm).

    ``predicted`` and ``observed`` map ``(topology, algorithm)`` to (K, Q) per-agent loss
    curves over steps 0..K-1; topologies fill the rows, algorithms the columns, one colour
    per agent. ``mean`` adds the mean over agents (black). About ``markers`` markers per
    curve keep the lines visible underneath.
    """
    topologies, algorithms = _cells(predicted)
    rows, cols = len(topologies), len(algorithms)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 2.8 * rows), sharex=True, sharey=True, squeeze=False
    )
    num_agents = np.shape(next(iter(predicted.values())))[1]
    colours = sns.color_palette("viridis", num_agents)
    for i, j in np.ndindex(rows, cols):
        topo, alg = topologies[i], algorithms[j]
        pred, obs = np.asarray(predicted[topo, alg]), np.asarray(observed[topo, alg])
        ax = axes[i, j]
        steps, every = np.arange(len(pred)), max(1, len(pred) // markers)
        for q in range(num_agents):
            ax.plot(steps, pred[:, q], color=colours[q], lw=1.1)
            ax.plot(steps[::every], obs[::every, q], "o", color=colours[q], mfc="none", ms=4)
        if mean:
            ax.plot(steps, pred.mean(1), color="k", lw=1.8)
            ax.plot(steps[::every], obs.mean(1)[::every], "x", color="k", ms=5)
        ax.set_yscale("log")
        ax.set_title(f"{topo}, {alg.upper()}", color=PALETTE.get(topo, "k"), fontsize=10)
        ax.set_xlabel("step k" if i == rows - 1 else "")
        ax.set_ylabel(ylabel if j == 0 else "")
    handles = [
        plt.Line2D([], [], color="0.5", lw=1.1, label="closed form (colour: agent)"),
        plt.Line2D([], [], color="0.5", ls="", marker="o", mfc="none", label="training"),
    ]
    if mean:
        handles += [
            plt.Line2D([], [], color="k", lw=1.8, label="closed form, mean"),
            plt.Line2D([], [], color="k", ls="", marker="x", label="training, mean"),
        ]
    axes[0, -1].legend(handles=handles, fontsize=7, loc="upper right")
    return fig


def accuracy_curves(
    predicted: Mapping[tuple[str, str], np.ndarray],
    observed: Mapping[tuple[str, str], np.ndarray],
    *,
    ylabel: str = "test accuracy (mean over agents)",
    markers: int = 12,
):
    """Curves over steps per (topology, algorithm): one panel per algorithm, colour per
    topology, closed form as lines and training as markers."""
    topologies, algorithms = _cells(predicted)
    fig, axes = plt.subplots(1, len(algorithms), figsize=(3.8 * len(algorithms), 3.2),
                             sharey=True, squeeze=False)  # fmt: skip
    for ax, alg in zip(axes[0], algorithms, strict=True):
        for topo in topologies:
            pred, obs = np.asarray(predicted[topo, alg]), np.asarray(observed[topo, alg])
            steps, every = np.arange(len(pred)), max(1, len(pred) // markers)
            colour = PALETTE.get(topo, "k")
            ax.plot(steps, pred, color=colour, label=f"{topo}: closed form")
            ax.plot(steps[::every], obs[::every], "o", color=colour, mfc="none",
                    label=f"{topo}: training")  # fmt: skip
        ax.set_title(alg.upper())
        ax.set_xlabel("step k")
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=7, loc="lower right")
    return fig


def error_by_width(
    errors: Mapping[int, float],
    *,
    slope: float | None = None,
    reference: Mapping[int, float] | None = None,
    ylabel: str = "relative L2 error of the mean-loss curve",
    title: str = "",
):
    """Log-log error against hidden width, with the fitted power law (``slope``) through
    the geometric means and optional reference points (e.g. MATH.md's measurements)."""
    widths = np.array(sorted(errors), dtype=float)
    values = np.array([errors[w] for w in sorted(errors)])
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.loglog(widths, values, "o-", color="C0", label="this run")
    if slope is not None:
        log_w = np.log(widths)
        centre = np.exp(np.mean(np.log(values)) + slope * (log_w - log_w.mean()))
        ax.loglog(widths, centre, "--", color="0.4", label=f"fit, slope {slope:.2f}")
    if reference:
        ax.loglog(list(reference), list(reference.values()), "s", color="C3", mfc="none",
                  ms=8, label="MATH.md fact 5")  # fmt: skip
    ax.set_xticks(widths, [str(int(w)) for w in widths])
    ax.minorticks_off()
    ax.set_xlabel("hidden width (units per layer)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def error_heatmap(
    errors: np.ndarray,
    rows: list,
    cols: list,
    *,
    row_label: str = "hidden width",
    col_label: str = "horizon k (steps)",
    title: str = "",
):
    """Annotated heatmap of ``errors[i, j]`` (e.g. width i, horizon j), log colour scale."""
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 2.5, 0.6 * len(rows) + 1.8))
    errors = np.asarray(errors)
    sns.heatmap(errors, ax=ax, annot=True, fmt=".3f", cmap="rocket_r", xticklabels=cols,
                yticklabels=rows, norm=LogNorm(errors.min(), errors.max()),
                cbar_kws={"label": "relative L2 error"})  # fmt: skip
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(title)
    return fig


def ntk_linearization(steps: np.ndarray, losses: Mapping[str, np.ndarray],
                      gaps: Mapping[str, np.ndarray], *, title: str = ""):  # fmt: skip
    """Training loss of the network against its linearization (left, log scale) and the
    relative gap between their predictions along training (right)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, loss) in enumerate(losses.items()):
        left.semilogy(steps, loss, color=f"C{i}", ls=("-", "--", ":")[i % 3], label=name)
    left.set_xlabel("gradient step k")
    left.set_ylabel(r"training loss $L(\theta_k)$")
    left.legend(fontsize=8)
    for i, (name, gap) in enumerate(gaps.items()):
        right.plot(steps, gap, color=f"C{i + 3}", label=name)
    right.set_xlabel("gradient step k")
    right.set_ylabel(r"$\|f - f_{\mathrm{lin}}\| \,/\, \|f_{\mathrm{lin}}\|$")
    right.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def ntk_width_scaling(widths: np.ndarray, values: Mapping[str, np.ndarray], ylabel: str, *,
                      title: str = "", reference: float | None = None):  # fmt: skip
    """Log-log plot of quantities against hidden width with least-squares slopes.

    ``values`` maps a label to an array (seeds, widths); each seed is a dot, the seed mean
    a marker on a line, the fitted power law a dashed line whose slope is in the legend.
    ``reference`` adds a grey line of that slope through the first mean (theory).
    """
    widths = np.asarray(widths, dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, (name, vals) in enumerate(values.items()):
        vals = np.atleast_2d(np.asarray(vals, dtype=float))
        mean = vals.mean(axis=0)
        slope, intercept = np.polyfit(np.log(widths), np.log(mean), 1)
        for row in vals:
            ax.scatter(widths, row, color=f"C{i}", s=12, alpha=0.4)
        ax.loglog(widths, mean, "o-", color=f"C{i}", label=f"{name} (seed mean)")
        fit = np.exp(intercept) * widths**slope
        ax.loglog(widths, fit, "--", color=f"C{i}", lw=1, label=f"fit: slope {slope:.2f}")
        if reference is not None and i == 0:
            ref = mean[0] * (widths / widths[0]) ** reference
            ax.loglog(widths, ref, ":", color="0.4", label=f"theory: slope {reference:g}")
    ax.set_xticks(widths, [f"{w:g}" for w in widths])
    ax.minorticks_off()
    ax.set_xlabel("hidden width (units per layer)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def stability_radius(lr_scale: np.ndarray, radii: Mapping[tuple[str, str], np.ndarray],
                     marks: Mapping[str, Mapping[str, float]], *, xlabel: str):  # fmt: skip
    """Spectral radius of the iteration matrix against step size, one panel per topology.

    ``radii[(topology, algorithm)]`` is evaluated at ``lr_scale``; ``marks[topology]`` maps
    a label (e.g. "sufficient DGD bound") to a step size drawn as a vertical line.
    """
    topologies = list(dict.fromkeys(t for t, _ in radii))
    fig, axes = _grid(len(topologies), width=3.6, height=3.3, cols=len(topologies))
    for ax, topo in zip(axes, topologies, strict=True):
        for (t, alg), rho in radii.items():
            if t == topo:
                ax.plot(lr_scale, rho, color=PALETTE.get(topo, "C0"),
                        ls=ALGORITHM_STYLE.get(alg, "-"), label=alg.upper())  # fmt: skip
        for j, (label, x) in enumerate(marks.get(topo, {}).items()):
            ax.axvline(x, color=f"{0.1 + 0.35 * j:.2f}", ls=(":", "--")[j % 2], lw=1.5, label=label)
        ax.axhline(1.0, color="firebrick", lw=0.8)
        ax.set_ylim(0.8, 2.5)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("spectral radius of M")
        ax.set_title(topo)
        ax.legend(fontsize=7, loc="upper left")
    return fig


def stability_thresholds(sufficient: Mapping[str, float], exact: Mapping[str, float], *,
                         ylabel: str):  # fmt: skip
    """Grouped bars per topology: the sufficient DGD bound against the exact threshold."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(exact)
    x = np.arange(len(names))
    colours = [PALETTE.get(n, f"C{i}") for i, n in enumerate(names)]
    ax.bar(x - 0.2, [sufficient[n] for n in names], 0.4, color=colours, alpha=0.45,
           hatch="//", label="sufficient bound (MATH.md fact 3)")  # fmt: skip
    ax.bar(x + 0.2, [exact[n] for n in names], 0.4, color=colours,
           label="exact threshold (spectral radius = 1)")  # fmt: skip
    ax.set_xticks(x, names)
    ax.set_ylabel(ylabel)
    ax.set_title("DGD: largest stable step size")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    return fig


def stability_runs(steps: np.ndarray, curves: Mapping[str, np.ndarray], ylabel: str, *,
                   title: str = ""):  # fmt: skip
    """Log-scale curves of several runs labelled "<model>, <setting>": labels starting with
    "linearized" are dashed, and runs with the same setting share a colour."""
    fig, ax = plt.subplots(figsize=(8, 4))
    settings = list(dict.fromkeys(name.split(", ", 1)[-1] for name in curves))
    for name, curve in curves.items():
        ls = "--" if name.startswith("linearized") else "-"
        colour = f"C{settings.index(name.split(', ', 1)[-1])}"
        ax.semilogy(steps[: len(curve)], curve, ls=ls, color=colour, label=name)
    ax.set_xlabel("step k")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


# --- closed form vs training (chapters 3-5: DGD, ATC, CTA) ---

_MARKERS = ("o", "x", "s", "^", "D")


def _marked(steps: np.ndarray, count: int = 25) -> np.ndarray:
    """About ``count`` evenly spaced row indices, so markers do not hide the lines."""
    return np.unique(np.linspace(0, len(steps) - 1, min(count, len(steps))).astype(int))


def dynamics_panels(predicted, observed: Mapping, title: str = ""):
    """Closed form (lines) against training runs (markers) in four panels.

    Panels: per-agent local loss ``L_q(theta_q)``, global loss ``(1/Q) sum_q L_q``,
    consensus distance and ``||theta_q - theta_0||``, all against the step k.

    Args:
        predicted: a ``Trajectory`` from the closed form.
        observed: label -> ``Trajectory`` of a training run with the same steps
            (e.g. ``{"linearized": ..., "network": ...}``), one marker shape each.
        title: figure title (name the algorithm and the topology).
    """
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    k = predicted.steps
    agents = sns.color_palette("colorblind", predicted.local_loss.shape[1])
    panels = [
        ("local_loss", r"local loss $L_q(\theta_q)$", True),
        ("mean_loss", r"global loss $\frac{1}{Q}\sum_q L_q$", True),
        ("consensus_distance", "consensus distance", False),
        ("param_distance", r"$\|\theta_q - \theta_0\|$", False),
    ]
    for ax, (field, ylabel, log) in zip(axes, panels, strict=True):
        lines = np.asarray(getattr(predicted, field)).reshape(len(k), -1)
        for j in range(lines.shape[1]):
            colour = agents[j] if lines.shape[1] > 1 else "0.2"
            ax.plot(k, lines[:, j], color=colour, lw=1.4)
        for traj, marker in zip(observed.values(), _MARKERS, strict=False):
            pts = np.asarray(getattr(traj, field)).reshape(len(traj.steps), -1)
            idx = _marked(traj.steps)
            for j in range(pts.shape[1]):
                colour = agents[j] if pts.shape[1] > 1 else "0.2"
                ax.plot(traj.steps[idx], pts[idx, j], marker, color=colour, ms=4, mfc="none")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("step k")
        ax.set_ylabel(ylabel)
    handles = [plt.Line2D([], [], color="0.2", label="closed form")]
    handles += [
        plt.Line2D([], [], ls="", marker=m, mfc="none", color="0.2", label=label)
        for label, m in zip(observed, _MARKERS, strict=False)
    ]
    handles += [
        plt.Line2D([], [], color=agents[q], label=f"agent {q + 1}")
        for q in range(predicted.local_loss.shape[1])
    ]
    axes[-1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(title)
    return fig


def limit_gaps(approaches: Mapping, title: str = ""):
    """Distance to the centralized limit against the step (log-log), worst agent.

    Args:
        approaches: label -> ``companion.limits.Approach``; the label names the algorithm
            (its line style comes from ``ALGORITHM_STYLE``) and may add the topology.
        title: figure title.
    """
    fig, ax = plt.subplots(figsize=(8.5, 4))
    measures = [
        ("train_gap", r"$\|F_q - y\|$ (interpolation)", "C0"),
        ("test_gap", "test predictions vs NTK regression", "C1"),
        ("norm_gap", r"$\|\theta_q-\theta_0\|$ vs minimum norm", "C2"),
    ]
    for label, appr in approaches.items():
        style = ALGORITHM_STYLE.get(label.split()[0].lower(), "-")
        k = np.maximum(appr.steps, 1)
        for field, name, colour in measures:
            gap = getattr(appr, field)
            if gap is not None:
                ax.loglog(k, gap.max(axis=1), style, color=colour, label=f"{label}: {name}")
    ax.set_xlabel("step k (step 0 drawn at k = 1)")
    ax.set_ylabel("relative gap to the limit (worst agent)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def flow_vs_steps(flows: Mapping, discrete: Mapping, title: str = ""):
    """Global loss of gradient flows (lines) against discrete runs (markers) over time.

    Args:
        flows: label -> ``(times, global_loss)`` of a flow.
        discrete: label -> ``Trajectory`` of the discrete recursion; the i-th run shares
            its colour with the i-th flow.
    """
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for i, (label, (times, loss)) in enumerate(flows.items()):
        ax.semilogy(times, loss, color=f"C{i}", lw=1.4, label=label)
    for i, ((label, traj), marker) in enumerate(zip(discrete.items(), _MARKERS, strict=False)):
        idx = _marked(traj.steps, 30)
        ax.semilogy(traj.time[idx], traj.mean_loss[idx], marker, color=f"C{i}", mfc="none",
                    ms=5, label=label)  # fmt: skip
    ax.set_xlabel(r"time $t = k\eta$")
    ax.set_ylabel(r"global loss $\frac{1}{Q}\sum_q L_q$")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def algorithm_comparison(runs: Mapping, title: str = ""):
    """Global loss, consensus distance and test loss of several algorithms side by side.

    Args:
        runs: algorithm name ("dgd", "atc", "cta", "centralized") -> ``Trajectory``;
            line styles come from ``ALGORITHM_STYLE``.
    """
    has_test = all(t.test_loss is not None for t in runs.values())
    fig, axes = plt.subplots(1, 3 if has_test else 2, figsize=(14 if has_test else 10, 3.6))
    for name, traj in runs.items():
        label = name.upper() if name in ("dgd", "atc", "cta") else name
        style = dict(ls=ALGORITHM_STYLE.get(name, "-"), label=label)
        axes[0].semilogy(traj.steps, traj.mean_loss, **style)
        consensus = np.asarray(traj.consensus_distance)
        if np.any(consensus > 0):
            axes[1].semilogy(traj.steps[1:], consensus[1:], **style)
        else:  # a log axis cannot show it; say so in the legend
            axes[1].plot([], [], **{**style, "label": f"{style['label']}: identically 0"})
        if has_test:
            axes[2].plot(traj.steps, traj.test_loss.mean(axis=1), **style)
    axes[0].set_ylabel(r"global loss $\frac{1}{Q}\sum_q L_q$")
    axes[1].set_ylabel(r"consensus distance (parameters)")
    if has_test:
        axes[2].set_ylabel("test loss (mean over agents)")
    for ax in axes:
        ax.set_xlabel("step k")
    for ax in axes[:2]:
        ax.legend(fontsize=9)
    fig.suptitle(title)
    return fig
