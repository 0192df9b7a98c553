"""Interrupting a book build (Ctrl-C, SIGTERM) leaves the previous book as it was, and the
next build succeeds. Real `companion book` processes on a two-chapter toy book."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = """# %% [markdown]
# # {title}

# %% tags=["parameters"]
quick = False  # small sizes

# %%
import os
import time
from pathlib import Path

from companion.book import report

report.record("{slug}.first", 1.0, kind="exact", bound=2.0, statement="recorded first")
Path(os.environ["TOY_PIDS"], "{slug}").write_text(str(os.getpid()))
time.sleep(float(os.environ.get("TOY_PAUSE_{slug}", "0")))
report.record("{slug}.second", 1.0, kind="exact", bound=2.0, statement="recorded last")
"""


def _toy_book(root: Path) -> None:
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book" / "_static", root / "book" / "_static")
    shutil.copytree(ROOT / "book" / "images", root / "book" / "images")
    (root / "node_modules").symlink_to(ROOT / "node_modules")
    (root / "book" / "intro.md").write_text("# Toy\n\nA toy book.\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n"
        "      - file: book/01_fast\n      - file: book/02_slow\n"
    )
    for slug, title in (("01_fast", "Fast"), ("02_slow", "Slow")):
        (root / "book" / f"{slug}.py").write_text(CHAPTER.format(slug=slug, title=title))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    (root / "book").mkdir()
    _toy_book(root)
    return root


def _build(root: Path, pause: float = 0.0, sigint_ignored: bool = False) -> subprocess.Popen:
    pids = root / "pids"
    shutil.rmtree(pids, ignore_errors=True)
    pids.mkdir()
    env = os.environ | {"TOY_PIDS": str(pids), "TOY_PAUSE_02_slow": str(pause)}
    env.pop("COMPANION_RESULTS_DIR", None)
    command = [sys.executable, "-m", "companion.book.cli", "book", "--quick"]
    if sigint_ignored:  # as a shell starts a background job of a script (no fork here:
        # the test process runs JAX threads, and a forked child would warn)
        command = ["sh", "-c", 'trap "" INT; exec "$0" "$@"', *command]
    return subprocess.Popen(
        command, cwd=root, env=env, start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(path: Path, seconds: float, build: subprocess.Popen) -> None:
    """Waits for ``path``; if it does not appear, stops ``build`` and shows what it said."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline or build.poll() is not None:
            if build.poll() is None:
                os.killpg(build.pid, signal.SIGKILL)
            out, err = build.communicate(timeout=60)
            raise TimeoutError(
                f"{path} did not appear within {seconds} s (build exit {build.returncode}):\n"
                f"{(out + err)[-3000:]}"
            )
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _previous_book(root: Path) -> dict[Path, bytes]:
    """A previous build's HTML, claims and executed notebook, as files to compare."""
    build = root / "_build"
    files = {
        build / "html" / "index.html": b"the previous HTML",
        build / "results" / "02_slow.json": json.dumps([{"id": "old"}]).encode(),
        root / "book" / "02_slow.ipynb": b"the previous executed notebook",
        build / "cache" / "02_slow.quick.json": b"the previous cache entry",
    }
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


@pytest.mark.parametrize(
    ("how", "to_group", "sigint_ignored"),
    [
        (signal.SIGINT, True, False),
        (signal.SIGINT, False, True),
        (signal.SIGTERM, False, False),
        (signal.SIGTERM, True, False),
    ],
    ids=["ctrl-c", "int-to-a-background-job", "kill", "kill-group"],
)
def test_an_interrupted_build_leaves_the_previous_book(toy, how, to_group, sigint_ignored):
    previous = _previous_book(toy)
    build = _build(toy, pause=120, sigint_ignored=sigint_ignored)
    try:
        # the slow chapter has recorded one claim (a readiness wait: a loaded machine may
        # take minutes to start two kernels; a passing run waits seconds)
        _wait_for(toy / "pids" / "02_slow", 300, build)
        kernel = int((toy / "pids" / "02_slow").read_text())
        if to_group:
            os.killpg(build.pid, how)
        else:
            build.send_signal(how)
        _, err = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
    assert build.returncode in (130, -how), err[-2000:]
    for path, content in previous.items():
        assert path.read_bytes() == content, f"{path.name} changed"
    leftovers = [
        p.name for p in (toy / "_build").iterdir() if p.name.startswith(("run-", "staging"))
    ]
    assert not leftovers, leftovers
    deadline = time.monotonic() + 20
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(kernel), "the chapter's kernel outlived the build"


def test_the_next_build_succeeds_and_drops_claims_of_removed_chapters(toy):
    _previous_book(toy)
    gone = toy / "_build" / "results" / "07_removed.json"
    gone.write_text(json.dumps([{"id": "stale"}]))
    build = _build(toy)
    out, err = build.communicate(timeout=600)
    assert build.returncode == 0, (out + err)[-3000:]
    assert not gone.exists(), "claims of a chapter no longer in _toc.yml survived the build"
    claims = json.loads((toy / "_build" / "results" / "02_slow.json").read_text())
    assert [c["id"] for c in claims] == ["02_slow.first", "02_slow.second"]
    assert b"the previous HTML" not in (toy / "_build" / "html" / "index.html").read_bytes()
    assert not (toy / "_build" / "staging").exists()


def test_a_failing_chapter_stops_the_build_with_its_message_and_leaves_nothing(tmp_path):
    """Two chapters side by side (the default two jobs): the one that fails stops the
    other, the build exits 1 with the failing chapter's cell and error, the other chapter's
    previous notebook stays, and no worker or scratch folder is left."""
    (tmp_path / "book").mkdir()
    _toy_book(tmp_path)
    fast = tmp_path / "book" / "01_fast.py"
    fast.write_text(fast.read_text() + '\nraise RuntimeError("toy failure")\n')
    previous = _previous_book(tmp_path)
    build = _build(tmp_path, pause=120)
    _, err = build.communicate(timeout=300)
    assert build.returncode == 2, err[-2000:]
    assert "chapter 01_fast failed in cell" in err and "toy failure" in err, err[-2000:]
    for path, content in previous.items():
        assert path.read_bytes() == content, f"{path.name} changed"
    left = [p.name for p in (tmp_path / "_build").iterdir() if p.name.startswith(("run-", "work"))]
    assert not left, left
