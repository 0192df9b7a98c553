"""A chapter's parameters: the flat assignments of its cell tagged ``parameters``.

Each parameter is ``name = value  # comment``. A comment too long for the page's 88 columns
starts on comment lines directly above its assignment and goes on after it, so the cell is
formatted like any other and the page shows it without scrolling. The comment may end with
annotations read here, ``[quick: VALUE]`` (the value quick mode uses), ``[min: BOUND]`` and
``[max: BOUND]``::

    # hidden widths of the sweep [quick: [32, 64]]
    widths = [64, 128, 256, 512, 1024]  # [min: 1]
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the value may hold one level of brackets: [quick: [32, 64]]
ANNOTATION = re.compile(
    r"\s*\[(?P<key>quick|min|max):\s*(?P<value>(?:\[[^\[\]]*\]|[^\[\]])+?)\]\s*$"
)
NO_QUICK = object()  # the parameter keeps its default in quick mode
PAPERMILL_TYPES = (bool, int, float, str, list, dict)  # what papermill injects faithfully


@dataclass(frozen=True)
class Parameter:
    """One line of a chapter's parameters cell."""

    name: str
    default: Any
    comment: str
    quick: Any = NO_QUICK
    low: float | None = None
    high: float | None = None

    def check(self, value: Any) -> Any:
        """Returns ``value`` if it (or every number in it, for a list) lies within the
        parameter's declared ``[min: ...]`` and ``[max: ...]``.

        Example:
          >>> Parameter("steps", 300, "", low=1).check(-3)
          Traceback (most recent call last):
          ...
          ValueError: parameter 'steps' must be at least 1, got -3
        """
        numbers = value if isinstance(value, list) else [value]
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            for bound, fails, words in (
                (self.low, lambda b, x=number: x < b, "at least"),
                (self.high, lambda b, x=number: x > b, "at most"),
            ):
                if bound is not None and fails(bound):
                    shown = f"{number!r} in {value!r}" if isinstance(value, list) else repr(value)
                    raise ValueError(
                        f"parameter {self.name!r} must be {words} {bound!r}, got {shown}"
                    )
        return value

    def coerce(self, text: str) -> Any:
        """Converts a command-line string to the type of the default.

        Example:
          >>> Parameter("steps", 300, "").coerce("50")
          50
          >>> Parameter("quick", False, "").coerce("yes")
          True
          >>> Parameter("steps", 300, "").coerce("fifty")
          Traceback (most recent call last):
          ...
          ValueError: parameter 'steps' expects int (default 300), got 'fifty'
        """
        kind = type(self.default)
        try:
            if kind is bool:
                lowered = text.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if kind is str:
                return text
            if kind in (int, float):
                return kind(text) if kind is float else int(text)
            value = ast.literal_eval(text)
            if not isinstance(value, kind):
                raise ValueError
            return value
        except (ValueError, SyntaxError):
            raise ValueError(
                f"parameter {self.name!r} expects {kind.__name__} "
                f"(default {self.default!r}), got {text!r}"
            ) from None


def parse_parameters(source: str, where: Path) -> tuple[Parameter, ...]:
    lines = source.splitlines()
    params = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            raise ValueError(f"{where}: parameters cell may only hold 'name = value  # comment'")
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            raise ValueError(f"{where}: parameters cell assigns to a non-name")
        comment = _comment(lines, node.lineno - 1)
        default = ast.literal_eval(node.value)
        if not isinstance(default, PAPERMILL_TYPES):
            raise ValueError(
                f"{where}: parameter {target.id!r} has a {type(default).__name__} default; "
                "papermill passes only bool, int, float, str, list and dict (use a list)"
            )
        comment, notes = _annotations(comment, target.id, where)
        quick = notes.get("quick", NO_QUICK)
        if quick is not NO_QUICK and type(quick) is not type(default):
            raise ValueError(
                f"{where}: the quick value {quick!r} of {target.id!r} is not a "
                f"{type(default).__name__} like its default {default!r}"
            )
        param = Parameter(target.id, default, comment, quick, notes.get("min"), notes.get("max"))
        param.check(default)
        if quick is not NO_QUICK:
            param.check(quick)
        params.append(param)
    return tuple(params)


def _comment(lines: list[str], row: int) -> str:
    """The comment of the assignment on ``lines[row]``: the comment lines directly above it
    (up to a blank line, code or a formatter directive), then its trailing comment.

    Example:
      >>> _comment(["a = 1  # one", "# the second", "b = 2  # [min: 0]"], 2)
      'the second [min: 0]'
    """
    line = lines[row]
    parts = [line.split("#", 1)[1].strip()] if "#" in line else []
    while row > 0 and (above := lines[row - 1].strip()).startswith("#"):
        if above.startswith("# fmt:"):
            break
        parts.insert(0, above[1:].strip())
        row -= 1
    return " ".join(part for part in parts if part)


def _annotations(comment: str, name: str, where: Path) -> tuple[str, dict[str, Any]]:
    """Splits ``[quick: ...]``, ``[min: ...]`` and ``[max: ...]`` off the end of a
    parameter's comment; returns the plain comment and the annotations' values."""
    notes: dict[str, Any] = {}
    while found := ANNOTATION.search(comment):
        comment = comment[: found.start()]
        try:
            notes[found["key"]] = ast.literal_eval(found["value"])
        except (ValueError, SyntaxError):
            raise ValueError(
                f"{where}: parameter {name!r} has a {found['key']} value that is not a "
                f"Python literal: {found['value']!r}"
            ) from None
    return comment, notes
