"""The measurements of ``make bench`` for scale: the structured NTK against
neural-tangents' implementation 2 on all n = 100 samples at width 1024 (the fastest of its
three implementations is timed at every size by ``suite.ntk_speedup``) and against the
machine's matrix-multiply rate, the closed form at m = 10^4, and the sharded training step
on emulated devices.

Each function returns a flat dict of ``_build/bench.json`` entries; both sides of every
ratio are measured in this run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np

from benchmarks.suite import Progress, Sizes
from companion import cost
from companion.sharded import check


def ntk_baselines(sizes: Sizes, say: Progress) -> dict:
    """ntk.speedup_vs_nt_impl2 and ntk.fraction_of_matmul_peak.

    neural-tangents' implementation 2 (NTK-vector products) needs no Jacobian contraction
    but holds about as much memory as implementation 1 (11 GB at width 1024, n = 100); it is
    timed once, warm. The structured NTK's rate counts 2 flops per multiply-add of
    :func:`companion.cost.operations` (Grams, sensitivity products, backpropagation; the
    forward pass, about 4% more at width 1024, is left out, so the rate is a lower bound);
    the peak is the faster of XLA's and NumPy's float64 matrix products.
    """
    problem, _ = cost.setup(sizes.impl2_n, num_agents=4, width=sizes.width)
    ours = cost.median_seconds(lambda: cost.compute_ntk(problem), repeats=sizes.repeats)
    say(f"structured NTK width={sizes.width} n={sizes.impl2_n}: {ours.median:.3g} s; impl 2 ...")
    impl2 = jax.jit(
        nt.empirical_ntk_fn(
            problem.model.apply_fn,
            trace_axes=(),
            vmap_axes=0,
            implementation=nt.NtkImplementation.NTK_VECTOR_PRODUCTS,
        )
    )
    kernels = []

    def baseline() -> np.ndarray:
        kernels.append(np.asarray(impl2(problem.inputs, None, problem.params)))
        return kernels[-1]

    theirs = cost.median_seconds(baseline, repeats=1)
    n, c = problem.targets.shape
    reference = kernels[-1].transpose(0, 2, 1, 3).reshape(n * c, n * c)
    diff = np.max(np.abs(cost.compute_ntk(problem) - reference)) / np.max(np.abs(reference))
    say(f"  impl 2 {theirs.median:.3g} s, speedup {theirs.median / ours.median:.0f}x")
    flop_rate = 2 * cost.operations("ntk", n=sizes.impl2_n, width=sizes.width) / ours.median
    peak = matmul_rates(sizes.matmul_size, sizes.repeats)
    say(f"  {flop_rate / 1e9:.1f} GFLOP/s against matmul {max(peak.values()) / 1e9:.1f}")
    return {
        "ntk.speedup_vs_nt_impl2": theirs.median / ours.median,
        "ntk.impl2_max_rel_diff": float(diff),
        "ntk.fraction_of_matmul_peak": flop_rate / max(peak.values()),
        "ntk.flop_rate": flop_rate,
        "matmul.flop_rate": peak,
        "ntk.impl2_timings": dict(
            width=sizes.width, n=sizes.impl2_n, companion_s=ours.median, impl2_s=theirs.median
        ),
    }


def matmul_rates(size: int, repeats: int) -> dict[str, float]:
    """Flops per second of one float64 ``size x size`` matrix product, XLA and NumPy."""
    a = np.random.default_rng(0).normal(size=(size, size))
    b = a.T.copy()
    product = jax.jit(jnp.matmul)
    on_device = (jnp.asarray(a), jnp.asarray(b))
    seconds = {
        "xla": cost.median_seconds(lambda: product(*on_device), repeats=repeats).median,
        "numpy": cost.median_seconds(lambda: a @ b, repeats=repeats).median,
    }
    return {k: 2 * size**3 / s for k, s in seconds.items()}


def closed_form_large_m(sizes: Sizes, say: Progress) -> dict:
    """closed_form.large_m_seconds_per_step and its peak memory, in a fresh process."""
    short, long = sizes.large_m_steps
    say(f"closed form at m={10 * sizes.large_m_n} (fresh process) ...")
    command = [sys.executable, "-m", "benchmarks.large_m", str(sizes.large_m_n), "64"]
    out = subprocess.run(
        [*command, str(short), str(long)], check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    say(
        f"  {result['seconds_per_step']:.3g} s per step, peak {result['peak_bytes'] / 1e9:.2f}"
        f" GB = {result['peak_memory_ratio']:.2f} x the model"
    )
    return {
        "closed_form.large_m_seconds_per_step": result["seconds_per_step"],
        "closed_form.large_m_peak_memory_ratio": result["peak_memory_ratio"],
        "closed_form.large_m": result,
    }


def sharded(sizes: Sizes, say: Progress) -> dict:
    """sharded.max_abs_diff over the equality cases and, on the 8-agent cycle, the bytes
    one mixing moves against an all-gather (measured from the compiled program) and the
    warm training step against the one-device step, all on emulated CPU devices."""
    say(f"sharded runs on {sizes.sharded_devices} emulated devices (fresh process) ...")
    row = cost.mlp_parameters(sizes.width, 3, 64, 10)
    timing = ",".join(map(str, (*sizes.sharded_timing, sizes.repeats)))
    args = ["--sizes", "8", "--row-floats", str(row), "--timing", timing]
    args += [] if sizes.sharded_all_cases else ["--quick"]
    result = check.emulated(sizes.sharded_devices, args)
    cycle = next(r for r in result["traffic"] if r["graph"] == "cycle")
    steps = result["timing"]
    say(f"  sharded step {steps['sharded']:.3g} s against one device {steps['one_device']:.3g} s")
    return {
        "sharded.max_abs_diff": max(c["max_abs_diff"] for c in result["equality"]),
        "sharded.bytes_per_step_vs_allgather": cycle["measured_bytes"]
        / cycle["allgather_measured_bytes"],
        "sharded.bytes_per_step": cycle["measured_bytes"],
        "sharded.step_time_vs_one_device": steps["sharded"] / steps["one_device"],
        "sharded.run": result,
    }
