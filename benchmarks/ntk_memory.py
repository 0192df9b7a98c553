"""Peak resident-memory growth of one structured NTK, measured in a fresh process.

Run as ``python -m benchmarks.ntk_memory N WIDTH``; prints one JSON line. The baseline is
the resident set just before the call (after imports, data and theta_0); the peak is the
larger of a 2 ms RSS sampler and ``ru_maxrss`` when the call raised it. Compilation during
the call counts, as it would for a user's first call: the persistent compilation cache
that ``make`` turns on is turned off here, before jax is imported.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_growth(fn: Callable[[], Any]) -> tuple[Any, int]:
    """``fn()`` and how far the resident set grew above its size just before the call, at
    its peak: the larger of a 2 ms sampler and ``ru_maxrss`` when the call raised it."""
    before, max_before = rss_bytes(), _maxrss_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    value = fn()
    done.set()
    sampler.join()
    max_after = _maxrss_bytes()
    return value, max(peak[0], max_after if max_after > max_before else 0) - before


def main(n: int, width: int) -> dict[str, float]:
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
    from companion import cost

    problem, _ = cost.setup(n, num_agents=4, width=width)
    before = rss_bytes()
    kernel, growth = peak_growth(lambda: cost.compute_ntk(problem))
    return {
        "m": kernel.shape[0],
        "width": width,
        "kernel_bytes": kernel.nbytes,
        "rss_before_bytes": before,
        "peak_growth_bytes": growth,
        "ratio": growth / kernel.nbytes,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
