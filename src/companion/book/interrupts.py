"""What keeps a build safe to interrupt (Ctrl-C, SIGTERM): the renames that replace one
build with the next happen with signals held, a chapter's previous claims wait aside until
it finishes, and every small file is written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from pathlib import Path

from companion.book import report


@contextlib.contextmanager
def signals_held():
    """Holds SIGINT and SIGTERM back while a few renames replace one build with the next,
    so an interruption lands before or after them, never between."""
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


@contextlib.contextmanager
def claims_replaced_on_success(slug: str, scratch: Path):
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
        with signals_held():
            if previous.is_file():
                os.replace(previous, current)
            else:
                current.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, content: str | bytes) -> None:
    """Writes through a temporary file and one rename: the old or the new, never half."""
    data = content.encode() if isinstance(content, str) else content
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)
