"""Compare two folders of recorded claims (``_build/results``) before and after a change
that must leave the book's numbers alone.

Usage: ``python -m benchmarks.compare_results BEFORE AFTER``. For every claim of BEFORE:

- an exactness claim (a number below 1e-9: an error near machine precision) may grow by at
  most 1e-13 in absolute value (falling toward zero is allowed) and must stay below its bound;
- any other claim must be identical at the precision the book prints (3 significant
  digits, as the report page shows it), number by number inside dictionaries.

Prints one line per difference and exits 1 if there is any. Claims only in AFTER are listed
(new claims are allowed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

EXACT = 1e-9  # values below this are errors near machine precision
MOVE = 1e-13  # how far such an error may move


def load(folder: Path) -> dict[str, dict]:
    """Every claim of every chapter file in ``folder`` (not the gathered report.json, nor
    records of runs outside the book, ``interactive.json``)."""
    claims: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")):
        if path.stem not in ("report", "interactive"):
            claims.update({c["id"]: c for c in json.loads(path.read_text())})
    return claims


def printed(value: Any) -> Any:
    """The value at the precision the book prints: floats to 3 significant digits."""
    if isinstance(value, dict):
        return {k: printed(v) for k, v in value.items()}
    if isinstance(value, float):
        return float(f"{value:.3g}")
    return value


def differences(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    """One message per claim of ``before`` that ``after`` lost or changed beyond the rules.

    Example:
        >>> old = {"a": {"value": 1e-15, "bound": 1e-10, "passed": True}}
        >>> differences(old, {"a": {"value": 3e-15, "bound": 1e-10, "passed": True}})
        []
        >>> differences(old, {"a": {"value": 2e-13, "bound": 1e-10, "passed": True}})
        ['a: exactness moved by 2e-13 (1e-15 -> 2e-13), more than 1e-13']
    """
    out = []
    for claim_id, old in before.items():
        new = after.get(claim_id)
        if new is None:
            out.append(f"{claim_id}: missing after the change")
            continue
        a, b = old["value"], new["value"]
        if isinstance(a, float) and abs(a) < EXACT:
            if not isinstance(b, float) or abs(b) - abs(a) > MOVE:  # closer to 0 is fine
                out.append(
                    f"{claim_id}: exactness moved by {abs(b - a):.1g} ({a:.3g} -> {b:.3g}), "
                    f"more than {MOVE:g}"
                )
            elif old["passed"] and not new["passed"]:
                out.append(f"{claim_id}: no longer passes")
        elif printed(a) != printed(b) or old["passed"] != new["passed"]:
            out.append(f"{claim_id}: {printed(a)} -> {printed(b)} (passed {new['passed']})")
    return out


def main(argv: list[str]) -> int:
    """Compare BEFORE with AFTER; exit 1 on any difference."""
    if len(argv) != 2:
        print(__doc__)
        return 2
    before, after = (load(Path(folder)) for folder in argv)
    found = differences(before, after)
    for line in found:
        print(line)
    added = sorted(set(after) - set(before))
    print(f"{len(before)} claims compared, {len(found)} differ; new after: {added or 'none'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
