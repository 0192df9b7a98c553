"""``make bench``: time the companion against its baselines, print a table, write
``_build/bench.json``.

Every figure is the median of warm repetitions (after one untimed call that compiles), and
both sides of every ratio are measured in this one run. ``--quick`` runs tiny sizes (a smoke
test, numbers meaningless).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax

from benchmarks import scale, suite
from companion.book.paths import build_dir

TARGETS = {  # key: (comparison, target)
    "ntk.speedup": (">=", 100.0),
    "ntk.max_rel_diff": ("<=", 1e-12),
    "ntk.peak_memory_ratio": ("<=", 3.0),
    "predict.speedup_vs_training": (">=", 10.0),
    "simulate.speedup_vs_python_loop": (">=", 5.0),
    "ntk.speedup_vs_nt_impl2": (">=", 20.0),
    "ntk.speedup_vs_nt_best": (">=", 1.0),
    "ntk.fraction_of_matmul_peak": (">=", 0.5),
    "sharded.max_abs_diff": ("<=", 1e-12),
    "sharded.bytes_per_step_vs_allgather": ("<", 1.0),
}
#: Figures reported without a target.
MEASURED = (
    "closed_form.large_m_seconds_per_step",
    "closed_form.large_m_peak_memory_ratio",
    "sharded.step_time_vs_one_device",
)


def _say(start: float):
    def say(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", flush=True)

    return say


def run(sizes: suite.Sizes, say) -> dict:
    """All measurements."""
    results: dict = {}
    for part in (
        suite.ntk_speedup,
        suite.ntk_memory,
        suite.predict_vs_training,
        suite.chapter_costs,
        suite.simulate_vs_loop,
        suite.scaling,
        scale.ntk_baselines,
        scale.closed_form_large_m,
        scale.sharded,
    ):
        say(f"== {part.__name__}")
        results.update(part(sizes, say))
    return results


def table(results: dict, sizes: suite.Sizes) -> str:
    """The key figures against their targets, then the scaling slopes."""
    lines = [f"{'key':38s} {'value':>10s}  target   met"]
    for key, (op, target) in TARGETS.items():
        value = results[key]
        met = {">=": value >= target, "<=": value <= target, "<": value < target}[op]
        lines.append(f"{key:38s} {value:10.3g}  {op} {target:<6g} {'yes' if met else 'NO'}")
    lines += [f"{key:38s} {results[key]:10.3g}  (no target)" for key in MEASURED]
    for width, speedup in results["ntk.speedup_by_width"].items():
        n = results["ntk.samples_by_width"][width]
        lines.append(f"  ntk.speedup_by_width[{width}] {speedup:10.3g}  (n = {n} samples)")
    lines.append("NTK against neural-tangents, each size (seconds; speedup against 1, fastest):")
    for row in results["ntk.timings"]:
        nt_s = "  ".join(f"{i}: {row[f'nt_impl{i}_s']:.3g}" for i in (1, 2, 3))
        lines.append(
            f"  width {row['width']:5d} n {row['n']:4d}  ours {row['companion_s']:.3g}  {nt_s}"
            f"  x{row['speedup']:.3g}  x{row['speedup_vs_nt_best']:.3g}"
            f" (fastest: {row['nt_best_implementation']})"
        )
    lines.append("prediction over training time at a chapter's sizes (warm, this run):")
    for row in results["predict.chapter_timings"]:
        lines.append(
            f"  {row['name']:16s} Q={row['num_agents']:<3d} width {row['width']:<5d} "
            f"{row['steps']} steps: {row['predict_s']:.3g} s / {row['train_s']:.3g} s"
            f" = {row['cost_ratio']:.3g}"
        )
    lines.append(f"{'scaling':24s} {'fitted slope':>12s} {'theory':>8s}")
    for name, run_ in results["scaling"].items():
        lines.append(f"  {name:22s} {run_['slope']:12.2f} {run_['theory_slope']:8.2f}")
    few = [w for w, n in results["ntk.samples_by_width"].items() if n < sizes.n]
    if few:
        lines.append(
            f"neural-tangents' Jacobian (n C P floats) exceeds "
            f"{suite.NT_JACOBIAN_BYTES / 2**30:.0f} GiB at width {', '.join(few)}"
            f" with n = {sizes.n}:"
            " both NTKs were timed on the"
            " fewer samples listed above; the ratio is what counts."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="JSON path")
    args = parser.parse_args(argv)
    sizes = suite.QUICK if args.quick else suite.Sizes()
    output = args.output or build_dir() / "bench.json"
    start = time.perf_counter()
    results = run(sizes, _say(start))
    results["meta"] = {
        "quick": args.quick,
        "seconds": time.perf_counter() - start,
        "repeats": sizes.repeats,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "cpu_count": os.cpu_count(),
        "targets": {k: f"{op} {t:g}" for k, (op, t) in TARGETS.items()},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(table(results, sizes))
    print(f"wrote {output} in {results['meta']['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
