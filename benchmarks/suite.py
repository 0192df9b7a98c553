"""The measurements behind ``make bench``: every ratio's two sides timed in the same run.

Each function returns a flat dict of ``_build/bench.json`` entries. ``Sizes`` holds every
problem size, so ``--quick`` shrinks the whole suite at once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
from collections.abc import Callable

import jax
import jax.extend
import neural_tangents as nt
import numpy as np

from benchmarks.python_loop import train_loop
from companion import cost, dynamics, graphs, models, ntk, simulate
from companion import problem as problem_lib
from companion.problem import Problem
from companion.trajectory import SaveAt

Progress = Callable[[str], None]

# neural-tangents 0.6.5's implementation 3 (structured derivatives) reads
# jax.interpreters.ad.source_info_util and ad.config, which jax 0.4.35 no longer has; its
# own fix, not yet released, supplies exactly these two. Set here, in the benchmark only
# (the package never calls implementation 3), so that the fastest baseline can be timed;
# every size checks that it computes the same kernel before it is timed.
jax.interpreters.ad.source_info_util = jax.extend.source_info_util
jax.interpreters.ad.config = jax.config
# neural-tangents' implementation 1 materializes the m x P Jacobian; above this many bytes
# the baseline runs on fewer samples (the structured NTK is then timed on the same ones).
NT_JACOBIAN_BYTES = 4 * 2**30


@dataclasses.dataclass(frozen=True)
class ChapterSize:
    """One chapter's prediction and training, as its parameters cell sets them."""

    name: str
    num_agents: int
    samples_per_agent: int
    n_test: int
    width: int
    depth: int
    steps: int
    save_every: int  # both sides record predictions every this many steps


#: Chapter 8 (networks: its grid) and chapter 13 (tuning: 64 digits over 16 agents).
CHAPTERS = (
    ChapterSize("ch08_networks", 4, 25, 50, 128, 3, 300, 1),
    ChapterSize("ch13_tuning", 16, 4, 100, 512, 2, 200, 10),
)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Problem sizes of the suite."""

    n: int = 100  # training samples (m = 10 n)
    width: int = 1024  # default MLP width
    widths: tuple[int, ...] = (256, 1024, 4096)  # ntk.speedup_by_width
    speedup_ns: tuple[int, ...] = (25, 50, 100)  # ntk speedup against n at width 256
    memory_n: int = 500  # m = 5000 for ntk.peak_memory_ratio
    steps: int = 300  # training / closed-form steps
    num_agents: int = 4  # Q of predict.speedup_vs_training
    loop_agents: int = 8  # Q of simulate.speedup_vs_python_loop
    loop_widths: tuple[int, ...] = (64, 256)  # widths of the loop comparison
    loop_n: int = 96  # samples of the loop comparison
    repeats: int = 3  # warm repetitions per figure
    ntk_ns: tuple[int, ...] = (25, 50, 100, 200)  # scaling of the NTK in m
    ntk_widths: tuple[int, ...] = (128, 256, 512, 1024)  # scaling of the NTK in width
    dual_ns: tuple[int, ...] = (50, 100, 200, 400)  # scaling of the closed form in m
    dual_agents: tuple[int, ...] = (2, 4, 8, 16)  # scaling of the closed form in Q
    sim_agents: tuple[int, ...] = (2, 4, 8, 16)  # scaling of training in Q
    sim_widths: tuple[int, ...] = (64, 128, 256, 512)  # scaling of training in width
    sim_n: int = 48  # samples of the training scaling
    scaling_steps: int = 100  # steps of the scaling runs
    impl2_n: int = 100  # samples of the comparison with neural-tangents' implementation 2
    matmul_size: int = 2048  # side of the float64 matrix product that sets the peak rate
    large_m_n: int = 1000  # samples of the large closed form (m = 10 n)
    large_m_steps: tuple[int, int] = (10, 40)  # steps whose time difference gives a step
    sharded_devices: int = 8  # emulated CPU devices of the sharded runs
    sharded_timing: tuple[int, int, int] = (8, 64, 50)  # agents, width, steps of the timing
    sharded_all_cases: bool = True  # every equality case (False: two)
    chapters: tuple[ChapterSize, ...] = CHAPTERS  # predict.cost_ratio_by_chapter


QUICK = Sizes(
    n=6,
    width=16,
    widths=(8, 16),
    speedup_ns=(3, 6),
    memory_n=10,
    steps=3,
    loop_agents=3,
    loop_widths=(8,),
    loop_n=6,
    repeats=1,
    ntk_ns=(3, 6),
    ntk_widths=(8, 16),
    dual_ns=(3, 6),
    dual_agents=(2, 3),
    sim_agents=(2, 3),
    sim_widths=(8, 16),
    sim_n=6,
    scaling_steps=3,
    impl2_n=6,
    matmul_size=128,
    large_m_n=20,
    large_m_steps=(2, 4),
    sharded_timing=(8, 8, 3),
    sharded_all_cases=False,
    chapters=(
        ChapterSize("tiny", 3, 2, 4, 8, 2, 3, 1),
        ChapterSize("tiny_sparse", 4, 2, 4, 8, 1, 4, 2),
    ),
)


#: neural-tangents' three empirical-NTK implementations, by the number its docs give them.
NT_IMPLEMENTATIONS = {
    1: nt.NtkImplementation.JACOBIAN_CONTRACTION,
    2: nt.NtkImplementation.NTK_VECTOR_PRODUCTS,
    3: nt.NtkImplementation.STRUCTURED_DERIVATIVES,
}
# Two kernels that differ by more than this are not the same kernel: no ratio is timed.
SAME_KERNEL = 1e-10


@functools.lru_cache(maxsize=16)
def _nt_kernel_fn(width: int, implementation: int):
    model = models.mlp(width, 3, 10)
    return jax.jit(
        nt.empirical_ntk_fn(
            model.apply_fn,
            trace_axes=(),
            vmap_axes=0,
            implementation=NT_IMPLEMENTATIONS[implementation],
        )
    )


def nt_ntk(problem: Problem, implementation: int = 1) -> np.ndarray:
    """neural-tangents' ``implementation`` on the whole input, in sample-major order."""
    width = problem.model.spec.widths[0]
    n, c = problem.targets.shape
    k = np.asarray(_nt_kernel_fn(width, implementation)(problem.inputs, None, problem.params))
    return k.transpose(0, 2, 1, 3).reshape(n * c, n * c)


def _nt_samples(n: int, width: int) -> int:
    per_sample = 8 * 10 * cost.mlp_parameters(width, 3, 64, 10)
    return max(1, min(n, NT_JACOBIAN_BYTES // per_sample))


def _ntk_row(width: int, n: int, repeats: int, say: Progress) -> dict:
    """Ours against each of neural-tangents' implementations on one problem, after checking
    that all four compute the same kernel."""
    problem, _ = cost.setup(n, num_agents=min(n, 4), width=width)
    ours = cost.compute_ntk(problem)
    diffs = {}
    for impl in NT_IMPLEMENTATIONS:  # the first call also compiles
        ref = nt_ntk(problem, impl)
        diffs[impl] = float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))
        if not diffs[impl] <= SAME_KERNEL:
            raise RuntimeError(
                f"neural-tangents' implementation {impl} and the structured NTK differ by "
                f"{diffs[impl]:.2g} (relative) at width {width}, n = {n}: not one kernel"
            )
    mine = cost.median_seconds(lambda: cost.compute_ntk(problem), repeats=repeats).median
    say(f"ntk width={width} n={n}: companion {mine:.3g} s; neural-tangents 1, 2, 3 ...")
    theirs = {
        impl: cost.median_seconds(lambda i=impl: nt_ntk(problem, i), repeats=repeats).median
        for impl in NT_IMPLEMENTATIONS
    }
    best = min(theirs, key=theirs.__getitem__)
    row = dict(
        width=width,
        n=n,
        companion_s=mine,
        neural_tangents_s=theirs[1],
        **{f"nt_impl{impl}_s": seconds for impl, seconds in theirs.items()},
        nt_best_implementation=best,
        speedup=theirs[1] / mine,
        speedup_vs_nt_best=theirs[best] / mine,
        max_rel_diff=max(diffs.values()),
        rel_diff_by_implementation={str(impl): d for impl, d in diffs.items()},
    )
    say(
        "  neural-tangents "
        + ", ".join(f"{i}: {t:.3g} s" for i, t in theirs.items())
        + f"; speedup {row['speedup']:.0f}x against 1, {row['speedup_vs_nt_best']:.2f}x "
        f"against the fastest ({best})"
    )
    return row


def ntk_speedup(sizes: Sizes, say: Progress) -> dict:
    """ntk.speedup (against implementation 1), ntk.speedup_vs_nt_best (against the fastest
    of implementations 1, 2 and 3 at each size; the key is the smallest over sizes),
    ntk.speedup_by_width (and by n), ntk.max_rel_diff (over all three)."""
    cases = [(sizes.widths[0], n) for n in sizes.speedup_ns if n != sizes.n]
    cases += [(w, _nt_samples(sizes.n, w)) for w in sizes.widths]
    rows = {(width, n): _ntk_row(width, n, sizes.repeats, say) for width, n in cases}
    by_width = {str(w): rows[(w, _nt_samples(sizes.n, w))]["speedup"] for w in sizes.widths}
    w0 = sizes.widths[0]
    by_n = {str(n): rows[(w0, n)]["speedup"] for n in sizes.speedup_ns if (w0, n) in rows}
    vs_best = {f"width={w} n={n}": row["speedup_vs_nt_best"] for (w, n), row in rows.items()}
    return {
        "ntk.speedup": rows[(sizes.width, _nt_samples(sizes.n, sizes.width))]["speedup"],
        "ntk.speedup_by_width": by_width,
        "ntk.speedup_by_n": by_n,  # at the first of the widths
        "ntk.samples_by_width": {str(w): _nt_samples(sizes.n, w) for w in sizes.widths},
        "ntk.speedup_vs_nt_best": min(vs_best.values()),
        "ntk.speedup_vs_nt_best_by_size": vs_best,
        "ntk.max_rel_diff": max(row["max_rel_diff"] for row in rows.values()),
        "ntk.timings": list(rows.values()),
    }


def ntk_memory(sizes: Sizes, say: Progress) -> dict:
    """ntk.peak_memory_ratio, measured in a fresh interpreter."""
    say(f"ntk memory at m={10 * sizes.memory_n} (fresh process) ...")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.ntk_memory", str(sizes.memory_n), str(sizes.width)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    say(f"  peak growth {result['peak_growth_bytes'] / 1e6:.0f} MB = {result['ratio']:.2f} x K")
    return {"ntk.peak_memory_ratio": result["ratio"], "ntk.memory": result}


def _closed_form(problem: Problem, mixing: np.ndarray, lr: float, steps: int):
    return dynamics.closed_form(problem, "dgd", mixing, lr=lr).steps(steps)


def _train(problem: Problem, mixing: np.ndarray, lr: float, steps: int, **kwargs):
    return simulate.train(problem, "dgd", mixing, lr=lr, steps=steps, progress=False, **kwargs)


def predict_vs_training(sizes: Sizes, say: Progress) -> dict:
    """predict.speedup_vs_training: Q real networks against NTK + closed form."""
    problem, mixing = cost.setup(sizes.n, num_agents=sizes.num_agents, width=sizes.width)
    lr = cost.stable_lr(problem, mixing)

    def pipeline():
        fresh = problem.replace(kernel=cost.compute_ntk(problem))
        return _closed_form(fresh, mixing, lr, sizes.steps)

    predicted = cost.median_seconds(pipeline, repeats=sizes.repeats)
    say(f"NTK + closed form ({sizes.steps} steps): {predicted.median:.3g} s; training ...")
    trained = cost.median_seconds(
        lambda: _train(problem, mixing, lr, sizes.steps), repeats=sizes.repeats
    )
    ntk_s = cost.median_seconds(lambda: cost.compute_ntk(problem), repeats=sizes.repeats).median
    closed_s = cost.median_seconds(
        lambda: _closed_form(problem, mixing, lr, sizes.steps), repeats=sizes.repeats
    ).median
    speedup = trained.median / predicted.median
    say(f"  training {trained.median:.3g} s, speedup {speedup:.1f}x")
    timings = dict(
        training_s=trained.median,
        pipeline_s=predicted.median,
        ntk_s=ntk_s,
        closed_form_s=closed_s,
        steps=sizes.steps,
        num_agents=sizes.num_agents,
        width=sizes.width,
        n=sizes.n,
    )
    return {"predict.speedup_vs_training": speedup, "predict.timings": timings}


def _chapter_cost(size: ChapterSize, repeats: int) -> dict:
    """Warm seconds of the closed-form prediction (train and test kernels, then the DGD
    recursion) and of training the real networks for the same steps, recording the same
    steps, on one chapter's problem."""
    problem = problem_lib.digits(
        models.mlp(size.width, size.depth, 10),
        num_agents=size.num_agents,
        samples_per_agent=size.samples_per_agent,
        n_test=size.n_test,
    )
    mixing = graphs.mixing_matrix(graphs.topology("cycle", size.num_agents))
    lr = 0.5 / problem.curvature  # both chapters' step size: half of 1 / L_max
    save_at = SaveAt(every=size.save_every)

    def predict():
        fresh = problem.replace(
            kernel=cost.compute_ntk(problem),
            kernel_test=ntk.empirical_ntk(
                problem.network, problem.params, problem.inputs_test, problem.inputs
            ),
        )
        form = dynamics.closed_form(fresh, "dgd", mixing, lr=lr)
        return form.steps(size.steps, save_at=save_at).predictions

    def train():
        run = simulate.train(
            problem, "dgd", mixing, lr=lr, steps=size.steps, save_at=save_at, progress=False
        )
        return run.predictions

    predicted = cost.median_seconds(predict, repeats=repeats).median
    trained = cost.median_seconds(train, repeats=repeats).median
    return dataclasses.asdict(size) | dict(
        predict_s=predicted, train_s=trained, cost_ratio=predicted / trained
    )


def chapter_costs(sizes: Sizes, say: Progress) -> dict:
    """predict.cost_ratio_by_chapter: prediction time over training time at the sizes of
    chapters 8 and 13, both timed in this run (below 1: predicting is cheaper)."""
    rows = []
    for size in sizes.chapters:
        say(f"{size.name}: prediction and training, {size.steps} steps ...")
        rows.append(_chapter_cost(size, sizes.repeats))
        say(
            f"  prediction {rows[-1]['predict_s']:.3g} s, training {rows[-1]['train_s']:.3g} s,"
            f" ratio {rows[-1]['cost_ratio']:.3g}"
        )
    return {
        "predict.cost_ratio_by_chapter": {r["name"]: r["cost_ratio"] for r in rows},
        "predict.chapter_timings": rows,
    }


def simulate_vs_loop(sizes: Sizes, say: Progress) -> dict:
    """simulate.speedup_vs_python_loop, with a check that both trainings agree.

    Both sides log every agent's local loss at every step and keep the final parameters:
    the companion saves predictions at the last step only (``SaveAt``).
    """
    rows = []
    last = simulate.SaveAt(steps=(sizes.steps,))
    for width in sizes.loop_widths:
        problem, mixing = cost.setup(sizes.loop_n, num_agents=sizes.loop_agents, width=width)
        lr = cost.stable_lr(problem, mixing)
        args = dict(
            inputs=problem.inputs,
            targets=problem.targets,
            partition=problem.partition,
            mixing=mixing,
            lr=lr,
            steps=sizes.steps,
        )
        ours = cost.median_seconds(
            lambda p=problem, w=mixing, lr=lr: _train(p, w, lr, sizes.steps, save_at=last),
            repeats=sizes.repeats,
        )
        say(f"simulate Q={sizes.loop_agents} width={width}: {ours.median:.3g} s; Python loop ...")
        loop = cost.median_seconds(
            lambda p=problem, a=args: train_loop(p.model.apply_fn, p.params, **a),
            repeats=sizes.repeats,
        )
        thetas, _ = train_loop(problem.model.apply_fn, problem.params, **args)
        final = np.stack([problem.model.apply_fn(t, problem.inputs) for t in thetas])
        trained = _train(problem, mixing, lr, sizes.steps, save_at=last)
        diff = float(np.max(np.abs(final - trained.predictions[-1])))
        rows.append(
            dict(
                width=width,
                simulate_s=ours.median,
                python_loop_s=loop.median,
                speedup=loop.median / ours.median,
                max_abs_diff=diff,
            )
        )
        say(f"  loop {loop.median:.3g} s, speedup {rows[-1]['speedup']:.1f}x, diff {diff:.1e}")
    return {
        # the target holds at every width of the comparison, so the key is the smallest
        "simulate.speedup_vs_python_loop": min(r["speedup"] for r in rows),
        "simulate.speedup_by_width": {str(r["width"]): r["speedup"] for r in rows},
        "simulate.loop_max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "simulate.timings": rows,
    }


def scaling(sizes: Sizes, say: Progress) -> dict:
    """Cost against m, Q and width of the NTK, the closed form and training."""
    reps, steps = sizes.repeats, sizes.scaling_steps
    runs = {
        "ntk_vs_m": cost.sweep("ntk", "n", sizes.ntk_ns, width=256, repeats=reps, progress=say),
        "ntk_vs_width": cost.sweep(
            "ntk", "width", sizes.ntk_widths, n=sizes.ntk_ns[1], repeats=reps, progress=say
        ),
        "closed_form_vs_m": cost.sweep(
            "closed_form", "n", sizes.dual_ns, steps=steps, repeats=reps, progress=say
        ),
        "closed_form_vs_Q": cost.sweep(
            "closed_form",
            "num_agents",
            sizes.dual_agents,
            n=sizes.dual_ns[-2],
            steps=steps,
            repeats=reps,
            progress=say,
        ),
        "training_vs_Q": cost.sweep(
            "training",
            "num_agents",
            sizes.sim_agents,
            n=sizes.sim_n,
            steps=steps,
            repeats=reps,
            progress=say,
        ),
        "training_vs_width": cost.sweep(
            "training",
            "width",
            sizes.sim_widths,
            n=sizes.sim_n,
            steps=steps,
            repeats=reps,
            progress=say,
        ),
    }
    return {"scaling": runs}
