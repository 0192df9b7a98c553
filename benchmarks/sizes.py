"""The book's sizes against their limits: prose per line of code, code cells, chapters,
modules, ``# fmt: skip`` in the package, and code repeated between chapters.

Repeats are counted with names normalized: every identifier becomes ``N``, every number
``0`` and every string ``S`` before lines are compared, so renaming variables does not hide
a copied block. Two chapters share the lines of every run of at least :data:`MIN_RUN`
consecutive normalized code lines that both contain (longest matching blocks); the limit
applies to the three algorithm chapters, which one driver should serve, and the worst other
pair is shown beside it. Parameters cells are left out of the repeats (not of the other
sizes): papermill needs every chapter to declare its own, one ``name = value  # comment``
per line, and with names normalized any two such declarations are the same line ``N = 0``,
so they would count as copied code whatever the chapters do. Run
``python -m benchmarks.sizes`` (``--json`` for machine-readable output); it exits non-zero if
a limit is missed.
"""

from __future__ import annotations

import argparse
import difflib
import io
import itertools
import json
import keyword
import statistics
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {
    "prose_per_code_line": ("at least", 1.0),
    "median_code_cell": ("at most", 8),
    "largest_code_cell": ("at most", 20),
    "largest_chapter": ("at most", 550),
    "largest_module": ("at most", 400),
    "fmt_skip_in_src": ("at most", 0),
    "algorithm_chapters_repeat": ("at most", 15),
}
MIN_RUN = 4  # consecutive lines: a shorter run is an idiom (import, plot, show)
ALGORITHM_CHAPTERS = ("03_dgd", "04_atc", "05_cta")


def cells(path: Path) -> list[tuple[str, list[str]]]:
    """``(kind, non-empty lines)`` of every cell of a jupytext percent file, kind
    ``"markdown"``, ``"parameters"`` (the code cell tagged so) or ``"code"``; the header
    block before the first cell is skipped."""
    out: list[tuple[str, list[str]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            out.append(("parameters" if '"parameters"' in line else kind, []))
        elif out and line.strip():
            out[-1][1].append(line)
    return out


def normalized(lines: list[str]) -> list[str]:
    """Code lines with identifiers, numbers and strings replaced, comments dropped."""
    shapes = []
    for line in lines:
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            tokens = []
        words = []
        for token in tokens:
            if token.type == tokenize.NAME and not keyword.iskeyword(token.string):
                words.append("N")
            elif token.type == tokenize.NUMBER:
                words.append("0")
            elif token.type == tokenize.STRING:
                words.append("S")
            elif token.type in (tokenize.OP, tokenize.NAME):
                words.append(token.string)
        shapes.append(" ".join(words))
    return shapes


def shared_lines(a: list[str], b: list[str]) -> int:
    """Lines of ``a`` in runs of at least :data:`MIN_RUN` consecutive lines that ``b`` also
    contains.

    Example:
      >>> shared_lines(list("abcdefg"), list("xxcdefgab"))
      5
    """
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks() if block.size >= MIN_RUN)


def measure(root: Path = ROOT) -> dict:
    """Every size of the book and the package under ``root``."""
    chapters = sorted((root / "book").glob("[0-9][0-9]_*.py"))
    prose = code = 0
    code_cells: list[int] = []
    shapes: dict[str, list[str]] = {}
    for chapter in chapters:
        chapter_code: list[str] = []
        for kind, lines in cells(chapter):
            if kind == "markdown":
                prose += len(lines)
            else:
                code += len(lines)
                code_cells.append(len(lines))
                chapter_code += lines if kind == "code" else []
        shapes[chapter.stem] = normalized(chapter_code)
    pairs = {
        f"{a}/{b}": shared_lines(shapes[a], shapes[b]) for a, b in itertools.combinations(shapes, 2)
    }
    algorithm_pairs = {
        f"{a}/{b}": pairs[f"{a}/{b}"]
        for a, b in itertools.combinations(ALGORITHM_CHAPTERS, 2)
        if f"{a}/{b}" in pairs
    }
    modules = {str(p.relative_to(root)): len(p.read_text().splitlines())
               for p in sorted((root / "src").rglob("*.py"))}  # fmt: skip
    lengths = {c.stem: len(c.read_text().splitlines()) for c in chapters}
    others = {k: v for k, v in pairs.items() if k not in algorithm_pairs}
    worst_other = max(others, key=others.__getitem__)
    return {
        "prose_per_code_line": round(prose / code, 2),
        "median_code_cell": statistics.median(code_cells),
        "largest_code_cell": max(code_cells),
        "largest_chapter": max(lengths.values()),
        "largest_module": max(modules.values()),
        "fmt_skip_in_src": sum(
            p.read_text().count("# fmt: skip") for p in (root / "src").rglob("*.py")
        ),
        "algorithm_chapters_repeat": max(algorithm_pairs.values(), default=0),
        "details": {
            "algorithm_pairs": algorithm_pairs,
            "most_repeated_other_pair": {worst_other: others[worst_other]},
            "chapters_over_550": {k: v for k, v in lengths.items() if v > 550},
            "modules_over_400": {k: v for k, v in modules.items() if v > 400},
            "code_cells_over_20": sum(n > 20 for n in code_cells),
        },
    }


def verdicts(sizes: dict) -> dict[str, bool]:
    """Whether each size meets its limit."""
    return {
        name: sizes[name] >= limit if words == "at least" else sizes[name] <= limit
        for name, (words, limit) in LIMITS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the sizes as JSON")
    args = parser.parse_args(argv)
    sizes = measure()
    ok = verdicts(sizes)
    if args.json:
        print(json.dumps(sizes | {"meets": ok}, indent=2))
    else:
        for name, (words, limit) in LIMITS.items():
            mark = "ok  " if ok[name] else "MISS"
            print(f"{mark} {name:26s} {sizes[name]!s:>8}   ({words} {limit})")
        for name, detail in sizes["details"].items():
            print(f"     {name}: {detail}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
