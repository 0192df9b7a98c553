"""The execution cache: ``companion book`` executes a chapter again only when what it
depends on changed.

A chapter's key is the sha256 of everything its executed notebook and claims are a function
of: the chapter's source (its ``.py`` bytes), its resolved parameters (after quick values
and overrides, so quick and full runs never share a key), the package's source (every file
under ``src/companion``, path and bytes, in sorted path order), the lock files
(``requirements*.lock`` and ``requirements/*.lock``), the Python version, and the files the
chapter declares it reads. A page that summarizes the others declares it in its header
(``companion: after_others: [claims]`` or ``[executions]``); its key then holds the other
chapters' claims files or execution records, and it runs after them.

An entry, ``_build/cache/<slug>.<configuration>.json`` (quick and full each keep theirs),
is written atomically after the chapter's notebook and claims are in place, with copies of
both beside it. A hit needs the notebook in ``book/`` and the claims to match the entry's
hashes; where they do not (missing, or the other configuration's), they come back from
the copies, so switching between quick and full builds executes nothing.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from companion.book import interrupts
from companion.book.interrupts import write_atomically
from companion.book.paths import build_dir

PACKAGE = Path(__file__).resolve().parents[1]  # src/companion, whose source every key holds
LOCKS = ("requirements*.lock", "requirements/*.lock")
#: What a summary page may depend on: the others' claims files or their execution records.
AFTER_OTHERS = ("claims", "executions")
#: The book's sources besides the executed notebooks that the HTML is built from.
HTML_SOURCES = (
    "_toc.yml",
    "_config.yml",
    "references.bib",
    "package-lock.json",
    "book/*.md",
    "book/_static/**/*",
    "book/images/**/*",
)


def folder(root: Path) -> Path:
    """``_build/cache`` of the project at ``root``."""
    return build_dir(root) / "cache"


def sha256(path: Path) -> str | None:
    """The hex sha256 of a file's bytes, or None when there is no such file."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _digest(files: list[Path], base: Path) -> str:
    """One sha256 over the paths (relative to ``base``) and bytes of ``files``, in sorted
    path order, so a renamed file counts as a change."""
    hashed = hashlib.sha256()
    for path in sorted(files):
        hashed.update(f"{path.relative_to(base).as_posix()}\0{sha256(path)}\0".encode())
    return hashed.hexdigest()


@dataclass(frozen=True)
class Environment:
    """What every chapter's key shares, hashed once per build."""

    package: str
    locks: str
    python: str


def environment(root: Path, package: Path | None = None) -> Environment:
    """The package's source, the lock files and the Python version as of now.

    Bytecode caches are left out: importing the package rewrites them without a change.
    """
    package = package or PACKAGE
    sources = [p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    locks = [p for pattern in LOCKS for p in root.glob(pattern) if p.is_file()]
    return Environment(_digest(sources, package), _digest(locks, root), platform.python_version())


def configuration(parameters: dict[str, Any], has_parameters: bool) -> str:
    """``quick`` or ``full``: which sizes an execution used (``no parameters`` for a page
    that has none, which runs the same either way).

    Example:
      >>> configuration({"quick": True, "steps": 30}, True), configuration({}, True)
      ('quick', 'full')
    """
    if not has_parameters:
        return "no parameters"
    return "quick" if parameters.get("quick") is True else "full"


@dataclass(frozen=True)
class Entry:
    """What ``_build/cache/<slug>.<configuration>.json`` holds: the key and how the
    notebook was made."""

    slug: str
    key: str
    configuration: str
    parameters: dict[str, Any]
    notebook: str  # path relative to the project root
    notebook_sha256: str
    claims_sha256: str | None  # None: the chapter recorded no claims
    executed_at: str  # UTC, ISO 8601
    seconds: float

    def record(self) -> dict[str, Any]:
        """When, how long and in which configuration the chapter last executed."""
        keys = ("configuration", "executed_at", "seconds")
        return {k: getattr(self, k) for k in keys}


def key(
    chapter: Any,
    parameters: dict[str, Any],
    env: Environment,
    root: Path,
    others: dict[str, Any] | None = None,
) -> str:
    """The sha256 key of executing ``chapter`` (a :class:`~companion.book.chapters.Chapter`)
    with ``parameters``; ``others`` is what a summary page reads of the other chapters."""
    inputs = {name: sha256(root / name) for name in chapter.inputs}
    parts = {
        "slug": chapter.slug,
        "source": sha256(chapter.path),
        "parameters": parameters,
        "environment": asdict(env),
        "inputs": inputs,
        "others": others or {},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _stem(slug: str, config: str) -> str:
    return f"{slug}.{config.replace(' ', '-')}"


def load(root: Path, slug: str, config: str) -> Entry | None:
    """The stored entry of ``slug`` in configuration ``config``, or None when it is missing
    or unreadable."""
    try:
        return Entry(**json.loads((folder(root) / f"{_stem(slug, config)}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def lookup(root: Path, slug: str, config: str, wanted: str, claims: Path) -> Entry | None:
    """The entry of ``slug`` in ``config`` if it has key ``wanted``, with its executed
    notebook and claims in place: a notebook or claims file that is missing or differs
    (the other configuration's, say) comes back from the entry's copies.

    None means the chapter must be executed again.
    """
    entry = load(root, slug, config)
    if entry is None or entry.key != wanted:
        return None
    stem = folder(root) / _stem(slug, config)
    wanted_files = [
        (root / entry.notebook, stem.with_name(f"{stem.name}.ipynb"), entry.notebook_sha256),
        (claims, stem.with_name(f"{stem.name}.claims.json"), entry.claims_sha256),
    ]
    restore = []
    for target, copy, digest in wanted_files:
        if sha256(target) == digest:
            continue
        if digest is None or sha256(copy) != digest:
            return None
        restore.append((target, copy))
    with interrupts.signals_held():  # the notebook and its claims come back together
        for target, copy in restore:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, copy.read_bytes())
    return entry


def store(root: Path, entry: Entry, claims: Path) -> Entry:
    """Writes ``entry`` with copies of the notebook and claims it was executed with, each
    atomically and the entry last, so an interruption leaves the previous entry (which
    then no longer matches its copies, and the chapter is executed again)."""
    stem = folder(root) / _stem(entry.slug, entry.configuration)
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(stem.with_name(f"{stem.name}.ipynb"), (root / entry.notebook).read_bytes())
    if claims.is_file():
        write_atomically(stem.with_name(f"{stem.name}.claims.json"), claims.read_bytes())
    write_atomically(stem.with_name(f"{stem.name}.json"), json.dumps(asdict(entry), indent=2))
    record_time(root, entry.slug, entry.configuration, entry.seconds, entry.executed_at)
    return entry


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_time(root: Path, slug: str, config: str, seconds: float, executed_at: str) -> None:
    """Keeps how long ``slug`` took in ``config``, for :func:`expected` (book builds and
    ``companion run`` both record it)."""
    path = folder(root) / f"{slug}.times.json"
    times = _read_json(path)
    times[config] = {"seconds": round(seconds, 1), "executed_at": executed_at}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(times, indent=2))


def expected(root: Path, slug: str, config: str) -> str:
    """A sentence on how long ``slug`` took in ``config`` when it last ran."""
    last = _read_json(folder(root) / f"{slug}.times.json").get(config)
    if not last:
        return f"no recorded {config} run of {slug} yet"
    return f"expected about {last['seconds']:.0f} s (its last {config} run, {last['executed_at']})"


def html_key(root: Path, notebooks: list[Path], env: Environment) -> str:
    """The key of the HTML: the executed notebooks, the book's other sources, the package
    (its Sphinx extension) and the lock (jupyter-book's version)."""
    files = {p for pattern in HTML_SOURCES for p in root.glob(pattern) if p.is_file()}
    parts = [_digest([*files, *notebooks], root), env.package, env.locks, env.python]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def html_current(root: Path, wanted: str) -> bool:
    """Whether ``_build/html`` exists and was built from sources with key ``wanted``."""
    built = _read_json(folder(root) / "html.json").get("key")
    return built == wanted and (build_dir(root) / "html" / "index.html").is_file()


def store_html(root: Path, built: str) -> None:
    """Records the key of the HTML just swapped in."""
    folder(root).mkdir(parents=True, exist_ok=True)
    write_atomically(folder(root) / "html.json", json.dumps({"key": built, "built_at": now()}))


def forget(root: Path, slugs: set[str]) -> None:
    """Removes the entries of chapters not in ``slugs`` and the temporary files of writes
    that an interruption cut short."""
    for path in folder(root).glob("*"):
        slug = path.name.split(".", 1)[0]
        if path.suffix == ".tmp" or (path.name != "html.json" and slug not in slugs):
            path.unlink()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
