"""`make bench` at tiny sizes: the suite runs end to end and writes every key.

Timings are never asserted (they depend on the machine); only exactness and keys are.
The suite runs as `make bench` runs it, `python -m benchmarks` from the repository root.
"""

from __future__ import annotations

import json
import subprocess
import sys

from companion.book.paths import project_root

KEYS = (
    "ntk.speedup",
    "ntk.speedup_by_width",
    "ntk.max_rel_diff",
    "ntk.peak_memory_ratio",
    "predict.speedup_vs_training",
    "simulate.speedup_vs_python_loop",
    "scaling",
    "ntk.speedup_vs_nt_impl2",
    "ntk.speedup_vs_nt_best",
    "ntk.speedup_vs_nt_best_by_size",
    "predict.cost_ratio_by_chapter",
    "ntk.fraction_of_matmul_peak",
    "closed_form.large_m_seconds_per_step",
    "sharded.max_abs_diff",
    "sharded.bytes_per_step_vs_allgather",
)


def test_quick_bench_writes_every_key(tmp_path, start_up_noise):
    output = tmp_path / "bench.json"
    command = [sys.executable, "-m", "benchmarks", "--quick", "-o", str(output)]
    done = subprocess.run(command, cwd=project_root(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not start_up_noise(done.stderr)
    assert "ntk.speedup" in done.stdout
    results = json.loads(output.read_text())
    for key in KEYS:
        assert key in results, key
    assert set(results["ntk.speedup_by_width"]) == {"8", "16"}
    for run in results["scaling"].values():
        assert {"values", "seconds", "slope", "theory_slope"} <= set(run)
    # the structured NTK and the Python-loop baseline compute the same things exactly
    assert results["ntk.max_rel_diff"] <= 1e-12
    # every size times all three of neural-tangents' implementations, the fastest named
    for row in results["ntk.timings"]:
        assert {"nt_impl1_s", "nt_impl2_s", "nt_impl3_s"} <= set(row)
        assert (
            row["speedup_vs_nt_best"]
            == min(row[f"nt_impl{i}_s"] for i in (1, 2, 3)) / row["companion_s"]
        )
        assert max(row["rel_diff_by_implementation"].values()) <= 1e-12
    assert set(results["predict.cost_ratio_by_chapter"]) == {"tiny", "tiny_sparse"}
    assert results["simulate.loop_max_abs_diff"] <= 1e-10
    assert results["ntk.impl2_max_rel_diff"] <= 1e-12
    assert results["sharded.max_abs_diff"] <= 1e-12
    assert results["sharded.bytes_per_step_vs_allgather"] == 2 / 7  # the cycle on 8 devices
