"""Chapters: read their parameters, execute them with papermill, build the book.

A chapter is ``book/NN_slug.py`` in jupytext percent format. Its parameters cell (tagged
``parameters``) holds flat assignments, one per line, each with a comment; a comment may
end with the value quick mode uses, ``[quick: VALUE]``::

    # %% tags=["parameters"]
    quick = False  # small sizes for CI
    width = 1024  # hidden-layer width [quick: 128]

Quick values are resolved here, once: ``--quick`` supplies them for the parameters the
user did not set, and papermill injects the result, so the executed notebook shows the
values actually used and an explicit ``-p NAME VALUE`` always wins.

Execution is one way only: the ``.py`` source is converted to a notebook in memory and
papermill writes the executed ``.ipynb``; the source is never rewritten.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupytext
import yaml

from companion.book import report
from companion.book.paths import build_dir, project_root

# the value may hold one level of brackets: [quick: [32, 64]]
ANNOTATION = re.compile(
    r"\s*\[(?P<key>quick|min|max):\s*(?P<value>(?:\[[^\[\]]*\]|[^\[\]])+?)\]\s*$"
)
SCRATCH = "run-"  # prefix of a chapter run's scratch folder in _build/
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


@dataclass(frozen=True)
class Chapter:
    """A chapter source and what its parameters cell declares."""

    slug: str
    path: Path
    title: str
    parameters: tuple[Parameter, ...]

    def resolve(self, overrides: dict[str, str], quick: bool = False) -> dict[str, Any]:
        """Typed parameter values for papermill from command-line strings; with ``quick``,
        the quick values of the parameters not given in ``overrides``.

        Raises:
          ValueError: for an unknown name (listing the valid ones) or a badly typed value.
        """
        known = {p.name: p for p in self.parameters}
        values: dict[str, Any] = {}
        for name, text in overrides.items():
            if name not in known:
                valid = ", ".join(known) or "none"
                raise ValueError(
                    f"chapter {self.slug} has no parameter {name!r}; valid parameters: {valid}"
                )
            values[name] = known[name].check(known[name].coerce(text))
        if quick:
            if "quick" not in known:
                raise ValueError(f"chapter {self.slug} has no quick mode")
            defaults = {p.name: p.quick for p in self.parameters if p.quick is not NO_QUICK}
            values = (
                {"quick": True} | {k: v for k, v in defaults.items() if k not in values} | values
            )
        return values


def _parameters_cell(notebook) -> str | None:
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    return None


def _parse_parameters(source: str, where: Path) -> tuple[Parameter, ...]:
    lines = source.splitlines()
    params = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            raise ValueError(f"{where}: parameters cell may only hold 'name = value  # comment'")
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            raise ValueError(f"{where}: parameters cell assigns to a non-name")
        line = lines[node.lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line else ""
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


def load_chapter(path: Path) -> Chapter:
    """Reads a chapter's title and parameters from its ``.py`` source."""
    notebook = jupytext.read(path)
    title = next(
        (
            line.lstrip("# ").strip()
            for cell in notebook.cells
            if cell.cell_type == "markdown"
            for line in cell.source.splitlines()
            if line.startswith("# ")
        ),
        path.stem,
    )
    source = _parameters_cell(notebook)
    params = _parse_parameters(source, path) if source else ()
    return Chapter(path.stem, path, title, params)


def chapters(root: Path | None = None) -> list[Chapter]:
    """Every executable chapter, in the order of ``_toc.yml``."""
    root = root or project_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    entries = [toc.get("root", "")]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        entries += [c["file"] for c in part.get("chapters", [])]
    paths = [root / f"{entry}.py" for entry in entries if entry]
    return [load_chapter(p) for p in paths if p.is_file()]


def find_chapter(name: str, root: Path | None = None) -> Chapter:
    """A chapter by slug (``03_dgd``), number (``3``) or name (``dgd``)."""
    found = chapters(root)
    for chapter in found:
        number, _, short = chapter.slug.partition("_")
        if name in (chapter.slug, short) or (
            name.isdigit() and number.isdigit() and int(name) == int(number)
        ):
            return chapter
    valid = ", ".join(c.slug for c in found)
    raise ValueError(f"no chapter {name!r}; chapters are: {valid}")


class ChapterFailed(RuntimeError):
    """A chapter raised during execution; the message names the chapter and the cell."""


@contextlib.contextmanager
def _stderr_to(path: Path):
    """Sends file descriptor 2 (inherited by the kernel) to ``path`` for the duration, so
    the kernel's warnings and errors are kept on disk instead of mixing with the progress
    output."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _environment(**values: str):
    """Sets environment variables (inherited by the kernel) and restores them afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _signals_held():
    """Holds SIGINT and SIGTERM back while a few renames replace one build with the next,
    so an interruption lands before or after them, never between."""
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


@contextlib.contextmanager
def _claims_replaced_on_success(slug: str, scratch: Path):
    """The chapter records into ``<results>/<slug>.json`` as it runs; its previous claims
    wait in ``scratch`` and come back if the run does not finish (failure, Ctrl-C,
    SIGTERM), so no half-recorded set is ever left behind."""
    current = report.results_dir() / f"{slug}.json"
    previous = scratch / "previous-claims.json"
    if current.is_file():
        os.replace(current, previous)
    try:
        yield
    except BaseException:
        with _signals_held():
            if previous.is_file():
                os.replace(previous, current)
            else:
                current.unlink(missing_ok=True)
        raise


def run(
    chapter: Chapter, parameters: dict[str, Any], output: Path, *, root: Path | None = None
) -> float:
    """Executes ``chapter`` with papermill into ``output``; returns the wall time in s.

    The kernel starts in the repository root and sees ``COMPANION_CHAPTER``, so its claims
    land in ``<results>/<slug>.json``; its stderr goes to ``_build/logs/<slug>.log``. The
    executed notebook is written to a scratch folder and moved into place only when the
    chapter has finished, and the previous claims come back unless it finished, so an
    interrupted run (Ctrl-C, SIGTERM) leaves the previous notebook and claims as they were.
    A chapter that fails in a cell leaves its executed notebook at ``output`` for
    inspection.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    root = root or project_root()
    notebook = jupytext.read(chapter.path)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    logs = build_dir(root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=build_dir(root), prefix=SCRATCH) as tmp:
        source, executed = Path(tmp) / f"{chapter.slug}.ipynb", Path(tmp) / "executed.ipynb"
        jupytext.write(notebook, source)
        try:
            with (
                _claims_replaced_on_success(chapter.slug, Path(tmp)),
                _environment(COMPANION_CHAPTER=chapter.slug),
                _stderr_to(logs / f"{chapter.slug}.log"),
            ):
                papermill.execute_notebook(
                    str(source),
                    str(executed),
                    parameters=parameters,
                    cwd=str(root),
                    progress_bar=False,
                    kernel_name="python3",
                )
        except PapermillExecutionError as err:
            if err.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel first
                raise KeyboardInterrupt from None
            shutil.copyfile(executed, output)
            raise ChapterFailed(
                f"chapter {chapter.slug} failed in cell {err.exec_count} "
                f"(notebook cell {err.cell_index}): {err.ename}: {err.evalue}\n"
                f"--- cell source ---\n{err.source}\n--- executed notebook: {output}"
            ) from None
        with _signals_held():
            shutil.move(executed, output)
    return time.perf_counter() - start


def _stage_mathjax(root: Path) -> None:
    """Copies the locally installed MathJax into ``_build/mathjax`` for the HTML build."""
    source = root / "node_modules" / "mathjax" / "es5"
    if not (source / "tex-mml-chtml.js").is_file():
        raise FileNotFoundError(
            "MathJax is not installed: run 'npm ci' (or 'make book', which does it)"
        )
    target = build_dir(root) / "mathjax" / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy2(source / "tex-mml-chtml.js", target)
    for sub in ("output/chtml/fonts/woff-v2", "input/tex/extensions"):
        shutil.copytree(source / sub, target / sub)


def build_html(root: Path | None = None) -> Path:
    """Builds ``_build/html`` from the executed notebooks, warnings as errors.

    Builds into a staging folder and swaps it in only on success, so a failed build leaves
    the previous HTML in place.
    """
    root = root or project_root()
    _stage_mathjax(root)
    staging = build_dir(root) / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb), "build", str(root), "--path-output", str(staging), "-W", "-n", "--keep-going"]
    html, old = build_dir(root) / "html", build_dir(root) / "html.old"
    try:
        done = subprocess.run(cmd, cwd=root)
        if done.returncode != 0:
            raise ChapterFailed(f"jupyter-book build failed (exit {done.returncode}); see above")
        with _signals_held():
            shutil.rmtree(old, ignore_errors=True)
            if html.exists():
                html.rename(old)
            (staging / "_build" / "html").rename(html)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return html


def _clear_leftovers(root: Path, slugs: set[str]) -> None:
    """Removes what a killed build may have left (scratch folders of chapter runs, a
    staging HTML build) and the claims of chapters that are no longer in ``_toc.yml``."""
    build = build_dir(root)
    for leftover in (*build.glob(f"{SCRATCH}*"), build / "staging", build / "html.old"):
        shutil.rmtree(leftover, ignore_errors=True)
    results = report.results_dir()
    for stale in results.glob("*.json"):
        if stale.stem not in slugs and stale.name != report.REPORT_FILE:
            stale.unlink()


def machine() -> dict[str, str]:
    """The machine and versions a status page reports."""
    import jax
    import neural_tangents
    import numpy

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "neural-tangents": neural_tangents.__version__,
        "numpy": numpy.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
    }


def build_book(quick: bool = False, root: Path | None = None, log=print) -> Path:
    """Executes every chapter in ``_toc.yml`` order, then builds the HTML.

    Writes ``_build/timings.json`` after each chapter (the status chapter reads it) and
    stops at the first failing chapter, leaving the previous HTML intact.
    """
    root = root or project_root()
    found = chapters(root)
    _clear_leftovers(root, {c.slug for c in found})
    timings_path = build_dir(root) / "timings.json"
    timings_path.parent.mkdir(parents=True, exist_ok=True)
    timings: dict[str, Any] = {"quick": quick, "chapters": {}}
    timings_path.write_text(json.dumps(timings, indent=2))  # never leave a stale file
    for i, chapter in enumerate(found, 1):
        log(f"[{i}/{len(found)}] {chapter.slug} ...", end=" ", flush=True)
        params = chapter.resolve({}, quick=quick and bool(chapter.parameters))
        seconds = run(chapter, params, chapter.path.with_suffix(".ipynb"), root=root)
        log(f"{seconds:.1f} s")
        timings["chapters"][chapter.slug] = round(seconds, 1)
        timings_path.write_text(json.dumps(timings, indent=2))
    log("building HTML ...", flush=True)
    start = time.perf_counter()
    html = build_html(root)
    log(f"HTML built in {time.perf_counter() - start:.1f} s: {html / 'index.html'}")
    return html
