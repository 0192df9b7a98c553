"""Chapters executed side by side, each in a process of its own.

``companion book --jobs N`` hands the chapters whose cache key changed to at most N worker
processes at a time. A worker is a fresh interpreter (``python -m companion.book.workers``)
that executes one chapter with :func:`companion.book.chapters.run`, exactly as a build
with one job does in its own process; the parent keeps the cache, the timings and the HTML.

The safety of an interrupted build is kept. The workers run in sessions of their own, so a
signal reaches the parent alone, which forwards one SIGTERM to every running worker and
waits for them: each unwinds like an interrupted single build (its kernel shut down, its
chapter's previous notebook and claims left in place, its scratch folder removed) before
the parent exits. The first chapter that fails stops the others the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.book.paths import build_dir

POLL = 0.2  # seconds between looks at the running workers
GRACE = 60.0  # seconds a stopped worker gets to unwind before it is killed


@dataclass
class _Worker:
    slug: str
    process: subprocess.Popen
    output: Path  # the worker's stdout and stderr, in a file (a pipe could fill up)


def _start(slug: str, parameters: dict[str, Any], notebook: Path, root: Path, log: Path):
    out = log.open("w")
    command = [sys.executable, "-m", "companion.book.workers", slug, str(notebook)]
    process = subprocess.Popen(
        [*command, json.dumps(parameters)],
        cwd=root,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    return _Worker(slug, process, log)


def _stop(workers: Sequence[_Worker]) -> None:
    """Asks every running worker to unwind and waits for all of them."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    for worker in workers:
        try:
            worker.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()


def execute(
    todo: Sequence[tuple[Any, dict[str, Any]]], jobs: int, root: Path
) -> Generator[tuple[Any, float], None, None]:
    """Executes every ``(chapter, parameters)`` of ``todo``, at most ``jobs`` at a time, in
    ``todo``'s order; yields ``(chapter, seconds)`` as each one finishes.

    Raises :class:`companion.book.chapters.ChapterFailed` with the chapter's own message
    when one fails, after stopping the others; KeyboardInterrupt (Ctrl-C, or SIGTERM in
    ``companion``) stops them all and propagates.
    """
    from companion.book.chapters import ChapterFailed

    pending, running = list(todo), []
    with tempfile.TemporaryDirectory(dir=build_dir(root), prefix="workers-") as tmp:
        try:
            while pending or running:
                while pending and len(running) < jobs:
                    chapter, parameters = pending.pop(0)
                    notebook = chapter.path.with_suffix(".ipynb")
                    log = Path(tmp) / f"{chapter.slug}.out"
                    running.append((chapter, _start(chapter.slug, parameters, notebook, root, log)))
                time.sleep(POLL)
                for chapter, worker in [r for r in running if r[1].process.poll() is not None]:
                    running.remove((chapter, worker))
                    said = worker.output.read_text()
                    if worker.process.returncode != 0:
                        raise ChapterFailed(said.strip() or f"chapter {chapter.slug} failed")
                    yield chapter, json.loads(said.strip().splitlines()[-1])["seconds"]
        finally:
            _stop([worker for _, worker in running])


def _terminated(signum, frame):
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    """A worker: executes the chapter ``argv[0]`` into ``argv[1]`` with the parameters of
    the JSON ``argv[2]``; prints ``{"seconds": ...}`` on success, the failure otherwise."""
    from companion.book import chapters

    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    slug, notebook, parameters = argv
    chapter = chapters.find_chapter(slug)
    try:
        seconds = chapters.run(chapter, json.loads(parameters), Path(notebook))
    except chapters.ChapterFailed as err:
        print(err, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    print(json.dumps({"seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
