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
KINDS = ("exact", "theorem", "empirical", "observation")
#: What an empirical claim must carry: its rival and the paired margin over it.
RIVAL_FIELDS = ("rival", "rival_value", "margin", "margin_interval")
#: What each kind of claim is, as the report page introduces it.
KIND_MEANINGS = {
    "exact": "implementation checks: two computations that must agree to rounding (a closed "
    "form against training of the model it is exact for, our kernel against "
    "neural-tangents). They guard the code, not the science.",
    "theorem": "numerical checks of proven statements under their stated hypotheses (the "
    "limit, the stability bound, the order of the flow's error). They fail only if the "
    "code or the hypotheses are wrong.",
    "empirical": "measurements that could have come out otherwise: the closed form "
    "against the real network. Each is judged against its rival, the strongest cheap "
    "explanation that does not use what the claim credits, scored by the same metric on "
    "the same seeds or configurations; it passes only if it meets its bound and the 95% "
    "bootstrap interval of its margin over the rival lies above zero (and any deliberately "
    "wrong control beside it fails).",
    "observation": "measurements recorded for what they show, whose only comparison is a "
    "prediction that is wrong by construction. A wrong-by-construction control cannot "
    "lose, so these are not evidence for the closed form; they are kept so the reader can "
    "see them.",
}

#: The claims the book promises; the report page fails loudly if any is missing.
REQUIRED = (
    "affine.max_rel_err",
    "affine.biased_limit_max_rel_err",
    "affine.bias_lr_slope",
    "affine.grid_limit_bias",
    "linearized.max_rel_err",
    "primal.parameter_max_rel_err",
    "atc_complete_vs_centralized.max_rel_err",
    "flow_single_agent_vs_neural_tangents.max_rel_err",
    "flow.gap_slope_by_algorithm",
    "stability.bound_is_conservative",
    "network.final_loss_rel_err_by_width",
    "network.log_loss_gap_by_width",
    "network.discriminates_topology",
    "network.graph_effect_rel_err_by_width",
    "network.graph_effect_steps_rel_err_by_width",
    "dgd.network.worst_agent_loss_rel_err_by_width",
    "atc.network.worst_agent_loss_rel_err_by_width",
    "cta.network.worst_agent_loss_rel_err_by_width",
    "stability.catapult_end_threshold_ratio",
    "ntk.rel_dist_to_analytic_by_width",
    "ntk.width_slope",
    "ntk.drift_by_width",
    "ntk.drift_slope",
    "infinite.single_agent_vs_neural_tangents.max_rel_err",
    "infinite.ensemble_mean_err_by_width",
    "infinite.ensemble_mean_err_slope",
    "infinite.ensemble_var_err_by_width",
    "infinite.expected_loss_err_by_width",
    "infinite.own_kernel_vs_twin_by_width",
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
    "noniid.network_err_smallest_width",
    "noniid.centralized_fit_shift",
    "tuning.reduced_threshold_first_crossing_err",
    "tuning.rank_correlation",
    "tuning.best_in_observed_top10pct",
    "tuning.regret_rel",
    "tuning.predict_vs_train_cost_ratio",
    "tuning.rank_correlation_vs_rival",
    "tuning.within_fraction_rank_correlation",
    "tuning.cost_regret_vs_rival",
    "tuning.test_loss_rank_correlation_vs_rival",
    "mnist1d.final_loss_rel_err_by_width",
    "mnist1d.log_loss_gap_by_width",
    "mnist1d.digits_final_loss_rel_err_by_width",
    "mnist1d.graph_effect_rel_err",
    "mnist1d.validity_fraction_within_5pct",
    "mnist1d.digits_validity_fraction_within_5pct",
    "mnist1d.tuning_rank_correlation",
    "mnist1d.conv_final_loss_rel_err",
    "mnist1d.error_fall_factor",
    "sgd.mean_equals_full_batch_max_rel_err",
    "sgd.second_moment_enumeration_max_rel_err",
    "sgd.linearized_within_3se_fraction",
    "sgd.network_band_err_by_width",
    "sgd.mean_square_threshold_by_batch",
    "sgd.cost_to_target_by_batch",
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
    rival: str = "",
    rival_value: Any = None,
    margin: float | None = None,
    margin_interval: Any = None,
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
        (another graph's closed form, a step size off by 20%); optional, an extra check
        beside the rival. A claim with a control passes only if the control fails.
      control: what the wrong prediction is, in a few words.
      control_passed: the control's verdict when a bound cannot judge it.
      rival: the strongest cheap explanation that does not use what the claim credits,
        in words; required for empirical claims, with the next three.
      rival_value: what the same metric gives for the rival (a number or a dict).
      margin: the median paired improvement over the rival (positive: we do better),
        e.g. from :func:`companion.rivals.margin` (``**m.fields()``).
      margin_interval: its 95% bootstrap interval ``[low, high]``; an empirical claim
        passes only if ``low > 0``.
      paper: what the paper states about it (only what the paper states).
      section: the label of the chapter section that establishes the claim, so the
        report can link to it.

    Example:
      >>> import tempfile, os
      >>> os.environ["COMPANION_RESULTS_DIR"] = tempfile.mkdtemp()
      >>> record("demo.err", 3e-14, kind="exact", bound=1e-10, statement="demo")["passed"]
      True
      >>> entry = record("demo.fit", 0.05, kind="empirical", bound=0.1, statement="demo",
      ...                rival="the graph does not matter", rival_value=0.2, margin=0.15,
      ...                margin_interval=[-0.01, 0.3])
      >>> entry["passed"]  # the margin's interval reaches zero: not shown to beat the rival
      False
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
    if kind == "empirical":
        entry |= _rival(claim_id, rival, rival_value, margin, margin_interval)
        entry["passed"] = own and entry["margin_interval"][0] > 0
    elif rival or rival_value is not None or margin is not None or margin_interval is not None:
        raise ValueError(
            f"claim {claim_id!r} of kind {kind!r} was given a rival: only empirical claims "
            "are judged against one; record it with kind='empirical'"
        )
    if control_value is not None:
        control_value = _plain(control_value)
        control_ok = _check(control_value, bound, control_passed)
        entry |= {"control": control, "control_value": control_value, "control_passed": control_ok}
        entry["passed"] = entry["passed"] and not control_ok
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


def _rival(claim_id: str, rival: str, value: Any, margin: Any, interval: Any) -> dict:
    """The rival fields of an empirical claim, checked: all four present, the interval a
    finite ``[low, high]`` pair around the margin."""
    given = {"rival": rival or None, "rival_value": value, "margin": margin}
    absent = [name for name, v in given.items() if v is None] + (
        ["margin_interval"] if interval is None else []
    )
    if absent:
        raise ValueError(
            f"empirical claim {claim_id!r} needs {', '.join(n + '=' for n in absent)}: name "
            "its rival (the strongest cheap explanation that does not use what the claim "
            "credits) and pass companion.rivals.margin(ours, rival).fields(); a claim whose "
            "only comparison is wrong by construction is kind='observation'"
        )
    pair = [float(x) for x in np.asarray(interval, dtype=float).ravel()]
    if len(pair) != 2 or not all(map(math.isfinite, pair)) or pair[0] > pair[1]:
        raise ValueError(
            f"empirical claim {claim_id!r}: margin_interval must be a finite [low, high] "
            f"pair with low <= high, got {interval!r}"
        )
    return {
        "rival": rival,
        "rival_value": _plain(value),
        "margin": float(margin),
        "margin_interval": pair,
    }


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


def _control(claim: dict) -> str:
    if "control_value" not in claim:
        return ""
    outcome = "**PASSES: the metric cannot tell**" if claim["control_passed"] else "fails"
    return f"{_escape(show(claim['control_value']))}: {outcome}"


def _margin(claim: dict) -> str:
    low, high = claim["margin_interval"]
    return _escape(f"{claim['margin']:.3g} [{low:.3g}, {high:.3g}]")


def claims_table(claims: Iterable[dict]) -> str:
    """A MyST Markdown table of the claims: verdict, linked id, value, bound; for empirical
    claims the rival's value and the margin over it with its 95% interval; and what the same
    metric gives on a deliberately wrong prediction (the control) where there is one.

    Example:
      >>> print(claims_table([{"id": "a.b", "section": "s", "value": 0.05, "bound": 0.1,
      ...     "passed": True, "kind": "empirical", "rival_value": 0.3, "margin": 0.25,
      ...     "margin_interval": [0.2, 0.3]}]))
      | verdict | claim | ours | bound | rival | margin [95% interval] | control |
      | --- | --- | --- | --- | --- | --- | --- |
      | pass | {ref}`a.b <s>` | 0\\.05 | <= 0.1 | 0\\.3 | 0\\.25 \\[0\\.2, 0\\.3\\] |  |
    """
    claims = list(claims)
    rivals = any(c.get("kind") == "empirical" for c in claims)
    head = ["verdict", "claim", "ours", "bound"] + (["rival", "margin [95% interval]"] * rivals)
    rows = ["| " + " | ".join([*head, "control"]) + " |", "| --- " * (len(head) + 1) + "|"]
    for c in claims:
        cells = [
            "pass" if c["passed"] else "**FAIL**",
            _link(c),
            _escape(show(c["value"])),
            "" if c.get("bound") is None else f"<= {c['bound']:.3g}",
        ]
        if rivals:
            cells += [_escape(show(c["rival_value"])), _margin(c)]
        rows.append("| " + " | ".join([*cells, _control(c)]) + " |")
    return "\n".join(rows)


def claims_glossary(claims: Iterable[dict]) -> str:
    """A Markdown list: each claim's kind and statement, its rival and control, and what
    the paper states.

    Example:
      >>> print(claims_glossary([{"id": "a", "chapter": "01_x", "kind": "empirical",
      ...     "statement": "agreement", "control": "a wrong step", "paper": ""}]))
      - **a** (01\\_x, empirical): agreement. *Control:* a wrong step.
    """
    return "\n".join(
        f"- **{_escape(c['id'])}** ({_escape(c['chapter'])}, {c['kind']}): "
        + _escape(c["statement"].rstrip("."))
        + "."
        + (f" *Rival:* {_escape(c['rival'])}." if c.get("rival") else "")
        + (f" *Control:* {_escape(c['control'])}." if c.get("control") else "")
        + (f" *Paper:* {_escape(c['paper'])}." if c.get("paper") else "")
        for c in claims
    )
