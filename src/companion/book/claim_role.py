"""The ``{claim}`` role: a recorded claim's number or verdict, inline in the prose.

Chapters record their claims (:func:`companion.book.report.record`) when they execute; the
HTML is built afterwards, so the prose can quote the records instead of numbers typed by
hand or sentences assembled in code::

    The final loss is off by {claim}`network.final_loss_rel_err`.
    At the largest width the error is {claim}`network.final_loss_rel_err_by_width:value.1024`.

``{claim}`ID``` renders the value with its bound, its rival and margin for empirical
claims, and the verdict: "0.032 (bound 0.15; rival 0.21, margin 0.18 [0.12, 0.2]; passes)".
``{claim}`ID:FIELD``` renders one field: ``value`` (or ``value.KEY`` of a dict value),
``verdict`` ("passes" / "fails"), ``bound``, ``rival`` (the rival's value), ``margin``,
``interval``, ``control`` (the control's value). An unknown claim or field is a build error
(the book builds with warnings as errors), so prose never quotes a claim that did not run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from docutils import nodes

from companion.book import report
from companion.book.paths import build_dir


def _load(folder: Path) -> dict[str, dict]:
    claims: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name != report.REPORT_FILE:
            claims |= {c["id"]: c for c in json.loads(path.read_text())}
    return claims


def _interval(claim: dict) -> str:
    low, high = claim["margin_interval"]
    return f"[{low:.3g}, {high:.3g}]"


def _verdict(claim: dict) -> str:
    return "passes" if claim["passed"] else "fails"


def _summary(claim: dict) -> str:
    parts = []
    if claim.get("bound") is not None:
        parts.append(f"bound {claim['bound']:.3g}")
    if "rival_value" in claim:
        parts.append(
            f"rival {report.show(claim['rival_value'])}, margin {claim['margin']:.3g} "
            f"{_interval(claim)}"
        )
    parts.append(_verdict(claim))
    return f"{report.show(claim['value'])} ({'; '.join(parts)})"


def render(claim: dict, field: str = "") -> str:
    """The text ``{claim}`` shows for ``claim`` (one recorded entry) and ``field``.

    Example:
      >>> entry = {"id": "a", "value": {"64": 0.4, "1024": 0.032}, "bound": 0.15,
      ...          "passed": True}
      >>> render(entry, "value.1024"), render(entry, "verdict")
      ('0.032', 'passes')
      >>> render({"id": "b", "value": 0.05, "bound": 0.1, "passed": False})
      '0.05 (bound 0.1; fails)'
    """
    if not field:
        return _summary(claim)
    name, _, key = field.partition(".")
    fields = {
        "value": lambda: claim["value"],
        "verdict": lambda: _verdict(claim),
        "bound": lambda: claim["bound"],
        "rival": lambda: claim["rival_value"],
        "margin": lambda: claim["margin"],
        "interval": lambda: _interval(claim),
        "control": lambda: claim["control_value"],
    }
    if name not in fields:
        raise ValueError(
            f"claim {claim['id']!r} has no field {field!r}: use one of {', '.join(fields)} "
            "(value.KEY for one entry of a dict value)"
        )
    try:
        value = fields[name]()
        if key:
            value = value[key]
    except (KeyError, TypeError) as missing:
        raise ValueError(
            f"claim {claim['id']!r} has no {field!r} (recorded fields: "
            f"{', '.join(sorted(claim))}; value keys: "
            f"{', '.join(map(str, claim['value'])) if isinstance(claim['value'], dict) else '-'})"
        ) from missing
    return value if isinstance(value, str) else report.show(value)


def _role(name, rawtext, text, lineno, inliner, options=None, content=None):
    env = inliner.document.settings.env
    claims = env.app.companion_claims
    claim_id, _, field = text.strip().partition(":")
    try:
        if claim_id not in claims:
            raise ValueError(
                f"no recorded claim {claim_id!r}: the chapter that records it has not run, "
                "or the id is misspelt"
            )
        shown = render(claims[claim_id], field)
    except ValueError as error:
        message = inliner.reporter.error(f"{{claim}}: {error}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    return [nodes.inline(rawtext, shown, classes=["claim"])], []


def _read_claims(app) -> None:
    # the book's own results, found from the source folder, not from the working directory
    folder = os.environ.get("COMPANION_RESULTS_DIR") or build_dir(Path(app.srcdir)) / "results"
    app.companion_claims = _load(Path(folder))


def setup(app) -> dict[str, Any]:
    """Registers the ``claim`` role; the claims are read once when the build starts."""
    app.connect("builder-inited", _read_claims)
    app.add_role("claim", _role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
