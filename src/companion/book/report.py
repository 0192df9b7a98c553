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
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from companion.book.paths import build_dir

#: The report chapter's file of every claim, beside the chapters' own files.
REPORT_FILE = "report.json"
FIELDS = ("id", "kind", "chapter", "section", "statement", "paper", "value", "bound", "passed")
KINDS = ("exact", "theorem", "empirical")
#: What each kind of claim is, as the report page introduces it.
KIND_MEANINGS = {
    "exact": "implementation checks: two computations that must agree to rounding (a closed "
    "form against training of the model it is exact for, our kernel against "
    "neural-tangents). They guard the code, not the science.",
    "theorem": "numerical checks of proven statements under their stated hypotheses (the "
    "limit, the stability bound, the order of the flow's error). They fail only if the "
    "code or the hypotheses are wrong.",
    "empirical": "measurements that could have come out otherwise: the closed form "
    "against the real network. Each sits beside a deliberately wrong prediction scored by "
    "the same metric, and counts only if that control fails.",
}

#: The claims the book promises; the report page fails loudly if any is missing.
REQUIRED = (
    "affine.max_rel_err",
    "affine.biased_limit_max_rel_err",
    "affine.bias_lr_slope",
    "linearized.max_rel_err",
    "primal.parameter_max_rel_err",
    "atc_complete_vs_centralized.max_rel_err",
    "flow_single_agent_vs_neural_tangents.max_rel_err",
    "flow.gap_slope_by_algorithm",
    "stability.bound_is_conservative",
    "network.final_loss_rel_err_by_width",
    "network.log_loss_gap_by_width",
    "network.discriminates_topology",
    "ntk.rel_dist_to_analytic_by_width",
    "ntk.width_slope",
    "ntk.drift_by_width",
    "ntk.drift_slope",
    "infinite.single_agent_vs_neural_tangents.max_rel_err",
    "infinite.ensemble_mean_err_by_width",
    "infinite.ensemble_mean_err_slope",
    "infinite.ensemble_var_err_by_width",
    "infinite.expected_loss_err_by_width",
    "validity.fraction_within_5pct",
    "sharded.max_abs_diff",
    "sharded.compiled_bytes_equal_count",
    "sharded.ppermutes_equal_max_degree",
    "sharded.cycle_bytes_vs_allgather",
    "timevarying.linearized_max_rel_err",
    "one_peer.exact_average_max_abs",
    "random_links.mean_within_3se_fraction",
    "random_links.second_moment_within_3se_fraction",
    "noniid.limit_partition_independent_max_rel_err",
    "noniid.network_err_by_alpha",
    "tuning.reduced_threshold_first_crossing_err",
    "tuning.rank_correlation",
    "tuning.best_in_observed_top10pct",
    "tuning.regret_rel",
    "tuning.predict_vs_train_cost_ratio",
)


def results_dir() -> Path:
    """Where claims are written: ``COMPANION_RESULTS_DIR`` if set, else
    ``_build/results`` of the project."""
    return Path(os.environ.get("COMPANION_RESULTS_DIR") or build_dir() / "results")


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
    kind: str,
    statement: str,
    bound: float | None = None,
    passed: bool | None = None,
    control_value: Any = None,
    control: str = "",
    control_passed: bool | None = None,
    paper: str = "",
    section: str = "",
) -> dict:
    """Records one claim and returns its entry.

    Args:
      claim_id: stable identifier such as ``"affine.max_rel_err"``.
      value: the measured number, boolean, or a dict of numbers (e.g. by width).
      kind: ``"exact"`` (an implementation check: closed form against training, to
        rounding), ``"theorem"`` (a numerical check of a proven statement) or
        ``"empirical"`` (a measurement that could have come out otherwise).
      statement: what the number means, in one sentence.
      bound: upper bound the value must not exceed (numeric claims).
      passed: explicit verdict for values a bound cannot judge (dicts).
      control_value: what the same metric gives on a deliberately wrong prediction
        (another graph's closed form, a step size off by 20%, another seed's kernel);
        required for empirical claims.
      control: what the wrong prediction is, in a few words.
      control_passed: the control's verdict when a bound cannot judge it; an empirical
        claim passes only if its control fails.
      paper: what the paper states about it (only what the paper states).
      section: the label of the chapter section that establishes the claim, so the
        report can link to it.

    Example:
      >>> import tempfile, os
      >>> os.environ["COMPANION_RESULTS_DIR"] = tempfile.mkdtemp()
      >>> record("demo.err", 3e-14, kind="exact", bound=1e-10, statement="demo")["passed"]
      True
      >>> entry = record("demo.fit", 0.05, kind="empirical", bound=0.1, statement="demo",
      ...                control_value=0.04, control="a wrong prediction")
      >>> entry["passed"], entry["control_passed"]  # a control that passes sinks the claim
      (False, True)
      >>> del os.environ["COMPANION_RESULTS_DIR"]
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    value = _plain(value)
    own = _check(value, bound, passed)
    entry = {
        "id": claim_id,
        "kind": kind,
        "chapter": os.environ.get("COMPANION_CHAPTER", "interactive"),
        "section": section,
        "statement": statement,
        "paper": paper,
        "value": value,
        "bound": bound,
        "passed": own,
    }
    if kind == "empirical" and control_value is None:
        raise ValueError(
            f"empirical claim {claim_id!r} needs control_value=: what its metric gives on a "
            "deliberately wrong prediction"
        )
    if control_value is not None:
        control_value = _plain(control_value)
        control_ok = _check(control_value, bound, control_passed)
        entry |= {"control": control, "control_value": control_value, "control_passed": control_ok}
        entry["passed"] = own and not control_ok
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


def write_report(claims: list[dict]) -> Path:
    """Writes every claim to ``<results>/report.json`` in one step (a temporary file
    renamed over the old one), so an interrupted build never leaves half a report."""
    path = results_dir() / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(claims, indent=2))
    os.replace(partial, path)
    return path


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


def missing(claims: Iterable[dict], required: Iterable[str] = REQUIRED) -> list[str]:
    """The required claim ids that ``claims`` lacks.

    Example:
      >>> missing([{"id": "a"}], ["a", "b"])
      ['b']
    """
    found = {c["id"] for c in claims}
    return [claim for claim in required if claim not in found]


def show(value: Any) -> str:
    """A claim's value as the report prints it: floats to 3 significant digits.

    Example:
      >>> show({"64": 0.123456, "128": True})
      '64: 0.123, 128: True'
    """
    if isinstance(value, dict):
        return ", ".join(f"{k}: {show(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _escape(text: str) -> str:
    """Backslash-escape Markdown punctuation so statements render as written."""
    return re.sub(r"([\\`*_{}\[\]<>()#+.!|$~-])", r"\\\1", text)


def _link(claim: dict) -> str:
    if claim.get("section"):
        return f"{{ref}}`{claim['id']} <{claim['section']}>`"
    return f"`{claim['id']}`"


def claims_table(claims: Iterable[dict]) -> str:
    """A MyST Markdown table of the claims: verdict, linked id, value, bound, and what the
    same metric gives on the deliberately wrong prediction (the control) with its verdict.

    Example:
      >>> print(claims_table([{"id": "a.b", "section": "s", "value": 0.05, "bound": 0.1,
      ...                      "passed": True, "control_value": 0.4, "control_passed": False}]))
      | verdict | claim | ours | bound | control |
      | --- | --- | --- | --- | --- |
      | pass | {ref}`a.b <s>` | 0\\.05 | <= 0.1 | 0\\.4: fails |
    """
    rows = ["| verdict | claim | ours | bound | control |", "| --- | --- | --- | --- | --- |"]
    for c in claims:
        bound = "" if c.get("bound") is None else f"<= {c['bound']:.3g}"
        verdict = "pass" if c["passed"] else "**FAIL**"
        value = _escape(show(c["value"]))
        control = ""
        if "control_value" in c:
            outcome = "**PASSES: the metric cannot tell**" if c["control_passed"] else "fails"
            control = f"{_escape(show(c['control_value']))}: {outcome}"
        rows.append(f"| {verdict} | {_link(c)} | {value} | {bound} | {control} |")
    return "\n".join(rows)


def claims_glossary(claims: Iterable[dict]) -> str:
    """A Markdown list: each claim's kind and statement, its control, and what the paper
    states.

    Example:
      >>> print(claims_glossary([{"id": "a", "chapter": "01_x", "kind": "empirical",
      ...     "statement": "agreement", "control": "a wrong step", "paper": ""}]))
      - **a** (01\\_x, empirical): agreement. *Control:* a wrong step.
    """
    return "\n".join(
        f"- **{_escape(c['id'])}** ({_escape(c['chapter'])}, {c['kind']}): "
        + _escape(c["statement"].rstrip("."))
        + "."
        + (f" *Control:* {_escape(c['control'])}." if c.get("control") else "")
        + (f" *Paper:* {_escape(c['paper'])}." if c.get("paper") else "")
        for c in claims
    )
