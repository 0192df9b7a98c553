"""Seconds per step and peak memory of the dual closed form at large m, in a fresh process.

Run as ``python -m benchmarks.large_m N WIDTH SHORT LONG``; prints one JSON line. The
problem is :func:`companion.cost.setup`'s (digits, m = 10 N outputs, Q = 4 agents on a
cycle), its kernel computed first. Seconds per step are the difference of the warm times of
``LONG`` and ``SHORT`` steps over ``LONG - SHORT``, so fixed costs (placing K's rows on the
device, validating, reading results back) cancel. The peak is the resident set above the
process before its kernel existed, at the peak of a warm ``LONG``-step call
(:func:`benchmarks.ntk_memory.peak_growth`), against the memory model of
:func:`companion.cost.estimate`: the kernel plus every stored prediction.
"""

from __future__ import annotations

import json
import sys
import time


def main(n: int, width: int, short: int, long: int) -> dict[str, float]:
    from benchmarks.ntk_memory import peak_growth, rss_bytes
    from companion import cost, dynamics

    problem, mixing = cost.setup(n, num_agents=4, width=width)
    empty = rss_bytes()
    start = time.perf_counter()
    kernel = problem.kernel
    kernel_s = time.perf_counter() - start
    form = dynamics.closed_form(problem, "dgd", mixing, lr=cost.stable_lr(problem, mixing))
    seconds = {
        k: cost.median_seconds(lambda k=k: form.steps(k), repeats=2).median for k in (short, long)
    }
    before = rss_bytes()
    _, growth = peak_growth(lambda: form.steps(long))
    peak = before - empty + growth
    model = (
        1e9
        * cost.estimate({"ntk": 0, "closed_form": 0}, n=n, num_agents=4, width=width, steps=long)[
            "gigabytes"
        ]
    )
    return {
        "m": kernel.shape[0],
        "kernel_seconds": kernel_s,
        "seconds": seconds,
        "seconds_per_step": (seconds[long] - seconds[short]) / (long - short),
        "peak_bytes": peak,
        "model_bytes": model,
        "peak_memory_ratio": peak / model,
    }


if __name__ == "__main__":
    print(json.dumps(main(*map(int, sys.argv[1:5]))))
