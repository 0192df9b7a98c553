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
papermill writes the executed ``.ipynb``; the source is never rewritten. ``companion book``
executes only the chapters whose key changed (see :mod:`companion.book.cache`). A chapter
may declare in its jupytext header what else it reads::

    # jupyter:
    #   companion:
    #     inputs: [_build/bench.json]   # files, relative to the project root
    #     after_others: [claims]        # a summary page: runs after the other chapters
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupytext
import yaml

from companion.book import cache, interrupts, report, workers
from companion.book.html import build_html
from companion.book.parameters import NO_QUICK, Parameter, parse_parameters
from companion.book.paths import build_dir, project_root

SCRATCH = "run-"  # prefix of a chapter run's scratch folder in _build/


@dataclass(frozen=True)
class Chapter:
    """A chapter source, what its parameters cell declares and what else it reads."""

    slug: str
    path: Path
    title: str
    parameters: tuple[Parameter, ...]
    inputs: tuple[str, ...] = ()  # files its key holds, relative to the project root
    after_others: tuple[str, ...] = ()  # of cache.AFTER_OTHERS: what it reads of the others

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
    params = parse_parameters(source, path) if source else ()
    declared = notebook.metadata.get("companion", {})
    unknown = set(declared) - {"inputs", "after_others"}
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))} under 'companion' in the "
            "header; valid keys: inputs, after_others"
        )
    after = tuple(declared.get("after_others", ()))
    if set(after) - set(cache.AFTER_OTHERS):
        raise ValueError(
            f"{path}: after_others lists {list(after)}; each must be one of "
            f"{', '.join(cache.AFTER_OTHERS)}"
        )
    return Chapter(path.stem, path, title, params, tuple(declared.get("inputs", ())), after)


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
                interrupts.claims_replaced_on_success(chapter.slug, Path(tmp)),
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
        with interrupts.signals_held():
            shutil.move(executed, output)
    return time.perf_counter() - start


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
    cache.forget(root, slugs)


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


def _others(chapter: Chapter, found: list[Chapter], done: dict[str, cache.Entry]) -> dict:
    """What a summary page's key holds of the other chapters: their claims files' hashes
    and/or this build's execution records of them."""
    others = [c.slug for c in found if c.slug != chapter.slug]
    read: dict[str, Any] = {}
    if "claims" in chapter.after_others:
        results = report.results_dir()
        read["claims"] = {slug: cache.sha256(results / f"{slug}.json") for slug in others}
    if "executions" in chapter.after_others:
        entries = {slug: done.get(slug) for slug in others}
        read["executions"] = {s: e and (e.key, e.executed_at) for s, e in entries.items()}
    return read


def _stored(
    chapter: Chapter, key: str, params: dict[str, Any], seconds: float, root: Path
) -> cache.Entry:
    """The cache entry of a chapter that has just executed, stored with its copies."""
    notebook = chapter.path.with_suffix(".ipynb")
    claims = report.results_dir() / f"{chapter.slug}.json"
    entry = cache.Entry(
        slug=chapter.slug,
        key=key,
        configuration=cache.configuration(params, bool(chapter.parameters)),
        parameters=params,
        notebook=notebook.relative_to(root).as_posix(),
        notebook_sha256=cache.sha256(notebook) or "",
        claims_sha256=cache.sha256(claims),
        executed_at=cache.now(),
        seconds=round(seconds, 1),
    )
    return cache.store(root, entry, claims)


def _executions(
    todo: list[tuple[Chapter, dict[str, Any]]], jobs: int, root: Path
) -> Iterator[tuple[Chapter, float]]:
    """``(chapter, seconds)`` of each chapter of ``todo`` as it finishes: one at a time in
    this process, or side by side in worker processes (:mod:`companion.book.workers`)."""
    if jobs == 1:
        for chapter, params in todo:
            yield chapter, run(chapter, params, chapter.path.with_suffix(".ipynb"), root=root)
    else:
        with contextlib.closing(workers.execute(todo, jobs, root)) as finished:
            yield from finished


def build_book(
    quick: bool = False,
    root: Path | None = None,
    log=print,
    force: bool = False,
    jobs: int = 1,
) -> Path:
    """Executes every chapter whose cache key changed (all with ``force``), ``jobs`` at a
    time, then the summary pages one by one in ``_toc.yml`` order, then builds the HTML
    unless it is current.

    Writes ``_build/timings.json`` after each chapter (the status chapter reads it) and
    stops at the first failing chapter, leaving the previous HTML intact.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a whole number of at least 1, got {jobs!r}")
    root = root or project_root()
    found = chapters(root)
    _clear_leftovers(root, {c.slug for c in found})
    env = cache.environment(root)
    timings_path = build_dir(root) / "timings.json"
    timings_path.parent.mkdir(parents=True, exist_ok=True)
    timings: dict[str, Any] = {"quick": quick, "chapters": {}}
    timings_path.write_text(json.dumps(timings, indent=2))  # never leave a stale file
    number = {c.slug: i for i, c in enumerate(sorted(found, key=lambda c: bool(c.after_others)), 1)}
    done: dict[str, cache.Entry] = {}

    def finished(chapter: Chapter, entry: cache.Entry, cached: bool) -> None:
        done[chapter.slug] = entry
        how = f"executed {entry.executed_at} in {entry.seconds:.1f} s, {entry.configuration}"
        said = f"from the cache ({how})" if cached else f"{entry.seconds:.1f} s"
        log(f"[{number[chapter.slug]}/{len(found)}] {chapter.slug}: {said}", flush=True)
        timings["chapters"][chapter.slug] = entry.record() | {"cached": cached}
        ordered = sorted(timings["chapters"].items(), key=lambda item: number[item[0]])
        timings_path.write_text(json.dumps(timings | {"chapters": dict(ordered)}, indent=2))

    # The summary pages' keys hold what the others did, so each waits for all before it.
    groups = [[c for c in found if not c.after_others]] + [[c] for c in found if c.after_others]
    for group in groups:
        todo, keys = [], {}
        for chapter in group:
            params = chapter.resolve({}, quick=quick and bool(chapter.parameters))
            key = cache.key(chapter, params, env, root, _others(chapter, found, done))
            claims = report.results_dir() / f"{chapter.slug}.json"
            config = cache.configuration(params, bool(chapter.parameters))
            hit = None if force else cache.lookup(root, chapter.slug, config, key, claims)
            if hit is not None:
                finished(chapter, hit, True)
            else:
                todo.append((chapter, params))
                keys[chapter.slug] = (key, params)
        if todo:
            names = ", ".join(c.slug for c, _ in todo)
            log(f"executing {names} ({min(jobs, len(todo))} at a time) ...", flush=True)
        for chapter, seconds in _executions(todo, jobs, root):
            key, params = keys[chapter.slug]
            finished(chapter, _stored(chapter, key, params, seconds, root), False)
    notebooks = [c.path.with_suffix(".ipynb") for c in found]
    html_key = cache.html_key(root, notebooks, env)
    if not force and cache.html_current(root, html_key):
        log(f"HTML unchanged: {build_dir(root) / 'html' / 'index.html'}")
        return build_dir(root) / "html"
    log("building HTML ...", flush=True)
    start = time.perf_counter()
    html = build_html(root)
    cache.store_html(root, html_key)
    log(f"HTML built in {time.perf_counter() - start:.1f} s: {html / 'index.html'}")
    return html
