"""Recorded claims: the numbers the reproducibility report is made of.

A chapter calls :func:`record` for each claim it checks. The claim lands in
``_build/results/<chapter>.json``, where ``<chapter>`` comes from the ``COMPANION_CHAPTER``
environment variable that ``companion run``/``companion book`` set for the kernel
(``interactive`` when a chapter runs by hand). The report chapter calls :func:`gather`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from companion.paths import build_dir

FIELDS = ("id", "chapter", "statement", "paper", "value", "bound", "passed")


def results_dir() -> Path:
    """Where claims are written: ``COMPANION_RESULTS_DIR`` if set, else
    ``_build/results`` of the project."""
    return Path(os.environ.get("COMPANION_RESULTS_DIR") or build_dir() / "results")


def clear(chapter: str) -> None:
    """Forgets the claims ``chapter`` recorded before, so a renamed or dropped claim does
    not outlive the run that stopped recording it."""
    (results_dir() / f"{chapter}.json").unlink(missing_ok=True)


def _plain(value: Any) -> Any:
    """JSON-ready copy of numbers, arrays and dicts of them (keys become strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return (
            [_plain(v) for v in np.asarray(value).tolist()]
            if np.ndim(value)
            else _plain(np.asarray(value).item())
        )
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "item") and np.ndim(value) == 0:  # jax scalars
        return value.item()
    return value


def _check(value: Any, bound: float | None, passed: bool | None) -> bool:
    if passed is not None:
        return bool(passed)
    if isinstance(value, bool):
        return value
    if bound is None:
        raise ValueError("record needs a bound for a numeric value, or an explicit passed=")
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"cannot compare {value!r} with a bound; pass passed= explicitly")
    return value <= bound


def record(
    claim_id: str,
    value: Any,
    *,
    statement: str,
    bound: float | None = None,
    paper: str = "",
    passed: bool | None = None,
) -> dict:
    """Records one claim and returns its entry.

    Args:
      claim_id: stable identifier such as ``"affine.max_rel_err"``.
      value: the measured number, boolean, or a dict of numbers (e.g. by width).
      statement: what the number means, in one sentence.
      bound: upper bound the value must not exceed (numeric claims).
      paper: what the paper says about it.
      passed: explicit verdict for values a bound cannot judge (dicts).

    Example:
      >>> import tempfile, os
      >>> os.environ["COMPANION_RESULTS_DIR"] = tempfile.mkdtemp()
      >>> record("demo.err", 3e-14, bound=1e-10, statement="demo")["passed"]
      True
      >>> del os.environ["COMPANION_RESULTS_DIR"]
    """
    value = _plain(value)
    entry = {
        "id": claim_id,
        "chapter": os.environ.get("COMPANION_CHAPTER", "interactive"),
        "statement": statement,
        "paper": paper,
        "value": value,
        "bound": bound,
        "passed": _check(value, bound, passed),
    }
    folder = str(results_dir())
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{entry['chapter']}.json")
    claims = {}
    if os.path.exists(path):
        with open(path) as f:
            claims = {c["id"]: c for c in json.load(f)}
    claims[claim_id] = entry
    with open(path, "w") as f:
        json.dump(list(claims.values()), f, indent=2)
    return entry


def gather(chapters: Iterable[str], folder: str | None = None) -> list[dict]:
    """All claims recorded by ``chapters`` (in that order); chapters without any are
    skipped, so the caller checks that the claims it expects are present."""
    folder = folder or str(results_dir())
    out: list[dict] = []
    for chapter in chapters:
        path = os.path.join(folder, f"{chapter}.json")
        if os.path.exists(path):
            with open(path) as f:
                out.extend(json.load(f))
    return out
